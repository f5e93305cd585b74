//! VidCom2's scoring (SPEC "VidCom2"): CPU twin of `shaders/vidcom2_channels.wgsl`
//! (`variance`, `choose`), `shaders/normalize.wgsl` (method code VIDCOM2, through the channel
//! map), `shaders/vidcom2_centres.wgsl` and `shaders/vidcom2_scores.wgsl`. Stages:
//! 1. [`low_variance_channels`]: per-channel population variance (a column reduction), then
//!    the `max(1, floor(C/2))` lowest (ties: lowest channel index);
//! 2. [`normalise_kept_channels`] (`z = v / max(||v||, 1e-12)` over those channels) and
//!    [`centres`] (video and per-frame means of z: column reductions);
//! 3. [`gaussian_scores`]: `g(z, c) = sum over a in (1/8, 1/4, 1/2, 1, 2) of
//!    exp(-||z - c||^2 / (2a))`; token score `s = g(z, video) + g(z, frame)`, and each token's
//!    `g(z, video)` for the frame scores.
//!
//! The select layer then budgets the frames, keeps each frame's bottom k and, in `exact` mode,
//! reconciles to K (`src/select/video.rs`).

use super::normalize::{normalize_row, NormPolicy};
use crate::select::VideoScores;
use crate::tokens::Tokens;

/// The Gaussian bandwidths, in the order they are summed.
pub(crate) const ALPHAS: [f32; 5] = [0.125, 0.25, 0.5, 1.0, 2.0];

/// VidCom2's engine stages on one video of `frames` frames of `frame_len` tokens.
pub(crate) fn run(tokens: &Tokens, frames: usize, frame_len: usize) -> VideoScores {
    let (n, d) = (tokens.n(), tokens.d());
    let channels = low_variance_channels(tokens.data(), n, d);
    let kc = channels.len();
    let (z, zero_rows) = normalise_kept_channels(tokens.data(), d, &channels);
    let (video, frame_centres) = centres(&z, kc, frames, frame_len);
    let (s, g_video) = gaussian_scores(&z, kc, frame_len, &video, &frame_centres);
    VideoScores {
        s,
        g_video,
        zero_rows,
    }
}

/// Stage 1: the `max(1, floor(C/2))` channels of lowest population variance over all tokens,
/// in ascending order of variance (ties: lowest channel index), as torch's `topk(largest =
/// False)` returns them. The variance is accumulated in f64 and rounded to f32.
pub(crate) fn low_variance_channels(x: &[f32], n: usize, c: usize) -> Vec<usize> {
    let mut mean = vec![0.0f64; c];
    for row in x.chunks(c) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; c];
    for row in x.chunks(c) {
        for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
            *s += (v as f64 - m) * (v as f64 - m);
        }
    }
    let var: Vec<f32> = var.iter().map(|s| (s / n as f64) as f32).collect();
    let mut idx: Vec<usize> = (0..c).collect();
    idx.sort_by(|&a, &b| var[a].total_cmp(&var[b]).then(a.cmp(&b)));
    idx.truncate((c / 2).max(1));
    idx
}

/// Stage 2a: `z = v / max(||v||, 1e-12)` over the kept channels (`[n, channels.len()]`), and
/// the number of zero rows.
pub(crate) fn normalise_kept_channels(
    x: &[f32],
    c: usize,
    channels: &[usize],
) -> (Vec<f32>, usize) {
    let kc = channels.len();
    let n = x.len() / c;
    let mut z = vec![0.0f32; n * kc];
    let mut buf = vec![0.0f32; kc];
    let mut zero_rows = 0;
    for (row, out) in x.chunks(c).zip(z.chunks_mut(kc)) {
        for (b, &ch) in buf.iter_mut().zip(channels) {
            *b = row[ch];
        }
        if normalize_row(&buf, out, NormPolicy::DivPrune) {
            zero_rows += 1;
        }
    }
    (z, zero_rows)
}

/// Stage 2b: the video centre (mean of every z) and the frame centres (mean of each frame's
/// z), neither renormalised; sums in f64, rounded to f32. Returns `(video [kc], frames [T, kc])`.
pub(crate) fn centres(z: &[f32], kc: usize, frames: usize, p: usize) -> (Vec<f32>, Vec<f32>) {
    let mut total = vec![0.0f64; kc];
    let mut frame_centres = vec![0.0f32; frames * kc];
    for (f, fc) in frame_centres.chunks_mut(kc).enumerate() {
        let mut sum = vec![0.0f64; kc];
        for row in z[f * p * kc..(f + 1) * p * kc].chunks(kc) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        for ((o, t), s) in fc.iter_mut().zip(total.iter_mut()).zip(&sum) {
            *o = (s / p as f64) as f32;
            *t += s;
        }
    }
    let count = (frames * p) as f64;
    let video = total.iter().map(|s| (s / count) as f32).collect();
    (video, frame_centres)
}

/// `g(z, c) = sum over a in ALPHAS, in order, of exp(-||z - c||^2 / (2a))`, in f32.
pub(crate) fn gaussian(z: &[f32], c: &[f32]) -> f32 {
    let dist: f32 = z.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
    ALPHAS
        .iter()
        .fold(0.0f32, |s, &a| s + (-dist / (2.0 * a)).exp())
}

/// Stage 3: per token `(s, g_video)`: the score `s = g(z, video) + g(z, frame)` and
/// `g(z, video)` alone.
pub(crate) fn gaussian_scores(
    z: &[f32],
    kc: usize,
    p: usize,
    video: &[f32],
    frame_centres: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    z.chunks(kc)
        .enumerate()
        .map(|(i, zi)| {
            let gv = gaussian(zi, video);
            let f = i / p;
            let gf = gaussian(zi, &frame_centres[f * kc..(f + 1) * kc]);
            (gv + gf, gv)
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::CountMode;
    use crate::select::video::{
        bottom_k_per_frame, reconcile, vidcom2_frame_budgets as frame_budgets,
        vidcom2_keep_count as keep_count,
    };
    use crate::{Budget, Grid, Method, Pruner, Request, Result};

    /// What the tests look at: the kept set, per-frame counts, notes.
    #[derive(Debug)]
    struct Set {
        kept: Vec<u32>,
        per_frame: Vec<usize>,
        notes: Vec<String>,
    }

    /// VidCom2 through the public API.
    fn vidcom2(
        f: &[f32],
        n: usize,
        d: usize,
        grid: Option<Grid>,
        budget: Budget,
        count: CountMode,
    ) -> Result<Set> {
        let mut t = Tokens::new(f, n, d)?;
        if let Some(g) = grid {
            t = t.with_grid(g)?;
        }
        let sel =
            Pruner::cpu().prune_blocking(&Request::new(t, Method::VidCom2 { count }, budget)?)?;
        let g = grid.unwrap_or(Grid::new(1, 1, n));
        let mut per_frame = vec![0; g.frames];
        for &i in &sel.kept {
            per_frame[i as usize / g.frame_len()] += 1;
        }
        Ok(Set {
            kept: sel.kept,
            per_frame,
            notes: sel.notes,
        })
    }

    #[test]
    fn parse_count_mode() {
        assert_eq!("exact".parse::<CountMode>().unwrap(), CountMode::Exact);
        assert_eq!(
            "official".parse::<CountMode>().unwrap(),
            CountMode::Official
        );
        assert_eq!(CountMode::default(), CountMode::Exact);
        let e = "fuzzy".parse::<CountMode>().unwrap_err().to_string();
        assert_eq!(
            e,
            "parameter: unknown count mode 'fuzzy' (expected exact or official)"
        );
    }

    #[test]
    fn targets() {
        let g = Grid::new(8, 12, 12);
        assert_eq!(
            keep_count(g, Budget::PruneRatio(0.75), CountMode::Exact).unwrap(),
            Some(288)
        );
        assert_eq!(
            keep_count(g, Budget::KeepRatio(0.3), CountMode::Exact).unwrap(),
            Some(345)
        );
        // The floor: one token per frame.
        assert_eq!(
            keep_count(g, Budget::KeepRatio(0.0), CountMode::Exact).unwrap(),
            Some(8)
        );
        assert_eq!(
            keep_count(g, Budget::Count(100), CountMode::Exact).unwrap(),
            Some(100)
        );
        assert_eq!(
            keep_count(g, Budget::KeepRatio(0.25), CountMode::Official).unwrap(),
            None
        );
        let e = keep_count(g, Budget::Count(7), CountMode::Exact)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "budget: keep count 7 is below the 8 frames: VidCom2 keeps at least one token per frame");
        let e = keep_count(g, Budget::Count(100), CountMode::Official)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("budget: count mode official"), "{e}");
        assert!(keep_count(g, Budget::Count(1153), CountMode::Exact).is_err());
        assert!(keep_count(g, Budget::PruneRatio(-1.0), CountMode::Exact).is_err());
    }

    #[test]
    fn channels_lowest_variance_ties_to_lowest_index() {
        // Channel variances: c0 4, c1 0, c2 1, c3 0 (c1 and c3 tie).
        let x = [2.0f32, 5.0, 1.0, 7.0, -2.0, 5.0, -1.0, 7.0];
        assert_eq!(low_variance_channels(&x, 2, 4), vec![1, 3]);
        assert_eq!(low_variance_channels(&x[..2], 1, 2), vec![0]);
        assert_eq!(low_variance_channels(&[1.0, 2.0, 3.0], 3, 1), vec![0]);
    }

    #[test]
    fn gaussian_sum_by_hand() {
        // ||z - c||^2 = 1: sum of exp(-1/(2a)) over the five bandwidths.
        let want: f32 = [4.0f32, 2.0, 1.0, 0.5, 0.25]
            .iter()
            .map(|x| (-x).exp())
            .sum();
        assert!((gaussian(&[1.0, 0.0], &[0.0, 0.0]) - want).abs() < 1e-6);
        assert_eq!(gaussian(&[0.3, 0.4], &[0.3, 0.4]), 5.0);
    }

    #[test]
    fn budgets_exact_half_rounds_to_even() {
        // Frame scores far apart: softmax puts all weight on frame 1, none on frames 0 and 2.
        // scale = 0.25 * (1 - 1/3) for the others: 1/6 * 144 = 24 exactly; frame 1 gets
        // 0.25 * (1 + 1 - 1/3) * 144 = 60.
        let p = 144;
        let mut g = vec![3.0f32; p];
        g.extend(vec![1.0f32; p]);
        g.extend(vec![3.0f32; p]);
        assert_eq!(frame_budgets(&g, 3, p, 0.25), vec![24, 60, 24]);
        // Eight frames, one dominant: 0.25 * 0.875 * 144 = 31.5 exactly -> 32 (half to even).
        let mut g8 = vec![3.0f32; 8 * p];
        g8[5 * p..6 * p].fill(1.0);
        let ks = frame_budgets(&g8, 8, p, 0.25);
        assert_eq!(ks, vec![32, 32, 32, 32, 32, 68, 32, 32]);
        // b = 0: one token per frame; b = 1: capped at P.
        assert_eq!(frame_budgets(&g8, 8, p, 0.0), vec![1; 8]);
        assert_eq!(frame_budgets(&g8, 8, p, 1.0)[5], p);
        // Where half to even and half away from zero differ: 0.21875 * 48 = 10.5 -> 10 and
        // 0.46875 * 48 = 22.5 -> 22.
        let mut g48 = vec![3.0f32; 8 * 48];
        g48[5 * 48..6 * 48].fill(1.0);
        assert_eq!(
            frame_budgets(&g48, 8, 48, 0.25),
            vec![10, 10, 10, 10, 10, 22, 10, 10]
        );
    }

    #[test]
    fn reconcile_drops_largest_and_adds_smallest() {
        let s = [0.5f32, 0.9, 0.9, 0.1, 0.7, 0.2];
        let mut m = [true, true, true, true, false, false];
        // Drop 2 of the kept: the largest s, 0.9 twice: the higher index first (2, then 1).
        assert_eq!(reconcile(&s, &mut m, 2), -2);
        assert_eq!(m, [true, false, false, true, false, false]);
        let mut m = [true, true, true, true, false, false];
        assert_eq!(reconcile(&s, &mut m, 3), -1);
        assert_eq!(m, [true, true, false, true, false, false]);
        // Add 1: the smallest unkept s (0.1, token 3).
        let mut m = [true, false, false, false, false, false];
        assert_eq!(reconcile(&s, &mut m, 2), 1);
        assert_eq!(m, [true, false, false, true, false, false]);
        let mut m = [false; 6];
        assert_eq!(reconcile(&s, &mut m, 0), 0);
    }

    #[test]
    fn bottom_k_ties_to_lowest_index() {
        let s = [0.3f32, 0.1, 0.1, 0.2, 0.5, 0.5, 0.5, 0.0];
        let m = bottom_k_per_frame(&s, 4, &[2, 2]);
        assert_eq!(m, [false, true, true, false, true, false, false, true]);
    }

    fn video(frames: usize, p: usize, d: usize) -> Vec<f32> {
        (0..frames * p * d)
            .map(|i| (((i * 2654435761) % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % d) as f32))
            .collect()
    }

    #[test]
    fn exact_mode_hits_the_target_and_official_is_the_budget_sum() {
        let (t, p, d) = (4, 9, 8);
        let x = video(t, p, d);
        let grid = Grid::new(t, 3, 3);
        let g = Some(grid);
        for b in [0.0, 0.1, 0.3, 0.5, 0.9, 1.0] {
            let exact = vidcom2(&x, t * p, d, g, Budget::KeepRatio(b), CountMode::Exact).unwrap();
            let want = keep_count(grid, Budget::KeepRatio(b), CountMode::Exact)
                .unwrap()
                .unwrap();
            assert_eq!(exact.kept.len(), want, "b = {b}");
            assert_eq!(exact.per_frame.iter().sum::<usize>(), want);
            let official =
                vidcom2(&x, t * p, d, g, Budget::KeepRatio(b), CountMode::Official).unwrap();
            assert!(official.per_frame.iter().all(|&k| (1..=p).contains(&k)));
            assert!(official.notes.iter().any(|n| n.contains("count official")));
        }
    }

    #[test]
    fn one_frame_video_is_one_budget() {
        let (p, d) = (16, 6);
        let x = video(1, p, d);
        let g = Some(Grid::new(1, 4, 4));
        // One frame: pi = 1, mean 1, scale = b: k = round(0.25 * 16) = 4 = trunc(16 * 0.25).
        let set = vidcom2(&x, p, d, g, Budget::KeepRatio(0.25), CountMode::Official).unwrap();
        assert_eq!(set.per_frame, vec![4]);
        let exact = vidcom2(&x, p, d, g, Budget::KeepRatio(0.25), CountMode::Exact).unwrap();
        assert_eq!(exact.kept, set.kept);
        assert!(exact.notes.is_empty(), "{:?}", exact.notes);
    }

    #[test]
    fn identical_frames_get_equal_budgets_and_the_same_positions() {
        let (t, p, d) = (3, 9, 8);
        let frame = video(1, p, d);
        let x = frame.repeat(t);
        let g = Some(Grid::new(t, 3, 3));
        let set = vidcom2(
            &x,
            t * p,
            d,
            g,
            Budget::KeepRatio(1.0 / 3.0),
            CountMode::Official,
        )
        .unwrap();
        // Equal frame scores: pi = 1/3 each, scale = b: k = round(3) = 3 in every frame, at
        // the same positions.
        assert_eq!(set.per_frame, vec![3, 3, 3]);
        let pos: Vec<Vec<u32>> = set
            .kept
            .chunks(3)
            .map(|c| c.iter().map(|i| i % p as u32).collect())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] == w[1]), "{pos:?}");
    }

    #[test]
    fn bad_input() {
        let x = video(2, 4, 4);
        let e = vidcom2(
            &x,
            8,
            4,
            Some(Grid::new(3, 2, 2)),
            Budget::KeepRatio(0.5),
            CountMode::Exact,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "shape: grid 3x2x2 does not multiply to N = 8");
        let e = vidcom2(&x, 8, 4, None, Budget::KeepRatio(0.5), CountMode::Exact)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("shape: vidcom2 needs the video grid"), "{e}");
        let e = vidcom2(
            &x,
            8,
            4,
            Some(Grid::new(2, 2, 2)),
            Budget::Count(1),
            CountMode::Exact,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("below the 2 frames"), "{e}");
        let mut inf = x.clone();
        inf[5] = f32::INFINITY;
        let e = vidcom2(
            &inf,
            8,
            4,
            Some(Grid::new(2, 2, 2)),
            Budget::KeepRatio(0.5),
            CountMode::Exact,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "features has a non-finite value (inf) at row 1, column 1"
        );
    }
}
