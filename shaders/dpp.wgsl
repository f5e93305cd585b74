// dpp.wgsl: CDPruner's greedy MAP by incremental Cholesky (SPEC "CDPruner", both variants).
// CPU twin: src/cpu/cdpruner.rs (`run`, `relevance_openvino`, `relevance_minmax_openvino`,
// `KernelForm::entry`, `dpp_official`, `dpp_openvino`).
// One workgroup of 256 invocations per pool, like select.wgsl, all pools of a submission in
// each dispatch; the K picks run as rounds split over a few dispatches (`Rounds`, planned by
// src/gpu/plan.rs `dpp_rounds` so that no invocation loops more than a fixed budget per
// dispatch: lavapipe silently stops a shader's loops after 65535 iterations, and desktop
// watchdogs dislike long dispatches).
// The host prepends the constant prelude, common.wgsl and rows.wgsl (src/gpu/kernels.rs).
//
// Before it run normalize.wgsl (CDPRUNER: plain norms; CDPRUNER_OPENVINO: sqrt(sum + 1e-6))
// on the pool's rows and on its text vector (a one-row pool whose row sits at t_off in `u`),
// and similarity.wgsl `dense` where the pool's S is stored (sim_off != NO_OFFSET).
//
// Entry points:
// - `relevance` (text relevance, `cdpruner-openvino`): a_j = u_j . t_hat for 32 tokens per
//   workgroup (rows.wgsl), into the pool's relevance slots. Dispatch (x, y, z) = (token
//   blocks over x and y, pool).
// - `greedy`: dispatch x = pool, rounds first..end. The first dispatch (first = 0) runs 1-2,
//   the later ones resume from the state and the report (picks so far, stopped, degenerate).
//   1. text relevance only: min and max of a over the pool (exact in any order), then in place
//      r = (a - min) / ((max - min) + 1e-6); equal relevance flagged in the report.
//   2. the gains g_j = K_jj, from S_jj (stored) or u_j . u_j.
//   3. K picks. j = argmax of g over the unchosen tokens: a workgroup reduction of
//      (order-preserving u32 key, index) pairs, lowest index on ties, exact for -FLT_MAX and
//      infinities whatever the compiler assumes about them (-0 counts as +0, as on the CPU).
//      Then per token m the kernel entry K_jm (from S_jm, stored, or u_j . u_m recomputed by
//      m's owner) and the Cholesky step, stored at c_off + t * n:
//      official `c = (K_j - sum_t c_t[j] c_t) / sqrt(g_j)`, `g -= c^2`;
//      OpenVINO `c = (K_j - sum over |c_t[j]| >= 1e-6 of c_t[j] c_t) * (1 / sqrt(g_j + 1e-6))`,
//      `g -= c^2` on unchosen tokens, NaN -> -FLT_MAX (where g_j + 1e-6 is not > 0 every
//      c is NaN upstream, so every unchosen gain becomes -FLT_MAX; exactly 0 counts the same
//      here, where upstream mixes -inf and -FLT_MAX).
//   Rank policy (official): when the best gain is not finite or not > 0 the DPP stops and the
//   remaining picks are the unchosen tokens of highest r (lowest index on ties), scored 0.
// Invocation lid owns tokens lid, lid + 256, ...: only it writes their gains, chosen flags and
// c entries; reads of another token's entries (c_t[j], r_j, g_j) follow a storage barrier.
// Every barrier sits at the top level of `greedy`'s loop and runs in every iteration (as in
// select.wgsl): no barrier under a condition, so no compiler (lavapipe's included, which
// mis-ran an earlier form with barriers inside conditional calls) can diverge on one. The loop
// runs K + 1 rounds over its dispatches: K picks and at most one round that only finds that
// the DPP stopped.
// State per pool at row0: [gain n][chosen n][relevance n].
// Output per pool at out_off: [zero-row count (normalize.wgsl), order[k], score bits[k],
// then the report: picks before the DPP stopped (NO_INDEX: it did not stop), the gain it
// stopped at (bits), picks made at -FLT_MAX (OpenVINO), relevance equal everywhere (1),
// picks so far].

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> sim: array<f32>;
@group(0) @binding(4) var<storage, read_write> cvec: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<uniform> rounds: Rounds;

// The rounds this dispatch runs (`RoundsEntry` in src/gpu/kernels.rs).
struct Rounds {
    first: u32,
    end: u32,
    pad0: u32,
    pad1: u32,
}

const NO_INDEX: u32 = 0xffffffffu;
// -FLT_MAX, as a hex literal: Tint rejects the decimal -3.40282347e38 (it rounds past f32).
const NEG_MAX: f32 = -0x1.fffffep+127f;
// key(+0.0) and key(+inf): a gain is finite and > 0 iff its key lies strictly between.
const KEY_ZERO: u32 = 0x80000000u;
const KEY_INF: u32 = 0xff800000u;

// (key, index, gain bits) candidates of the argmax; the min-max uses .xy.
var<workgroup> red: array<vec3<u32>, WG>;

// The order-preserving key of a gain, -0 as +0 (they are equal, as on the CPU).
fn gkey(x: f32) -> u32 {
    if (bitcast<u32>(x) == 0x80000000u) {
        return KEY_ZERO;
    }
    return key(x);
}

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// (key, index, ...) a beats b: higher key, or equal key and lower index. (0, NO_INDEX) is
// "no token" and loses to every token.
fn wins(a: vec3<u32>, b: vec3<u32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y < b.y);
}

// The workgroup's best candidate, in every invocation (the pattern of greedy.wgsl's
// `wg_argmax`: the last barrier keeps the next call's writes after every read). The winner's
// gain travels with it: its owner may overwrite the stored gain in the same round.
fn wg_best(lid: u32, c: vec3<u32>) -> vec3<u32> {
    red[lid] = c;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && wins(red[lid + s], red[lid])) {
            red[lid] = red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn relevance(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pool = pools[wid.z];
    let jb = (wid.x + wid.y * nwg.x) * STREAM_GROUP;
    if (pool.t_off == NO_OFFSET || pool.k == 0u || jb >= pool.n) {
        return;
    }
    let a = pair_dots(lid, jb, pool.n, pool.u_off, pool.d4, pool.t_off, 0u);
    let j = jb + lid;
    if (lid < STREAM_GROUP && j < pool.n) {
        state[pool.row0 + 2u * pool.n + j] = a;
    }
}

// Stage 1: OpenVINO's min-max of the text relevance, in place (`relevance_minmax_openvino`);
// the reduction runs for every pool (barriers unconditional), the rewrite only for text.
fn relevance_minmax(pool: Pool, lid: u32, report: u32) {
    let rel = pool.row0 + 2u * pool.n;
    // Keys of the largest a and (complemented) of the smallest.
    var m = vec3<u32>(0u, 0u, 0u);
    for (var j = lid; j < pool.n; j += WG) {
        let k = key(state[rel + j]);
        m = max(m, vec3<u32>(k, ~k, 0u));
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    if (pool.t_off == NO_OFFSET) {
        return;
    }
    let hi = unkey(r.x);
    let lo = unkey(~r.y);
    let range = (hi - lo) + OV_EPS;
    for (var j = lid; j < pool.n; j += WG) {
        state[rel + j] = (state[rel + j] - lo) / range;
    }
    if (lid == 0u && hi == lo) {
        out[report + 3u] = 1u;
    }
}

// Kernel entry (i, j) from s = S_ij (`KernelForm::entry`).
fn entry(pool: Pool, i: u32, j: u32, s: f32) -> f32 {
    let rel = pool.row0 + 2u * pool.n;
    let ri = state[rel + i];
    let rj = state[rel + j];
    if (pool.method == CDPRUNER) {
        return (ri * s) * rj;
    }
    return s * (1.0 - pool.w) + ((ri * s) * rj) * pool.w;
}

// S_ij: stored, or u_i . u_j recomputed (no S stored: `pool.sim_off` is NO_OFFSET).
fn similarity(pool: Pool, i: u32, j: u32) -> f32 {
    if (pool.sim_off != NO_OFFSET) {
        return sim[pool.sim_off + i * pool.n + j];
    }
    let a = pool.u_off + i * pool.d4;
    let b = pool.u_off + j * pool.d4;
    var s = 0.0;
    for (var v = 0u; v < pool.d4; v += 1u) {
        s += dot(u[a + v], u[b + v]);
    }
    return s;
}

// Stage 2: the gains (the kernel's diagonal), nothing chosen; the invocation's best token.
fn init_gains(pool: Pool, lid: u32) -> vec3<u32> {
    var best = vec3<u32>(0u, NO_INDEX, 0u);
    for (var j = lid; j < pool.n; j += WG) {
        let g = entry(pool, j, j, similarity(pool, j, j));
        state[pool.row0 + j] = g;
        state[pool.row0 + pool.n + j] = 0.0;
        let c = vec3<u32>(gkey(g), j, bitcast<u32>(g));
        if (wins(c, best)) {
            best = c;
        }
    }
    return best;
}

// The rank policy's fill: the invocation's unchosen token of highest relevance.
fn fill_candidate(pool: Pool, lid: u32) -> vec3<u32> {
    var best = vec3<u32>(0u, NO_INDEX, 0u);
    for (var j = lid; j < pool.n; j += WG) {
        if (state[pool.row0 + pool.n + j] == 0.0) {
            let c = vec3<u32>(gkey(state[pool.row0 + 2u * pool.n + j]), j, 0u);
            if (wins(c, best)) {
                best = c;
            }
        }
    }
    return best;
}

// c_t[m] of pick t = j before its scaling: `l - sum_t c_t[j] c_t[m]` (official, upstream's
// einsum order), or OpenVINO's with the vectors whose |c_t[j]| < 1e-6 skipped.
fn cholesky(pool: Pool, t: u32, j: u32, m: u32, l: f32, official: bool) -> f32 {
    if (official) {
        var acc = 0.0;
        for (var tt = 0u; tt < t; tt += 1u) {
            let c = pool.c_off + tt * pool.n;
            acc += cvec[c + j] * cvec[c + m];
        }
        return l - acc;
    }
    var e = l;
    for (var tt = 0u; tt < t; tt += 1u) {
        let c = pool.c_off + tt * pool.n;
        let coef = cvec[c + j];
        if (abs(coef) < OV_EPS) {
            continue;
        }
        e -= coef * cvec[c + m];
    }
    return e;
}

// Stage 3, after pick t = j of gain g: per owned token, the kernel entry, c_t and the gain;
// returns the invocation's best unchosen token for the next pick. No barrier inside.
fn update(pool: Pool, lid: u32, t: u32, j: u32, g: f32) -> vec3<u32> {
    let n = pool.n;
    let gains = pool.row0;
    let chosen = gains + n;
    let official = pool.method == CDPRUNER;
    let q = g + OV_EPS;
    let nan_gains = !official && !(q > 0.0);
    var scale = 0.0;
    if (official) {
        scale = sqrt(g);
    } else if (!nan_gains) {
        scale = 1.0 / sqrt(q);
    }
    var best = vec3<u32>(0u, NO_INDEX, 0u);
    for (var m = lid; m < n; m += WG) {
        let l = entry(pool, j, m, similarity(pool, j, m));
        var e = cholesky(pool, t, j, m, l, official);
        let taken = state[chosen + m] != 0.0;
        var gm = state[gains + m];
        if (official) {
            e = e / scale;
            gm = gm - e * e;
        } else {
            e = e * scale;
            if (!taken) {
                let next = gm - e * e;
                gm = select(next, NEG_MAX, nan_gains || is_nan(next));
            }
        }
        cvec[pool.c_off + t * n + m] = e;
        state[gains + m] = gm;
        let c = vec3<u32>(gkey(gm), m, bitcast<u32>(gm));
        if (!taken && wins(c, best)) {
            best = c;
        }
    }
    return best;
}

// Resuming a pool in a later dispatch: the invocation's best unchosen token by gain.
fn gain_candidate(pool: Pool, lid: u32) -> vec3<u32> {
    var best = vec3<u32>(0u, NO_INDEX, 0u);
    for (var j = lid; j < pool.n; j += WG) {
        if (state[pool.row0 + pool.n + j] == 0.0) {
            let g = state[pool.row0 + j];
            let c = vec3<u32>(gkey(g), j, bitcast<u32>(g));
            if (wins(c, best)) {
                best = c;
            }
        }
    }
    return best;
}

@compute @workgroup_size(WG)
fn greedy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pool = pools[wid.x];
    let k = pool.k;
    let report = pool.out_off + 1u + 2u * k;
    var best = vec3<u32>(0u, NO_INDEX, 0u);
    if (rounds.first == 0u) {
        relevance_minmax(pool, lid, report);
        storageBarrier();
        best = init_gains(pool, lid);
        if (lid == 0u) {
            out[report] = NO_INDEX;
        }
    } else {
        best = gain_candidate(pool, lid);
    }
    storageBarrier();
    // The pool's progress, as the previous dispatch left it (0 picks at first).
    var picks = out[report + 4u];
    var stopped = out[report] != NO_INDEX;
    var degenerate = out[report + 2u];
    for (var round = rounds.first; round < rounds.end; round += 1u) {
        var cand = best;
        if (stopped) {
            cand = fill_candidate(pool, lid);
        }
        let w = wg_best(lid, cand);
        let j = w.y;
        let live = picks < k && j != NO_INDEX;
        let gain_ok = w.x > KEY_ZERO && w.x < KEY_INF;
        if (live && !stopped && pool.method == CDPRUNER && !gain_ok) {
            // Official rank policy: the DPP stops; this round picks nothing.
            stopped = true;
            if (lid == 0u) {
                out[report] = picks;
                out[report + 1u] = w.z;
            }
        } else if (live) {
            var g = 0.0;
            if (!stopped) {
                g = bitcast<f32>(w.z);
            }
            if (pool.method == CDPRUNER_OPENVINO && w.x == key(NEG_MAX)) {
                degenerate += 1u;
            }
            if (lid == 0u) {
                out[pool.out_off + 1u + picks] = j;
                out[pool.out_off + 1u + k + picks] = bitcast<u32>(g);
            }
            if (j % WG == lid) {
                state[pool.row0 + pool.n + j] = 1.0;
            }
            if (!stopped && picks + 1u < k) {
                best = update(pool, lid, picks, j, g);
            }
            picks += 1u;
        }
        storageBarrier();
    }
    if (lid == 0u) {
        out[report + 2u] = degenerate;
        out[report + 4u] = picks;
    }
}
