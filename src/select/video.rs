//! The host-side rules of the video methods (SPEC "EVS", "VidCom2"): their keep counts, and
//! the steps after the engine's scores: EVS's stable top-K, VidCom2's frame budgets, per-frame
//! bottom-k and exact-count reconcile. Small (N scores, T frames), so they run on the host for
//! every engine.

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::method::CountMode;
use crate::tokens::Grid;

/// The score of every token of EVS's frame 0 (vLLM's constant: always kept first).
pub(crate) const EVS_FIRST_FRAME_SCORE: f32 = 255.0;
/// VidCom2's softmax temperature of the frame budgets.
pub(crate) const VIDCOM2_TEMPERATURE: f32 = 0.01;

/// A ratio must be finite and in [0, 1].
fn check_ratio(what: &str, r: f64) -> Result<f64> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(Error::Budget(format!("{what} {r} is outside [0, 1]")))
    }
}

/// The kept fraction a ratio budget asks for, in f64 (`r`, or `1 - q` for a prune ratio);
/// `None` for an explicit count.
fn kept_fraction(budget: Budget) -> Result<Option<f64>> {
    match budget {
        Budget::Count(_) => Ok(None),
        Budget::KeepRatio(r) => check_ratio("keep ratio", r).map(Some),
        Budget::PruneRatio(q) => check_ratio("prune ratio", q).map(|q| Some(1.0 - q)),
    }
}

/// `trunc(n * f)` in f64, as Python's `int(n * f)`.
fn trunc_count(n: usize, f: f64) -> usize {
    ((n as f64) * f).trunc() as usize
}

fn grid_len(grid: Grid) -> Result<usize> {
    grid.len()
        .ok_or_else(|| Error::Shape("grid size overflows".into()))
}

/// K for EVS. From a prune rate q (vLLM): `max(h*w, trunc(N * (1 - q)))`, `1 - q` and the
/// product in f64, truncated (N = 500, q = 0.9 gives 49). From a keep ratio r the same with
/// `N * r`. An explicit count is taken as is (1..=N; below h*w it keeps part of frame 0,
/// lowest flat index first).
pub(crate) fn evs_keep_count(grid: Grid, budget: Budget) -> Result<usize> {
    let n = grid_len(grid)?;
    match kept_fraction(budget)? {
        Some(f) => Ok(trunc_count(n, f).max(grid.frame_len()).min(n)),
        None => budget.keep_count(n),
    }
}

/// The keep ratio b (the base scale of VidCom2's frame budgets) and the `exact` target K.
/// From a keep ratio b: K = `max(T, min(trunc(N * b), N))` (f64, truncated); from a prune
/// rate q: the same with b = 1 - q (f64). An explicit count K must lie in T..=N (every frame
/// keeps at least one token) and gives b = K / N.
pub(crate) fn vidcom2_scale_and_target(grid: Grid, budget: Budget) -> Result<(f64, usize)> {
    let n = grid_len(grid)?;
    let t = grid.frames;
    match kept_fraction(budget)? {
        Some(b) => Ok((b, trunc_count(n, b).min(n).max(t))),
        None => {
            let k = budget.keep_count(n)?;
            if k < t {
                return Err(Error::Budget(format!(
                    "keep count {k} is below the {t} frames: VidCom2 keeps at least one token per frame"
                )));
            }
            Ok((k as f64 / n as f64, k))
        }
    }
}

/// K for VidCom2: the `exact` target, a pure function of (grid, budget); `None` in
/// `official` mode, where K is the sum of the data-dependent frame budgets. `official` takes
/// a ratio, not a count.
pub(crate) fn vidcom2_keep_count(
    grid: Grid,
    budget: Budget,
    mode: CountMode,
) -> Result<Option<usize>> {
    match mode {
        CountMode::Exact => vidcom2_scale_and_target(grid, budget).map(|(_, k)| Some(k)),
        CountMode::Official => {
            if let Budget::Count(_) = budget {
                return Err(Error::Budget(
                    "count mode official keeps a data-dependent number of tokens: give a keep or prune ratio, not a count".into(),
                ));
            }
            vidcom2_scale_and_target(grid, budget).map(|_| None)
        }
    }
}

/// EVS's selection: the K highest scores, ties to the lower flat index (a stable descending
/// sort); returns a keep mask.
pub(crate) fn evs_select(scores: &[f32], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut mask = vec![false; scores.len()];
    for &i in idx.iter().take(k) {
        mask[i] = true;
    }
    mask
}

/// VidCom2's per-frame keep counts, in f32: frame score `phi_f = -mean_p g(z_fp, video)`,
/// `pi = softmax((phi - max phi) / 0.01)`, `scale_f = min(1, b * (1 + pi_f - mean pi))`,
/// `k_f = min(P, max(1, round_half_even(scale_f * P)))`.
pub(crate) fn vidcom2_frame_budgets(
    g_video: &[f32],
    frames: usize,
    p: usize,
    b: f32,
) -> Vec<usize> {
    let phi: Vec<f32> = g_video
        .chunks(p)
        .map(|g| -((g.iter().map(|&v| v as f64).sum::<f64>() / p as f64) as f32))
        .collect();
    let top = phi.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let x: Vec<f32> = phi
        .iter()
        .map(|&v| (v - top) / VIDCOM2_TEMPERATURE)
        .collect();
    let xmax = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|&v| (v - xmax).exp()).collect();
    let sum: f32 = e.iter().sum();
    let pi: Vec<f32> = e.iter().map(|&v| v / sum).collect();
    let mean = pi.iter().sum::<f32>() / frames as f32;
    pi.iter()
        .map(|&q| {
            let scale = (b * ((1.0 + q) - mean)).min(1.0);
            ((scale * p as f32).round_ties_even() as usize).clamp(1, p)
        })
        .collect()
}

/// Each frame keeps its `ks[f]` tokens of smallest `s` (ties: lowest index); returns the keep
/// mask over all tokens.
pub(crate) fn bottom_k_per_frame(s: &[f32], p: usize, ks: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; s.len()];
    for (f, &k) in ks.iter().enumerate() {
        let base = f * p;
        let mut idx: Vec<usize> = (base..base + p).collect();
        idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
        for &i in idx.iter().take(k) {
            mask[i] = true;
        }
    }
    mask
}

/// VidCom2's `exact` count: brings the mask to `target` kept tokens. A surplus drops the kept
/// tokens of **largest** s over the whole video (the higher index first on ties); a shortfall
/// adds the unkept tokens of **smallest** s (the lower index first). Returns kept-after minus
/// kept-before.
pub(crate) fn reconcile(s: &[f32], mask: &mut [bool], target: usize) -> isize {
    let current = mask.iter().filter(|&&m| m).count();
    if current > target {
        let mut kept: Vec<usize> = (0..s.len()).filter(|&i| mask[i]).collect();
        kept.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(b.cmp(&a)));
        for &i in &kept[..current - target] {
            mask[i] = false;
        }
    } else if current < target {
        let mut free: Vec<usize> = (0..s.len()).filter(|&i| !mask[i]).collect();
        free.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
        for &i in &free[..target - current] {
            mask[i] = true;
        }
    }
    target as isize - current as isize
}
