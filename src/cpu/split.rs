//! The similarity stage split across instances that share no memory: the wasm build's Web
//! Workers, each running its own single-threaded module (stable Rust has no wasm32 std built
//! with atomics, so the instances cannot share one linear memory).
//!
//! [`plan`] decides whether a call is split and cuts the pool into tiles. Every instance (the
//! calling one and each worker) then runs [`work`]: it normalises the row blocks it takes from
//! one counter they all share (a SharedArrayBuffer in the browser) and publishes them, copies
//! the blocks the others published ([`Exchange`]), then takes tiles one at a time from a second
//! counter until none is left, so a thread that starts late or runs on a busier core simply
//! takes fewer. Each tile is computed by the single-threaded engine's own kernel from the same
//! normalised rows (a block normalised twice is the same bits); the calling instance keeps its
//! tiles in place ([`Mine`]), [`join`]s the others' (copied from shared memory) and runs the
//! greedy loop on them, handed over for one call by [`with_given`]. Maxima do not
//! depend on the order they are taken in, so the selection is bit for bit the single-threaded
//! one. The greedy loop itself (K dependent steps) stays in one instance.
//!
//! What is split: DivPrune's nearest-neighbour seed (all tiles, each folded into row and
//! column maxima) and, when the tiles fit the dense limit, the tiles its greedy steps read;
//! IDPruner's dense Gram where that is cheaper than its per-round passes on this many threads.

// Only the wasm bindings run the split; natively its tests do.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::ops::Range;
use std::sync::Mutex;

use super::matmul::workspace;
use super::normalize::{normalize_rows_into, zero_row_count, NormPolicy};
use super::similarity::{block_for, fold_claimed, pair_count, Tiles};
use crate::method::Method;
use crate::tokens::Tokens;
use crate::Request;

/// Below this many multiply-adds in the similarity tiles (`N^2 D / 2`) a split does not pay
/// for itself: about 1 ms of a split call runs in one thread and 0.65 ms more is the split's own
/// cost (BENCHMARKS.md, "Threaded wasm CPU engine"). Measured in Node.js on 2 cores, 2 threads
/// against one, median pair ratios of four runs of 40 pairs: DivPrune 576 x 256 (42 M) 1.05-1.20x
/// (within this machine's noise: not split), 576 x 512 (85 M) 1.00-1.68x, 576 x 768 (127 M)
/// 0.95-1.64x, 576 x 1024 (170 M) 1.39-1.77x, the low ends on a busy machine.
pub(crate) const MIN_SPLIT_MADDS: u64 = 1 << 26;

/// How many tile multiply-adds one multiply-add of an IDPruner pass costs in the wasm build
/// (a pass is one row against all tokens), fitted to where the Gram split starts to pay:
/// IDPruner 576 x 1024 in Node.js, one thread against the Gram on 2 threads (forced), same run,
/// median pair ratios of two runs: 0.84-0.90x at 139 passes, 1.07-1.09x at 179, 1.37-1.38x at
/// 239: break-even near 165 passes (`576 / 2 / 2 = 144 = 165 x 0.87`); 0.9 splits from 161.
const WASM_PASS_COST: f64 = 0.9;

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
    /// Whether the tiles are kept (DivPrune's dense path, IDPruner's Gram) or only folded into
    /// the nearest-neighbour maxima (DivPrune's streaming path).
    pub keep_tiles: bool,
    /// Instances taking tiles: the calling one and its workers.
    pub threads: usize,
}

impl Plan {
    /// Number of tiles.
    pub(crate) fn tiles(&self) -> usize {
        pair_count(self.n, self.block)
    }

    /// Values in one tile.
    pub(crate) fn tile_len(&self) -> usize {
        self.block * self.block
    }

    /// Row blocks (of `block` rows, the last one shorter), each normalised by one instance.
    pub(crate) fn blocks(&self) -> usize {
        self.n.div_ceil(self.block)
    }
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
        threads,
    })
}

/// The tile side of a split: the engine's own ([`block_for`]); in the wasm build (tiles are
/// plain GEMM calls there, whose results do not depend on the tiling) halved down to 32 rows
/// until there are at least 16 tiles per thread, so that the threads finish close together
/// (the wasm engine's own tiles are already that small for the pools worth splitting: 576
/// tokens are 171 tiles of 32 rows).
fn split_block(n: usize, threads: usize) -> usize {
    let mut block = block_for(n);
    if cfg!(target_arch = "wasm32") {
        while block > 32 && pair_count(n, block) < 16 * threads {
            block /= 2;
        }
    }
    block
}

/// What the instances of a split share besides the tiles they write: two counters, and the
/// normalised rows. Each row block (the tiles' `block` rows) is normalised by the one instance
/// that claims it and copied to the others, rather than every instance normalising the whole
/// pool (0.9 ms of the 576 x 1024 pool in the wasm build, on every thread).
pub(crate) trait Exchange {
    /// The next tile number from the counter every instance takes tiles from (`None`, or a
    /// number past the last tile, when none is left or the counter cannot be read).
    fn next_tile(&mut self) -> Option<usize>;
    /// The next row block from the counter every instance takes blocks to normalise from.
    fn next_block(&mut self) -> Option<usize>;
    /// The raw rows `rows` of the pool (`rows.len() x d` values).
    fn raw(&mut self, rows: Range<usize>) -> &[f32];
    /// Hands the normalised rows of block `b` to the other instances.
    fn publish(&mut self, b: usize, rows: &[f32]);
    /// Copies block `b`'s normalised rows into `out` if another instance has published them;
    /// false if not (yet): this instance then normalises them itself. No instance ever waits
    /// for another.
    fn fetch(&mut self, b: usize, out: &mut [f32]) -> bool;
}

/// One instance's work on a split stage: the row blocks it claims normalised by the plan's
/// policy and published, the others fetched (or normalised here when not yet published), then
/// tiles taken with [`Exchange::next_tile`] until none is left, each folded into the maxima
/// and, when the plan keeps tiles, handed to `put(tile number, tile)`. Returns the maxima of
/// the tiles taken here (`-inf` elsewhere). An instance that finds every tile taken fetches
/// no rows (it still normalises and publishes the blocks it takes).
pub(crate) fn work(
    plan: &Plan,
    ex: &mut impl Exchange,
    mut put: impl FnMut(usize, &[f32]),
) -> Vec<f32> {
    let (n, d, block) = (plan.n, plan.d, plan.block);
    let blocks = plan.blocks();
    let rows = |b: usize| b * block..((b + 1) * block).min(n);
    let mut u = workspace::take(n * d);
    let normalise = |ex: &mut _, b: usize, u: &mut [f32]| {
        let r = rows(b);
        let x = Exchange::raw(ex, r.clone());
        normalize_rows_into(x, &mut u[r.start * d..r.end * d], d, plan.policy.eps());
    };
    let mut have = vec![false; blocks];
    while let Some(b) = ex.next_block().filter(|&b| b < blocks) {
        normalise(&mut *ex, b, &mut u);
        let r = rows(b);
        ex.publish(b, &u[r.start * d..r.end * d]);
        have[b] = true;
    }
    let first = ex.next_tile().filter(|&t| t < plan.tiles());
    let nn = match first {
        // Every tile already taken: this instance's rows are not needed.
        None => vec![f32::NEG_INFINITY; n],
        Some(first) => {
            // In block order: the blocks claimed last, most likely still being normalised
            // elsewhere, are asked for last.
            for b in (0..blocks).filter(|&b| !have[b]) {
                let r = rows(b);
                if !ex.fetch(b, &mut u[r.start * d..r.end * d]) {
                    normalise(&mut *ex, b, &mut u);
                }
            }
            let keep = plan.keep_tiles;
            let mut first = Some(first);
            let next = || first.take().or_else(|| ex.next_tile());
            fold_claimed(&u, n, d, block, next, |t, tile| {
                if keep {
                    put(t, tile)
                }
            })
        }
    };
    workspace::give(u);
    nn
}

/// The calling instance's part of a split stage ([`Mine::work`]): its maxima, and every tile
/// it took, already in place in the buffer the greedy loop will read.
pub(crate) struct Mine {
    nn: Vec<f32>,
    /// All tiles in tile order (those of other instances still to be filled in by [`join`]);
    /// empty when the plan keeps no tiles.
    kept: workspace::Buffer,
    /// Which tiles this instance computed.
    mine: Vec<bool>,
    zero_rows: usize,
}

impl Drop for Mine {
    fn drop(&mut self) {
        workspace::give(std::mem::take(&mut self.kept));
    }
}

impl Mine {
    /// [`work`] in the calling instance (`tokens`: the pool, read by `ex`): its tiles straight
    /// into the buffer they are read from.
    pub(crate) fn work(tokens: &Tokens, plan: &Plan, ex: &mut impl Exchange) -> Mine {
        let size = plan.tile_len();
        let mut kept = match plan.keep_tiles {
            true => workspace::take(plan.tiles() * size),
            false => workspace::Buffer::default(),
        };
        let mut mine = vec![false; plan.tiles()];
        let nn = work(plan, ex, |t, tile| {
            kept[t * size..(t + 1) * size].copy_from_slice(&tile[..size]);
            mine[t] = true;
        });
        if !plan.keep_tiles {
            mine.fill(true); // nothing to fill in
        }
        Mine {
            nn,
            kept,
            mine,
            zero_rows: zero_row_count(tokens),
        }
    }
}

/// Joins a split stage: this instance's part (`mine`) and the other instances' maxima
/// (`others`), and, when the plan keeps tiles, every tile `mine` lacks, copied in by
/// `fill(tiles, out)` (a run of consecutive tile numbers, and where they go). `None` when the
/// parts do not fit the plan (wrong lengths, `fill` returning false).
pub(crate) fn join(
    plan: &Plan,
    tokens: &Tokens,
    mut mine: Mine,
    others: &[&[f32]],
    mut fill: impl FnMut(std::ops::Range<usize>, &mut [f32]) -> bool,
) -> Option<Given> {
    let n = plan.n;
    if (tokens.n(), tokens.d()) != (n, plan.d) || others.iter().any(|nn| nn.len() != n) {
        return None;
    }
    let mut nn = std::mem::take(&mut mine.nn);
    for part in others {
        for (m, &s) in nn.iter_mut().zip(*part) {
            *m = m.max(s);
        }
    }
    let tiles = match plan.keep_tiles {
        false => None,
        true => {
            let size = plan.tile_len();
            let mut t = 0;
            while t < mine.mine.len() {
                let start = t;
                while t < mine.mine.len() && !mine.mine[t] {
                    t += 1;
                }
                if t > start && !fill(start..t, &mut mine.kept[start * size..t * size]) {
                    return None;
                }
                t += 1;
            }
            let kept = std::mem::take(&mut mine.kept);
            Some(Tiles::from_kept(n, plan.block, kept))
        }
    };
    Some(Given {
        key: key(tokens, plan.policy),
        nn,
        tiles,
        zero_rows: mine.zero_rows,
    })
}

/// The similarity of one pool, computed elsewhere, waiting for the greedy loop.
pub(crate) struct Given {
    /// Which pool and normalisation it is for: the tokens' address and length.
    key: (usize, usize, NormPolicy),
    /// Nearest-neighbour maxima of every token.
    pub nn: Vec<f32>,
    /// The tiles, when the plan kept them.
    pub tiles: Option<Tiles>,
    /// Zero rows met normalising.
    pub zero_rows: usize,
}

fn key(tokens: &Tokens, policy: NormPolicy) -> (usize, usize, NormPolicy) {
    (tokens.data().as_ptr() as usize, tokens.data().len(), policy)
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

    fn pool(n: usize, d: usize, seed: u32) -> Vec<f32> {
        (0..n * d)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2654435761);
                (h >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Which instance takes tile (or row block) `t` of `threads`: `owner(t, threads) % threads`.
    type Owner = fn(usize, usize) -> usize;

    /// The row blocks published so far, as the instances of a test share them.
    type Board = Mutex<Vec<Option<Vec<f32>>>>;

    fn board(plan: &Plan) -> Board {
        Mutex::new(vec![None; plan.blocks()])
    }

    /// An instance of a test split: raw rows from its own copy of the pool, tile and block
    /// numbers from `tiles()` and `blocks()`, published blocks on `board` (`hide`: it publishes
    /// none, so the others normalise its blocks themselves).
    struct TestEx<'a, T, B> {
        x: &'a [f32],
        d: usize,
        tiles: T,
        blocks: B,
        board: &'a Board,
        hide: bool,
    }

    impl<T, B> Exchange for TestEx<'_, T, B>
    where
        T: FnMut() -> Option<usize>,
        B: FnMut() -> Option<usize>,
    {
        fn next_tile(&mut self) -> Option<usize> {
            (self.tiles)()
        }
        fn next_block(&mut self) -> Option<usize> {
            (self.blocks)()
        }
        fn raw(&mut self, rows: Range<usize>) -> &[f32] {
            &self.x[rows.start * self.d..rows.end * self.d]
        }
        fn publish(&mut self, b: usize, rows: &[f32]) {
            if !self.hide {
                self.board.lock().unwrap()[b] = Some(rows.to_vec());
            }
        }
        fn fetch(&mut self, b: usize, out: &mut [f32]) -> bool {
            let board = self.board.lock().unwrap();
            board[b].as_ref().map(|r| out.copy_from_slice(r)).is_some()
        }
    }

    /// An instance that normalises every row block itself and takes the tiles `tiles()` hands out.
    fn solo<'a>(
        x: &'a [f32],
        d: usize,
        board: &'a Board,
        tiles: impl FnMut() -> Option<usize> + 'a,
    ) -> impl Exchange + 'a {
        let mut blocks = 0..;
        TestEx {
            x,
            d,
            tiles,
            blocks: move || blocks.next(),
            board,
            hide: false,
        }
    }

    /// Runs `req` with its similarity split across `threads` instances, each from its own
    /// copy of the tokens (as a worker gets them): instance `owner(t, threads) % threads` takes tile `t`
    /// (instance 0 is the calling one), the others write their tiles where the workers do, into
    /// one shared region, and their maxima apart.
    fn split_run(
        x: &[f32],
        n: usize,
        d: usize,
        method: Method,
        k: usize,
        threads: usize,
        owner: Owner,
    ) -> crate::Selection {
        let tokens = Tokens::new(x, n, d).unwrap();
        let req = Request::new(tokens, method, crate::Budget::Count(k)).unwrap();
        let plan = plan(&req, threads, crate::cpu::DEFAULT_DENSE_LIMIT, true).expect("a plan");
        assert_eq!(plan.threads, threads);
        let (total, size) = (plan.tiles(), plan.tile_len());
        let takes = |i: usize| {
            let mut list = (0..total).filter(move |&t| owner(t, threads) % threads == i);
            move || list.next()
        };
        let mut shared = vec![f32::NAN; total * size];
        let mut nns = Vec::new();
        // Row blocks claimed as the tiles are; the workers run first, so they never find the
        // caller's blocks published and normalise those themselves; with 3 threads or more
        // the last worker publishes nothing either.
        let blocks = |i: usize| {
            let mut list = (0..plan.blocks()).filter(move |&b| owner(b, threads) % threads == i);
            move || list.next()
        };
        let board = board(&plan);
        for i in 1..threads {
            let copy = x.to_vec();
            let mut ex = TestEx {
                x: &copy,
                d,
                tiles: takes(i),
                blocks: blocks(i),
                board: &board,
                hide: threads > 2 && i == threads - 1,
            };
            let nn = work(&plan, &mut ex, |t, tile| {
                shared[t * size..(t + 1) * size].copy_from_slice(&tile[..size])
            });
            assert_eq!(nn.len(), n);
            nns.push(nn);
        }
        let mut ex = TestEx {
            x,
            d,
            tiles: takes(0),
            blocks: blocks(0),
            board: &board,
            hide: false,
        };
        let mine = Mine::work(&tokens, &plan, &mut ex);
        let others: Vec<&[f32]> = nns.iter().map(|v| &v[..]).collect();
        let fill = |r: std::ops::Range<usize>, out: &mut [f32]| {
            out.copy_from_slice(&shared[r.start * size..r.end * size]);
            true
        };
        let given = join(&plan, &tokens, mine, &others, fill).expect("parts fit");
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
                // Tiles taken in turn, in runs, by one instance only (the caller or a
                // worker), and scattered.
                let owners: [(&str, Owner); 5] = [
                    ("in turn", |t, _| t),
                    ("runs of 3", |t, _| t / 3),
                    ("caller alone", |_, _| 0),
                    ("workers alone", |t, threads| 1 + t % (threads - 1)),
                    ("scattered", |t, _| (t * 2654435761) >> 7),
                ];
                for (threads, (how, owner)) in [2, 3, 4, 7]
                    .into_iter()
                    .flat_map(|t| owners.map(|o| (t, o)))
                {
                    let got = split_run(&x, n, d, method, k, threads, owner);
                    let what = format!("{} n={n} t={threads} {how}", method.name());
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
        let mut all = 0..plan.tiles();
        let board = board(&plan);
        let mine = Mine::work(&tokens, &plan, &mut solo(&x, d, &board, || all.next()));
        let mut given = join(&plan, &tokens, mine, &[], |_, _| false).unwrap();
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
            (p.policy, p.keep_tiles, p.threads),
            (NormPolicy::DivPrune, true, 2)
        );
        assert_eq!(plan(&div, 1, limit, true), None, "one thread");
        // Streaming (tiles over the dense limit): only the maxima are shared.
        assert!(!plan(&div, 2, 1024, false).unwrap().keep_tiles);
        let small = pool(64, 16, 2);
        let s = Tokens::new(&small, 64, 16).unwrap();
        let tiny = Request::new(s, Method::DivPrune, crate::Budget::Count(6)).unwrap();
        assert_eq!(plan(&tiny, 2, limit, false), None, "too small to pay");
        // The threshold (2^26 multiply-adds): 576 x 512 (85 M) is split, 576 x 256 (42 M) not.
        for (d, split) in [(512, true), (256, false)] {
            let x = pool(576, d, 4);
            let t = Tokens::new(&x, 576, d).unwrap();
            let r = Request::new(t, Method::DivPrune, crate::Budget::Count(58)).unwrap();
            assert_eq!(plan(&r, 2, limit, false).is_some(), split, "576 x {d}");
        }
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
            "8 threads: 36 < 57 x 0.9"
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

    #[test]
    fn threads_sharing_one_counter_take_every_tile_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let (n, d, k) = (700, 24, 70);
        let x = pool(n, d, 5);
        let tokens = Tokens::new(&x, n, d).unwrap();
        let req = Request::new(tokens, Method::DivPrune, crate::Budget::Count(k)).unwrap();
        let want = crate::Pruner::cpu().prune_blocking(&req).unwrap();
        let plan = plan(&req, 4, crate::cpu::DEFAULT_DENSE_LIMIT, true).unwrap();
        let (total, size) = (plan.tiles(), plan.tile_len());
        let (counter, started) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let next = || Some(counter.fetch_add(1, Ordering::Relaxed));
        let blocks = AtomicUsize::new(0);
        let next_block = || Some(blocks.fetch_add(1, Ordering::Relaxed));
        let board = board(&plan);
        // Each worker takes its first tile before the caller takes any.
        let first = std::sync::atomic::AtomicBool::new(true);
        let wait_then_next = || {
            while first.load(Ordering::Relaxed)
                && started.load(Ordering::Acquire) < plan.threads - 1
            {
                std::thread::yield_now();
            }
            first.store(false, Ordering::Relaxed);
            next()
        };
        let shared = Mutex::new((vec![f32::NAN; total * size], vec![0usize; total]));
        let (mine, nns) = std::thread::scope(|s| {
            let workers: Vec<_> = (1..plan.threads)
                .map(|_| {
                    s.spawn(|| {
                        let copy = x.clone();
                        let mut once = true;
                        let tiles = || {
                            let t = next();
                            if std::mem::take(&mut once) {
                                started.fetch_add(1, Ordering::Release);
                            }
                            t
                        };
                        let mut ex = TestEx {
                            x: &copy,
                            d,
                            tiles,
                            blocks: next_block,
                            board: &board,
                            hide: false,
                        };
                        work(&plan, &mut ex, |t, tile| {
                            let mut g = shared.lock().unwrap();
                            g.0[t * size..(t + 1) * size].copy_from_slice(&tile[..size]);
                            g.1[t] += 1;
                        })
                    })
                })
                .collect();
            let mut ex = TestEx {
                x: &x,
                d,
                tiles: wait_then_next,
                blocks: next_block,
                board: &board,
                hide: false,
            };
            let mine = Mine::work(&tokens, &plan, &mut ex);
            let nns: Vec<Vec<f32>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            (mine, nns)
        });
        let (tiles, taken) = shared.into_inner().unwrap();
        for (t, &c) in taken.iter().enumerate() {
            assert_eq!(c + mine.mine[t] as usize, 1, "tile {t} taken {c} + mine");
        }
        let others: Vec<&[f32]> = nns.iter().map(|v| &v[..]).collect();
        let given = join(&plan, &tokens, mine, &others, |r, out| {
            out.copy_from_slice(&tiles[r.start * size..r.end * size]);
            true
        })
        .unwrap();
        let got = with_given(given, || crate::Pruner::cpu().prune_blocking(&req).unwrap());
        assert_eq!((got.order, got.scores), (want.order, want.scores));
    }

    #[test]
    fn parts_that_do_not_fit_the_plan_are_refused() {
        let (n, d) = (300, 16);
        let x = pool(n, d, 3);
        let tokens = Tokens::new(&x, n, d).unwrap();
        let req = Request::new(tokens, Method::DivPrune, crate::Budget::Count(5)).unwrap();
        let plan = plan(&req, 2, crate::cpu::DEFAULT_DENSE_LIMIT, true).unwrap();
        let half = plan.tiles() / 2;
        let short = vec![0.0; n - 1];
        let board = board(&plan);
        let mut some = 0..half;
        let mine = Mine::work(&tokens, &plan, &mut solo(&x, d, &board, || some.next()));
        assert!(
            join(&plan, &tokens, mine, &[&short], |_, _| true).is_none(),
            "maxima of the wrong length"
        );
        let mut some = 0..half;
        let mine = Mine::work(&tokens, &plan, &mut solo(&x, d, &board, || some.next()));
        let full = vec![0.0; n];
        assert!(
            join(&plan, &tokens, mine, &[&full], |_, _| false).is_none(),
            "tiles that do not fit"
        );
        let mut runs = Vec::new();
        let mut odd = (0..plan.tiles()).filter(|t| t % 2 == 1);
        let mine = Mine::work(&tokens, &plan, &mut solo(&x, d, &board, || odd.next()));
        join(&plan, &tokens, mine, &[&full], |r, _| {
            runs.push(r);
            true
        })
        .unwrap();
        let even: Vec<_> = (0..plan.tiles()).step_by(2).map(|t| t..t + 1).collect();
        assert_eq!(runs, even, "every tile the caller lacks, asked for once");
    }
}
