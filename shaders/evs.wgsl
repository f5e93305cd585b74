// evs.wgsl: EVS's per-token scores (SPEC "EVS", as in vLLM). CPU twin: src/cpu/evs.rs
// (`scores`; `run` normalises first, as normalize.wgsl does here with the EVS rule
// `x / max(||x||, 1e-8)`). The host prepends the constant prelude, common.wgsl and rows.wgsl
// (src/gpu/kernels.rs).
//
// Frame 0 scores EVS_FIRST (255: always kept first); token (t, y, x) for t >= 1 scores
// `1 - u_{t,y,x} . u_{t-1,y,x}`: one dot product with the row frame_len tokens earlier
// (rows.wgsl `pair_dots`, 32 tokens per workgroup). The host then keeps the K highest (a
// stable sort, src/select/video.rs).
// Output per pool at out_off: [zero-row count (normalize.wgsl), score bits[n]].
// Dispatch: (x, y, z) = (token blocks over x and y, pool).

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pool = pools[wid.z];
    let jb = (wid.x + wid.y * nwg.x) * STREAM_GROUP;
    if (pool.method != EVS || jb >= pool.n) {
        return;
    }
    let p = pool.frame_len;
    let c = pair_dots(lid, jb, pool.n, pool.u_off, pool.d4, 0u, p);
    let j = jb + lid;
    if (lid < STREAM_GROUP && j < pool.n) {
        var s = EVS_FIRST;
        if (j >= p) {
            s = 1.0 - c;
        }
        out[pool.out_off + 1u + j] = bitcast<u32>(s);
    }
}
