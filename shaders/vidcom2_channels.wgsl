// vidcom2_channels.wgsl: VidCom2's channel choice (SPEC "VidCom2" step 1).
// CPU twin: src/cpu/vidcom2.rs (`low_variance_channels`).
// The host prepends the constant prelude and common.wgsl (src/gpu/kernels.rs).
//
// Entry points:
// - `variance`: the population variance of each channel over all N tokens. A workgroup takes
//   COLS (32) channels with WG / COLS = 8 lanes down the tokens (consecutive invocations read
//   consecutive channels of a row). Three passes over the column: its largest magnitude
//   (exact), giving the exact power-of-two scale of normalize.wgsl (`pow2_parts`), so no sum
//   overflows or underflows; the mean of the scaled values; then the sums A of (y - mean)
//   and B of (y - mean)^2, and var = B/N - (A/N)^2 (the second term corrects the mean's
//   rounding), scaled back by the exact inverse factors. The CPU sums in f64; here every sum
//   is compensated (TwoSum, `add2`) and the lanes are combined in lane order, so the f32
//   variances agree with the CPU's to about an ulp: only channels whose variances are that
//   close to each other across the boundary could be chosen differently. Each variance is
//   stored as its order-preserving u32 key at stat_off + c.
//   Dispatch: (x, z) = (channel block, pool).
// - `choose`: the rank of channel c among all, ascending by (variance, index) (torch's
//   `topk(largest = False)` with ties to the lowest index); the first d = max(1, floor(C/2))
//   ranks form the channel map at chan_off (map[rank] = c), which normalize.wgsl gathers.
//   Dispatch: (x, z) = (block of WG channels, pool).

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read_write> stats: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

// Lanes down the tokens per channel.
const LANES: u32 = WG / COLS;

var<workgroup> part: array<vec2<f32>, WG>;

// The LANES compensated partial sums of each column combined in lane order; every
// invocation gets its column's total.
fn col_sum(lid: u32, x: vec2<f32>) -> vec2<f32> {
    part[lid] = x;
    workgroupBarrier();
    let c = lid % COLS;
    var s = part[c];
    for (var l = 1u; l < LANES; l += 1u) {
        s = add22(s, part[l * COLS + c]);
    }
    workgroupBarrier();
    return s;
}

// The column's maximum, in every invocation of the column.
fn col_max(lid: u32, x: f32) -> f32 {
    part[lid] = vec2<f32>(x, 0.0);
    workgroupBarrier();
    let c = lid % COLS;
    var m = part[c].x;
    for (var l = 1u; l < LANES; l += 1u) {
        m = max(m, part[l * COLS + c].x);
    }
    workgroupBarrier();
    return m;
}

// 1 / x for a normal power of two x in [2^-126, 2^126], exactly (from the exponent bits).
fn inv_pow2(x: f32) -> f32 {
    return bitcast<f32>((254u << 23u) - bitcast<u32>(x));
}

@compute @workgroup_size(WG)
fn variance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.z];
    let cc = pool.stride;
    let c0 = wid.x * COLS;
    if (pool.method != VIDCOM2 || c0 >= cc) {
        return;
    }
    let ch = c0 + lid % COLS;
    let lane = lid / COLS;
    let valid = ch < cc;
    let n = pool.n;
    let at = pool.src_off + ch;
    var m = 0.0;
    if (valid) {
        for (var r = lane; r < n; r += LANES) {
            m = max(m, abs(src[at + r * cc]));
        }
    }
    let s = pow2_parts(col_max(lid, m));
    var sum = vec2<f32>(0.0);
    if (valid) {
        for (var r = lane; r < n; r += LANES) {
            sum = add2(sum, src[at + r * cc] * s.x * s.y);
        }
    }
    let total = col_sum(lid, sum);
    let nf = f32(n);
    let mean = (total.x + total.y) / nf;
    var a = vec2<f32>(0.0);
    var b = vec2<f32>(0.0);
    if (valid) {
        for (var r = lane; r < n; r += LANES) {
            let dv = src[at + r * cc] * s.x * s.y - mean;
            a = add2(a, dv);
            b = add2(b, dv * dv);
        }
    }
    let sa = col_sum(lid, a);
    let sb = col_sum(lid, b);
    let am = (sa.x + sa.y) / nf;
    let scaled = max((sb.x + sb.y) / nf - am * am, 0.0);
    let i1 = inv_pow2(s.x);
    let i2 = inv_pow2(s.y);
    let v = scaled * i1 * i2 * i1 * i2;
    if (lane == 0u && valid) {
        stats[pool.stat_off + ch] = key(v);
    }
}

@compute @workgroup_size(WG)
fn choose(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.z];
    let cc = pool.stride;
    let c = wid.x * WG + lid;
    if (pool.method != VIDCOM2 || c >= cc) {
        return;
    }
    let kv = stats[pool.stat_off + c];
    var rank = 0u;
    for (var o = 0u; o < cc; o += 1u) {
        let ko = stats[pool.stat_off + o];
        if (ko < kv || (ko == kv && o < c)) {
            rank += 1u;
        }
    }
    if (rank < pool.d) {
        stats[pool.chan_off + rank] = c;
    }
}
