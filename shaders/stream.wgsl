// stream.wgsl: one greedy step of the streaming path (S is never stored).
// CPU twin: src/cpu/greedy.rs (`divprune` / `idpruner` with `Rows::Stream`, i.e.
// `similarity_rows` in src/cpu/matmul.rs) and `argmax_unchosen`.
// The host prepends the constant prelude, common.wgsl, rows.wgsl and greedy.wgsl
// (src/gpu/kernels.rs).
//
// The host records K + 1 dispatches of this kernel in ONE command buffer (step t = 0..K, read
// from a uniform with a dynamic offset); the pick index never leaves the GPU:
// - step t > 0 first reduces the per-workgroup partial argmaxes of step t - 1 (at most 256 of
//   them: every workgroup does this small reduce redundantly, so no separate reduce dispatch
//   is needed); that is pick t - 1, which workgroup 0 writes to the output;
// - then (t < K) each workgroup takes its 32 * iters tokens, computes S[pick, j] for them
//   (a GEMV against the normalised rows, rows.wgsl `pair_dots`), updates the running state
//   exactly as select.wgsl does, and writes its partial argmax for step t (ping-pong halves by parity).
// Step 0 computes the seed scores (DivPrune: 1 - nn from similarity.wgsl `nearest`;
// IDPruner: the normalised importance).
// Dispatch: (x, y) = (workgroup within the pool, pool).

struct Step {
    t: u32,
    // Partials per parity half (all pools of the dispatch).
    pstride: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> imp: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(6) var<uniform> step: Step;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.y];
    let w = wid.x;
    let t = step.t;
    if (w >= pool.parts || t > pool.k) {
        return;
    }
    var prev = 0u;
    if (t > 0u) {
        let base = ((t - 1u) % 2u) * step.pstride + pool.part_off;
        var bs = LOWEST;
        var bi = NO_INDEX;
        if (lid < pool.parts) {
            let p = partials[base + lid];
            bs = bitcast<f32>(p.x);
            bi = p.y;
        }
        let r = wg_argmax(lid, bs, bi);
        prev = r.y;
        if (w == 0u && lid == 0u) {
            out[pool.out_off + t] = r.y;
            out[pool.out_off + pool.k + t] = r.x;
        }
        if (t == pool.k) {
            return;
        }
    }

    let n = pool.n;
    let d4 = pool.d4;
    let new_round = (t % pool.pk) == 0u;
    let prow = pool.u_off + prev * d4;
    var best_s = LOWEST;
    var best_i = NO_INDEX;
    for (var it = 0u; it < pool.iters; it += 1u) {
        let jb = (w * pool.iters + it) * STREAM_GROUP;
        var s_pj = 0.0;
        if (t > 0u) {
            s_pj = pair_dots(lid, jb, n, pool.u_off, d4, prow, 0u);
        }
        let j = jb + lid;
        if (lid < STREAM_GROUP && j < n) {
            let s = step_score(pool, t, prev, new_round, j, s_pj);
            if (better(s, j, best_s, best_i)) {
                best_s = s;
                best_i = j;
            }
        }
    }
    let r = wg_argmax(lid, best_s, best_i);
    if (lid == 0u) {
        partials[(t % 2u) * step.pstride + pool.part_off + w] = r;
    }
}
