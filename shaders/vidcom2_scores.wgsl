// vidcom2_scores.wgsl: VidCom2's token scores (SPEC "VidCom2" step 3).
// CPU twin: src/cpu/vidcom2.rs (`gaussian_scores`, `gaussian`).
// The host prepends the constant prelude and common.wgsl (src/gpu/kernels.rs).
//
// Per token: the squared distances of its z to the video centre and to its frame's centre,
// `g(d) = sum over a in ALPHAS, in that order, of exp(-d / (2a))`, and the score
// `s = g(video) + g(frame)` with g(video) kept for the frame budgets. 32 tokens per
// workgroup as rows.wgsl: 8 groups of 32 lanes, 4 tokens per group, lanes striding over the
// vec4s, both distances' partial sums meeting in workgroup memory.
// Output per pool at out_off: [zero-row count (normalize.wgsl), s bits[n], g(video) bits[n]];
// the host budgets the frames, keeps each frame's bottom k and reconciles
// (src/select/video.rs).
// Dispatch: (x, y, z) = (token blocks over x and y, pool).

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cent: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const GROUPS: u32 = WG / STREAM_GROUP;
const DOTS_ROW: u32 = STREAM_GROUP + 1u;

var<workgroup> dist_v: array<f32, STREAM_GROUP * DOTS_ROW>;
var<workgroup> dist_f: array<f32, STREAM_GROUP * DOTS_ROW>;

fn gaussian(dist: f32) -> f32 {
    var alphas = ALPHAS;
    var s = 0.0;
    for (var i = 0u; i < 5u; i += 1u) {
        s += exp(-dist / (2.0 * alphas[i]));
    }
    return s;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pool = pools[wid.z];
    let n = pool.n;
    let jb = (wid.x + wid.y * nwg.x) * STREAM_GROUP;
    if (pool.method != VIDCOM2 || jb >= n) {
        return;
    }
    let d4 = pool.d4;
    let lane = lid % STREAM_GROUP;
    let grp = lid / STREAM_GROUP;
    for (var q = 0u; q < 4u; q += 1u) {
        let slot = grp + q * GROUPS;
        let j = jb + slot;
        var dv = 0.0;
        var df = 0.0;
        if (j < n) {
            let row = pool.u_off + j * d4;
            let fc = pool.cent_off + (1u + j / pool.frame_len) * d4;
            for (var v = lane; v < d4; v += STREAM_GROUP) {
                let z = u[row + v];
                let a = z - cent[pool.cent_off + v];
                let b = z - cent[fc + v];
                dv += dot(a, a);
                df += dot(b, b);
            }
        }
        dist_v[slot * DOTS_ROW + lane] = dv;
        dist_f[slot * DOTS_ROW + lane] = df;
    }
    workgroupBarrier();
    let j = jb + lid;
    if (lid < STREAM_GROUP && j < n) {
        var sv = 0.0;
        var sf = 0.0;
        for (var l = 0u; l < STREAM_GROUP; l += 1u) {
            sv += dist_v[lid * DOTS_ROW + l];
            sf += dist_f[lid * DOTS_ROW + l];
        }
        let gv = gaussian(sv);
        out[pool.out_off + 1u + j] = bitcast<u32>(gv + gaussian(sf));
        out[pool.out_off + 1u + n + j] = bitcast<u32>(gv);
    }
}
