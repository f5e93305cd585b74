// select.wgsl: greedy selection on the dense path (all K picks in ONE dispatch).
// CPU twin: src/cpu/greedy.rs (`divprune`, `idpruner`, `argmax_unchosen`).
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

const WG: u32 = 256u;
const DIVPRUNE: u32 = 0u;
const MASKED: f32 = -1e30;
const TAKEN: f32 = 1e30;
const LOWEST: f32 = -3e38;
const NO_INDEX: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> sim: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> imp: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

var<workgroup> red_s: array<f32, 256>;
var<workgroup> red_i: array<u32, 256>;

fn better(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

fn unkey(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// Workgroup argmax of (score, index); every invocation gets (score bits, index).
fn wg_argmax(lid: u32, s: f32, i: u32) -> vec2<u32> {
    red_s[lid] = s;
    red_i[lid] = i;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            let o = lid + stride;
            if (better(red_s[o], red_i[o], red_s[lid], red_i[lid])) {
                red_s[lid] = red_s[o];
                red_i[lid] = red_i[o];
            }
        }
        workgroupBarrier();
    }
    let r = vec2<u32>(bitcast<u32>(red_s[0]), red_i[0]);
    workgroupBarrier();
    return r;
}

// Token j's score at pick t (state updated with row `prev` = the previous pick, S[prev, j]).
fn step_score(pool: Pool, t: u32, prev: u32, new_round: bool, j: u32, s_pj: f32) -> f32 {
    let g = pool.row0 + j;
    let c = pool.cache_off + g;
    if (pool.method == DIVPRUNE) {
        if (t == 0u) {
            return 1.0 - unkey(bitcast<u32>(state[g]));
        }
        if (j == prev) {
            state[g] = MASKED;
            return MASKED;
        }
        var m = 1.0 - s_pj;
        if (t > 1u) {
            m = min(state[g], m);
        }
        state[g] = m;
        return m;
    }
    if (t == 0u) {
        state[g] = pool.om * -2.0;
        let s0 = imp[g].x;
        state[c] = s0;
        return s0;
    }
    if (j == prev) {
        state[g] = TAKEN;
        state[c] = MASKED;
        return MASKED;
    }
    let m = max(state[g], pool.om * s_pj);
    state[g] = m;
    if (new_round) {
        let s = imp[g].y - m;
        state[c] = s;
        return s;
    }
    return state[c];
}

@compute @workgroup_size(256)
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
