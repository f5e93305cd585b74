// common.wgsl: declarations shared by every kernel; every kernel's source is the generated
// constant prelude (WG, TILE, STREAM_GROUP, the method codes DIVPRUNE / IDPRUNER), then this
// file, then its own (the kernel table in src/gpu/kernels.rs, checked there with naga).
// CPU twin: src/cpu/greedy.rs `argmax_unchosen` (the tie rule); `Pool` is `PoolEntry` in
// src/gpu/kernels.rs (member offsets checked by its tests).

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
