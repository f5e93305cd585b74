// common.wgsl: declarations shared by every kernel; the host prepends this file to each
// kernel's source (src/gpu/pipelines.rs), and tests/shaders.rs validates them together.
// CPU twin: src/cpu/greedy.rs `argmax_unchosen` (the tie rule); the pool table layout is
// `PoolEntry` in src/gpu/mod.rs.

// Pool.method: 0 = DivPrune, 1 = IDPruner.
const DIVPRUNE: u32 = 0u;

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
