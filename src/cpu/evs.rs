//! EVS scoring (SPEC "EVS", as in vLLM): CPU twin of `shaders/evs.wgsl` (and of
//! `shaders/normalize.wgsl` with method code EVS). Stages:
//! 1. normalise rows, `v / max(||v||, 1e-8)` ([`super::rownorm`], torch `cosine_similarity`);
//! 2. [`scores`]: frame 0 scores 255, token (t, y, x) for t >= 1 scores
//!    `1 - u_{t,y,x} . u_{t-1,y,x}` (one dot product per token).
//!
//! The select layer then keeps the K highest (a stable sort, `src/select/video.rs`).

use super::rownorm::{normalize_rows_eps, Eps};
use crate::select::video::EVS_FIRST_FRAME_SCORE;
use crate::select::VideoScores;
use crate::tokens::Tokens;

/// Stage 2: the per-token scores from normalised rows `u` (`[N, d]`, frames of `frame_len`
/// tokens, row-major over (frame, row, column)).
pub(crate) fn scores(u: &[f32], d: usize, frame_len: usize) -> Vec<f32> {
    let n = u.len() / d;
    (0..n)
        .map(|i| {
            if i < frame_len {
                EVS_FIRST_FRAME_SCORE
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

/// EVS's engine stages on one video: normalise, score.
pub(crate) fn run(tokens: &Tokens, frame_len: usize) -> VideoScores {
    let (n, d) = (tokens.n(), tokens.d());
    let (u, zero_rows) = normalize_rows_eps(tokens.data(), n, d, Eps::Clamp(1e-8));
    VideoScores {
        s: scores(&u, d, frame_len),
        g_video: Vec::new(),
        zero_rows,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Budget, Grid, Method, Pruner, Request, Result, Tokens};

    /// What the tests look at: the kept set, its scores, per-frame counts, notes.
    #[derive(Debug)]
    struct Set {
        kept: Vec<u32>,
        scores: Vec<f32>,
        per_frame: Vec<usize>,
        notes: Vec<String>,
    }

    /// EVS through the public API, keeping `k`.
    fn evs(f: &[f32], n: usize, d: usize, grid: Option<Grid>, k: usize) -> Result<Set> {
        let mut t = Tokens::new(f, n, d)?;
        if let Some(g) = grid {
            t = t.with_grid(g)?;
        }
        let sel = Pruner::cpu().prune_blocking(&Request::new(t, Method::Evs, Budget::Count(k))?)?;
        let g = grid.unwrap_or(Grid::new(1, 1, n));
        let mut per_frame = vec![0; g.frames];
        for &i in &sel.kept {
            per_frame[i as usize / g.frame_len()] += 1;
        }
        assert_eq!(sel.order, sel.kept, "a set: order = positional order");
        Ok(Set {
            kept: sel.kept,
            scores: sel.scores,
            per_frame,
            notes: sel.notes,
        })
    }

    fn keep_count(g: Grid, b: Budget) -> Result<usize> {
        Ok(Method::Evs
            .keep_count(g.len().unwrap(), Some(g), b)?
            .unwrap())
    }

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
        let two = evs(&f, 6, 4, Some(g), 2).unwrap();
        assert_eq!(two.kept, vec![0, 1]);
        assert!(
            two.notes.iter().any(|n| n.contains("one-frame video")),
            "{:?}",
            two.notes
        );
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
        assert_eq!(e, "budget: keep count 5 exceeds N = 4");
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
