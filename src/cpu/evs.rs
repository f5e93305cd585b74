//! EVS, efficient video sampling as in vLLM (SPEC "EVS"): keep the tokens that changed most
//! since the previous frame, all of frame 0 first.
//!
//! Stages (the first two are GPU kernels; the last may run on the host):
//! 1. normalise rows, `v / max(||v||, 1e-8)` ([`super::rownorm`], torch `cosine_similarity`);
//! 2. [`scores`]: frame 0 scores 255, token (t, y, x) for t >= 1 scores
//!    `1 - u_{t,y,x} . u_{t-1,y,x}` (one dot product per token);
//! 3. [`select`]: stable sort by score, descending (ties to the lower flat index), keep the
//!    first K.
//!
//! K is a pure function of (grid, budget): [`keep_count`].

use super::rownorm::{normalize_rows_eps, Eps};
use super::video::{kept_fraction, trunc_count, video_grid, KeptSet};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::select::zero_row_note;
use crate::tokens::{Grid, Tokens};

/// The score of every token of frame 0 (vLLM's constant: always kept first).
pub(crate) const FIRST_FRAME_SCORE: f32 = 255.0;

/// K for EVS. From a prune rate q (vLLM): `max(h*w, trunc(N * (1 - q)))`, `1 - q` and the
/// product in f64, truncated (N = 500, q = 0.9 gives 49). From a keep ratio r the same with
/// `N * r`. An explicit count is taken as is (1..=N; below h*w it keeps part of frame 0,
/// lowest flat index first).
pub(crate) fn keep_count(grid: Grid, budget: Budget) -> Result<usize> {
    let n = grid
        .len()
        .ok_or_else(|| Error::Shape("grid size overflows".into()))?;
    match kept_fraction(budget)? {
        Some(f) => Ok(trunc_count(n, f).max(grid.frame_len()).min(n)),
        None => budget.keep_count(n),
    }
}

/// Stage 2: the per-token scores from normalised rows `u` (`[N, d]`, frames of `frame_len`
/// tokens, row-major over (frame, row, column)).
pub(crate) fn scores(u: &[f32], d: usize, frame_len: usize) -> Vec<f32> {
    let n = u.len() / d;
    (0..n)
        .map(|i| {
            if i < frame_len {
                FIRST_FRAME_SCORE
            } else {
                let (a, b) = (
                    &u[i * d..(i + 1) * d],
                    &u[(i - frame_len) * d..(i - frame_len + 1) * d],
                );
                1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
            }
        })
        .collect()
}

/// Stage 3: the K highest scores, ties to the lower flat index (a stable descending sort);
/// returns a keep mask.
pub(crate) fn select(scores: &[f32], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut mask = vec![false; scores.len()];
    for &i in &idx[..k] {
        mask[i] = true;
    }
    mask
}

/// EVS on `features` `[n, d]` with its video `grid`, keeping `k` tokens (from
/// [`keep_count`]).
pub(crate) fn evs(
    features: &[f32],
    n: usize,
    d: usize,
    grid: Option<Grid>,
    k: usize,
) -> Result<KeptSet> {
    Tokens::new(features, n, d)?;
    let grid = video_grid("evs", n, grid)?;
    if k == 0 || k > n {
        return Err(Error::Budget(format!(
            "keep count {k} is outside 1..={n} (N)"
        )));
    }
    let (u, zero_rows) = normalize_rows_eps(features, n, d, Eps::Clamp(1e-8));
    let s = scores(&u, d, grid.frame_len());
    let mut notes: Vec<String> = zero_row_note(zero_rows).into_iter().collect();
    if grid.frames == 1 {
        notes.push(format!(
            "one-frame video: EVS has no frame differences (every token scores {FIRST_FRAME_SCORE}); kept the first {k} tokens"
        ));
    }
    Ok(KeptSet::from_mask(&select(&s, k), &s, grid, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot rows: every cosine is exactly 0 or 1 (exact scores 1 or 0).
    fn one_hot(dims: &[usize], d: usize) -> Vec<f32> {
        dims.iter()
            .flat_map(|&k| (0..d).map(move |j| if j == k { 1.0 } else { 0.0 }))
            .collect()
    }

    #[test]
    fn keep_count_rules() {
        let g = Grid::new(8, 12, 12);
        assert_eq!(keep_count(g, Budget::PruneRatio(0.5)).unwrap(), 576);
        // int(1152 * 0.1) = 115 < 144: the floor h*w applies.
        assert_eq!(keep_count(g, Budget::PruneRatio(0.9)).unwrap(), 144);
        assert_eq!(keep_count(g, Budget::KeepRatio(0.3)).unwrap(), 345); // 345.6 truncated
        assert_eq!(keep_count(g, Budget::PruneRatio(1.0)).unwrap(), 144);
        assert_eq!(keep_count(g, Budget::Count(10)).unwrap(), 10);
        let five = Grid::new(5, 10, 10);
        assert_eq!(keep_count(five, Budget::PruneRatio(0.9)).unwrap(), 100);
        let wide = Grid::new(10, 5, 10);
        assert_eq!(keep_count(wide, Budget::PruneRatio(0.9)).unwrap(), 50);
        let big = Grid::new(100, 5, 1);
        assert_eq!(keep_count(big, Budget::PruneRatio(0.9)).unwrap(), 49);
        for bad in [
            Budget::Count(0),
            Budget::Count(1153),
            Budget::PruneRatio(1.5),
            Budget::KeepRatio(-0.1),
        ] {
            let e = keep_count(g, bad).unwrap_err().to_string();
            assert!(e.starts_with("budget: "), "{e}");
        }
    }

    #[test]
    fn exact_ties_at_the_boundary_go_to_the_lower_index() {
        // 3 frames of 2 x 2. Frame 1 differs from frame 0 everywhere (score exactly 1),
        // frame 2 repeats frame 1 (score exactly 0).
        let d = 4;
        let mut f = one_hot(&[0, 1, 2, 3], d);
        f.extend(one_hot(&[1, 2, 3, 0], d));
        f.extend(one_hot(&[1, 2, 3, 0], d));
        let g = Some(Grid::new(3, 2, 2));
        let set = evs(&f, 12, d, g, 6).unwrap();
        // Frame 0 (4 tokens) then 2 of the 4 tied tokens of frame 1: the lowest indices.
        assert_eq!(set.kept, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(set.per_frame, vec![4, 2, 0]);
        assert_eq!(set.scores, vec![255.0, 255.0, 255.0, 255.0, 1.0, 1.0]);
        // K below h*w: part of frame 0, lowest flat index first.
        assert_eq!(evs(&f, 12, d, g, 3).unwrap().kept, vec![0, 1, 2]);
    }

    #[test]
    fn identical_frames_score_zero_and_go_last() {
        let d = 4;
        let frame = one_hot(&[0, 1, 2, 3], d);
        let mut f = frame.repeat(3);
        f.extend(one_hot(&[3, 2, 1, 0], d));
        let g = Some(Grid::new(4, 1, 4));
        let set = evs(&f, 16, d, g, 8).unwrap();
        // Frames 1 and 2 repeat frame 0 (score 0); frame 3 changed everywhere (score 1).
        assert_eq!(set.per_frame, vec![4, 0, 0, 4]);
        let all = evs(&f, 16, d, g, 10).unwrap();
        assert_eq!(all.per_frame, vec![4, 2, 0, 4]);
        assert_eq!(&all.kept[4..6], &[4, 5]);
    }

    #[test]
    fn one_frame_video_keeps_the_frame() {
        let f: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let g = Grid::new(1, 2, 3);
        let k = keep_count(g, Budget::PruneRatio(0.75)).unwrap();
        assert_eq!(k, 6);
        let set = evs(&f, 6, 4, Some(g), k).unwrap();
        assert_eq!(set.kept, vec![0, 1, 2, 3, 4, 5]);
        assert!(set.notes.iter().any(|n| n.contains("one-frame video")));
        assert_eq!(evs(&f, 6, 4, Some(g), 2).unwrap().kept, vec![0, 1]);
    }

    #[test]
    fn zero_rows_have_cosine_zero() {
        // Token 2 (frame 1) is a zero row: cosine 0 with its predecessor, score 1.
        let f = [1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let set = evs(&f, 4, 2, Some(Grid::new(2, 1, 2)), 3).unwrap();
        assert_eq!(set.kept, vec![0, 1, 2]);
        assert_eq!(set.scores[2], 1.0);
        assert!(set.notes[0].contains("1 all-zero row"), "{:?}", set.notes);
    }

    #[test]
    fn bad_input() {
        let f = [1.0f32; 8];
        let e = evs(&f, 4, 2, Some(Grid::new(2, 1, 3)), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "shape: grid 2x1x3 does not multiply to N = 4");
        let e = evs(&f, 4, 2, None, 2).unwrap_err().to_string();
        assert!(e.starts_with("shape: evs needs the video grid"), "{e}");
        let e = evs(&f, 4, 2, Some(Grid::new(2, 1, 2)), 5)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "budget: keep count 5 is outside 1..=4 (N)");
        let mut nan = f;
        nan[3] = f32::NAN;
        let e = evs(&nan, 4, 2, Some(Grid::new(2, 1, 2)), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "features has a non-finite value (NaN) at row 1, column 1"
        );
    }
}
