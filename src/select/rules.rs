//! The host-side method rules every engine shares: the keep count, IDPruner's importance
//! normalisation and weights, the notes a result carries.

use super::job::Mmr;
use super::video;
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::method::{video_grid, CountMode, IdPruner, Method};
use crate::tokens::Grid;

/// The keep count K of `method` on `n` tokens (with their grid, when given) under `budget`: a
/// pure function of its inputs, so a serving engine can size placeholders before pruning.
/// `None` only for `vidcom2` with `count = official`, whose K depends on the data.
pub(crate) fn keep_count(
    method: &Method,
    n: usize,
    grid: Option<Grid>,
    budget: Budget,
) -> Result<Option<usize>> {
    match method {
        Method::CdPruner(c) => {
            if c.crops == 0 || !n.is_multiple_of(c.crops) {
                return Err(Error::Shape(format!(
                    "{n} tokens do not split into {} equal crops",
                    c.crops
                )));
            }
            let len = n / c.crops;
            if let Budget::Count(k) = budget {
                if c.crops > 1 && k > len {
                    return Err(Error::Budget(format!(
                        "keep count {k} exceeds the {len} tokens of a crop"
                    )));
                }
            }
            budget.keep_count(len).map(|k| Some(k * c.crops))
        }
        Method::Evs => {
            let grid = video_grid("evs", n, grid)?;
            video::evs_keep_count(grid, budget).map(Some)
        }
        Method::VidCom2 { count } => {
            let grid = video_grid("vidcom2", n, grid)?;
            video::vidcom2_keep_count(grid, budget, *count)
        }
        _ => budget.keep_count(n).map(Some),
    }
}

/// The nominal K of a method whose K depends on the data (`vidcom2` official): the exact
/// mode's target `max(T, min(trunc(N * b), N))`.
pub(crate) fn nominal_keep(
    method: &Method,
    n: usize,
    grid: Option<Grid>,
    budget: Budget,
) -> Result<usize> {
    match method {
        Method::VidCom2 {
            count: CountMode::Official,
        } => {
            let grid = video_grid("vidcom2", n, grid)?;
            video::vidcom2_scale_and_target(grid, budget).map(|(_, k)| k)
        }
        _ => keep_count(method, n, grid, budget)?
            .ok_or_else(|| Error::Budget("internal: no keep count".into())),
    }
}

/// `(w - min w) / (max w - min w + 1e-6)`, in f32 as upstream. Where the f32 range overflows
/// (scores near +-3e38, upstream would produce NaN) the same formula runs in f64.
pub(crate) fn normalize_importance(w: &[f32]) -> Vec<f32> {
    let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let denom = (hi - lo) + 1e-6;
    if denom.is_finite() {
        w.iter().map(|&x| (x - lo) / denom).collect()
    } else {
        let denom = (hi as f64 - lo as f64) + 1e-6;
        w.iter()
            .map(|&x| ((x as f64 - lo as f64) / denom) as f32)
            .collect()
    }
}

impl Mmr {
    /// IDPruner's prepared inputs for a pool keeping `k`.
    pub(crate) fn new(p: &IdPruner, k: usize) -> Self {
        Mmr {
            imp: normalize_importance(p.importance),
            lambda: p.lambda as f32,
            one_minus: (1.0 - p.lambda) as f32,
            parallel_k: p.parallel_k.clamp(1, k.max(1)),
        }
    }
}

/// The note for `zero_rows` all-zero rows (none when there are none).
pub(crate) fn zero_row_note(zero_rows: usize) -> Option<String> {
    (zero_rows > 0).then(|| {
        format!(
            "{zero_rows} all-zero row(s) normalised to the zero vector (cosine 0 with every token)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_all_equal_is_zero_not_nan() {
        assert_eq!(normalize_importance(&[3.0; 4]), vec![0.0; 4]);
        let imp = normalize_importance(&[1.0, 2.0, 3.0]);
        assert!((imp[2] - 1.0).abs() < 1e-5 && imp[0] == 0.0);
        let huge = normalize_importance(&[-3e38, 0.0, 3e38]);
        assert!(huge.iter().all(|v| v.is_finite()), "{huge:?}");
        assert!((huge[1] - 0.5).abs() < 1e-6 && huge[2] == 1.0);
    }

    #[test]
    fn parallel_k_is_clamped_to_the_keep_count() {
        let imp = [1.0, 2.0];
        let p = IdPruner::new(&imp).parallel_k(9).lambda(0.25);
        let m = Mmr::new(&p, 2);
        assert_eq!((m.parallel_k, m.lambda, m.one_minus), (2, 0.25, 0.75));
        assert_eq!(Mmr::new(&p, 0).parallel_k, 1);
    }
}
