// normalize.wgsl: row normalisation. CPU twin: src/cpu/normalize.rs (`normalize_row`,
// `pow2_scale`) and src/cpu/rownorm.rs (`normalize_row_eps`: the CDPruner and EVS rules).
// The host prepends the constant prelude and common.wgsl (src/gpu/kernels.rs).
//
// One workgroup (256 invocations) per row. Each row is scaled by the exact power of two that
// brings its largest magnitude into [1, 2) (the exponent is read with a bitcast, exactly as
// `pow2_scale`), its sum of squares is reduced in workgroup memory, and the method's epsilon
// policy divides it (norm is the norm of the scaled row, inv the scale):
// - DIVPRUNE, VIDCOM2 (torch `F.normalize`): `x / max(norm, 1e-12 * inv)`;
// - IDPRUNER: `x / (norm + 1e-8 * inv)`;
// - CDPRUNER: `x / norm` (no epsilon);
// - CDPRUNER_OPENVINO (OpenVINO `NormalizeL2`, eps added): `x / sqrt(sum + 1e-6 * inv^2)`; where
//   `1e-6 * inv^2` overflows (largest magnitude below about 2^-74) the row becomes zeros, as on
//   the CPU (the exact result is below 1e-19), without counting as a zero row;
// - EVS (torch `cosine_similarity`): `x / max(norm, 1e-8 * inv)`.
// Output rows are padded with zeros to D4 = ceil(D / 4) vec4s so the later kernels use vec4
// loads for any D. A zero row (every |x| below the smallest normal f32, so the same whether or
// not the GPU flushes subnormals) becomes the zero vector and is counted in the pool's result
// header (out[out_off]).
// The scale 2^-e is applied as two normal factors 2^-e1 * 2^-e2 (e1 + e2 = e, `pow2_parts`):
// the product is the same exact power-of-two scaling, and no factor is subnormal.
// Rows start `stride` floats apart in `src`; where the pool has a channel map (VidCom2's
// low-variance channels, `chan_off` != NO_OFFSET) element i of a row is source column
// chan[chan_off + i], so the row normalised is the gathered one, as on the CPU.
//
// Features read from a caller's buffer (`bad_off` != NO_OFFSET) are checked for NaN and
// infinities first, as the host checks `Tokens` (src/tokens.rs, `Tokens::new`): every raw
// source value of the row (all `stride` columns, also those a channel map skips) is tested on
// its exponent bits (immune to fast-math assumptions), and the first bad one is recorded as
// `~(position * 4 + class)` with atomicMax (so the lowest position wins; 0 = none), position
// = row * stride + column within the pool, class 0 NaN, 1 +inf, 2 -inf. The host turns it into
// the same error as host input (readback.rs).
//
// Dispatch: (x, y, z) = (rows split over x and y, pool). row = wid.x + wid.y * num_workgroups.x.

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> chan: array<u32>;

var<workgroup> red: array<f32, WG>;

// Element i of the row starting at `base`, through the channel map when there is one.
fn load1(base: u32, i: u32, map: u32) -> f32 {
    if (map == NO_OFFSET) {
        return src[base + i];
    }
    return src[base + chan[map + i]];
}

// Elements 4v..4v+3 of the row starting at `base`, zero past D.
fn load4(base: u32, v: u32, d: u32, map: u32) -> vec4<f32> {
    var x = vec4<f32>(0.0);
    let i = 4u * v;
    if (i < d) { x.x = load1(base, i, map); }
    if (i + 1u < d) { x.y = load1(base, i + 1u, map); }
    if (i + 2u < d) { x.z = load1(base, i + 2u, map); }
    if (i + 3u < d) { x.w = load1(base, i + 3u, map); }
    return x;
}

// The workgroup's sum (max_not_sum = false) or maximum of `x`, in every invocation.
fn reduce(lid: u32, x: f32, max_not_sum: bool) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            if (max_not_sum) {
                red[lid] = max(red[lid], red[lid + s]);
            } else {
                red[lid] = red[lid] + red[lid + s];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// The divisor of the method's epsilon policy for a scaled row with sum of squares `ss`
// (scale s1 * s2); 0 when OpenVINO's scaled epsilon overflows (the row becomes zeros).
fn denominator(method: u32, ss: f32, s1: f32, s2: f32) -> f32 {
    let norm = sqrt(ss);
    switch method {
        case IDPRUNER: {
            return norm + 1e-8 * s1 * s2;
        }
        case CDPRUNER: {
            return norm;
        }
        case CDPRUNER_OPENVINO: {
            let e = OV_EPS * s1 * s2 * s1 * s2;
            if ((bitcast<u32>(e) & 0x7f800000u) == 0x7f800000u) {
                return 0.0;
            }
            return sqrt(ss + e);
        }
        case EVS: {
            return max(norm, 1e-8 * s1 * s2);
        }
        default: {
            // DIVPRUNE, VIDCOM2.
            return max(norm, 1e-12 * s1 * s2);
        }
    }
}

// Records the first non-finite value of the raw source row `row` (see the header).
fn check_finite(pool: Pool, base: u32, row: u32, lid: u32) {
    for (var i = lid; i < pool.stride; i += WG) {
        let b = bitcast<u32>(src[base + i]);
        if ((b & 0x7f800000u) == 0x7f800000u) {
            var kind = 0u;
            if ((b & 0x007fffffu) == 0u) {
                kind = select(1u, 2u, (b & 0x80000000u) != 0u);
            }
            let code = (row * pool.stride + i) * 4u + kind;
            atomicMax(&out[pool.bad_off], ~code);
        }
    }
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
    let map = pool.chan_off;
    let base = pool.src_off + row * pool.stride;
    if (pool.bad_off != NO_OFFSET) {
        check_finite(pool, base, row, lid);
    }

    // Largest magnitude (max is exact in any order).
    var m = 0.0;
    for (var v = lid; v < d4; v += WG) {
        let a = abs(load4(base, v, d, map));
        m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
    }
    let max_abs = reduce(lid, m, true);
    let zero_row = max_abs < 1.17549435e-38;
    let s = pow2_parts(max_abs);
    let s1 = s.x;
    let s2 = s.y;

    var ss = 0.0;
    for (var v = lid; v < d4; v += WG) {
        let y = load4(base, v, d, map) * s1 * s2;
        ss += dot(y, y);
    }
    let denom = denominator(pool.method, reduce(lid, ss, false), s1, s2);
    let vanish = zero_row || denom == 0.0;
    let dst = pool.u_off + row * d4;
    for (var v = lid; v < d4; v += WG) {
        u[dst + v] = select((load4(base, v, d, map) * s1 * s2) / denom, vec4<f32>(0.0), vanish);
    }
    if (lid == 0u && zero_row) {
        atomicAdd(&out[pool.out_off], 1u);
    }
}
