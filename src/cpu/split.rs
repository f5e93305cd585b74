//! The similarity stage split across instances that share no memory: the wasm build's Web
//! Workers, each running its own single-threaded module (stable Rust has no wasm32 std built
//! with atomics, so the instances cannot share one linear memory).
//!
//! [`plan`] cuts the upper triangle of similarity tiles into contiguous shares of about equal
//! work; each instance computes its share with [`part`] (the same normalisation and the same
//! tile kernel as the single-threaded engine, [`similarity_part`]); the main instance joins the
//! shares ([`join`]) and runs the greedy loop on them, handed to it for one call by
//! [`with_given`]. Every similarity is computed by the same kernel from the same normalised
//! rows, and maxima do not depend on the order they are taken in, so the selection is bit for
//! bit the single-threaded one. The greedy loop itself (K dependent steps) stays in one
//! instance.
//!
//! What is split: DivPrune's nearest-neighbour seed (all tiles, each folded into row and
//! column maxima) and, when the tiles fit the dense limit, the tiles its greedy steps read;
//! IDPruner's dense Gram where that is cheaper than its per-round passes on this many threads.

// Only the wasm bindings run the split; natively its tests do.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::ops::Range;
use std::sync::Mutex;

use super::normalize::{normalize_rows, NormPolicy};
use super::similarity::{block_for, join_parts, pair_count, similarity_part, Part, Tiles};
use crate::method::Method;
use crate::tokens::Tokens;
use crate::Request;

/// Below this many multiply-adds in the similarity tiles (`N^2 D / 2`) a split does not pay
/// for itself. Measured in Chromium on 2 cores (BENCHMARKS.md, "Threaded wasm CPU engine"):
/// DivPrune 576 x 256 (42 M) ran 0.82x as fast on 2 threads, 576 x 1024 (170 M) 1.20x.
pub(crate) const MIN_SPLIT_MADDS: u64 = 1 << 27;

/// How many tile multiply-adds one multiply-add of an IDPruner pass costs in the wasm build
/// (a pass is one row against all tokens, bound by memory). Measured in Chromium, one thread,
/// same run, on a loaded machine: IDPruner 576 x 1024 K = 58 (57 passes) in 23.8 ms against
/// DivPrune's tiles of the same pool in 77.6 ms (0.71 against 0.45 ns per multiply-add); in
/// the quiet pairs of BENCHMARKS.md 32.7 against 33.6 ms (a factor near 5). The lower figure is
/// kept: it splits IDPruner only where the Gram surely wins.
const WASM_PASS_COST: f64 = 1.6;

/// How a request's similarity stage is shared out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// The normalisation of the method.
    pub policy: NormPolicy,
    /// Tokens and width.
    pub n: usize,
    pub d: usize,
    /// Side of a tile ([`block_for`]).
    pub block: usize,
    /// Whether the shares keep their tiles (DivPrune's dense path, IDPruner's Gram) or only
    /// fold them into the nearest-neighbour maxima (DivPrune's streaming path).
    pub keep_tiles: bool,
    /// Each share's tiles, as a range of tile numbers; together every tile, in order.
    pub shares: Vec<Range<usize>>,
}

/// How the similarity stage of `req` is split across `threads` instances, or `None` when it
/// runs in one (nothing to split, one thread, or too little work to pay for the split unless
/// `force`). `dense_limit`: the CPU engine's cap on the bytes of kept tiles.
pub(crate) fn plan(req: &Request, threads: usize, dense_limit: usize, force: bool) -> Option<Plan> {
    let tokens = req.tokens()?;
    let (n, d, k) = (tokens.n(), tokens.d(), req.keep());
    if threads < 2 || n < 2 || k == 0 || k >= n {
        return None;
    }
    let fits = Tiles::bytes(n) <= dense_limit as u64;
    let madds = (n as u64).pow(2) * d as u64 / 2;
    let (policy, keep_tiles) = match req.method() {
        Method::DivPrune if force || madds >= MIN_SPLIT_MADDS => (NormPolicy::DivPrune, fits),
        Method::IdPruner(p) if fits => {
            // The Gram on `threads` instances against one pass over the tokens per round.
            let passes = k.div_ceil(p.parallel_k.max(1)).saturating_sub(1);
            let cheaper = (n as f64 / 2.0) / (threads as f64) < passes as f64 * WASM_PASS_COST;
            if !(force || (cheaper && madds >= MIN_SPLIT_MADDS)) {
                return None;
            }
            (NormPolicy::IdPruner, true)
        }
        _ => return None,
    };
    let block = split_block(n, threads);
    Some(Plan {
        policy,
        n,
        d,
        block,
        keep_tiles,
        shares: shares(n, block, threads),
    })
}

/// The tile side of a split: the engine's own ([`block_for`]); in the wasm build (tiles are
/// plain GEMM calls there, whose results do not depend on the tiling) halved down to 32 rows
/// until there are at least 16 tiles per thread, so that the shares come out even (576 tokens
/// on 2 threads: 45 tiles of 64 rows, cut 22 / 23, against 15 tiles of 128 rows, 53 % / 47 %).
fn split_block(n: usize, threads: usize) -> usize {
    let mut block = block_for(n);
    if cfg!(target_arch = "wasm32") {
        while block > 32 && pair_count(n, block) < 16 * threads {
            block /= 2;
        }
    }
    block
}

/// Cuts the tiles of an `n`-token pool into at most `threads` contiguous, non-empty ranges of
/// about equal work (a tile's work: its valid rows times columns).
pub(crate) fn shares(n: usize, block: usize, threads: usize) -> Vec<Range<usize>> {
    let blocks = n.div_ceil(block);
    let rows = |b: usize| (((b + 1) * block).min(n) - b * block) as u64;
    // prefix[j]: the work of tiles 0..j, in tile-number order.
    let mut prefix = vec![0u64];
    for bi in 0..blocks {
        for bj in bi..blocks {
            prefix.push(prefix.last().unwrap() + rows(bi) * rows(bj));
        }
    }
    let len = prefix.len() - 1;
    let (total, parts) = (prefix[len], threads.clamp(1, len.max(1)));
    let mut cuts = vec![0];
    for s in 1..parts {
        // The cut nearest to the fair share, leaving a tile for each share still to come.
        let target = total as f64 * s as f64 / parts as f64;
        let lo = cuts.last().unwrap() + 1;
        let hi = len - (parts - s);
        let cut = (lo..=hi)
            .min_by(|&a, &b| {
                let (da, db) = (
                    (prefix[a] as f64 - target).abs(),
                    (prefix[b] as f64 - target).abs(),
                );
                da.total_cmp(&db)
            })
            .unwrap_or(lo);
        cuts.push(cut);
    }
    cuts.push(len);
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// One instance's share: the tokens normalised by `policy` (all of them, as the single-
/// threaded engine does) and the tiles numbered `range`. Also returns the zero rows met.
pub(crate) fn part(
    tokens: &Tokens,
    policy: NormPolicy,
    block: usize,
    range: Range<usize>,
    keep_tiles: bool,
) -> (Part, usize) {
    let (n, d) = (tokens.n(), tokens.d());
    let (u, zero_rows) = normalize_rows(tokens, policy);
    (
        similarity_part(&u, n, d, block, range, keep_tiles),
        zero_rows,
    )
}

/// The similarity of one pool, computed elsewhere, waiting for the greedy loop.
pub(crate) struct Given {
    /// Which pool and normalisation it is for: the tokens' address and length.
    key: (usize, usize, NormPolicy),
    /// Nearest-neighbour maxima of every token.
    pub nn: Vec<f32>,
    /// The tiles, when the shares kept them.
    pub tiles: Option<Tiles>,
    /// Zero rows met normalising.
    pub zero_rows: usize,
}

fn key(tokens: &Tokens, policy: NormPolicy) -> (usize, usize, NormPolicy) {
    (tokens.data().as_ptr() as usize, tokens.data().len(), policy)
}

/// Joins the shares of `plan` (in order) into the similarity of `tokens`: `nns` each share's
/// nearest-neighbour maxima, `fill(share, out)` copies a share's tiles into place (when the
/// plan keeps them) and says whether they had the planned length. `None` when the shares do
/// not fit the plan.
pub(crate) fn join(
    plan: &Plan,
    tokens: &Tokens,
    nns: &[&[f32]],
    fill: impl FnMut(usize, &mut [f32]) -> bool,
    zero_rows: usize,
) -> Option<Given> {
    if nns.len() != plan.shares.len() || (tokens.n(), tokens.d()) != (plan.n, plan.d) {
        return None;
    }
    let counts: Vec<usize> = plan.shares.iter().map(|r| r.len()).collect();
    let tiles = plan.keep_tiles.then_some(&counts[..]);
    let (nn, tiles) = join_parts(plan.n, plan.block, nns, tiles, fill)?;
    Some(Given {
        key: key(tokens, plan.policy),
        nn,
        tiles,
        zero_rows,
    })
}

/// [`join`] of shares computed in this instance (the tests).
#[cfg(test)]
pub(crate) fn join_local(
    plan: &Plan,
    tokens: &Tokens,
    parts: &[Part],
    zero_rows: usize,
) -> Option<Given> {
    let nns: Vec<&[f32]> = parts.iter().map(|p| &p.nn[..]).collect();
    let fill = |i: usize, out: &mut [f32]| {
        let src = &parts[i].tiles;
        (src.len() == out.len())
            .then(|| out.copy_from_slice(src))
            .is_some()
    };
    join(plan, tokens, &nns, fill, zero_rows)
}

/// Similarities handed over for the calls running inside [`with_given`].
static GIVEN: Mutex<Vec<Given>> = Mutex::new(Vec::new());

fn given() -> std::sync::MutexGuard<'static, Vec<Given>> {
    GIVEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` with `g` available to the greedy loop of its pool ([`take`]); what `f` did not
/// take is dropped when it returns.
pub(crate) fn with_given<R>(g: Given, f: impl FnOnce() -> R) -> R {
    let k = g.key;
    given().push(g);
    let out = f();
    given().retain(|g| g.key != k);
    out
}

/// The similarity handed over for `tokens` normalised by `policy`, if any (taken once).
pub(crate) fn take(tokens: &Tokens, policy: NormPolicy) -> Option<Given> {
    let k = key(tokens, policy);
    let mut g = given();
    let i = g.iter().position(|g| g.key == k)?;
    Some(g.swap_remove(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_tile_once_and_balance() {
        for n in [1, 2, 5, 127, 129, 300, 576, 1030, 2304, 4608] {
            let block = block_for(n);
            let total = pair_count(n, block);
            for threads in 1..=8 {
                let s = shares(n, block, threads);
                assert!(!s.is_empty() && s.len() <= threads.min(total));
                assert_eq!(s[0].start, 0, "n={n} t={threads}");
                assert_eq!(s.last().unwrap().end, total, "n={n} t={threads}");
                for w in s.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                assert!(s.iter().all(|r| !r.is_empty()), "n={n} t={threads}: {s:?}");
            }
        }
        // 576 tokens in 128-blocks on 2 threads: 12.25 full tiles of work, cut within a tile.
        let s = shares(576, 128, 2);
        let work = |r: &Range<usize>| r.len();
        assert!(work(&s[0]).abs_diff(work(&s[1])) <= 2, "{s:?}");
    }

    fn pool(n: usize, d: usize, seed: u32) -> Vec<f32> {
        (0..n * d)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2654435761);
                (h >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Runs `req` with its similarity computed in `threads` shares, each from its own copy of
    /// the tokens (as a worker gets them), and joined.
    fn split_run(
        x: &[f32],
        n: usize,
        d: usize,
        method: Method,
        k: usize,
        threads: usize,
    ) -> crate::Selection {
        let tokens = Tokens::new(x, n, d).unwrap();
        let req = Request::new(tokens, method, crate::Budget::Count(k)).unwrap();
        let plan = plan(&req, threads, crate::cpu::DEFAULT_DENSE_LIMIT, true).expect("a plan");
        assert_eq!(plan.shares.len(), threads.min(pair_count(n, plan.block)));
        let mut zeros = Vec::new();
        let parts: Vec<Part> = plan
            .shares
            .iter()
            .map(|r| {
                let copy = x.to_vec();
                let t = Tokens::new(&copy, n, d).unwrap();
                let (p, z) = part(&t, plan.policy, plan.block, r.clone(), plan.keep_tiles);
                zeros.push(z);
                p
            })
            .collect();
        let given = join_local(&plan, &tokens, &parts, zeros[0]).expect("shares fit");
        let pruner = crate::Pruner::cpu();
        with_given(given, || pruner.prune_blocking(&req).unwrap())
    }

    #[test]
    fn split_selections_equal_single_threaded() {
        let imp: Vec<f32> = (0..1100).map(|i| ((i * 7919) % 1000) as f32).collect();
        for (n, d, k) in [(5, 3, 2), (130, 17, 13), (300, 37, 30), (1030, 9, 100)] {
            let mut x = pool(n, d, n as u32);
            x[2 * d..3 * d].fill(0.0); // a zero row
            let (a, b) = x.split_at_mut(4 * d);
            b[..d].copy_from_slice(&a[d..2 * d]); // a duplicate of row 1
            let tokens = Tokens::new(&x, n, d).unwrap();
            for method in [
                Method::DivPrune,
                Method::IdPruner(crate::IdPruner::new(&imp[..n])),
                Method::IdPruner(crate::IdPruner::new(&imp[..n]).parallel_k(4)),
            ] {
                let req = Request::new(tokens, method, crate::Budget::Count(k)).unwrap();
                let want = crate::Pruner::cpu().prune_blocking(&req).unwrap();
                // IDPruner's single-threaded engine makes its rows with one GEMV per round
                // here: natively another kernel than the tiles' (equal to 1e-5), in the wasm
                // build the same one. Its Gram path runs the tiles' kernel: equal bit for bit.
                let gram = match &method {
                    Method::IdPruner(p) => Some(crate::cpu::greedy::idpruner_on(
                        &tokens,
                        k,
                        &crate::select::Mmr::new(p, k),
                        true,
                    )),
                    _ => None,
                };
                for threads in [2, 3, 4, 7] {
                    let got = split_run(&x, n, d, method, k, threads);
                    let what = format!("{} n={n} t={threads}", method.name());
                    assert_eq!(got.order, want.order, "{what}");
                    assert_eq!(got.notes, want.notes, "{what}");
                    match &gram {
                        Some(g) => {
                            assert_eq!(got.scores, g.scores, "{what}");
                            for (a, b) in got.scores.iter().zip(&want.scores) {
                                assert!((a - b).abs() < 1e-5, "{what}");
                            }
                        }
                        None => assert_eq!(got.scores, want.scores, "{what}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_handed_over_similarity_is_what_the_greedy_loop_uses() {
        // Poison the joined nearest-neighbour maxima: the seed follows them, so the greedy
        // loop read the handed-over similarity rather than computing its own.
        let (n, d) = (300, 16);
        let x = pool(n, d, 9);
        let tokens = Tokens::new(&x, n, d).unwrap();
        let req = Request::new(tokens, Method::DivPrune, crate::Budget::Count(5)).unwrap();
        let plan = plan(&req, 2, crate::cpu::DEFAULT_DENSE_LIMIT, true).unwrap();
        let parts: Vec<Part> = plan
            .shares
            .iter()
            .map(|r| part(&tokens, plan.policy, plan.block, r.clone(), plan.keep_tiles).0)
            .collect();
        let mut given = join_local(&plan, &tokens, &parts, 0).unwrap();
        let want = crate::Pruner::cpu().prune_blocking(&req).unwrap();
        given.nn.fill(0.5);
        given.nn[123] = -0.5; // farthest from its neighbour: the seed
        let got = with_given(given, || crate::Pruner::cpu().prune_blocking(&req).unwrap());
        assert_eq!(got.order[0], 123);
        assert_ne!(want.order[0], 123);
        // Handed over for one call only.
        let again = crate::Pruner::cpu().prune_blocking(&req).unwrap();
        assert_eq!(again.order, want.order);
    }

    #[test]
    fn plan_splits_only_what_pays_unless_forced() {
        let imp = vec![1.0f32; 4608];
        let x = pool(576, 1024, 1);
        let t = Tokens::new(&x, 576, 1024).unwrap();
        let div = Request::new(t, Method::DivPrune, crate::Budget::Count(58)).unwrap();
        let limit = crate::cpu::DEFAULT_DENSE_LIMIT;
        let p = plan(&div, 2, limit, false).expect("576 x 1024 is split");
        assert_eq!(
            (p.policy, p.keep_tiles, p.shares.len()),
            (NormPolicy::DivPrune, true, 2)
        );
        assert_eq!(plan(&div, 1, limit, true), None, "one thread");
        // Streaming (tiles over the dense limit): only the maxima are shared.
        assert!(!plan(&div, 2, 1024, false).unwrap().keep_tiles);
        let small = pool(64, 16, 2);
        let s = Tokens::new(&small, 64, 16).unwrap();
        let tiny = Request::new(s, Method::DivPrune, crate::Budget::Count(6)).unwrap();
        assert_eq!(plan(&tiny, 2, limit, false), None, "too small to pay");
        assert!(plan(&tiny, 2, limit, true).is_some());
        for (budget, method) in [
            (crate::Budget::KeepRatio(0.0), Method::DivPrune),
            (crate::Budget::Count(576), Method::DivPrune),
            (crate::Budget::Count(58), Method::Uniform),
        ] {
            let r = Request::new(t, method, budget).unwrap();
            assert_eq!(plan(&r, 2, limit, true), None, "{budget:?}");
        }
        // IDPruner: the Gram only where it beats the passes: not for K = 2 (one pass), nor for
        // K = 58 on 2 threads (57 passes), but for K = 300 (299 passes).
        let k58 = Request::new(
            t,
            Method::IdPruner(crate::IdPruner::new(&imp[..576])),
            crate::Budget::Count(58),
        )
        .unwrap();
        assert_eq!(plan(&k58, 2, limit, false), None);
        assert!(
            plan(&k58, 8, limit, false).is_some(),
            "8 threads: 36 < 57 x 1.6"
        );
        let one = Request::new(
            t,
            Method::IdPruner(crate::IdPruner::new(&imp[..576])),
            crate::Budget::Count(2),
        )
        .unwrap();
        assert_eq!(
            plan(&one, 2, limit, false),
            None,
            "one pass is cheaper than the Gram"
        );
        let many = Request::new(
            t,
            Method::IdPruner(crate::IdPruner::new(&imp[..576])),
            crate::Budget::Count(300),
        )
        .unwrap();
        assert!(plan(&many, 2, limit, false).is_some_and(|p| p.keep_tiles));
    }
}
