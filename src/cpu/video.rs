//! What the video selectors (EVS, VidCom2) share: the checked grid, the ratio check and the
//! result type (a kept set with per-frame counts; these methods output a set, not an order).

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::tokens::Grid;

/// The tokens a video selector kept.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptSet {
    /// Kept token indices, ascending (positional order: what a model consumes).
    pub kept: Vec<u32>,
    /// The method's score of each kept token, aligned with `kept` (EVS: the dissimilarity to
    /// the previous frame, 255 in frame 0; VidCom2: the summed Gaussian similarity, lower =
    /// more distinctive).
    pub scores: Vec<f32>,
    /// How many tokens were kept in each frame.
    pub per_frame: Vec<usize>,
    /// Things worth knowing about this run.
    pub notes: Vec<String>,
}

impl KeptSet {
    /// Builds the set from a keep mask over all tokens and the per-token scores.
    pub(crate) fn from_mask(mask: &[bool], scores: &[f32], grid: Grid, notes: Vec<String>) -> Self {
        let hw = grid.frame_len();
        let mut per_frame = vec![0usize; grid.frames];
        let mut kept = Vec::new();
        let mut kept_scores = Vec::new();
        for (i, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
            kept.push(i as u32);
            kept_scores.push(scores[i]);
            per_frame[i / hw] += 1;
        }
        KeptSet {
            kept,
            scores: kept_scores,
            per_frame,
            notes,
        }
    }
}

/// The grid a video method runs on: present, and multiplying to `n`. A one-frame grid is
/// valid (EVS then has no frame differences; VidCom2 has one frame budget).
pub(crate) fn video_grid(method: &str, n: usize, grid: Option<Grid>) -> Result<Grid> {
    let grid = grid.ok_or_else(|| {
        Error::Shape(format!(
            "{method} needs the video grid (frames T, height H, width W), e.g. --grid T,H,W"
        ))
    })?;
    if grid.len() != Some(n) {
        return Err(Error::Shape(format!(
            "grid {}x{}x{} does not multiply to N = {n}",
            grid.frames, grid.height, grid.width
        )));
    }
    if n == 0 {
        return Err(Error::Shape("no tokens (N = 0): nothing to prune".into()));
    }
    Ok(grid)
}

/// A ratio must be finite and in [0, 1].
pub(crate) fn check_ratio(what: &str, r: f64) -> Result<f64> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(Error::Budget(format!("{what} {r} is outside [0, 1]")))
    }
}

/// The kept fraction a ratio budget asks for, in f64 (`r`, or `1 - q` for a prune ratio);
/// `None` for an explicit count.
pub(crate) fn kept_fraction(budget: Budget) -> Result<Option<f64>> {
    match budget {
        Budget::Count(_) => Ok(None),
        Budget::KeepRatio(r) => check_ratio("keep ratio", r).map(Some),
        Budget::PruneRatio(q) => check_ratio("prune ratio", q).map(|q| Some(1.0 - q)),
    }
}

/// `trunc(n * f)` in f64, as Python's `int(n * f)`.
pub(crate) fn trunc_count(n: usize, f: f64) -> usize {
    ((n as f64) * f).trunc() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_checks() {
        let g = Grid::new(2, 3, 4);
        assert_eq!(video_grid("evs", 24, Some(g)).unwrap(), g);
        let e = video_grid("evs", 25, Some(g)).unwrap_err().to_string();
        assert_eq!(e, "shape: grid 2x3x4 does not multiply to N = 25");
        let e = video_grid("vidcom2", 24, None).unwrap_err().to_string();
        assert!(e.contains("vidcom2 needs the video grid"), "{e}");
        assert!(video_grid("evs", 12, Some(Grid::new(1, 3, 4))).is_ok());
    }

    #[test]
    fn fractions_and_truncation() {
        assert_eq!(
            kept_fraction(Budget::PruneRatio(0.9)).unwrap(),
            Some(1.0 - 0.9)
        );
        assert_eq!(kept_fraction(Budget::KeepRatio(0.25)).unwrap(), Some(0.25));
        assert_eq!(kept_fraction(Budget::Count(3)).unwrap(), None);
        assert!(kept_fraction(Budget::KeepRatio(1.5)).is_err());
        assert!(kept_fraction(Budget::PruneRatio(f64::NAN)).is_err());
        // SPEC: N = 500, q = 0.9 gives 49 (1 - 0.9 = 0.09999999999999998).
        assert_eq!(trunc_count(500, 1.0 - 0.9), 49);
        assert_eq!(trunc_count(1152, 1.0 - 0.5), 576);
    }
}
