// rows.wgsl: dot products of normalised rows, STREAM_GROUP (32) tokens per pass of one
// workgroup. CPU twin: src/cpu/matmul.rs (`dot_rows`, `similarity_rows`).
// The GEMV shared by stream.wgsl (a pick's similarity row), dpp.wgsl (the relevance
// u . t_hat, recomputed kernel rows) and evs.wgsl (each token against the same position one
// frame earlier). The including kernel declares `u: array<vec4<f32>>`.
//
// 8 groups of 32 lanes; group g takes tokens jb + g + 8q (q = 0..3), its lanes stride over
// the vec4s of the two rows; the 32 x 32 partial sums meet in workgroup memory (padded row
// stride: no bank conflicts) and invocation l < 32 adds up token jb + l's 32 lane sums.

// Token groups of STREAM_GROUP lanes in a workgroup (8); each takes 4 tokens per pass.
const GROUPS: u32 = WG / STREAM_GROUP;
// Row stride of `dots`: one more than STREAM_GROUP.
const DOTS_ROW: u32 = STREAM_GROUP + 1u;

// STREAM_GROUP tokens x STREAM_GROUP lanes of partial dot products.
var<workgroup> dots: array<f32, STREAM_GROUP * DOTS_ROW>;

// u_j . u_p(j) for the tokens j = jb .. jb + 31 of a pool of n rows of d4 vec4s from `base`,
// where p(j) is the row at vec4 offset `fixed` when lag == 0, else token j - lag (tokens
// j < lag, and j >= n, give 0). Invocation lid < 32 gets token jb + lid's dot, the others 0.
// Contains barriers: call it from uniform control flow.
fn pair_dots(lid: u32, jb: u32, n: u32, base: u32, d4: u32, fixed: u32, lag: u32) -> f32 {
    let lane = lid % STREAM_GROUP;
    let grp = lid / STREAM_GROUP;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var rows = array<u32, 4>(0u, 0u, 0u, 0u);
    var partners = array<u32, 4>(0u, 0u, 0u, 0u);
    var valid = array<bool, 4>(false, false, false, false);
    for (var q = 0u; q < 4u; q += 1u) {
        let j = jb + grp + q * GROUPS;
        valid[q] = j < n && j >= lag;
        rows[q] = base + j * d4;
        partners[q] = select(base + (j - lag) * d4, fixed, lag == 0u);
    }
    for (var v = lane; v < d4; v += STREAM_GROUP) {
        var a = vec4<f32>(0.0);
        if (lag == 0u) {
            a = u[fixed + v];
        }
        for (var q = 0u; q < 4u; q += 1u) {
            if (valid[q]) {
                var p = a;
                if (lag != 0u) {
                    p = u[partners[q] + v];
                }
                acc[q] += dot(p, u[rows[q] + v]);
            }
        }
    }
    for (var q = 0u; q < 4u; q += 1u) {
        dots[(grp + q * GROUPS) * DOTS_ROW + lane] = acc[q];
    }
    workgroupBarrier();
    var s = 0.0;
    if (lid < STREAM_GROUP) {
        for (var l = 0u; l < STREAM_GROUP; l += 1u) {
            s += dots[lid * DOTS_ROW + l];
        }
    }
    workgroupBarrier();
    return s;
}
