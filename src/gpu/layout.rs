//! The pool table and buffer layout of one submission: where every pool's rows, similarity
//! matrix, state, results and streaming partials sit in the shared buffers. A pure function of
//! the pools' shapes (unit-tested without an adapter); `record.rs` binds what it describes.

use super::kernels::{MethodCode, PoolEntry, NO_OFFSET, STEP_STRIDE, TILE};
use super::plan::{
    dpp_rounds, job_bytes, stream_shape, Bytes, DppShape, Shape, VideoShape, DPP_REPORT,
};
use super::GpuPath;

/// One pool of a submission, as the layout needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSpec {
    pub shape: Shape,
    pub path: GpuPath,
    /// IDPruner's tokens per round (1 for DivPrune).
    pub pk: u32,
    /// IDPruner's `1 - lambda` (0 for DivPrune).
    pub om: f32,
    /// Byte offset of the features in the caller's buffer (device features only).
    pub device_offset: Option<u64>,
}

/// Sizes in bytes of the buffers one submission uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub pools: u64,
    pub input: u64,
    pub norm: u64,
    pub sim: u64,
    pub state: u64,
    pub imp: u64,
    pub out: u64,
    pub partials: u64,
    pub steps: u64,
    /// Where the timestamps start in the readback buffer (after the results).
    pub ts_off: u64,
    pub readback: u64,
}

/// The layout of one submission.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Pool table: dense pools first, the streaming ones from an aligned slot on.
    pub table: Vec<PoolEntry>,
    /// Table slot of each pool.
    pub slot_of: Vec<usize>,
    /// Dense pools, and the streaming ones (pool indices).
    pub dense: Vec<usize>,
    pub stream: Vec<usize>,
    /// First slot of the streaming pools (aligned for a binding offset).
    pub stream_start: usize,
    /// Rows of all pools together.
    pub rows: u64,
    /// Partial argmax slots of one parity half (all streaming pools).
    pub pstride: u64,
    /// The largest K of a streaming pool (steps 0..=kmax are recorded).
    pub kmax: usize,
    /// The largest N of any pool.
    pub nmax: u32,
    /// The largest N of a dense pool that picks anything.
    pub n_dense_max: Option<usize>,
    /// The largest N of a streaming pool.
    pub n_stream_max: Option<usize>,
    /// A streaming DivPrune pool needs the nearest-neighbour pass.
    pub stream_divprune: bool,
    /// Device features: the aligned (offset, size) of the caller's buffer to bind.
    pub device_range: Option<(u64, u64)>,
    /// The similarity's tile-row ranges ([`SimRows`]), in the steps table after the steps.
    pub sim_rows: SimRows,
    pub sizes: Sizes,
}

/// The tile-row ranges similarity.wgsl dispatches read from a uniform table (at
/// [`STEP_STRIDE`] from entry `base` on): entry `base` covers every tile row, entry
/// `base + 1 + r` tile row r alone (a similarity spread over several submissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimRows {
    /// Table index of the first entry.
    pub base: usize,
    /// Tile rows of the largest pool.
    pub tiles: u32,
}

impl SimRows {
    fn new(base: usize, nmax: u32) -> SimRows {
        SimRows {
            base,
            tiles: nmax.div_ceil(TILE).max(1),
        }
    }

    /// Entries in the table.
    pub(crate) fn len(&self) -> usize {
        1 + self.tiles as usize
    }

    /// Entry `base + i`: `(first, end)` tile rows.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u32, u32)> {
        let t = self.tiles;
        std::iter::once((0, t)).chain((0..t).map(|r| (r, r + 1)))
    }

    /// The table index of the entry for tile rows `rows`: the whole, or one row.
    pub(crate) fn index(&self, rows: std::ops::Range<u32>) -> usize {
        if rows.start == 0 && rows.end >= self.tiles {
            self.base
        } else {
            debug_assert_eq!(rows.len(), 1);
            self.base + 1 + rows.start as usize
        }
    }
}

/// Rounds a size up to a multiple of 4, at least 4 bytes (an empty binding is invalid).
fn binding(x: u64) -> u64 {
    x.max(4).div_ceil(4) * 4
}

/// Lays out `pools` (one submission) on a device whose storage offsets align to
/// `storage_align` bytes. `timestamps`: room for two resolved timestamps after the results.
pub(crate) fn layout(pools: &[PoolSpec], storage_align: u64) -> Layout {
    let align = slot_align(storage_align);
    let dense: Vec<usize> = (0..pools.len())
        .filter(|&i| pools[i].path == GpuPath::Dense)
        .collect();
    let stream: Vec<usize> = (0..pools.len())
        .filter(|&i| pools[i].path == GpuPath::Streaming)
        .collect();
    let stream_start = dense.len().div_ceil(align) * align;
    let entries = if stream.is_empty() {
        dense.len()
    } else {
        stream_start + stream.len()
    };
    let mut table = vec![PoolEntry::default(); entries];
    let mut slot_of = vec![0usize; pools.len()];
    for (s, &i) in dense.iter().enumerate() {
        slot_of[i] = s;
    }
    for (s, &i) in stream.iter().enumerate() {
        slot_of[i] = stream_start + s;
    }
    // Running offsets, in elements of each buffer.
    let (mut row0, mut u_off, mut src_off, mut sim_off, mut out_off, mut part_off) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut device_range = None;
    for (i, p) in pools.iter().enumerate() {
        let s = &p.shape;
        let (iters, parts) = match p.path {
            GpuPath::Streaming => stream_shape(s.n),
            _ => (0, 0),
        };
        let this_src = match p.device_offset {
            None => src_off,
            Some(offset) => {
                let base = offset - offset % storage_align.max(4);
                let size = (offset - base + s.n as u64 * s.d as u64 * 4).div_ceil(4) * 4;
                device_range = Some((base, size));
                (offset - base) / 4
            }
        };
        table[slot_of[i]] = PoolEntry {
            n: s.n as u32,
            k: s.k as u32,
            method: s.method as u32,
            pk: p.pk.max(1),
            d: s.d as u32,
            d4: s.d.div_ceil(4) as u32,
            src_off: this_src as u32,
            u_off: u_off as u32,
            row0: row0 as u32,
            cache_off: 0,
            sim_off: sim_off as u32,
            out_off: out_off as u32,
            parts,
            iters,
            part_off: part_off as u32,
            om: p.om,
            stride: s.d as u32,
            ..PoolEntry::default()
        };
        let b = job_bytes(s, p.path).0;
        row0 += s.n as u64;
        u_off += b[Bytes::NORM] / 16;
        src_off += b[Bytes::INPUT] / 4;
        sim_off += b[Bytes::SIM] / 4;
        out_off += b[Bytes::OUT] / 4;
        part_off += parts as u64;
    }
    for (i, p) in pools.iter().enumerate() {
        bad_word(&mut table[slot_of[i]], p.device_offset, &mut out_off);
    }
    let rows = row0;
    for e in &mut table {
        // IDPruner's score cache sits after every pool's state.
        e.cache_off = rows as u32;
    }
    let kmax = stream.iter().map(|&i| pools[i].shape.k).max().unwrap_or(0);
    let nmax = pools.iter().map(|p| p.shape.n).max().unwrap_or(1) as u32;
    let sim_rows = SimRows::new(kmax + 1, nmax);
    let out = binding(out_off * 4);
    let ts_off = out.div_ceil(8) * 8;
    let sizes = Sizes {
        pools: entries as u64 * std::mem::size_of::<PoolEntry>() as u64,
        input: binding(src_off * 4),
        norm: binding(u_off * 16),
        sim: binding(sim_off * 4),
        state: binding(rows * 8),
        imp: binding(rows * 8),
        out,
        partials: binding(part_off * 16),
        steps: (sim_rows.base + sim_rows.len()) as u64 * STEP_STRIDE,
        ts_off,
        readback: ts_off + 16,
    };
    Layout {
        table,
        slot_of,
        stream_start,
        rows,
        pstride: part_off,
        kmax,
        nmax,
        n_dense_max: dense
            .iter()
            .filter(|&&i| pools[i].shape.k > 0)
            .map(|&i| pools[i].shape.n)
            .max(),
        n_stream_max: stream.iter().map(|&i| pools[i].shape.n).max(),
        stream_divprune: stream
            .iter()
            .any(|&i| pools[i].shape.method == MethodCode::DivPrune),
        dense,
        stream,
        device_range,
        sim_rows,
        sizes,
    }
}

/// Gives a pool that reads a caller's buffer its word of `out` (after every pool's results)
/// where normalize.wgsl records the first non-finite feature; host pools keep NO_OFFSET.
fn bad_word(e: &mut PoolEntry, device_offset: Option<u64>, out: &mut u64) {
    if device_offset.is_some() {
        e.bad_off = *out as u32;
        *out += 1;
    }
}

/// Table slots per storage-offset alignment (a pool table range bound from a later slot must
/// start at an aligned offset).
fn slot_align(storage_align: u64) -> usize {
    (storage_align as usize / std::mem::size_of::<PoolEntry>()).max(1)
}

/// The aligned `(offset, size)` of a caller's buffer covering every device pool's features:
/// `(offset, n, d)` each; `None` when there are none.
fn device_span(pools: &[(u64, usize, usize)], storage_align: u64) -> Option<(u64, u64)> {
    let base = pools.iter().map(|p| p.0).min()?;
    let base = base - base % storage_align.max(4);
    let end = pools
        .iter()
        .map(|&(o, n, d)| o + (n * d * 4) as u64)
        .max()?;
    Some((base, (end - base).div_ceil(4) * 4))
}

/// One CDPruner DPP pool of a submission, as the layout needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DppSpec {
    pub shape: DppShape,
    /// `CdPruner` or `CdPrunerOpenVino`: the rows' epsilon rule and the kernel's form.
    pub method: MethodCode,
    /// OpenVINO's relevance weight.
    pub w: f32,
    pub path: GpuPath,
    pub device_offset: Option<u64>,
}

/// Byte sizes of the buffers of one DPP submission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DppSizes {
    pub pools: u64,
    pub input: u64,
    pub norm: u64,
    pub sim: u64,
    pub state: u64,
    pub chol: u64,
    pub out: u64,
    /// The rounds table (one [`super::kernels::RoundsEntry`] per dispatch, at
    /// [`super::kernels::STEP_STRIDE`]).
    pub rounds: u64,
    pub ts_off: u64,
    pub readback: u64,
}

/// The layout of one DPP submission. Table: the pools that store S first, then the others,
/// then (from an aligned slot) one one-row pool per text vector.
#[derive(Debug, Clone)]
pub(crate) struct DppLayout {
    pub table: Vec<PoolEntry>,
    /// Table slot of each pool (job order).
    pub slot_of: Vec<usize>,
    /// DPP pools (slots 0..pools), the first `dense` of which store S.
    pub pools: usize,
    pub dense: usize,
    /// Text rows: slots text_start..text_start + texts.
    pub text_start: usize,
    pub texts: usize,
    /// Byte offsets in the input buffer of each pool's host features and text (job order).
    pub features_at: Vec<Option<u64>>,
    pub text_at: Vec<Option<u64>>,
    /// The largest N of a DPP pool, and of one that stores S and picks.
    pub nmax: u32,
    pub n_dense_max: Option<usize>,
    pub device_range: Option<(u64, u64)>,
    /// The `greedy` dispatches: rounds `(first, end)` each (`plan::dpp_rounds`).
    pub rounds: Vec<(u32, u32)>,
    /// The similarity's tile-row ranges, in the rounds table after the rounds.
    pub sim_rows: SimRows,
    pub sizes: DppSizes,
}

/// Lays out DPP pools (one submission).
pub(crate) fn dpp_layout(pools: &[DppSpec], storage_align: u64) -> DppLayout {
    let order: Vec<usize> = (0..pools.len())
        .filter(|&i| pools[i].path == GpuPath::Dense)
        .chain((0..pools.len()).filter(|&i| pools[i].path != GpuPath::Dense))
        .collect();
    let mut slot_of = vec![0usize; pools.len()];
    for (slot, &i) in order.iter().enumerate() {
        slot_of[i] = slot;
    }
    let align = slot_align(storage_align);
    let texts = pools.iter().filter(|p| p.shape.text).count();
    let text_start = pools.len().div_ceil(align) * align;
    let mut table = vec![PoolEntry::default(); text_start + texts];
    let span: Vec<(u64, usize, usize)> = pools
        .iter()
        .filter_map(|p| p.device_offset.map(|o| (o, p.shape.n, p.shape.d)))
        .collect();
    let device_range = device_span(&span, storage_align);
    // Running offsets: floats of input, vec4s of norm, floats of sim / state / chol, words
    // of out.
    let (mut input, mut norm, mut sim, mut state, mut chol, mut out) = (0u64, 0, 0, 0, 0, 0);
    let mut features_at = vec![None; pools.len()];
    for (i, p) in pools.iter().enumerate() {
        let s = &p.shape;
        let (n, d, k) = (s.n as u64, s.d as u64, s.k as u64);
        let src_off = match (p.device_offset, device_range) {
            (Some(o), Some((base, _))) => (o - base) / 4,
            _ => {
                features_at[i] = Some(input * 4);
                input += n * d;
                input - n * d
            }
        };
        let stored = p.path == GpuPath::Dense && k > 0;
        table[slot_of[i]] = PoolEntry {
            n: n as u32,
            k: k as u32,
            method: p.method as u32,
            d: d as u32,
            d4: d.div_ceil(4) as u32,
            src_off: src_off as u32,
            u_off: norm as u32,
            row0: state as u32,
            sim_off: if stored { sim as u32 } else { NO_OFFSET },
            out_off: out as u32,
            stride: d as u32,
            c_off: chol as u32,
            w: p.w,
            ..PoolEntry::default()
        };
        norm += n * d.div_ceil(4);
        sim += if stored { n * n } else { 0 };
        state += 3 * n;
        chol += k.saturating_sub(1) * n;
        out += 1 + 2 * k + DPP_REPORT;
    }
    for (i, p) in pools.iter().enumerate() {
        bad_word(&mut table[slot_of[i]], p.device_offset, &mut out);
    }
    // The text rows, and a scratch word for their (ignored) zero-row counts.
    let scratch = out;
    out += 1;
    let mut text_at = vec![None; pools.len()];
    for (t, i) in (0..pools.len())
        .filter(|&i| pools[i].shape.text)
        .enumerate()
    {
        let d = pools[i].shape.d as u64;
        text_at[i] = Some(input * 4);
        table[slot_of[i]].t_off = norm as u32;
        table[text_start + t] = PoolEntry {
            n: 1,
            k: 1,
            method: MethodCode::CdPrunerOpenVino as u32,
            d: d as u32,
            d4: d.div_ceil(4) as u32,
            src_off: input as u32,
            u_off: norm as u32,
            out_off: scratch as u32,
            stride: d as u32,
            ..PoolEntry::default()
        };
        input += d;
        norm += d.div_ceil(4);
    }
    let out_bytes = binding(out * 4);
    let ts_off = out_bytes.div_ceil(8) * 8;
    let shapes: Vec<_> = pools.iter().map(|p| (p.shape, p.path)).collect();
    let rounds = dpp_rounds(&shapes);
    let nmax = pools.iter().map(|p| p.shape.n).max().unwrap_or(1) as u32;
    let sim_rows = SimRows::new(rounds.len(), nmax);
    DppLayout {
        sizes: DppSizes {
            rounds: (sim_rows.base + sim_rows.len()) as u64 * STEP_STRIDE,
            pools: table.len() as u64 * std::mem::size_of::<PoolEntry>() as u64,
            input: binding(input * 4),
            norm: binding(norm * 16),
            sim: binding(sim * 4),
            state: binding(state * 4),
            chol: binding(chol * 4),
            out: out_bytes,
            ts_off,
            readback: ts_off + 16,
        },
        table,
        slot_of,
        pools: pools.len(),
        dense: pools.iter().filter(|p| p.path == GpuPath::Dense).count(),
        text_start,
        texts,
        features_at,
        text_at,
        nmax,
        n_dense_max: pools
            .iter()
            .filter(|p| p.path == GpuPath::Dense && p.shape.k > 0)
            .map(|p| p.shape.n)
            .max(),
        device_range,
        rounds,
        sim_rows,
    }
}

/// How a video pool is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoSpec {
    pub shape: VideoShape,
    pub frame_len: usize,
    pub device_offset: Option<u64>,
}

/// Byte sizes of the buffers of one video submission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VideoSizes {
    pub pools: u64,
    pub input: u64,
    pub norm: u64,
    pub stats: u64,
    pub cent: u64,
    pub out: u64,
    pub ts_off: u64,
    pub readback: u64,
}

/// The layout of one video submission: one table entry per pool, in job order.
#[derive(Debug, Clone)]
pub(crate) struct VideoLayout {
    pub table: Vec<PoolEntry>,
    /// Byte offsets in the input buffer of each pool's host features.
    pub features_at: Vec<Option<u64>>,
    pub nmax: u32,
    /// VidCom2 pools: the most channels, kept channels and frames (0 without any).
    pub cmax: u32,
    pub kcmax: u32,
    pub fmax: u32,
    pub any_evs: bool,
    pub device_range: Option<(u64, u64)>,
    pub sizes: VideoSizes,
}

/// Lays out video pools (one submission).
pub(crate) fn video_layout(pools: &[VideoSpec], storage_align: u64) -> VideoLayout {
    let span: Vec<(u64, usize, usize)> = pools
        .iter()
        .filter_map(|p| p.device_offset.map(|o| (o, p.shape.n, p.shape.c)))
        .collect();
    let device_range = device_span(&span, storage_align);
    let (mut input, mut norm, mut stats, mut cent, mut out) = (0u64, 0, 0, 0, 0);
    let mut table = Vec::with_capacity(pools.len());
    let mut features_at = vec![None; pools.len()];
    for (i, p) in pools.iter().enumerate() {
        let s = &p.shape;
        let (n, c, f) = (s.n as u64, s.c as u64, s.frames as u64);
        let w = s.width() as u64;
        let w4 = w.div_ceil(4);
        let src_off = match (p.device_offset, device_range) {
            (Some(o), Some((base, _))) => (o - base) / 4,
            _ => {
                features_at[i] = Some(input * 4);
                input += n * c;
                input - n * c
            }
        };
        let method = if s.vidcom2 {
            MethodCode::VidCom2
        } else {
            MethodCode::Evs
        };
        let mut e = PoolEntry {
            n: n as u32,
            method: method as u32,
            d: w as u32,
            d4: w4 as u32,
            src_off: src_off as u32,
            u_off: norm as u32,
            out_off: out as u32,
            stride: c as u32,
            frame_len: p.frame_len as u32,
            frames: f as u32,
            ..PoolEntry::default()
        };
        if s.vidcom2 {
            e.stat_off = stats as u32;
            e.chan_off = (stats + c) as u32;
            e.cent_off = cent as u32;
            stats += c + w + f * w * 2;
            cent += (f + 1) * w4;
        }
        table.push(e);
        norm += n * w4;
        out += if s.vidcom2 { 1 + 2 * n } else { 1 + n };
    }
    for (e, p) in table.iter_mut().zip(pools) {
        bad_word(e, p.device_offset, &mut out);
    }
    let vid = || pools.iter().filter(|p| p.shape.vidcom2);
    let out_bytes = binding(out * 4);
    let ts_off = out_bytes.div_ceil(8) * 8;
    VideoLayout {
        sizes: VideoSizes {
            pools: binding(table.len() as u64 * std::mem::size_of::<PoolEntry>() as u64),
            input: binding(input * 4),
            norm: binding(norm * 16),
            stats: binding(stats * 4),
            cent: binding(cent * 16),
            out: out_bytes,
            ts_off,
            readback: ts_off + 16,
        },
        table,
        features_at,
        nmax: pools.iter().map(|p| p.shape.n).max().unwrap_or(1) as u32,
        cmax: vid().map(|p| p.shape.c).max().unwrap_or(0) as u32,
        kcmax: vid().map(|p| p.shape.width()).max().unwrap_or(0) as u32,
        fmax: vid().map(|p| p.shape.frames).max().unwrap_or(0) as u32,
        any_evs: pools.iter().any(|p| !p.shape.vidcom2),
        device_range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: usize, d: usize, k: usize, path: GpuPath) -> PoolSpec {
        PoolSpec {
            shape: Shape {
                n,
                d,
                k,
                method: MethodCode::DivPrune,
                host: true,
            },
            path,
            pk: 1,
            om: 0.0,
            device_offset: None,
        }
    }

    #[test]
    fn pools_are_packed_back_to_back_and_streaming_slots_are_aligned() {
        let pools = [
            spec(10, 5, 3, GpuPath::Streaming),
            spec(20, 8, 4, GpuPath::Dense),
            spec(7, 3, 2, GpuPath::Dense),
        ];
        let l = layout(&pools, 256);
        // Dense pools first; the streaming one at the next 256-byte (2-entry) slot.
        assert_eq!(l.slot_of, vec![2, 0, 1]);
        assert_eq!(l.table.len(), 3);
        let t = |i: usize| l.table[l.slot_of[i]];
        assert_eq!((t(0).row0, t(1).row0, t(2).row0), (0, 10, 30));
        assert_eq!((t(0).src_off, t(1).src_off, t(2).src_off), (0, 50, 210));
        // d4 = 2, 2, 1 vec4s per row.
        assert_eq!((t(0).u_off, t(1).u_off, t(2).u_off), (0, 20, 60));
        assert_eq!((t(0).sim_off, t(1).sim_off, t(2).sim_off), (0, 0, 400));
        // 1 + 2K words of results each.
        assert_eq!((t(0).out_off, t(1).out_off, t(2).out_off), (0, 7, 16));
        assert!(l.table.iter().all(|e| e.cache_off == 37));
        assert_eq!((t(0).parts, t(0).iters), (1, 1));
        assert_eq!(l.sizes.out, 21 * 4);
        assert_eq!(l.sizes.ts_off, 88);
        // Steps 0..=3, then the similarity's rows: all (one tile row here), row 0.
        assert_eq!(l.sizes.steps, (4 + 2) * 256);
        assert_eq!((l.sim_rows.base, l.sim_rows.tiles), (4, 1));
        assert_eq!(
            (l.kmax, l.nmax, l.n_dense_max, l.n_stream_max),
            (3, 20, Some(20), Some(10))
        );
        assert!(l.stream_divprune && l.device_range.is_none());
    }

    #[test]
    fn device_features_bind_from_an_aligned_offset() {
        let mut p = spec(10, 6, 3, GpuPath::Dense);
        p.shape.host = false;
        p.device_offset = Some(1000);
        let l = layout(&[p], 256);
        // 1000 = 768 + 232: bound from 768, read from element 58.
        assert_eq!(l.device_range, Some((768, 232 + 240)));
        assert_eq!(l.table[0].src_off, 58);
        assert_eq!(l.sizes.input, 4, "nothing uploaded");
        // 1 + 2K result words, then the word for the first non-finite feature.
        assert_eq!((l.table[0].out_off, l.table[0].bad_off), (0, 7));
        assert_eq!(l.sizes.out, 8 * 4);
    }

    #[test]
    fn only_pools_on_a_callers_buffer_get_a_non_finite_word() {
        let host = spec(10, 6, 3, GpuPath::Dense);
        let l = layout(&[host], 256);
        assert_eq!(l.table[0].bad_off, NO_OFFSET);
        let mut dev = spec(10, 6, 3, GpuPath::Streaming);
        dev.shape.host = false;
        dev.device_offset = Some(0);
        let l = layout(&[dev, host], 256);
        let t = |i: usize| l.table[l.slot_of[i]];
        assert_eq!((t(0).bad_off, t(1).bad_off), (14, NO_OFFSET));
    }
}
