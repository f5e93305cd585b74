// select.wgsl: greedy selection on the dense path (all K picks in ONE dispatch).
// CPU twin: src/cpu/greedy.rs (`divprune`, `idpruner`, `argmax_unchosen`).
// The host prepends the constant prelude, common.wgsl and greedy.wgsl (src/gpu/kernels.rs).
//
// One workgroup of 256 invocations per pool, so a batch of pools runs in parallel in one
// dispatch (dispatch x = pool). Invocation `lid` owns tokens lid, lid + 256, ... and is the only
// one that reads or writes their per-token state, so the only cross-invocation traffic is the
// workgroup argmax over (score, index) pairs with the SPEC winner rule
// `a.score > b.score || (a.score == b.score && a.index < b.index)` (lowest index on ties).
//
// Pick t reads row `prev` (the previous pick) of the stored S = U U^T and, in the same pass,
// updates the running state, computes each token's score and reduces the argmax:
// - DivPrune: seed score 1 - nn (nn decoded from the atomicMax key the similarity kernel left
//   in `state`); then state = min over picks of (1 - S[pick, j]) and score = state.
// - IDPruner: state holds (1 - lambda) * maxsim (starting at (1 - lambda) * -2; rounding is
//   monotone so this equals rounding the product of the max). Round 0 scores are the
//   normalised importance; a new round's scores are `lambda*imp - state`, both products
//   already rounded to f32 (lambda*imp is computed on the host), so no contraction can fuse
//   them. Scores are cached (state[cache_off + row]) for the parallel_k picks of one round.
// Chosen tokens are masked: their score becomes MASKED (and IDPruner's state TAKEN), finite
// sentinels far below (above) any real value, so no inf arithmetic is needed.
// Output per pool at out_off: [zero-row count (written by normalize.wgsl), order[k],
// score bits[k]].

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> sim: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> imp: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.x];
    let n = pool.n;
    let k = pool.k;
    var prev = 0u;
    for (var t = 0u; t < k; t += 1u) {
        let new_round = (t % pool.pk) == 0u;
        let row = pool.sim_off + prev * n;
        var best_s = LOWEST;
        var best_i = NO_INDEX;
        for (var j = lid; j < n; j += WG) {
            var s_pj = 0.0;
            if (t > 0u) {
                s_pj = sim[row + j];
            }
            let s = step_score(pool, t, prev, new_round, j, s_pj);
            if (better(s, j, best_s, best_i)) {
                best_s = s;
                best_i = j;
            }
        }
        let r = wg_argmax(lid, best_s, best_i);
        prev = r.y;
        if (lid == 0u) {
            out[pool.out_off + 1u + t] = r.y;
            out[pool.out_off + 1u + k + t] = r.x;
        }
    }
}
