//! Planning: where each pool runs and how a batch is cut into submissions. Pure functions of a
//! [`Caps`] value (what the device allows), unit-tested without an adapter.

use std::ops::Range;

use super::kernels::{MethodCode, COLS, STEP_STRIDE, STREAM_GROUP, TILE, WG};
use super::{GpuOptions, GpuPath};

/// Largest binding the engine uses, whatever the device allows: keeps every element index in
/// the kernels' u32 arithmetic far from overflow.
pub(crate) const BIND_CAP: u64 = (4 << 30) - 256;

/// `dense iff N <= IDPRUNER_DENSE_RATIO * K` for IDPruner (see [`greedy_path`]).
const IDPRUNER_DENSE_RATIO: u64 = 32;

/// What planning needs to know of a device and the engine's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// The largest single binding (device limits, [`BIND_CAP`], `max_binding_bytes`).
    pub binding_cap: u64,
    /// The largest streaming step table one submission may use (also under 4 GiB: its
    /// dynamic offsets are u32).
    pub steps_cap: u64,
    /// Workgroups per dispatch dimension.
    pub max_workgroups: u32,
    /// `min_storage_buffer_offset_alignment`.
    pub storage_align: u64,
    /// [`GpuOptions::stream_threshold_bytes`].
    pub stream_threshold: u64,
    /// [`GpuOptions::submission_work`]: estimated multiply-adds one submission may hold.
    pub submission_work: u64,
}

impl Caps {
    /// The capabilities of a device with `limits` under `options`.
    pub(crate) fn new(limits: &wgpu::Limits, options: &GpuOptions) -> Self {
        let user = options.max_binding_bytes.unwrap_or(u64::MAX);
        Caps {
            binding_cap: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size)
                .min(BIND_CAP)
                .min(user)
                .max(256),
            steps_cap: limits.max_buffer_size.min(BIND_CAP).min(user),
            max_workgroups: limits.max_compute_workgroups_per_dimension,
            storage_align: limits.min_storage_buffer_offset_alignment as u64,
            stream_threshold: options.stream_threshold_bytes,
            submission_work: options.submission_work.max(1),
        }
    }
}

/// The shape of one greedy pool, all planning needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub n: usize,
    pub d: usize,
    pub k: usize,
    pub method: MethodCode,
    /// The features are uploaded from the host (else read in place from a device buffer).
    pub host: bool,
}

/// The path a greedy pool takes (before the limits are checked, [`misfit`]):
/// - DivPrune: dense when the 4 N^2 bytes of S fit under the stream threshold and the binding
///   cap, else streaming (its seed needs every token's nearest neighbour either way, an
///   N^2 D/2 pass, so storing S costs little more).
/// - IDPruner needs no N x N matrix (its seed is the top importance). Dense costs one N^2 D/2
///   GEMM, streaming K GEMVs of N D; a GEMV is memory-bound and runs roughly 16x fewer
///   multiply-adds per second than the tiled GEMM, so dense when `N^2 D / 2 <= 16 K N D`,
///   i.e. `N <= 32 K` (and S fits), else streaming.
pub(crate) fn greedy_path(caps: &Caps, n: usize, k: usize, method: MethodCode) -> GpuPath {
    if k == 0 {
        // Nothing to pick: only the zero-row count is computed; no matrix.
        return GpuPath::Dense;
    }
    let n64 = n as u64;
    let sim = n64.saturating_mul(n64).saturating_mul(4);
    if sim > caps.stream_threshold.min(caps.binding_cap) {
        return GpuPath::Streaming;
    }
    if method == MethodCode::IdPruner && n64 > IDPRUNER_DENSE_RATIO.saturating_mul(k as u64) {
        return GpuPath::Streaming;
    }
    GpuPath::Dense
}

/// Streaming: 32-token groups per workgroup (so at most 256 workgroups per pool) and the
/// workgroup count, for a pool of `n` tokens: `(iters, parts)`.
pub(crate) fn stream_shape(n: usize) -> (u32, u32) {
    let g = STREAM_GROUP as usize;
    let iters = n.div_ceil(g * WG as usize).max(1);
    let parts = n.div_ceil(g * iters);
    (iters as u32, parts as u32)
}

/// The buffers a pool needs, in [`Bytes::NAMES`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub [u64; 7]);

impl Bytes {
    /// What each entry holds.
    pub(crate) const NAMES: [&'static str; 7] = [
        "features",
        "normalised features",
        "N x N similarity",
        "per-token state",
        "importance",
        "results",
        "partial argmax",
    ];
    pub(crate) const INPUT: usize = 0;
    pub(crate) const NORM: usize = 1;
    pub(crate) const SIM: usize = 2;
    pub(crate) const OUT: usize = 5;
}

/// Bytes a pool needs in each buffer.
pub(crate) fn job_bytes(s: &Shape, path: GpuPath) -> Bytes {
    let (n, d4, k) = (s.n as u64, s.d.div_ceil(4) as u64, s.k as u64);
    let input = if s.host { n * s.d as u64 * 4 } else { 0 };
    let sim = if path == GpuPath::Dense && k > 0 {
        n * n * 4
    } else {
        0
    };
    let parts = if path == GpuPath::Streaming {
        stream_shape(s.n).1 as u64
    } else {
        0
    };
    Bytes([
        input,
        n * d4 * 16,
        sim,
        n * 8,
        n * 8,
        (1 + 2 * k) * 4,
        parts * 16,
    ])
}

/// Why a pool cannot run on this device at all on `path` (a buffer above the binding cap,
/// more workgroups than a dispatch dimension allows, a step table above the buffer cap), or
/// `None` when it fits.
pub(crate) fn misfit(caps: &Caps, s: &Shape, path: GpuPath) -> Option<String> {
    let (n, d, k) = (s.n, s.d, s.k);
    let cap = caps.binding_cap;
    let b = job_bytes(s, path).0;
    if let Some(i) = (0..b.len()).find(|&i| b[i] > cap) {
        return Some(format!(
            "a {n} x {d} pool needs a {}-byte buffer ({}) on the {path} path, above the GPU binding limit of {cap} bytes",
            b[i],
            Bytes::NAMES[i],
        ));
    }
    let max_dim = caps.max_workgroups as usize;
    let tiles = n.div_ceil(TILE as usize);
    let rows_y = n.div_ceil(n.min(max_dim).max(1));
    if tiles > max_dim || rows_y > max_dim {
        return Some(format!(
            "a pool of {n} tokens needs more workgroups than the GPU's {max_dim} per dimension"
        ));
    }
    let steps = (k as u64 + 1) * STEP_STRIDE;
    if path == GpuPath::Streaming && steps > caps.steps_cap {
        return Some(format!(
            "K = {k} streaming steps need {steps} bytes of step uniforms, above the GPU buffer limit of {} bytes",
            caps.steps_cap
        ));
    }
    None
}

/// Where a pool runs, all checks included (see [`crate::GpuEngine::path_for`]).
pub(crate) fn path_for(caps: &Caps, s: &Shape) -> GpuPath {
    let path = greedy_path(caps, s.n, s.k, s.method);
    match misfit(caps, s, path) {
        Some(_) => GpuPath::Cpu,
        None => path,
    }
}

/// Splits pools (each fitting alone, see [`misfit`]) into consecutive chunks whose buffers
/// each fit one binding, whose pool count fits one dispatch dimension and whose step table
/// fits the step cap: one submission per chunk.
pub(crate) fn chunks(caps: &Caps, pools: &[(Shape, GpuPath)]) -> Vec<Range<usize>> {
    let max_pools = (caps.max_workgroups as usize).saturating_sub(8).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut sum = [0u64; 7];
    let mut kmax = 0usize;
    for (i, (shape, path)) in pools.iter().enumerate() {
        let b = job_bytes(shape, *path).0;
        let k_stream = if *path == GpuPath::Streaming {
            shape.k
        } else {
            0
        };
        let fits = (0..7).all(|x| sum[x] + b[x] <= caps.binding_cap)
            && i - start < max_pools
            && (kmax.max(k_stream) as u64 + 1) * STEP_STRIDE <= caps.steps_cap;
        if !fits && i > start {
            out.push(start..i);
            start = i;
            sum = [0; 7];
            kmax = 0;
        }
        for x in 0..7 {
            sum[x] += b[x];
        }
        kmax = kmax.max(k_stream);
    }
    if start < pools.len() {
        out.push(start..pools.len());
    }
    out
}

/// Whether `4 N^2` bytes of similarity fit the stored path (the stream threshold and the
/// binding cap).
fn s_fits(caps: &Caps, n: usize) -> bool {
    let n64 = n as u64;
    n64.saturating_mul(n64).saturating_mul(4) <= caps.stream_threshold.min(caps.binding_cap)
}

/// Why a pool's buffers do not fit one binding: the first one above the cap, named.
fn over_cap(
    caps: &Caps,
    n: usize,
    d: usize,
    path: &str,
    bytes: &[u64],
    names: &[&str],
) -> Option<String> {
    let cap = caps.binding_cap;
    let i = (0..bytes.len()).find(|&i| bytes[i] > cap)?;
    Some(format!(
        "a {n} x {d} pool needs a {}-byte buffer ({}){path}, above the GPU binding limit of {cap} bytes",
        bytes[i], names[i],
    ))
}

/// Why a dispatch over `rows` rows (2-D grid), `blocks` blocks of 32 tokens (2-D grid) or
/// `flat` workgroups along one dimension would not fit the device, or `None`.
fn over_grid(caps: &Caps, n: usize, flat: usize) -> Option<String> {
    let max_dim = caps.max_workgroups as usize;
    let two_d = |x: usize| x.div_ceil(x.min(max_dim).max(1)) > max_dim;
    if two_d(n) || flat > max_dim {
        return Some(format!(
            "a pool of {n} tokens needs more workgroups than the GPU's {max_dim} per dimension"
        ));
    }
    None
}

/// The shape of one CDPruner DPP pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DppShape {
    pub n: usize,
    pub d: usize,
    pub k: usize,
    /// The relevance comes from a text vector (`cdpruner-openvino`), uploaded with the pool.
    pub text: bool,
    /// The features are uploaded from the host (else read in place from a device buffer).
    pub host: bool,
}

/// Words of a DPP pool's report after its picks (dpp.wgsl): where the DPP stopped, the gain
/// it stopped at, picks at -FLT_MAX, equal relevance, picks so far.
pub(crate) const DPP_REPORT: u64 = 5;

/// Loop iterations one invocation may run in a DPP dispatch, by [`dpp_round_cost`]'s estimate:
/// a quarter of [`LOOP_LIMIT`], so the estimate may be well off and still safe.
pub(crate) const DPP_LOOP_BUDGET: u64 = 16_384;

/// Loop iterations after which lavapipe (Mesa's llvmpipe) silently stops a shader
/// invocation's loops (`LP_MAX_TGSI_LOOP_ITERATIONS`, counted over the whole dispatch; measured
/// here: a one-dispatch DPP stopped after about 65 000 inner iterations). Real GPUs have no
/// such limit, but their watchdogs dislike long dispatches too.
pub(crate) const LOOP_LIMIT: u64 = 65_535;

/// Estimated loop iterations of one invocation in DPP round `t` of a pool (at most `t` picks
/// made): the argmax reduction (8), the fill scan, and per owned token the kernel entry (1
/// iteration from a stored S, D/4 recomputed) and the Cholesky sum over `t` vectors.
pub(crate) fn dpp_round_cost(s: &DppShape, path: GpuPath, t: usize) -> u64 {
    let owned = s.n.div_ceil(WG as usize) as u64;
    8 + owned * (2 + t as u64 + dpp_entry_cost(s, path))
}

/// Iterations of one kernel entry: 1 from a stored S, D/4 recomputed.
fn dpp_entry_cost(s: &DppShape, path: GpuPath) -> u64 {
    if path == GpuPath::Dense {
        1
    } else {
        s.d.div_ceil(4) as u64
    }
}

/// The dispatches of one DPP submission: consecutive round ranges `(first, end)` covering
/// rounds `0..=max K` (K picks and the round that may find the DPP stopped), each estimated
/// within [`DPP_LOOP_BUDGET`] per invocation: a round costs what the most expensive pool's
/// does, the first dispatch also pays the set-up, a later one the resume scan. A round above
/// the budget runs alone.
pub(crate) fn dpp_rounds(pools: &[(DppShape, GpuPath)]) -> Vec<(u32, u32)> {
    let owned = |s: &DppShape| s.n.div_ceil(WG as usize) as u64;
    let rounds = pools.iter().map(|(s, _)| s.k + 1).max().unwrap_or(1);
    let setup = pools
        .iter()
        .map(|(s, p)| 8 + owned(s) * (3 + dpp_entry_cost(s, *p)))
        .max()
        .unwrap_or(0);
    let resume = pools.iter().map(|(s, _)| owned(s)).max().unwrap_or(0);
    let mut out = Vec::new();
    let (mut first, mut acc) = (0usize, setup);
    for t in 0..rounds {
        let cost = pools
            .iter()
            .filter(|(s, _)| t <= s.k)
            .map(|(s, p)| dpp_round_cost(s, *p, t))
            .max()
            .unwrap_or(0);
        if t > first && acc + cost > DPP_LOOP_BUDGET {
            out.push((first as u32, t as u32));
            (first, acc) = (t, resume);
        }
        acc += cost;
    }
    out.push((first as u32, rounds as u32));
    out
}

/// Cuts a run of dispatches, of estimated work `costs` (multiply-adds), into submissions:
/// consecutive ranges each within `caps.submission_work` (a dispatch above it runs alone), so
/// no submission keeps the GPU busy long enough for a watchdog (Windows TDR: 2 s; browsers: a
/// few seconds) to reset it.
pub(crate) fn submissions(caps: &Caps, costs: &[u64]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut first, mut acc) = (0usize, 0u64);
    for (i, &c) in costs.iter().enumerate() {
        if i > first && acc.saturating_add(c) > caps.submission_work {
            out.push(first..i);
            (first, acc) = (i, 0);
        }
        acc = acc.saturating_add(c);
    }
    if first < costs.len() || out.is_empty() {
        out.push(first..costs.len());
    }
    out
}

/// Cuts consecutive groups of dispatches (e.g. the similarity's tile rows, then the greedy
/// steps), of estimated work `groups[g][i]`, into submissions as [`submissions`] does: for
/// each submission, the range of each group's dispatches it records (empty where none).
pub(crate) fn submissions_of(caps: &Caps, groups: &[&[u64]]) -> Vec<Vec<Range<usize>>> {
    let all: Vec<u64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    submissions(caps, &all)
        .into_iter()
        .map(|r| {
            let mut at = 0;
            groups
                .iter()
                .map(|g| {
                    let (lo, hi) = (at, at + g.len());
                    at = hi;
                    r.start.clamp(lo, hi) - lo..r.end.clamp(lo, hi) - lo
                })
                .collect()
        })
        .collect()
}

/// What one submission of a greedy run records: the dense similarity's tile rows, the
/// select dispatch (`0..1` or empty), the streaming nearest-neighbour fold's tile rows and the
/// streaming steps. The first submission also normalises every pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub dense: Range<usize>,
    pub select: Range<usize>,
    pub nearest: Range<usize>,
    pub steps: Range<usize>,
}

/// The submissions of a greedy run: the dense pools' `(n, d)` (those that pick), the
/// streaming DivPrune pools' (their nearest-neighbour fold), and the streaming steps' costs
/// ([`stream_costs`]), cut by [`submissions_of`].
pub(crate) fn greedy_segments(
    caps: &Caps,
    dense: &[(usize, usize)],
    nearest: &[(usize, usize)],
    steps: &[u64],
) -> Vec<Segment> {
    let dense_rows = similarity_costs(dense);
    // The select dispatch: each pool's K row reads of N (small next to the tiles).
    let select: Vec<u64> = match dense.is_empty() {
        true => vec![],
        false => vec![dense.iter().map(|&(n, _)| (n * n) as u64).sum()],
    };
    let nearest_rows = similarity_costs(nearest);
    submissions_of(caps, &[&dense_rows, &select, &nearest_rows, steps])
        .into_iter()
        .map(|g| Segment {
            dense: g[0].clone(),
            select: g[1].clone(),
            nearest: g[2].clone(),
            steps: g[3].clone(),
        })
        .collect()
}

/// Estimated work of each tile row of the similarity of `pools` (`(n, d)` each; the largest
/// sets the rows): the upper-triangle tiles of that row, `TILE^2 D` multiply-adds each.
pub(crate) fn similarity_costs(pools: &[(usize, usize)]) -> Vec<u64> {
    let tile = TILE as usize;
    let rows = pools
        .iter()
        .map(|&(n, _)| n.div_ceil(tile))
        .max()
        .unwrap_or(0);
    (0..rows)
        .map(|r| {
            pools
                .iter()
                .map(|&(n, d)| {
                    let t = n.div_ceil(tile);
                    (t.saturating_sub(r) * tile * tile * d) as u64
                })
                .sum()
        })
        .collect()
}

/// Estimated work of the streaming steps `0..=kmax`: step t computes one similarity row (a
/// GEMV of N D) of every streaming pool still picking (t <= K).
pub(crate) fn stream_costs(pools: &[Shape], kmax: usize) -> Vec<u64> {
    (0..=kmax)
        .map(|t| {
            pools
                .iter()
                .filter(|s| t <= s.k)
                .map(|s| s.n as u64 * s.d as u64)
                .sum()
        })
        .collect()
}

/// Estimated work of each DPP dispatch `(first, end)`: per pool and round, every token's
/// kernel entry (D from a recomputed row, 1 from S) and Cholesky update over t vectors.
pub(crate) fn dpp_costs(pools: &[(DppShape, GpuPath)], rounds: &[(u32, u32)]) -> Vec<u64> {
    rounds
        .iter()
        .map(|&(first, end)| {
            let mut w = 0u64;
            for (s, p) in pools {
                let entry = if *p == GpuPath::Dense { 1 } else { s.d as u64 };
                for t in first as usize..(end as usize).min(s.k + 1) {
                    w = w.saturating_add(s.n as u64 * (2 + t as u64 + entry));
                }
            }
            w
        })
        .collect()
}

/// What each entry of [`dpp_bytes`] holds.
pub(crate) const DPP_BUFFERS: [&str; 6] = [
    "features and text",
    "normalised features",
    "N x N similarity",
    "per-token state",
    "Cholesky vectors",
    "results",
];

/// A DPP pool stores S (`Dense`: its kernel rows are rows of S) when the 4 N^2 bytes fit as
/// for DivPrune; otherwise (`Streaming`) every pick recomputes its row, a GEMV inside the
/// same one-workgroup dispatch.
pub(crate) fn dpp_path(caps: &Caps, n: usize, k: usize) -> GpuPath {
    if k == 0 || s_fits(caps, n) {
        GpuPath::Dense
    } else {
        GpuPath::Streaming
    }
}

/// Bytes a DPP pool needs in each buffer ([`DPP_BUFFERS`] order): the features (host) and
/// the text vector, their normalised rows, S (dense), 3 N words of state (gains, chosen
/// flags, relevance), the K - 1 Cholesky vectors, and 1 + 2K + 4 words of
/// results.
pub(crate) fn dpp_bytes(s: &DppShape, path: GpuPath) -> [u64; 6] {
    let (n, d, k) = (s.n as u64, s.d as u64, s.k as u64);
    let d4 = d.div_ceil(4);
    let t = s.text as u64;
    let features = if s.host { n * d * 4 } else { 0 };
    let sim = if path == GpuPath::Dense && k > 0 {
        n * n * 4
    } else {
        0
    };
    [
        features + t * d * 4,
        (n + t) * d4 * 16,
        sim,
        3 * n * 4,
        k.saturating_sub(1) * n * 4,
        (1 + 2 * k + DPP_REPORT) * 4,
    ]
}

/// Why a DPP pool cannot run on this device on `path`, or `None`: a buffer above the binding
/// cap, a grid above the workgroup limit, a last pick above [`LOOP_LIMIT`] loop iterations per
/// invocation, or more dispatches than the rounds table may hold.
pub(crate) fn dpp_misfit(caps: &Caps, s: &DppShape, path: GpuPath) -> Option<String> {
    let on = format!(" on the {path} path");
    let last = dpp_round_cost(s, path, s.k);
    let table = (s.k as u64 + 1) * STEP_STRIDE;
    over_cap(caps, s.n, s.d, &on, &dpp_bytes(s, path), &DPP_BUFFERS)
        .or_else(|| over_grid(caps, s.n, s.n.div_ceil(TILE as usize)))
        .or_else(|| {
            (last > LOOP_LIMIT).then(|| format!(
                "the last of K = {} DPP picks on a {} x {} pool ({path} path) needs about {last} loop iterations per GPU invocation, above the {LOOP_LIMIT} one dispatch may run",
                s.k, s.n, s.d
            ))
        })
        .or_else(|| {
            (table > caps.steps_cap).then(|| format!(
                "K = {} DPP picks need {table} bytes of round uniforms, above the GPU buffer limit of {} bytes",
                s.k, caps.steps_cap
            ))
        })
}

/// The shape of one video pool (EVS or VidCom2 scoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoShape {
    pub n: usize,
    /// Channels C (the features' D).
    pub c: usize,
    pub frames: usize,
    /// VidCom2 (else EVS).
    pub vidcom2: bool,
    pub host: bool,
}

impl VideoShape {
    /// The width of the normalised rows: C, or VidCom2's `max(1, floor(C/2))` kept channels.
    pub(crate) fn width(&self) -> usize {
        if self.vidcom2 {
            (self.c / 2).max(1)
        } else {
            self.c
        }
    }
}

/// What each entry of [`video_bytes`] holds.
pub(crate) const VIDEO_BUFFERS: [&str; 5] = [
    "features",
    "normalised features",
    "channel statistics",
    "centres",
    "results",
];

/// Bytes a video pool needs in each buffer ([`VIDEO_BUFFERS`] order): the features (host),
/// the normalised rows (kept channels), VidCom2's per-channel words (variance keys, the
/// channel map, two words per frame and kept channel), its centres ((frames + 1) rows) and
/// the results (zero rows, scores; VidCom2 also g(video)).
pub(crate) fn video_bytes(s: &VideoShape) -> [u64; 5] {
    let (n, c, f) = (s.n as u64, s.c as u64, s.frames as u64);
    let w = s.width() as u64;
    let w4 = w.div_ceil(4);
    let features = if s.host { n * c * 4 } else { 0 };
    let (stats, cent, out) = if s.vidcom2 {
        ((c + w + f * w * 2) * 4, (f + 1) * w4 * 16, (1 + 2 * n) * 4)
    } else {
        (0, 0, (1 + n) * 4)
    };
    [features, n * w4 * 16, stats, cent, out]
}

/// Why a video pool cannot run on this device, or `None`.
pub(crate) fn video_misfit(caps: &Caps, s: &VideoShape) -> Option<String> {
    over_cap(caps, s.n, s.c, "", &video_bytes(s), &VIDEO_BUFFERS).or_else(|| {
        let flat = s.c.div_ceil(COLS as usize).max(s.frames);
        over_grid(caps, s.n, flat)
    })
}

/// Cuts `count` items into consecutive chunks, each as long as `fits` allows (an item alone
/// always forms a chunk: misfits were taken out before).
pub(crate) fn pack(count: usize, fits: impl Fn(Range<usize>) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..count {
        if !fits(start..i + 1) {
            out.push(start..i);
            start = i;
        }
    }
    if start < count {
        out.push(start..count);
    }
    out
}

/// Whether summed per-buffer bytes of `items` fit one binding each, and their count one
/// dispatch dimension.
pub(crate) fn sums_fit<const M: usize>(caps: &Caps, items: &[[u64; M]]) -> bool {
    let max_pools = (caps.max_workgroups as usize).saturating_sub(8).max(1);
    items.len() <= max_pools
        && (0..M).all(|x| items.iter().map(|b| b[x]).sum::<u64>() <= caps.binding_cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device like a desktop GPU's defaults, or smaller.
    fn caps(binding_cap: u64) -> Caps {
        Caps {
            binding_cap,
            steps_cap: binding_cap,
            max_workgroups: 65535,
            storage_align: 256,
            stream_threshold: 1 << 30,
            submission_work: super::super::DEFAULT_SUBMISSION_WORK,
        }
    }

    #[test]
    fn groups_of_dispatches_are_cut_together() {
        let mut c = caps(1 << 30);
        c.submission_work = 10;
        // Similarity rows 6, 6, 2; one select; steps 4, 4, 4.
        let cut = submissions_of(&c, &[&[6, 6, 2], &[1], &[4, 4, 4]]);
        assert_eq!(
            cut,
            vec![
                vec![0..1, 0..0, 0..0],
                vec![1..3, 0..1, 0..0],
                vec![3..3, 1..1, 0..2],
                vec![3..3, 1..1, 2..3],
            ]
        );
        // Nothing to record: one empty submission.
        assert_eq!(submissions_of(&c, &[&[], &[]]), vec![vec![0..0, 0..0]]);
        // 576 tokens in 64-rows: 9 tile rows of 9, 8, ... 1 tiles.
        let costs = similarity_costs(&[(576, 1024), (100, 8)]);
        assert_eq!(costs.len(), 9);
        assert_eq!(costs[0], (9 * 4096 * 1024 + 2 * 4096 * 8) as u64);
        assert_eq!(costs[8], (4096 * 1024) as u64);
        // The default cap keeps a 576 x 1024 similarity in one submission, not 4608 x 1024.
        c.submission_work = super::super::DEFAULT_SUBMISSION_WORK;
        assert_eq!(submissions(&c, &similarity_costs(&[(576, 1024)])).len(), 1);
        // 4608 x 1024: 2628 tiles of 2^22 multiply-adds (1.1e10) against 2^33: two.
        assert_eq!(submissions(&c, &similarity_costs(&[(4608, 1024)])).len(), 2);
    }

    #[test]
    fn long_runs_are_cut_into_submissions_within_the_work_cap() {
        let mut c = caps(1 << 30);
        c.submission_work = 10;
        assert_eq!(
            submissions(&c, &[4, 4, 4, 4, 20, 1, 9]),
            vec![0..2, 2..4, 4..5, 5..7]
        );
        assert_eq!(submissions(&c, &[]), vec![0..0]);
        assert_eq!(submissions(&c, &[3]), vec![0..1]);
        // A cap of 1: every dispatch its own submission.
        c.submission_work = 1;
        assert_eq!(submissions(&c, &[5, 5, 5]), vec![0..1, 1..2, 2..3]);
        // The default keeps a 4608 x 1024 streaming selection (K = 461) to a few submissions.
        c.submission_work = super::super::DEFAULT_SUBMISSION_WORK;
        let costs = stream_costs(&[shape(4608, 461, MethodCode::DivPrune)], 461);
        assert_eq!(costs[0], 4608 * 64);
        assert_eq!(submissions(&c, &costs).len(), 1);
        let big = Shape {
            d: 4096,
            ..shape(65536, 6553, MethodCode::DivPrune)
        };
        // 2^28 per step, 32 steps per submission: 6554 steps in 205.
        assert_eq!(submissions(&c, &stream_costs(&[big], 6553)).len(), 205);
    }

    #[test]
    fn stream_and_dpp_work_estimates() {
        let a = shape(100, 2, MethodCode::DivPrune);
        let b = shape(10, 0, MethodCode::IdPruner);
        // Step 0 both pools, steps 1-2 only the first.
        assert_eq!(stream_costs(&[a, b], 2), vec![7040, 6400, 6400]);
        let dpp = |n, d, k| DppShape {
            n,
            d,
            k,
            text: false,
            host: true,
        };
        let pools = [
            (dpp(10, 8, 2), GpuPath::Streaming),
            (dpp(4, 8, 1), GpuPath::Dense),
        ];
        // Rounds 0..2 then 2..3: pool 1 runs rounds 0..=1 only.
        let w = dpp_costs(&pools, &[(0, 2), (2, 3)]);
        assert_eq!(w, vec![10 * (10 + 11) + 4 * (3 + 4), 10 * 12]);
    }

    fn shape(n: usize, k: usize, method: MethodCode) -> Shape {
        Shape {
            n,
            d: 64,
            k,
            method,
            host: true,
        }
    }

    #[test]
    fn divprune_is_dense_until_s_passes_the_threshold_or_a_binding() {
        let c = caps(1 << 30);
        assert_eq!(
            greedy_path(&c, 576, 58, MethodCode::DivPrune),
            GpuPath::Dense
        );
        // 16384^2 * 4 = 1 GiB exactly: still dense; one more token streams.
        assert_eq!(
            greedy_path(&c, 16384, 9, MethodCode::DivPrune),
            GpuPath::Dense
        );
        assert_eq!(
            greedy_path(&c, 16385, 9, MethodCode::DivPrune),
            GpuPath::Streaming
        );
        let small = caps(1 << 20);
        assert_eq!(
            greedy_path(&small, 513, 9, MethodCode::DivPrune),
            GpuPath::Streaming
        );
        assert_eq!(
            greedy_path(&c, 100, 0, MethodCode::DivPrune),
            GpuPath::Dense
        );
    }

    #[test]
    fn idpruner_streams_when_k_gemvs_are_cheaper() {
        let c = caps(1 << 30);
        assert_eq!(
            greedy_path(&c, 576, 18, MethodCode::IdPruner),
            GpuPath::Dense
        );
        assert_eq!(
            greedy_path(&c, 577, 18, MethodCode::IdPruner),
            GpuPath::Streaming
        );
        assert_eq!(
            greedy_path(&c, 4608, 461, MethodCode::IdPruner),
            GpuPath::Dense
        );
    }

    #[test]
    fn misfits_name_the_buffer_and_the_limit() {
        let c = caps(1 << 20);
        let s = Shape {
            n: 1024,
            d: 1024,
            ..shape(0, 10, MethodCode::DivPrune)
        };
        let why = misfit(&c, &s, GpuPath::Streaming).expect("4 MiB of features");
        assert!(
            why.contains("(features)") && why.contains("1048576"),
            "{why}"
        );
        assert_eq!(path_for(&c, &s), GpuPath::Cpu);
        // The same pool already on the device needs no input buffer, but its normalised copy
        // does not fit either.
        let dev = Shape { host: false, ..s };
        let why = misfit(&c, &dev, GpuPath::Streaming).expect("normalised copy");
        assert!(why.contains("normalised features"), "{why}");
        let mut few = caps(1 << 30);
        few.max_workgroups = 8;
        let why = misfit(&few, &shape(1000, 9, MethodCode::DivPrune), GpuPath::Dense).unwrap();
        assert!(why.contains("more workgroups"), "{why}");
        let mut steps = caps(1 << 30);
        steps.steps_cap = 10 * STEP_STRIDE;
        let s = shape(100, 10, MethodCode::DivPrune);
        assert!(misfit(&steps, &s, GpuPath::Streaming).is_some());
        assert!(misfit(&steps, &s, GpuPath::Dense).is_none());
    }

    #[test]
    fn chunks_split_where_a_binding_would_overflow() {
        // Each 100 x 64 DivPrune pool needs 40000 bytes of S on the dense path.
        let pool = (shape(100, 10, MethodCode::DivPrune), GpuPath::Dense);
        assert_eq!(chunks(&caps(1 << 30), &[pool; 5]), vec![0..5]);
        assert_eq!(chunks(&caps(100_000), &[pool; 5]), vec![0..2, 2..4, 4..5]);
        let mut few = caps(1 << 30);
        few.max_workgroups = 10;
        assert_eq!(chunks(&few, &[pool; 5]), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(&caps(1 << 30), &[]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn stream_shape_covers_every_token_in_at_most_wg_parts() {
        for n in [1, 31, 32, 33, 8192, 8193, 100_000, 1 << 22] {
            let (iters, parts) = stream_shape(n);
            assert!(parts <= WG, "{n}");
            assert!((parts * iters * STREAM_GROUP) as usize >= n, "{n}");
            assert!((((parts - 1) * iters * STREAM_GROUP) as usize) < n, "{n}");
        }
    }

    fn dpp(n: usize, d: usize, k: usize) -> DppShape {
        DppShape {
            n,
            d,
            k,
            text: false,
            host: true,
        }
    }

    #[test]
    fn dpp_rounds_cover_every_round_within_the_loop_budget() {
        for (n, d, k, path) in [
            (576, 1024, 64, GpuPath::Dense),
            (576, 1024, 192, GpuPath::Dense),
            (576, 4096, 192, GpuPath::Streaming),
            (2304, 4096, 576, GpuPath::Dense),
            (9, 4, 0, GpuPath::Dense),
        ] {
            let s = dpp(n, d, k);
            let r = dpp_rounds(&[(s, path)]);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1 as usize, k + 1, "{n} {k}");
            assert!(r.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
            for &(a, b) in &r {
                let cost: u64 = (a..b).map(|t| dpp_round_cost(&s, path, t as usize)).sum();
                assert!(
                    cost <= DPP_LOOP_BUDGET || b == a + 1,
                    "{n} {k}: rounds {a}..{b} cost {cost}"
                );
            }
        }
        // Small pools run in one dispatch; a mixed submission follows its costliest pool.
        assert_eq!(
            dpp_rounds(&[(dpp(576, 1024, 64), GpuPath::Dense)]),
            vec![(0, 65)]
        );
        let mixed = [
            (dpp(100, 8, 3), GpuPath::Dense),
            (dpp(2304, 64, 300), GpuPath::Dense),
        ];
        assert_eq!(dpp_rounds(&mixed).last().unwrap().1, 301);
        assert!(dpp_rounds(&mixed).len() > 1);
    }

    #[test]
    fn dpp_misfits_name_the_loop_limit_and_the_buffers() {
        let c = caps(1 << 30);
        assert!(dpp_misfit(&c, &dpp(2304, 4096, 576), GpuPath::Dense).is_none());
        // 16384 tokens recomputing rows of D = 4096: 64 owned tokens x 1024 per pick.
        let why = dpp_misfit(&c, &dpp(16384, 4096, 10), GpuPath::Streaming).unwrap();
        assert!(why.contains("loop iterations per GPU invocation"), "{why}");
        let why = dpp_misfit(&caps(1 << 20), &dpp(1024, 1024, 10), GpuPath::Streaming).unwrap();
        assert!(why.contains("(features and text)"), "{why}");
        assert_eq!(dpp_path(&c, 576, 64), GpuPath::Dense);
        assert_eq!(dpp_path(&caps(1 << 20), 576, 64), GpuPath::Streaming);
    }
}
