//! CDPruner (SPEC "CDPruner"): a conditional DPP over the tokens, greedy MAP by incremental
//! Cholesky, in its two upstream forms, named apart:
//! - `cdpruner` (Theia-4869/CDPruner, the LLaVA code): [`cdpruner`];
//! - `cdpruner-openvino` (OpenVINO GenAI's selector of the same name): [`cdpruner_openvino`].
//!
//! Written as the stages a GPU runs, each a kernel there:
//! 1. normalise rows ([`super::rownorm`]; one workgroup per row);
//! 2. relevance: `E T^T` row means ([`relevance_from_embeddings`], a small GEMM) or `X t`
//!    ([`relevance_openvino`], a GEMV), then a min-max ([`relevance_minmax`] /
//!    [`relevance_minmax_openvino`]: a reduction and an elementwise pass);
//! 3. the greedy MAP ([`dpp_official`], [`dpp_openvino`]): per pick one kernel row (a GEMV of
//!    the pick against every token, [`similarity_rows`], then [`KernelForm::entry`]), one
//!    Cholesky update (`c_i` and `g -= c_i^2`, elementwise over N; the vectors `c_t` live in a
//!    `K x N` buffer) and one argmax over the gains ([`argmax_unchosen`]: the workgroup-argmax
//!    loop of `select.wgsl`).

use super::greedy::argmax_unchosen;
use crate::select::zero_row_note;

/// A ranked selection: picks in order with their scores, and notes.
pub(crate) struct Picks {
    pub order: Vec<u32>,
    pub scores: Vec<f32>,
    pub notes: Vec<String>,
}
use super::matmul::{dot_rows, similarity_rows};
use super::rownorm::{normalize_rows_eps, Eps};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::tokens::{check_scores, Tokens};

/// The OpenVINO variant's numerical threshold (`Config::numerical_threshold`).
const OV_EPS: f32 = 1e-6;

/// Where `cdpruner` gets its relevance from.
#[derive(Debug, Clone, Copy)]
pub enum Relevance<'a> {
    /// Image embeddings E `[N, De]` (tokens in a joint image-text space, e.g. CLIP's visual
    /// projection) and text embeddings T `[M, De]` (one per text segment).
    Embeddings {
        /// E, row-major `[N, De]`.
        image: &'a [f32],
        /// T, row-major `[M, De]`.
        text: &'a [f32],
        /// Text rows M.
        m: usize,
        /// Embedding width De.
        de: usize,
    },
    /// A raw relevance `a` `[N]` the caller computed (its sign is the caller's).
    Raw(&'a [f32]),
}

/// How `cdpruner-openvino` cuts the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// One DPP over the whole pool (tokenprune's default).
    #[default]
    None,
    /// Upstream's default: `[0, N/2)` gets `K/2` picks, `[N/2, N)` the rest, each half with
    /// its own relevance min-max and kernel.
    Halves,
}

impl std::str::FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Split::None),
            "halves" => Ok(Split::Halves),
            _ => Err(Error::Param(format!(
                "unknown split '{s}' (expected none or halves)"
            ))),
        }
    }
}

/// Checks a companion matrix (embeddings): `rows x cols` values, at least one of each, all
/// finite.
pub(crate) fn check_matrix(
    what: &'static str,
    data: &[f32],
    rows: usize,
    cols: usize,
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(Error::Shape(format!("{what} are empty ({rows} x {cols})")));
    }
    if Some(data.len()) != rows.checked_mul(cols) {
        return Err(Error::Shape(format!(
            "{what} hold {} values but {rows} x {cols} = {} are needed",
            data.len(),
            rows.saturating_mul(cols)
        )));
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what,
            at: format!("row {}, column {}", pos / cols, pos % cols),
            value: data[pos].to_string(),
        });
    }
    Ok(())
}

/// Stage 2 (`cdpruner`): `a_i = mean_m(-(e_i . t_m))` with E and T normalised by their plain
/// norms (negated, as upstream). Returns `a` and notes on zero rows.
pub(crate) fn relevance_from_embeddings(
    image: &[f32],
    text: &[f32],
    n: usize,
    m: usize,
    de: usize,
) -> Result<(Vec<f32>, Vec<String>)> {
    check_matrix("image embeddings", image, n, de)?;
    check_matrix("text embeddings", text, m, de)?;
    let (ue, zero_image) = normalize_rows_eps(image, n, de, Eps::Plain);
    let (ut, zero_text) = normalize_rows_eps(text, m, de, Eps::Plain);
    let mut dots = vec![0.0f32; n * m];
    dot_rows(&ue, &ut, de, &mut dots, m);
    let mf = m as f32;
    let a = dots
        .chunks(m)
        .map(|row| row.iter().fold(0.0f32, |s, &v| s + -v) / mf)
        .collect();
    let mut notes = Vec::new();
    if zero_image > 0 {
        notes.push(format!(
            "{zero_image} all-zero image embedding row(s): relevance a = 0 for those tokens"
        ));
    }
    if zero_text > 0 {
        notes.push(format!(
            "{zero_text} all-zero text embedding row(s): they add 0 to every token's relevance"
        ));
    }
    Ok((a, notes))
}

/// Stage 2 (`cdpruner`): `r_i = (a_i - min a + 1e-6) / (max a - min a)` in f32 (the 1e-6 in
/// the numerator, as upstream); in f64 where the f32 range overflows. `None` when every `a`
/// is equal (upstream divides by zero; the caller then uses r = 1).
pub(crate) fn relevance_minmax(a: &[f32]) -> Option<Vec<f32>> {
    let (lo, hi) = min_max(a);
    if hi == lo {
        return None;
    }
    let range = hi - lo;
    Some(if range.is_finite() {
        a.iter().map(|&x| ((x - lo) + 1e-6) / range).collect()
    } else {
        let (lo, range) = (lo as f64, hi as f64 - lo as f64);
        a.iter()
            .map(|&x| (((x as f64 - lo) + 1e-6) / range) as f32)
            .collect()
    })
}

/// Stage 2 (`cdpruner-openvino`): `a_i = x_i . t` over rows normalised by
/// `sqrt(sum v^2 + 1e-6)` (`u` holds them), negated when `negate`.
pub(crate) fn relevance_openvino(u: &[f32], t_hat: &[f32], d: usize, negate: bool) -> Vec<f32> {
    let n = u.len() / d;
    let mut a = vec![0.0f32; n];
    dot_rows(u, t_hat, d, &mut a, 1);
    if negate {
        a.iter_mut().for_each(|v| *v *= -1.0);
    }
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
struct Greedy {
    n: usize,
    gain: Vec<f32>,
    chosen: Vec<bool>,
    /// `c_t` for every pick so far, row-major `[picks, N]`.
    c: Vec<f32>,
    row: Vec<f32>,
    picks: Picks,
}

impl Greedy {
    fn new(gain: Vec<f32>, k: usize) -> Self {
        let n = gain.len();
        Greedy {
            n,
            chosen: vec![false; n],
            c: Vec::with_capacity(k.saturating_sub(1) * n),
            row: vec![0.0; n],
            picks: Picks {
                order: Vec::with_capacity(k),
                scores: Vec::with_capacity(k),
                notes: Vec::new(),
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
    let mut st = Greedy::new(form.diagonal(u, d), k);
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
        st.picks.notes.push(format!(
            "DPP stopped after {done} of {k} picks: the best remaining gain ({g:e}) is not > 0 \
             (the kernel's numerical rank is exhausted); the other {} picks are the unchosen \
             tokens of highest relevance, scored 0",
            k - done
        ));
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
    let mut st = Greedy::new(form.diagonal(u, d), k);
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
    if degenerate > 0 {
        st.picks.notes.push(format!(
            "{degenerate} pick(s) made after the DPP gains became NaN (counted as -FLT_MAX, as \
             upstream): lowest index first"
        ));
    }
    st.picks
}

/// `cdpruner` (SPEC): `features` `[n, d]` (F: tokens as they enter the LLM) in `pools` equal
/// pools (one per image or crop), `k` picks per pool. The relevance min-max runs jointly over
/// all pools (LLaVA-NeXT), then each pool runs its own DPP. The order lists pool 0's picks,
/// then pool 1's, ...; indices are over the whole `n`.
pub(crate) fn cdpruner(
    features: &[f32],
    n: usize,
    d: usize,
    relevance: Relevance<'_>,
    pools: usize,
    k: usize,
) -> Result<Picks> {
    Tokens::new(features, n, d)?;
    let len = pool_len(n, pools)?;
    if k > len {
        return Err(Error::Budget(format!(
            "keep count {k} exceeds the {len} tokens of a pool"
        )));
    }
    let (a, mut notes) = match relevance {
        Relevance::Embeddings { image, text, m, de } => {
            relevance_from_embeddings(image, text, n, m, de)?
        }
        Relevance::Raw(a) => {
            check_scores("relevance", a, n)?;
            (a.to_vec(), Vec::new())
        }
    };
    let r = relevance_minmax(&a).unwrap_or_else(|| {
        notes.push(
            "relevance is equal for every token (max a = min a): r = 1 everywhere, a plain DPP \
             on the similarity"
                .into(),
        );
        vec![1.0; n]
    });
    let (u, zero_rows) = normalize_rows_eps(features, n, d, Eps::Plain);
    notes.extend(zero_row_note(zero_rows));
    let mut out = Picks {
        order: Vec::with_capacity(k * pools),
        scores: Vec::with_capacity(k * pools),
        notes,
    };
    for p in 0..pools {
        let (s, e) = (p * len, (p + 1) * len);
        let picks = dpp_official(&u[s * d..e * d], d, &r[s..e], k);
        append(&mut out, picks, s, pools > 1);
    }
    Ok(out)
}

/// `cdpruner-openvino` (SPEC): `features` `[n, d]` (X: used for similarity and relevance),
/// one text vector `text` `[d]`, relevance weight `weight` in [0, 1] (upstream default 0.5),
/// `negate` flips the relevance's sign, `k` picks in all.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cdpruner_openvino(
    features: &[f32],
    n: usize,
    d: usize,
    text: &[f32],
    weight: f32,
    negate: bool,
    split: Split,
    k: usize,
) -> Result<Picks> {
    Tokens::new(features, n, d)?;
    if text.len() != d {
        return Err(Error::Shape(format!(
            "text embedding holds {} values but the features have D = {d} (cdpruner-openvino \
             takes one text vector in the features' space)",
            text.len()
        )));
    }
    check_matrix("text embedding", text, 1, d)?;
    if !(weight.is_finite() && (0.0..=1.0).contains(&weight)) {
        return Err(Error::Param(format!(
            "relevance weight {weight} is outside [0, 1]"
        )));
    }
    if k > n {
        return Err(Error::Budget(format!("keep count {k} exceeds N = {n}")));
    }
    let (u, zero_rows) = normalize_rows_eps(features, n, d, Eps::AddSquared(OV_EPS));
    let (t_hat, _) = normalize_rows_eps(text, 1, d, Eps::AddSquared(OV_EPS));
    let a = relevance_openvino(&u, &t_hat, d, negate);
    let mut out = Picks {
        order: Vec::with_capacity(k),
        scores: Vec::with_capacity(k),
        notes: zero_row_note(zero_rows).into_iter().collect(),
    };
    let halves = split == Split::Halves;
    for (s, e, kk) in split_pools(n, k, split) {
        if kk == 0 {
            continue;
        }
        let (r, constant) = relevance_minmax_openvino(&a[s..e]);
        let mut picks = dpp_openvino(&u[s * d..e * d], d, &r, weight, kk);
        if constant {
            picks.notes.push(
                "relevance is equal for every token: r = 0, the kernel is (1 - w) S (as \
                 upstream)"
                    .into(),
            );
        }
        append(&mut out, picks, s, halves);
    }
    Ok(out)
}

/// The pools of `cdpruner-openvino`: `(start, end, picks)`.
pub(crate) fn split_pools(n: usize, k: usize, split: Split) -> Vec<(usize, usize, usize)> {
    match split {
        Split::None => vec![(0, n, k)],
        Split::Halves => vec![(0, n / 2, k / 2), (n / 2, n, k - k / 2)],
    }
}

fn pool_len(n: usize, pools: usize) -> Result<usize> {
    if pools == 0 || !n.is_multiple_of(pools) {
        return Err(Error::Shape(format!(
            "{n} tokens do not split into {pools} equal pools (images or crops)"
        )));
    }
    Ok(n / pools)
}

/// Appends one pool's picks, offsetting indices by `start` and naming the pool in its notes.
fn append(out: &mut Picks, picks: Picks, start: usize, name_pool: bool) {
    out.order
        .extend(picks.order.iter().map(|&i| i + start as u32));
    out.scores.extend(picks.scores);
    for note in picks.notes {
        out.notes.push(if name_pool {
            format!("pool starting at token {start}: {note}")
        } else {
            note
        });
    }
}

/// K per pool for `cdpruner`: the budget (SPEC "Budget") applied to one pool of `n / pools`
/// tokens; the request keeps `pools * K` in all. A pure function of (N, pools, budget).
pub(crate) fn keep_per_pool(n: usize, pools: usize, budget: Budget) -> Result<usize> {
    budget.keep_count(pool_len(n, pools)?)
}

/// OpenVINO GenAI's own budget, for users porting its settings: a pruning percent `p` gives
/// `K = round_half_away_from_zero(N * (1 - p / 100))` (f64; not half to even: N = 5, p = 50
/// keeps 3). Upstream rejects a K of 0.
pub(crate) fn openvino_keep_from_percent(n: usize, percent: f64) -> Result<usize> {
    if !(percent.is_finite() && (0.0..=100.0).contains(&percent)) {
        return Err(Error::Budget(format!(
            "pruning percent {percent} is outside [0, 100]"
        )));
    }
    let k = ((n as f64) * (1.0 - percent / 100.0)).round() as usize;
    if k == 0 {
        return Err(Error::Budget(format!(
            "pruning {percent}% of {n} tokens keeps none"
        )));
    }
    Ok(k.min(n))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            m: 1,
            de: 2,
        };
        let p = cdpruner(&f, 3, 2, rel, 1, 1).unwrap();
        // a_i = -cos(angle_i - 3): token 0 is the farthest from the text => highest a.
        assert_eq!(p.order, vec![0]);
        let (a, _) = relevance_from_embeddings(&e, &t, 3, 1, 2).unwrap();
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
        let p = cdpruner(&f, 6, 2, Relevance::Raw(&a), 1, 6).unwrap();
        assert_eq!(p.order.len(), 6);
        assert!(unique(&p.order));
        assert!(
            p.notes.iter().any(|n| n.contains("DPP stopped")),
            "{:?}",
            p.notes
        );
        // Exact arithmetic (one-hot rows, equal relevance): tokens 0, 2 and 3 share a
        // direction, 1 and 4 another; after two picks every gain is exactly 0.
        let f = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let p = cdpruner(&f, 5, 2, Relevance::Raw(&[0.0; 5]), 1, 5).unwrap();
        assert_eq!(p.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(p.scores, vec![1.0, 1.0, 0.0, 0.0, 0.0]);
        assert!(
            p.notes[1].starts_with("DPP stopped after 2 of 5 picks"),
            "{:?}",
            p.notes
        );
        assert!(p.notes[1].contains("the other 3 picks"), "{:?}", p.notes);
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
            let p =
                cdpruner_openvino(&x, 3, 3, &[0.0, 0.0, 1.0], w, false, Split::None, 3).unwrap();
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
        let p = cdpruner_openvino(&f, n, d, &t, 1.0, false, Split::None, n).unwrap();
        assert!(unique(&p.order));
        assert!(
            p.scores.iter().all(|s| s.is_finite() && *s > -1e-3),
            "{:?}",
            p.scores
        );
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        assert_eq!(*p.scores.last().unwrap(), 0.0);
    }

    #[test]
    fn the_fill_after_the_dpp_stops_is_by_relevance() {
        // One real token and three zero rows (gain exactly 0): the DPP stops after one pick
        // and the zero rows follow by relevance, highest first.
        let f = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let a = [0.0f32, 0.3, 0.9, 0.5];
        let p = cdpruner(&f, 4, 2, Relevance::Raw(&a), 1, 4).unwrap();
        assert_eq!(p.order, vec![0, 2, 3, 1]);
        assert_eq!(&p.scores[1..], &[0.0; 3]);
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
            "budget: keep count 4 exceeds the 3 tokens of a pool"
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
        let p = cdpruner_openvino(&f, 5, 2, &[1.0, 0.0], 0.5, false, Split::None, 5).unwrap();
        assert!(unique(&p.order));
        assert_eq!(p.order.len(), 5);
    }

    #[test]
    fn parse_split_and_percent_rule() {
        assert_eq!("halves".parse::<Split>().unwrap(), Split::Halves);
        assert_eq!("none".parse::<Split>().unwrap(), Split::None);
        let e = "thirds".parse::<Split>().unwrap_err().to_string();
        assert_eq!(
            e,
            "parameter: unknown split 'thirds' (expected none or halves)"
        );
        assert_eq!(openvino_keep_from_percent(5, 50.0).unwrap(), 3);
        assert_eq!(openvino_keep_from_percent(576, 75.0).unwrap(), 144);
        assert!(openvino_keep_from_percent(5, 100.0).is_err());
        assert!(openvino_keep_from_percent(5, 101.0).is_err());
        assert_eq!(keep_per_pool(1152, 2, Budget::Count(64)).unwrap(), 64);
        assert_eq!(
            keep_per_pool(1152, 2, Budget::KeepRatio(0.25)).unwrap(),
            144
        );
        assert!(keep_per_pool(1152, 5, Budget::Count(64)).is_err());
        assert_eq!(split_pools(7, 5, Split::Halves), vec![(0, 3, 2), (3, 7, 3)]);
    }

    #[test]
    fn bad_inputs_are_one_line_errors() {
        let f = circle(&[0.0, 1.0, 2.0]);
        let t = [1.0f32, 0.0];
        let cases: Vec<(Result<Picks>, &str)> = vec![
            (
                cdpruner(&f, 3, 2, Relevance::Embeddings { image: &f[..4], text: &t, m: 1, de: 2 }, 1, 1),
                "shape: image embeddings hold 4 values but 3 x 2 = 6 are needed",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Embeddings { image: &f, text: &t, m: 2, de: 2 }, 1, 1),
                "shape: text embeddings hold 2 values but 2 x 2 = 4 are needed",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Embeddings { image: &f, text: &[], m: 0, de: 2 }, 1, 1),
                "shape: text embeddings are empty (0 x 2)",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Embeddings { image: &f, text: &[f32::NAN, 0.0], m: 1, de: 2 }, 1, 1),
                "text embeddings has a non-finite value (NaN) at row 0, column 0",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Embeddings { image: &[0.0, 1.0, 0.0, f32::INFINITY, 0.0, 0.0], text: &t, m: 1, de: 2 }, 1, 1),
                "image embeddings has a non-finite value (inf) at row 1, column 1",
            ),
            (
                cdpruner(&f, 3, 2, Relevance::Raw(&[1.0, 2.0]), 1, 1),
                "shape: relevance has 2 values but there are N = 3 tokens",
            ),
            (
                cdpruner_openvino(&f, 3, 2, &[1.0, 0.0, 0.0], 0.5, false, Split::None, 1),
                "shape: text embedding holds 3 values but the features have D = 2 (cdpruner-openvino takes one text vector in the features' space)",
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
            let e = got.err().expect(want).to_string();
            assert_eq!(e, want);
            assert!(!e.contains('\n'));
        }
    }
}
