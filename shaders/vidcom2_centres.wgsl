// vidcom2_centres.wgsl: VidCom2's centres (SPEC "VidCom2" step 2).
// CPU twin: src/cpu/vidcom2.rs (`centres`; z comes from normalize.wgsl through the channel
// map, as `normalise_kept_channels`). The host prepends the constant prelude and common.wgsl
// (src/gpu/kernels.rs). The centres are the means of each frame's normalised kept-channel
// rows z, and of all of them (neither renormalised).
//
// The CPU sums in f64 and rounds each mean to f32 once; here the sums are compensated
// (TwoSum, `add2`) and rounded to f32 before the division, so a centre may differ from the
// CPU's in its last bit.
// Entry points:
// - `frames`: a workgroup takes COLS (32) channels of one frame, WG / COLS = 8 lanes down its
//   tokens; the frame's compensated sums go to `stats` (two words per channel, after the
//   channel map) and its centre to `cent` (row 1 + f). Dispatch (x, y, z) = (channel block,
//   frame, pool).
// - `video`: per channel, the frame sums in frame order (as the CPU adds them), over N: the
//   video centre (row 0). Dispatch (x, z) = (block of WG channels, pool).
// Centres are rows of d4 vec4s at cent_off (vec4s), zero past the d kept channels.

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read_write> stats: array<u32>;
@group(0) @binding(2) var<storage, read_write> cent: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<vec4<f32>>;

// Lanes down the tokens per channel.
const LANES: u32 = WG / COLS;

var<workgroup> part: array<vec2<f32>, WG>;

// Where the compensated sum of channel c over frame f sits in `stats`.
fn frame_sum_at(pool: Pool, f: u32, c: u32) -> u32 {
    return pool.chan_off + pool.d + (f * pool.d + c) * 2u;
}

@compute @workgroup_size(WG)
fn frames(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.z];
    let kc = pool.d;
    let f = wid.y;
    let c0 = wid.x * COLS;
    if (pool.method != VIDCOM2 || f >= pool.frames || c0 >= kc) {
        return;
    }
    let col = lid % COLS;
    let c = c0 + col;
    let lane = lid / COLS;
    let p = pool.frame_len;
    var s = vec2<f32>(0.0);
    if (c < kc) {
        for (var t = lane; t < p; t += LANES) {
            let row = pool.u_off + (f * p + t) * pool.d4;
            s = add2(s, u[row + c / 4u][c % 4u]);
        }
    }
    part[lid] = s;
    workgroupBarrier();
    if (lane == 0u && c < kc) {
        var tot = part[col];
        for (var l = 1u; l < LANES; l += 1u) {
            tot = add22(tot, part[l * COLS + col]);
        }
        let at = frame_sum_at(pool, f, c);
        stats[at] = bitcast<u32>(tot.x);
        stats[at + 1u] = bitcast<u32>(tot.y);
        cent[(pool.cent_off + (1u + f) * pool.d4) * 4u + c] = (tot.x + tot.y) / f32(p);
    }
}

@compute @workgroup_size(WG)
fn video(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.z];
    let c = wid.x * WG + lid;
    if (pool.method != VIDCOM2 || c >= pool.d) {
        return;
    }
    var tot = vec2<f32>(0.0);
    for (var f = 0u; f < pool.frames; f += 1u) {
        let at = frame_sum_at(pool, f, c);
        tot = add22(tot, vec2<f32>(bitcast<f32>(stats[at]), bitcast<f32>(stats[at + 1u])));
    }
    cent[pool.cent_off * 4u + c] = (tot.x + tot.y) / f32(pool.n);
}
