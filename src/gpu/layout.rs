//! The pool table and buffer layout of one submission: where every pool's rows, similarity
//! matrix, state, results and streaming partials sit in the shared buffers. A pure function of
//! the pools' shapes (unit-tested without an adapter); `record.rs` binds what it describes.

use super::kernels::{MethodCode, PoolEntry};
use super::plan::{job_bytes, stream_shape, Bytes, Shape};
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
    pub sizes: Sizes,
}

/// Rounds a size up to a multiple of 4, at least 4 bytes (an empty binding is invalid).
fn binding(x: u64) -> u64 {
    x.max(4).div_ceil(4) * 4
}

/// Lays out `pools` (one submission) on a device whose storage offsets align to
/// `storage_align` bytes. `timestamps`: room for two resolved timestamps after the results.
pub(crate) fn layout(pools: &[PoolSpec], storage_align: u64) -> Layout {
    let align = (storage_align as usize / std::mem::size_of::<PoolEntry>()).max(1);
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
        };
        let b = job_bytes(s, p.path).0;
        row0 += s.n as u64;
        u_off += b[Bytes::NORM] / 16;
        src_off += b[Bytes::INPUT] / 4;
        sim_off += b[Bytes::SIM] / 4;
        out_off += b[Bytes::OUT] / 4;
        part_off += parts as u64;
    }
    let rows = row0;
    for e in &mut table {
        // IDPruner's score cache sits after every pool's state.
        e.cache_off = rows as u32;
    }
    let kmax = stream.iter().map(|&i| pools[i].shape.k).max().unwrap_or(0);
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
        steps: (kmax as u64 + 1) * super::kernels::STEP_STRIDE,
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
        nmax: pools.iter().map(|p| p.shape.n).max().unwrap_or(1) as u32,
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
        sizes,
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
        // Dense pools first; the streaming one at the next 256-byte (4-entry) slot.
        assert_eq!(l.slot_of, vec![4, 0, 1]);
        assert_eq!(l.table.len(), 5);
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
        assert_eq!(l.sizes.steps, 4 * 256);
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
    }
}
