// common.wgsl: declarations shared by every kernel; every kernel's source is the generated
// constant prelude (WG, TILE, STREAM_GROUP, COLS, the method codes, NO_OFFSET, ...), then this
// file, then its own (the kernel table in src/gpu/kernels.rs, checked there with naga).
// CPU twin: src/cpu/greedy.rs `argmax_unchosen` (the tie rule), src/cpu/normalize.rs
// `pow2_scale`; `Pool` is `PoolEntry` in src/gpu/kernels.rs (member offsets checked by its tests).

// One pool of the pool table. The first sixteen members serve every greedy kernel; the rest
// serve the kernels named beside them (unused members are 0, offsets NO_OFFSET).
struct Pool {
    n: u32,
    k: u32,
    method: u32,
    pk: u32,
    d: u32,
    d4: u32,
    src_off: u32,
    u_off: u32,
    row0: u32,
    cache_off: u32,
    sim_off: u32,
    out_off: u32,
    parts: u32,
    iters: u32,
    part_off: u32,
    om: f32,
    // normalize.wgsl: floats between the starts of two source rows (d, or VidCom2's C).
    stride: u32,
    // normalize.wgsl: where the pool's channel map starts in `chan` (VidCom2), or NO_OFFSET.
    chan_off: u32,
    // evs.wgsl, vidcom2_*.wgsl: tokens per frame, frames.
    frame_len: u32,
    frames: u32,
    // dpp.wgsl: the Cholesky vectors c_t at c_off + t * n; the text row in `u` (vec4s) or
    // NO_OFFSET (relevance given); OpenVINO's relevance weight.
    c_off: u32,
    t_off: u32,
    w: f32,
    // vidcom2_*.wgsl: per-channel statistics in `stats`; the centres in `cent` (vec4s).
    stat_off: u32,
    cent_off: u32,
    // normalize.wgsl: the word of `out` recording the pool's first non-finite source value
    // (features read from a caller's buffer), or NO_OFFSET (host features, checked on the host).
    bad_off: u32,
    // To 128 bytes (pool table ranges bind at 256-byte offsets).
    pad: array<u32, 6>,
}

fn better(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

fn key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn unkey(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// 2^p for p in [-126, 127], built from the exponent bits.
fn pow2(p: i32) -> f32 {
    return bitcast<f32>(u32(p + 127) << 23u);
}

// `pow2_scale(max_abs)` as two normal factors (s1, s2), s1 * s2 = 2^-e with e the exponent of
// max_abs (subnormals: the smallest normal exponent); (1, 1) for max_abs below the smallest
// normal f32 (a zero row). Applying both factors scales exactly, and neither is subnormal
// (GPUs may flush those).
fn pow2_parts(max_abs: f32) -> vec2<f32> {
    if (max_abs < 1.17549435e-38) {
        return vec2<f32>(1.0, 1.0);
    }
    let e = i32(max((bitcast<u32>(max_abs) >> 23u) & 0xffu, 1u)) - 127;
    let e1 = -e / 2;
    return vec2<f32>(pow2(e1), pow2(-e - e1));
}

// Compensated summation (TwoSum): adds x to the pair (sum, error) so that sum + error carries
// the exact total far beyond f32 precision (the CPU twins sum in f64).
fn add2(acc: vec2<f32>, x: f32) -> vec2<f32> {
    let s = acc.x + x;
    let bb = s - acc.x;
    let err = (acc.x - (s - bb)) + (x - bb);
    return vec2<f32>(s, acc.y + err);
}

// The sum of two compensated pairs.
fn add22(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = add2(a, b.x);
    return vec2<f32>(s.x, s.y + b.y);
}
