//! The greedy selectors (SPEC "DivPrune", "IDPruner") and their argmax: CPU twin of
//! `shaders/select.wgsl` (dense path: all picks in one dispatch) and of `shaders/stream.wgsl`
//! (streaming path: one similarity row per pick, [`Rows::Stream`] here).

use super::matmul::similarity_rows;
use super::normalize::{normalize_rows, NormPolicy};
use super::similarity::{nearest_similarity, Tiles};
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
        match self {
            Rows::Tiles(t) => t.row(p, out),
            Rows::Stream { u, d } => similarity_rows(u, *d, &[p], out),
        }
    }
}

/// DivPrune: seed = token farthest from its nearest neighbour; then repeatedly the unchosen
/// token farthest from the kept set. `dense_limit` caps the bytes the stored tiles may take.
pub(crate) fn divprune(tokens: &Tokens, k: usize, dense_limit: usize) -> Picks {
    let (n, d) = (tokens.n(), tokens.d());
    let (u, zero_rows) = normalize_rows(tokens, NormPolicy::DivPrune);
    let mut picks = Picks {
        order: Vec::with_capacity(k),
        scores: Vec::with_capacity(k),
        zero_rows,
        dpp: None,
    };
    if k == 0 {
        return picks;
    }
    let dense = Tiles::bytes(n) <= dense_limit as u64;
    let (nn, tiles) = nearest_similarity(&u, n, d, dense);
    let rows = match tiles {
        Some(t) => Rows::Tiles(t),
        None => Rows::Stream { u: &u, d },
    };
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
    let (v, zero_rows) = normalize_rows(tokens, NormPolicy::IdPruner);
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
        similarity_rows(&v, d, &round, &mut sims);
        for r in sims.chunks(n) {
            for (m, &s) in max_sim.iter_mut().zip(r) {
                *m = m.max(s);
            }
        }
    }
    picks
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
}
