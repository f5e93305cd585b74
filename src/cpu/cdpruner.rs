//! CDPruner's engine stages (SPEC "CDPruner"): CPU twin of `shaders/dpp.wgsl` (and of
//! `shaders/normalize.wgsl`, method codes CDPRUNER and CDPRUNER_OPENVINO). The select
//! layer prepares each DPP job (`src/select/dpp.rs`: `cdpruner`'s relevance from the
//! embeddings and its joint min-max, the crops and halves, the notes); here, per pool:
//! 1. normalise rows ([`super::rownorm`]): plain norms (`cdpruner`) or `sqrt(sum v^2 + 1e-6)`
//!    (`cdpruner-openvino`);
//! 2. `cdpruner-openvino` only: relevance `a = u . t_hat` ([`relevance_openvino`], a GEMV) and
//!    its min-max ([`relevance_minmax_openvino`]);
//! 3. the greedy MAP ([`dpp_official`], [`dpp_openvino`]): per pick one kernel row (a GEMV of
//!    the pick against every token, [`similarity_rows`], then [`KernelForm::entry`]), one
//!    Cholesky update (`c_i` and `g -= c_i^2`, elementwise over N; the vectors `c_t` live in a
//!    `K x N` buffer) and one argmax over the gains ([`argmax_unchosen`]: the workgroup-argmax
//!    loop of the kernel).

use super::greedy::argmax_unchosen;
use super::matmul::{dot_rows, similarity_rows};
use super::rownorm::{normalize_rows_eps, Eps};
use crate::select::{Dpp, DppForm, DppRelevance, DppReport, Picks};
use crate::tokens::Tokens;

/// The OpenVINO variant's numerical threshold (`Config::numerical_threshold`).
pub(crate) const OV_EPS: f32 = 1e-6;

/// Runs one DPP job on its pool: `k` picks.
pub(crate) fn run(tokens: &Tokens, k: usize, job: &Dpp) -> Picks {
    let (n, d) = (tokens.n(), tokens.d());
    let eps = match job.form {
        DppForm::Official => Eps::Plain,
        DppForm::OpenVino { .. } => Eps::AddSquared(OV_EPS),
    };
    let (u, zero_rows) = normalize_rows_eps(tokens.data(), n, d, eps);
    let (mut picks, constant) = match (&job.relevance, job.form) {
        (DppRelevance::Given(r), DppForm::Official) => (dpp_official(&u, d, r, k), false),
        (DppRelevance::Given(r), DppForm::OpenVino { weight }) => {
            (dpp_openvino(&u, d, r, weight, k), false)
        }
        (DppRelevance::Text(t), form) => {
            let (t_hat, _) = normalize_rows_eps(t, 1, d, Eps::AddSquared(OV_EPS));
            let (r, constant) = relevance_minmax_openvino(&relevance_openvino(&u, &t_hat, d));
            let picks = match form {
                DppForm::OpenVino { weight } => dpp_openvino(&u, d, &r, weight, k),
                DppForm::Official => dpp_official(&u, d, &r, k),
            };
            (picks, constant)
        }
    };
    picks.zero_rows = zero_rows;
    if let Some(rep) = picks.dpp.as_mut() {
        rep.constant_relevance = constant;
    }
    picks
}

/// Stage 2 (`cdpruner-openvino`): `a_i = x_i . t` over rows normalised by
/// `sqrt(sum v^2 + 1e-6)` (`u` holds them; `t_hat` is the text normalised the same way, and
/// negated by the select layer when asked).
pub(crate) fn relevance_openvino(u: &[f32], t_hat: &[f32], d: usize) -> Vec<f32> {
    let n = u.len() / d;
    let mut a = vec![0.0f32; n];
    dot_rows(u, t_hat, d, &mut a, 1);
    a
}

/// Stage 2 (`cdpruner-openvino`): `r_i = (a_i - min a) / (max a - min a + 1e-6)` (epsilon on
/// the range), in f64 where the f32 range overflows. The flag says every `a` was equal
/// (r = 0: the kernel reduces to `(1 - w) S`, as upstream).
pub(crate) fn relevance_minmax_openvino(a: &[f32]) -> (Vec<f32>, bool) {
    let (lo, hi) = min_max(a);
    let range = (hi - lo) + OV_EPS;
    let r = if range.is_finite() {
        a.iter().map(|&x| (x - lo) / range).collect()
    } else {
        let (lo, range) = (lo as f64, (hi as f64 - lo as f64) + OV_EPS as f64);
        a.iter()
            .map(|&x| ((x as f64 - lo) / range) as f32)
            .collect()
    };
    (r, hi == lo)
}

fn min_max(a: &[f32]) -> (f32, f32) {
    a.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// How a kernel entry is formed from a similarity `s = S_ij` and the relevance (in f32, in
/// upstream's order of operations).
#[derive(Debug, Clone, Copy)]
pub(crate) enum KernelForm<'a> {
    /// `cdpruner`: `L_ij = (r_i * S_ij) * r_j`.
    Official { r: &'a [f32] },
    /// `cdpruner-openvino`: `K_ij = S_ij * (1 - w) + ((r_i * S_ij) * r_j) * w`.
    OpenVino {
        r: &'a [f32],
        w: f32,
        one_minus_w: f32,
    },
}

impl KernelForm<'_> {
    /// The kernel entry (i, j) from `s = S_ij`.
    pub(crate) fn entry(&self, i: usize, j: usize, s: f32) -> f32 {
        match *self {
            KernelForm::Official { r } => (r[i] * s) * r[j],
            KernelForm::OpenVino { r, w, one_minus_w } => s * one_minus_w + ((r[i] * s) * r[j]) * w,
        }
    }

    /// The initial gains: the kernel's diagonal.
    fn diagonal(&self, u: &[f32], d: usize) -> Vec<f32> {
        u.chunks(d)
            .enumerate()
            .map(|(i, ui)| self.entry(i, i, ui.iter().map(|v| v * v).sum()))
            .collect()
    }

    /// Kernel row `j` into `row`, from similarity row `j` already in `row`.
    fn apply_row(&self, j: usize, row: &mut [f32]) {
        for (n, v) in row.iter_mut().enumerate() {
            *v = self.entry(j, n, *v);
        }
    }
}

/// The greedy state shared by both variants: gains, chosen mask, Cholesky vectors.
struct State {
    n: usize,
    gain: Vec<f32>,
    chosen: Vec<bool>,
    /// `c_t` for every pick so far, row-major `[picks, N]`.
    c: Vec<f32>,
    row: Vec<f32>,
    picks: Picks,
}

impl State {
    fn new(gain: Vec<f32>, k: usize) -> Self {
        let n = gain.len();
        State {
            n,
            chosen: vec![false; n],
            c: Vec::with_capacity(k.saturating_sub(1) * n),
            row: vec![0.0; n],
            picks: Picks {
                order: Vec::with_capacity(k),
                scores: Vec::with_capacity(k),
                zero_rows: 0,
                dpp: Some(DppReport::default()),
            },
            gain,
        }
    }

    fn pick(&mut self, j: usize, score: f32) {
        self.chosen[j] = true;
        self.picks.order.push(j as u32);
        self.picks.scores.push(score);
    }

    /// Kernel row `j` into `self.row`.
    fn kernel_row(&mut self, u: &[f32], d: usize, form: &KernelForm, j: usize) {
        similarity_rows(u, d, &[j], &mut self.row);
        form.apply_row(j, &mut self.row);
    }
}

/// Stage 3 (`cdpruner`): greedy MAP on `L = diag(r) S diag(r)`, `S = U U^T` (`u`: `[N, d]`
/// normalised rows). `g_j = L_jj`; each step picks `j = argmax g` over unchosen tokens (lowest
/// index on ties), `c_i = (L_j - sum_t c_t[j] c_t) / sqrt(g_j)`, `g -= c_i^2`.
///
/// Rank policy (SPEC, tokenprune's deviation): as soon as the best remaining gain is not
/// finite or not > 0 the DPP stops; the remaining picks are the unchosen tokens of highest
/// `r` (lowest index on ties), scored 0, with a note. K is always exact.
pub(crate) fn dpp_official(u: &[f32], d: usize, r: &[f32], k: usize) -> Picks {
    let form = KernelForm::Official { r };
    let mut st = State::new(form.diagonal(u, d), k);
    let n = st.n;
    let mut acc = vec![0.0f32; n];
    let mut stop = None;
    while st.picks.order.len() < k {
        let (j, g) = argmax_unchosen(&st.gain, &st.chosen).expect("k <= n");
        if !(g.is_finite() && g > 0.0) {
            stop = Some(g);
            break;
        }
        st.pick(j, g);
        if st.picks.order.len() == k {
            break;
        }
        st.kernel_row(u, d, &form, j);
        // acc = sum_t c_t[j] * c_t (upstream's einsum), then c_i = (L_j - acc) / sqrt(g_j).
        acc.fill(0.0);
        for ct in st.c.chunks(n) {
            let coef = ct[j];
            for (a, &v) in acc.iter_mut().zip(ct) {
                *a += coef * v;
            }
        }
        let root = g.sqrt();
        let start = st.c.len();
        st.c.extend(st.row.iter().zip(&acc).map(|(&l, &a)| (l - a) / root));
        for (gn, &e) in st.gain.iter_mut().zip(&st.c[start..]) {
            *gn -= e * e;
        }
    }
    if let Some(g) = stop {
        let done = st.picks.order.len();
        let mut rest: Vec<usize> = (0..n).filter(|&i| !st.chosen[i]).collect();
        rest.sort_by(|&a, &b| r[b].total_cmp(&r[a]).then(a.cmp(&b)));
        for &i in rest.iter().take(k - done) {
            st.pick(i, 0.0);
        }
        if let Some(rep) = st.picks.dpp.as_mut() {
            rep.stopped = Some((done, g));
        }
    }
    st.picks
}

/// Stage 3 (`cdpruner-openvino`): the greedy MAP of OpenVINO GenAI's `FastGreedyDPP` on
/// `K = (1 - w) S + w diag(r) S diag(r)`: `c_i = (K_j - sum_t c_t[j] c_t) * (1 / sqrt(g_j +
/// 1e-6))` with the vectors whose `|c_t[j]| < 1e-6` skipped, `g -= c_i^2` with a NaN gain
/// set to -FLT_MAX; argmax by strict `>` (lowest index on ties). As upstream it never
/// repeats a token; picks made after the gains degenerated are noted.
pub(crate) fn dpp_openvino(u: &[f32], d: usize, r: &[f32], w: f32, k: usize) -> Picks {
    let form = KernelForm::OpenVino {
        r,
        w,
        one_minus_w: 1.0 - w,
    };
    let mut st = State::new(form.diagonal(u, d), k);
    let n = st.n;
    let mut degenerate = 0usize;
    while st.picks.order.len() < k {
        let (j, g) = argmax_unchosen(&st.gain, &st.chosen).expect("k <= n");
        if g.is_nan() || g == -f32::MAX {
            degenerate += 1;
        }
        st.pick(j, g);
        if st.picks.order.len() == k {
            break;
        }
        st.kernel_row(u, d, &form, j);
        let inv_norm = 1.0 / (g + OV_EPS).sqrt();
        let mut e = std::mem::take(&mut st.row);
        for ct in st.c.chunks(n) {
            let coef = ct[j];
            if coef.abs() < OV_EPS {
                continue;
            }
            for (v, &c) in e.iter_mut().zip(ct) {
                *v -= coef * c;
            }
        }
        e.iter_mut().for_each(|v| *v *= inv_norm);
        for (gn, &x) in st.gain.iter_mut().zip(&e) {
            if *gn == f32::NEG_INFINITY {
                continue;
            }
            let next = *gn - x * x;
            *gn = if next.is_nan() { -f32::MAX } else { next };
        }
        st.gain[j] = f32::NEG_INFINITY;
        st.c.extend_from_slice(&e);
        st.row = e;
    }
    if let Some(rep) = st.picks.dpp.as_mut() {
        rep.degenerate = degenerate;
    }
    st.picks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{CdPruner, CdPrunerOpenVino, Relevance, Split};
    use crate::select::dpp::{relevance_from_embeddings, relevance_minmax};
    use crate::{Budget, Method, Pruner, Request, Result};

    /// What the tests look at in a selection.
    #[derive(Debug)]
    struct P {
        order: Vec<u32>,
        scores: Vec<f32>,
        notes: Vec<String>,
    }

    fn prune(f: &[f32], n: usize, d: usize, m: Method, k: usize) -> Result<P> {
        let tokens = Tokens::new(f, n, d)?;
        let sel = Pruner::cpu().prune_blocking(&Request::new(tokens, m, Budget::Count(k))?)?;
        Ok(P {
            order: sel.order,
            scores: sel.scores,
            notes: sel.notes,
        })
    }

    /// The engine stage alone on one pool (K may equal N here: the select layer's K = N
    /// short-cut is not in the way).
    fn run_dpp(
        f: &[f32],
        n: usize,
        d: usize,
        form: DppForm,
        relevance: DppRelevance,
        k: usize,
    ) -> Picks {
        run(&Tokens::new(f, n, d).unwrap(), k, &Dpp { form, relevance })
    }

    /// `cdpruner` through the public API, `crops` crops of `k` picks each.
    fn cdpruner(
        f: &[f32],
        n: usize,
        d: usize,
        rel: Relevance,
        crops: usize,
        k: usize,
    ) -> Result<P> {
        let m = Method::CdPruner(CdPruner {
            relevance: rel,
            crops,
        });
        prune(f, n, d, m, k)
    }

    /// `cdpruner-openvino` through the public API.
    #[allow(clippy::too_many_arguments)]
    fn cdpruner_openvino(
        f: &[f32],
        n: usize,
        d: usize,
        text: &[f32],
        weight: f32,
        negate: bool,
        split: Split,
        k: usize,
    ) -> Result<P> {
        let m = Method::CdPrunerOpenVino(CdPrunerOpenVino {
            text,
            weight: weight as f64,
            split,
            negate,
        });
        prune(f, n, d, m, k)
    }

    /// Tokens on the unit circle at the given angles (D = 2), optionally with a zero row.
    fn circle(angles: &[f32]) -> Vec<f32> {
        angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect()
    }

    fn sorted(order: &[u32]) -> Vec<u32> {
        let mut s = order.to_vec();
        s.sort_unstable();
        s
    }

    fn unique(order: &[u32]) -> bool {
        let mut s = order.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == order.len()
    }

    #[test]
    fn small_dpp_by_hand() {
        // Three tokens: 0 and 1 identical, 2 orthogonal; r = 1 everywhere (raw a constant).
        let f = [1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0];
        let p = cdpruner(&f, 3, 2, Relevance::Raw(&[0.5; 3]), 1, 2).unwrap();
        // Gains all 1: seed = 0 (lowest index); then 1's gain is 0, 2's is 1.
        assert_eq!(p.order, vec![0, 2]);
        assert_eq!(p.scores, vec![1.0, 1.0]);
        assert!(
            p.notes[0].contains("equal for every token"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn relevance_weights_the_seed_and_is_negated() {
        // E = T's direction for token 2 => e.t = 1 => a = -1 (the lowest) => r ~ 0.
        let f = circle(&[0.0, 1.0, 2.0]);
        let e = circle(&[0.5, 1.5, 3.0]);
        let t = [3.0f32.cos(), 3.0f32.sin()];
        let rel = Relevance::Embeddings {
            image: &e,
            text: &t,
        };
        let p = cdpruner(&f, 3, 2, rel, 1, 1).unwrap();
        // a_i = -cos(angle_i - 3): token 0 is the farthest from the text => highest a.
        assert_eq!(p.order, vec![0]);
        let (a, _) = relevance_from_embeddings(&e, &t, 3, 1, 2);
        assert!((a[2] + 1.0).abs() < 1e-6 && a[0] > a[1], "{a:?}");
        let r = relevance_minmax(&a).unwrap();
        assert!((r[0] - (1.0 + 1e-6 / (a[0] - a[2]))).abs() < 1e-6);
        assert!((r[2] - 1e-6 / (a[0] - a[2])).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn k_above_rank_keeps_k_unique_with_a_note() {
        // 6 tokens in D = 2: the kernel has rank 2. In f32 the gains after two picks are
        // rounding noise (about 1e-8, possibly > 0): the DPP may take a few more, then stops.
        let f = circle(&[0.0, 0.3, 0.9, 1.7, 2.2, 2.9]);
        let a = [0.1f32, 0.9, 0.4, 0.8, 0.2, 0.5];
        let p = cdpruner(&f, 6, 2, Relevance::Raw(&a), 1, 5).unwrap();
        assert_eq!(p.order.len(), 5);
        assert!(unique(&p.order));
        assert!(
            p.notes.iter().any(|n| n.contains("DPP stopped")),
            "{:?}",
            p.notes
        );
        // Exact arithmetic (one-hot rows, equal relevance): tokens 0, 2 and 3 share a
        // direction, 1 and 4 another; after two picks every gain is exactly 0.
        let f = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let p = cdpruner(&f, 5, 2, Relevance::Raw(&[0.0; 5]), 1, 4).unwrap();
        assert_eq!(p.order, vec![0, 1, 2, 3]);
        assert_eq!(p.scores, vec![1.0, 1.0, 0.0, 0.0]);
        assert!(
            p.notes[1].starts_with("DPP stopped after 2 of 4 picks"),
            "{:?}",
            p.notes
        );
        assert!(p.notes[1].contains("the other 2 picks"), "{:?}", p.notes);
    }

    /// OpenVINO's greedy recurrence in f64 (the test's oracle): picks and their gains.
    fn openvino_f64(x: &[f32], d: usize, t: &[f32], w: f64, k: usize) -> (Vec<u32>, Vec<f64>) {
        let norm = |r: &[f32]| -> Vec<f64> {
            let den = (r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() + 1e-6).sqrt();
            r.iter().map(|&v| v as f64 / den).collect()
        };
        let u: Vec<Vec<f64>> = x.chunks(d).map(norm).collect();
        let n = u.len();
        let th = norm(t);
        let a: Vec<f64> = u
            .iter()
            .map(|ui| ui.iter().zip(&th).map(|(p, q)| p * q).sum())
            .collect();
        let lo = a.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let r: Vec<f64> = a.iter().map(|&v| (v - lo) / (hi - lo + 1e-6)).collect();
        let kern = |i: usize, j: usize| {
            let s: f64 = u[i].iter().zip(&u[j]).map(|(p, q)| p * q).sum();
            (1.0 - w) * s + w * r[i] * s * r[j]
        };
        let mut g: Vec<f64> = (0..n).map(|i| kern(i, i)).collect();
        let (mut picks, mut gains, mut cs) = (Vec::new(), Vec::new(), Vec::<Vec<f64>>::new());
        for _ in 0..k {
            let j = (0..n)
                .filter(|i| !picks.contains(&(*i as u32)))
                .fold(None, |b: Option<usize>, i| match b {
                    Some(b) if g[b] >= g[i] => Some(b),
                    _ => Some(i),
                })
                .unwrap();
            picks.push(j as u32);
            gains.push(g[j]);
            let mut e: Vec<f64> = (0..n).map(|i| kern(j, i)).collect();
            for c in &cs {
                if c[j].abs() >= 1e-6 {
                    for (v, &ci) in e.iter_mut().zip(c) {
                        *v -= c[j] * ci;
                    }
                }
            }
            let den = (g[j] + 1e-6).sqrt();
            e.iter_mut().for_each(|v| *v /= den);
            g.iter_mut().zip(&e).for_each(|(gi, ei)| *gi -= ei * ei);
            cs.push(e);
        }
        (picks, gains)
    }

    #[test]
    fn openvino_small_gains_follow_the_recurrence() {
        // Tokens 0 and 1 are 1e-3 rad apart: once one is picked the other's gain is
        // sin^2 + about 1e-6 from the epsilons, so 1e-6-sized terms of the recurrence show.
        let th = 1e-3f32;
        let x = [1.0f32, 0.0, 0.0, th.cos(), th.sin(), 0.0, 0.0, 0.0, 0.5];
        for w in [0.0f32, 0.5] {
            // K = N: the engine stage itself (the select layer would keep all without a DPP).
            let form = DppForm::OpenVino { weight: w };
            let p = run_dpp(&x, 3, 3, form, DppRelevance::Text(vec![0.0, 0.0, 1.0]), 3);
            let (picks, gains) = openvino_f64(&x, 3, &[0.0, 0.0, 1.0], w as f64, 3);
            eprintln!(
                "w = {w}: {:?} {:?} vs {picks:?} {gains:?}",
                p.order, p.scores
            );
            assert_eq!(p.order, picks, "w = {w}");
            for (got, want) in p.scores.iter().zip(&gains) {
                assert!(
                    (*got as f64 - want).abs() < 3e-7,
                    "w = {w}: {:?} vs {gains:?}",
                    p.scores
                );
            }
            assert!(gains[2] > 1.2e-6 && gains[2] < 3e-6, "{gains:?}");
        }
    }

    #[test]
    fn small_positive_gains_are_still_dpp_picks() {
        // Tokens 1 and 2 are nearly parallel (gain of the second about sin^2 0.01 = 1e-4);
        // token 0 is a zero row as relevant as they are. The second pick is the DPP's
        // (token 1 or 2), not the relevance fill (which would take token 0, lowest index).
        let th = 0.01f32;
        let f = [0.0f32, 0.0, 1.0, 0.0, th.cos(), th.sin(), 0.0, 0.0];
        let p = cdpruner(&f, 4, 2, Relevance::Raw(&[1.0, 1.0, 1.0, 0.0]), 1, 2).unwrap();
        assert_eq!(sorted(&p.order), vec![1, 2], "{:?} {:?}", p.order, p.scores);
        assert!(p.scores[1] > 5e-5 && p.scores[1] < 2e-4, "{:?}", p.scores);
        assert!(
            p.notes.iter().all(|n| !n.contains("DPP stopped")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn openvino_zero_gain_picks_stay_finite() {
        // w = 1: the least relevant token has r = 0, so a kernel row and gain of exactly 0.
        // Picking it divides by sqrt(0 + 1e-6), not by 0: no NaN, no degenerate picks.
        let (n, d) = (6, 8);
        let f: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 23) as f32) - 11.0)
            .collect();
        let t: Vec<f32> = (0..d).map(|i| i as f32 - 3.5).collect();
        let form = DppForm::OpenVino { weight: 1.0 };
        let p = run_dpp(&f, n, d, form, DppRelevance::Text(t), n);
        assert!(unique(&p.order));
        assert!(
            p.scores.iter().all(|s| s.is_finite() && *s > -1e-3),
            "{:?}",
            p.scores
        );
        assert_eq!(p.dpp, Some(DppReport::default()), "no degenerate picks");
        assert_eq!(*p.scores.last().unwrap(), 0.0);
    }

    #[test]
    fn the_fill_after_the_dpp_stops_is_by_relevance() {
        // One real token and three zero rows (gain exactly 0): the DPP stops after one pick
        // and the zero rows follow by relevance, highest first.
        let f = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let a = [0.0f32, 0.3, 0.9, 0.5];
        let r = relevance_minmax(&a).unwrap();
        let p = run_dpp(&f, 4, 2, DppForm::Official, DppRelevance::Given(r), 4);
        assert_eq!(p.order, vec![0, 2, 3, 1]);
        assert_eq!(&p.scores[1..], &[0.0; 3]);
        assert_eq!(p.dpp.unwrap().stopped.map(|s| s.0), Some(1));
        assert_eq!(p.zero_rows, 3);
        // Equal relevance among the fill: lowest index first.
        let p = cdpruner(&f, 4, 2, Relevance::Raw(&[0.0, 0.5, 0.5, 0.5]), 1, 3).unwrap();
        assert_eq!(p.order, vec![0, 1, 2]);
    }

    #[test]
    fn zero_feature_rows_are_never_dpp_picks() {
        let mut f = circle(&[0.0, 1.0, 2.0]);
        f.extend([0.0, 0.0]);
        let p = cdpruner(&f, 4, 2, Relevance::Raw(&[0.0, 0.1, 0.2, 9.0]), 1, 3).unwrap();
        // Token 3 has the highest relevance but zero gain: not a DPP pick; the DPP finds
        // rank 2 and the third pick is the fill: token 3, by relevance.
        assert_eq!(p.order.len(), 3);
        assert_eq!(*p.order.last().unwrap(), 3);
        assert!(
            p.notes.iter().any(|n| n.contains("1 all-zero row")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn pools_share_the_minmax_and_run_apart() {
        let f = circle(&[0.0, 1.0, 2.0, 0.1, 1.1, 2.1]);
        let a = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let p = cdpruner(&f, 6, 2, Relevance::Raw(&a), 2, 1).unwrap();
        // Pool 0: r = (a + 1e-6) / 5 => token 2; pool 1 => token 5.
        assert_eq!(p.order, vec![2, 5]);
        let r = relevance_minmax(&a).unwrap();
        assert!((p.scores[0] - r[2] * r[2]).abs() < 1e-6, "{:?}", p.scores);
        assert!(cdpruner(&f, 6, 2, Relevance::Raw(&a), 4, 1).is_err());
        let e = cdpruner(&f, 6, 2, Relevance::Raw(&a), 2, 4).err().unwrap();
        assert_eq!(
            e.to_string(),
            "budget: keep count 4 exceeds the 3 tokens of a crop"
        );
    }

    #[test]
    fn openvino_formula_and_split() {
        let f = circle(&[0.0, 0.2, 1.5, 1.6, 3.0, 3.1]);
        let t = [1.0f32, 0.0];
        let whole = cdpruner_openvino(&f, 6, 2, &t, 0.5, false, Split::None, 2).unwrap();
        assert_eq!(whole.order.len(), 2);
        assert!(unique(&whole.order));
        // Seed: the diagonal (1 - w) S_ii + w r_i^2 S_ii is largest where r = 1: token 0
        // (cos 0 with t).
        assert_eq!(whole.order[0], 0);
        let halves = cdpruner_openvino(&f, 6, 2, &t, 0.5, false, Split::Halves, 3).unwrap();
        // K = 3: the first half [0, 3) gets 1 pick, the second [3, 6) gets 2.
        assert_eq!(halves.order.len(), 3);
        assert!(halves.order[0] < 3 && halves.order[1..].iter().all(|&i| i >= 3));
        // Within the second half the relevance is re-normalised: its most relevant token
        // (3, closest to t of the three) seeds it.
        assert_eq!(halves.order[1], 3);
        // w = 0: a plain DPP on S; every diagonal entry is S_ii (about 1): lowest index seeds.
        let plain = cdpruner_openvino(&f, 6, 2, &[0.0, 1.0], 0.0, false, Split::None, 1).unwrap();
        let diag: Vec<f32> = f
            .chunks(2)
            .map(|r| {
                let s = r[0] * r[0] + r[1] * r[1];
                let n = (s + 1e-6).sqrt();
                (r[0] / n) * (r[0] / n) + (r[1] / n) * (r[1] / n)
            })
            .collect();
        let best = argmax_unchosen(&diag, &[false; 6]).unwrap().0;
        assert_eq!(plain.order, vec![best as u32]);
        // negate flips which end of the relevance seeds.
        let neg = cdpruner_openvino(&f, 6, 2, &t, 1.0, true, Split::None, 1).unwrap();
        assert_eq!(neg.order, vec![5]);
    }

    #[test]
    fn openvino_degenerate_gains_follow_upstream() {
        // Identical tokens: after the first pick every gain is about 0 (or slightly
        // negative): upstream keeps picking by its argmax, lowest index first among equals.
        let f = [1.0f32, 0.0].repeat(5);
        let form = DppForm::OpenVino { weight: 0.5 };
        let p = run_dpp(&f, 5, 2, form, DppRelevance::Text(vec![1.0, 0.0]), 5);
        assert!(unique(&p.order));
        assert_eq!(p.order.len(), 5);
        let p = cdpruner_openvino(&f, 5, 2, &[1.0, 0.0], 0.5, false, Split::None, 4).unwrap();
        assert!(unique(&p.order));
        assert_eq!(p.order.len(), 4);
    }

    #[test]
    fn bad_inputs_are_one_line_errors() {
        let f = circle(&[0.0, 1.0, 2.0]);
        let t = [1.0f32, 0.0];
        let emb = |image, text| Relevance::Embeddings { image, text };
        let cases: Vec<(Result<P>, &str)> = vec![
            (
                cdpruner(&f, 3, 2, emb(&f[..4], &t), 1, 1),
                "shape: image embeddings hold 4 values, not [N = 3, De] for any De",
            ),
            (
                cdpruner(&f, 3, 2, emb(&f, &[1.0, 0.0, 0.0]), 1, 1),
                "shape: text embeddings hold 3 values, not [M, De = 2] (De from the image embeddings)",
            ),
            (
                cdpruner(&f, 3, 2, emb(&f, &[]), 1, 1),
                "shape: text embeddings hold 0 values, not [M, De = 2] (De from the image embeddings)",
            ),
            (
                cdpruner(&f, 3, 2, emb(&f, &[f32::NAN, 0.0]), 1, 1),
                "text embeddings has a non-finite value (NaN) at row 0, column 0",
            ),
            (
                cdpruner(&f, 3, 2, emb(&[0.0, 1.0, 0.0, f32::INFINITY, 0.0, 0.0], &t), 1, 1),
                "image embeddings has a non-finite value (inf) at row 1, column 1",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Raw(&[1.0, 2.0]), 1, 1),
                "shape: relevance has 2 values but there are N = 3 tokens",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Raw(&[1.0, 2.0, 3.0]), 2, 1),
                "shape: 3 tokens do not split into 2 equal crops",
            ),
            (
                cdpruner_openvino(&f, 3, 2, &[1.0, 0.0, 0.0], 0.5, false, Split::None, 1),
                "shape: the text embedding holds 3 values but the features have D = 2 (cdpruner-openvino takes one text vector in the features' space)",
            ),
            (
                cdpruner_openvino(&f, 3, 2, &[1.0, f32::NEG_INFINITY], 0.5, false, Split::None, 1),
                "text embedding has a non-finite value (-inf) at row 0, column 1",
            ),
            (
                cdpruner_openvino(&f, 3, 2, &t, 1.5, false, Split::None, 1),
                "parameter: relevance weight 1.5 is outside [0, 1]",
            ),
            (
                cdpruner_openvino(&f, 3, 2, &t, 0.5, false, Split::None, 4),
                "budget: keep count 4 exceeds N = 3",
            ),
        ];
        for (got, want) in cases {
            let e = got.expect_err(want).to_string();
            assert_eq!(e, want);
            assert!(!e.contains('\n'));
        }
    }
}
