//! The greedy selectors (SPEC "DivPrune", "IDPruner") and their argmax: CPU twin of
//! `shaders/select.wgsl` (dense path: all picks in one dispatch) and of `shaders/stream.wgsl`
//! (streaming path: one similarity row per pick, [`Rows::Stream`] here).

use super::matmul::similarity_rows;
use super::normalize::{normalize_rows, NormPolicy};
use super::similarity::{nearest_similarity, nearest_similarity_of, Tiles};
use super::split::{self, Given};
use crate::select::{Mmr, Picks};
use crate::tokens::Tokens;

/// The argmax every selector uses: the highest score among tokens not yet chosen, the lowest
/// index on ties (`a.score > b.score || (a.score == b.score && a.index < b.index)`).
pub(crate) fn argmax_unchosen(scores: &[f32], chosen: &[bool]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, (&s, &c)) in scores.iter().zip(chosen).enumerate() {
        if !c && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best
}

/// Where greedy steps get their similarity rows from.
enum Rows<'a> {
    /// Stored tiles (dense path).
    Tiles(Tiles),
    /// Recomputed from the normalised tokens, one GEMV per pick (streaming path).
    Stream { u: &'a [f32], d: usize },
}

impl Rows<'_> {
    fn row(&self, p: usize, out: &mut [f32]) {
        self.rows(&[p], out);
    }

    /// The rows of several picks, one after another in `out`.
    fn rows(&self, picks: &[usize], out: &mut [f32]) {
        match self {
            Rows::Tiles(t) => {
                let n = out.len() / picks.len();
                for (&p, row) in picks.iter().zip(out.chunks_mut(n)) {
                    t.row(p, row);
                }
            }
            Rows::Stream { u, d } => similarity_rows(u, *d, picks, out),
        }
    }
}

/// DivPrune: seed = token farthest from its nearest neighbour; then repeatedly the unchosen
/// token farthest from the kept set. `dense_limit` caps the bytes the stored tiles may take.
pub(crate) fn divprune(tokens: &Tokens, k: usize, dense_limit: usize) -> Picks {
    let (n, d) = (tokens.n(), tokens.d());
    let dense = Tiles::bytes(n) <= dense_limit as u64;
    // A similarity computed by other instances (the threaded wasm engine), if one was handed
    // over for this pool: the same values this function would compute.
    let given = (k > 0)
        .then(|| split::take(tokens, NormPolicy::DivPrune))
        .flatten();
    let normalized;
    let (nn, rows, zero_rows) = match given {
        Some(Given {
            nn,
            tiles: Some(tiles),
            zero_rows,
            ..
        }) => (nn, Rows::Tiles(tiles), zero_rows),
        given => {
            // With the packed kernel the dense path normalises the rows straight into its
            // operands.
            match (k > 0 && dense && given.is_none())
                .then(|| nearest_similarity_of(tokens, NormPolicy::DivPrune))
                .flatten()
            {
                Some((nn, tiles, zero_rows)) => (nn, Rows::Tiles(tiles), zero_rows),
                None => {
                    normalized = normalize_rows(tokens, NormPolicy::DivPrune);
                    let (u, zero_rows) = (&normalized.0, normalized.1);
                    let (nn, tiles) = match (k, given) {
                        (0, _) => (Vec::new(), None),
                        (_, Some(g)) => (g.nn, None),
                        _ => nearest_similarity(u, n, d, dense),
                    };
                    let rows = match tiles {
                        Some(t) => Rows::Tiles(t),
                        None => Rows::Stream { u, d },
                    };
                    (nn, rows, zero_rows)
                }
            }
        }
    };
    let mut picks = Picks {
        order: Vec::with_capacity(k),
        scores: Vec::with_capacity(k),
        zero_rows,
        dpp: None,
    };
    if k == 0 {
        return picks;
    }
    // Seed: distance to the nearest other token, d = 1 - s, in f32 as upstream.
    let seed_dist: Vec<f32> = nn.iter().map(|&s| 1.0 - s).collect();
    let mut chosen = vec![false; n];
    let (seed, score) = argmax_unchosen(&seed_dist, &chosen).expect("n >= 1");
    let mut min_dist = vec![0.0f32; n];
    let mut row = vec![0.0f32; n];
    let mut pick = (seed, score);
    loop {
        let (p, s) = pick;
        chosen[p] = true;
        picks.order.push(p as u32);
        picks.scores.push(s);
        if picks.order.len() == k {
            return picks;
        }
        rows.row(p, &mut row);
        if picks.order.len() == 1 {
            for (m, &r) in min_dist.iter_mut().zip(&row) {
                *m = 1.0 - r;
            }
        } else {
            for (m, &r) in min_dist.iter_mut().zip(&row) {
                *m = m.min(1.0 - r);
            }
        }
        pick = argmax_unchosen(&min_dist, &chosen).expect("k <= n");
    }
}

/// IDPruner: rounds of `parallel_k` picks by MMR score
/// `lambda * imp - (1 - lambda) * maxsim`; the first round by normalised importance alone.
pub(crate) fn idpruner(tokens: &Tokens, k: usize, params: &Mmr) -> Picks {
    let (n, d) = (tokens.n(), tokens.d());
    // The Gram computed by other instances (the threaded wasm engine), if handed over.
    if let Some(Given {
        tiles: Some(tiles),
        zero_rows,
        ..
    }) = split::take(tokens, NormPolicy::IdPruner)
    {
        return mmr(n, k, params, Rows::Tiles(tiles), zero_rows);
    }
    // Rounds that update maxsim: all but the last.
    let passes = k.div_ceil(params.parallel_k.max(1)).saturating_sub(1);
    // The dense Gram when cheaper than the GEMV passes (and within the default tile budget).
    let gram =
        gram_is_cheaper(n, d, passes) && Tiles::bytes(n) <= super::DEFAULT_DENSE_LIMIT as u64;
    idpruner_on(tokens, k, params, gram)
}

/// [`idpruner`] with the similarity rows from the dense Gram (`gram`, where the packed kernel
/// exists) or from one GEMV per round.
pub(super) fn idpruner_on(tokens: &Tokens, k: usize, params: &Mmr, gram: bool) -> Picks {
    let (n, d) = (tokens.n(), tokens.d());
    let normalized;
    let (rows, zero_rows) = match gram
        .then(|| nearest_similarity_of(tokens, NormPolicy::IdPruner))
        .flatten()
    {
        Some((_, tiles, zero_rows)) => (Rows::Tiles(tiles), zero_rows),
        None => {
            normalized = normalize_rows(tokens, NormPolicy::IdPruner);
            (
                Rows::Stream {
                    u: &normalized.0,
                    d,
                },
                normalized.1,
            )
        }
    };
    mmr(n, k, params, rows, zero_rows)
}

/// IDPruner's rounds with the similarity rows from `rows`.
fn mmr(n: usize, k: usize, params: &Mmr, rows: Rows, zero_rows: usize) -> Picks {
    let imp = &params.imp;
    let (lam, one_minus) = (params.lambda, params.one_minus);
    let mut picks = Picks {
        order: Vec::with_capacity(k),
        scores: Vec::with_capacity(k),
        zero_rows,
        dpp: None,
    };
    let mut chosen = vec![false; n];
    let mut max_sim = vec![-2.0f32; n];
    let mut score = imp.clone();
    let mut sims = Vec::new();
    while picks.order.len() < k {
        let step = params.parallel_k.min(k - picks.order.len());
        if !picks.order.is_empty() {
            for ((s, &i), &m) in score.iter_mut().zip(imp).zip(&max_sim) {
                *s = lam * i - one_minus * m;
            }
        }
        let round: Vec<usize> = (0..step)
            .map(|_| {
                let (p, s) = argmax_unchosen(&score, &chosen).expect("k <= n");
                chosen[p] = true;
                picks.order.push(p as u32);
                picks.scores.push(s);
                p
            })
            .collect();
        if picks.order.len() == k {
            break;
        }
        sims.resize(step * n, 0.0);
        rows.rows(&round, &mut sims);
        for r in sims.chunks(n) {
            for (m, &s) in max_sim.iter_mut().zip(r) {
                *m = m.max(s);
            }
        }
    }
    picks
}

/// Whether the dense Gram (`N^2 D / 2` multiply-adds at GEMM speed, then one row read per
/// pick) costs less than `passes` passes over the tokens (`N D` multiply-adds each at GEMV
/// speed, bound by memory). Only where the packed SYRK kernel exists.
fn gram_is_cheaper(n: usize, d: usize, passes: usize) -> bool {
    // What a multiply-add costs in a GEMV pass, in SYRK multiply-adds, measured on the 2-core
    // Zen 3 of BENCHMARKS.md: ~4.5 while the tokens fit in L2 (576 x 1024, 2.4 MB), ~9 once
    // they stream from L3 or memory (4608 x 1024, 19 MB).
    let gemv_cost = if n * d * 4 <= 4 << 20 { 4.5 } else { 9.0 };
    super::matmul::packed::Isa::detect().is_some() && (n as f64 / 2.0) < passes as f64 * gemv_cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_lowest_index_on_ties_and_skips_chosen() {
        let s = [1.0, 3.0, 3.0, 2.0];
        assert_eq!(argmax_unchosen(&s, &[false; 4]), Some((1, 3.0)));
        assert_eq!(
            argmax_unchosen(&s, &[false, true, false, false]),
            Some((2, 3.0))
        );
        assert_eq!(argmax_unchosen(&s, &[true; 4]), None);
        assert_eq!(argmax_unchosen(&[-0.0, 0.0], &[false; 2]), Some((0, -0.0)));
    }

    #[test]
    fn idpruner_gram_and_gemv_paths_agree() {
        // 1100 x 1024 floats (4.5 MB) with K = 110: the Gram is the cheaper path.
        let (n, d, k) = (1100, 1024, 110);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / (1 << 24) as f32 - 0.5)
            .collect();
        let w: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32).collect();
        let tokens = Tokens::new(&x, n, d).unwrap();
        let passes = k - 1;
        let has_kernel = super::super::matmul::packed::Isa::detect().is_some();
        assert_eq!(gram_is_cheaper(n, d, passes), has_kernel);
        assert!(
            !gram_is_cheaper(576, 1024, 57),
            "576 x 1024, K = 58 stays on GEMVs"
        );
        for parallel_k in [1, 4] {
            let params = Mmr::new(&crate::IdPruner::new(&w).parallel_k(parallel_k), k);
            let gram = idpruner_on(&tokens, k, &params, true);
            let gemv = idpruner_on(&tokens, k, &params, false);
            assert_eq!(gram.order, gemv.order, "parallel_k {parallel_k}");
            for (a, b) in gram.scores.iter().zip(&gemv.scores) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }
}
