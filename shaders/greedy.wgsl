// greedy.wgsl: the greedy state machine shared by the dense (select.wgsl) and streaming
// (stream.wgsl) paths; the host prepends it (after common.wgsl) to both.
// CPU twin: src/cpu/greedy.rs (`divprune`, `idpruner`, `argmax_unchosen`).

// Chosen tokens' score (and IDPruner's state): finite sentinels beyond any real value.
const MASKED: f32 = -1e30;
const TAKEN: f32 = 1e30;
const LOWEST: f32 = -3e38;
const NO_INDEX: u32 = 0xffffffffu;

var<workgroup> red_s: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

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
