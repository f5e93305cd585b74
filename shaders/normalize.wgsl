// normalize.wgsl: row normalisation. CPU twin: src/cpu/normalize.rs (`normalize_row`, `pow2_scale`).
// The host prepends the constant prelude and common.wgsl (src/gpu/kernels.rs).
//
// One workgroup (256 invocations) per row. Each row is scaled by the exact power of two that
// brings its largest magnitude into [1, 2) (the exponent is read with a bitcast, exactly as
// `pow2_scale`), its sum of squares is reduced in workgroup memory, and the method's epsilon
// policy divides it: DivPrune `x / max(norm, 1e-12 * inv)`, IDPruner `x / (norm + 1e-8 * inv)`
// (norm is the norm of the scaled row, inv the scale). Output rows are padded with zeros to
// D4 = ceil(D / 4) vec4s so the later kernels use vec4 loads for any D.
// A zero row (every |x| below the smallest normal f32, so the same whether or not the GPU
// flushes subnormals) becomes the zero vector and is counted in the pool's result header
// (out[out_off]).
// The scale 2^-e is applied as two normal factors 2^-e1 * 2^-e2 (e1 + e2 = e): the product is
// the same exact power-of-two scaling, and no factor is subnormal (GPUs may flush those).
//
// Dispatch: (x, y, z) = (rows split over x and y, pool). row = wid.x + wid.y * num_workgroups.x.

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;

var<workgroup> red: array<f32, WG>;

// Elements 4v..4v+3 of the row starting at `base`, zero past D.
fn load4(base: u32, v: u32, d: u32) -> vec4<f32> {
    var x = vec4<f32>(0.0);
    let i = 4u * v;
    if (i < d) { x.x = src[base + i]; }
    if (i + 1u < d) { x.y = src[base + i + 1u]; }
    if (i + 2u < d) { x.z = src[base + i + 2u]; }
    if (i + 3u < d) { x.w = src[base + i + 3u]; }
    return x;
}

// 2^p for p in [-126, 127], built from the exponent bits.
fn pow2(p: i32) -> f32 {
    return bitcast<f32>(u32(p + 127) << 23u);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pool = pools[wid.z];
    let row = wid.x + wid.y * nwg.x;
    if (row >= pool.n) {
        return;
    }
    let d = pool.d;
    let d4 = pool.d4;
    let base = pool.src_off + row * d;

    // Largest magnitude (max is exact in any order).
    var m = 0.0;
    for (var v = lid; v < d4; v += WG) {
        let a = abs(load4(base, v, d));
        m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let max_abs = red[0];
    let zero_row = max_abs < 1.17549435e-38;
    workgroupBarrier();

    // pow2_scale: 2^-e with e the exponent of max_abs (subnormals: the smallest normal
    // exponent), 1 for a zero row; applied as s1 * s2.
    var s1 = 1.0;
    var s2 = 1.0;
    if (!zero_row) {
        let e = i32(max((bitcast<u32>(max_abs) >> 23u) & 0xffu, 1u)) - 127;
        let e1 = -e / 2;
        s1 = pow2(e1);
        s2 = pow2(-e - e1);
    }

    var ss = 0.0;
    for (var v = lid; v < d4; v += WG) {
        let y = load4(base, v, d) * s1 * s2;
        ss += dot(y, y);
    }
    red[lid] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let norm = sqrt(red[0]);

    var denom: f32;
    if (pool.method == DIVPRUNE) {
        denom = max(norm, 1e-12 * s1 * s2);
    } else {
        denom = norm + 1e-8 * s1 * s2;
    }
    let dst = pool.u_off + row * d4;
    for (var v = lid; v < d4; v += WG) {
        u[dst + v] = select((load4(base, v, d) * s1 * s2) / denom, vec4<f32>(0.0), zero_row);
    }
    if (lid == 0u && zero_row) {
        atomicAdd(&out[pool.out_off], 1u);
    }
}
