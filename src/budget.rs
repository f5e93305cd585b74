//! The budget: how many tokens to keep, with both upstream ratio conventions (SPEC "Budget").

use crate::error::{Error, Result};

/// How many of the N tokens to keep. The keep count is a pure function of (N, budget), so a
/// serving engine can size its placeholders before pruning runs ([`Budget::keep_count`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Budget {
    /// Keep exactly this many tokens (1..=N; 0 or more than N is an error).
    Count(usize),
    /// Keep this fraction (DivPrune convention): `K = round_half_even(r * N)`; may give 0.
    KeepRatio(f64),
    /// Prune this fraction (AngelSlim convention): `K = round_half_even(N * (1 - p))`, and
    /// `K = 1` when that rounds to 0 while `p < 1`.
    PruneRatio(f64),
}

impl Budget {
    /// The keep count K for a pool of `n` tokens.
    ///
    /// Ratios are computed in f64 and rounded half to even: `4608 * 0.1 -> 461`,
    /// `576 * (1 - 0.9) -> 58`, `5 * 0.5 -> 2`.
    pub fn keep_count(&self, n: usize) -> Result<usize> {
        match *self {
            Budget::Count(k) => {
                if k == 0 {
                    Err(Error::Budget(
                        "keep count 0: nothing would be kept (use a ratio that rounds to 0 if that is intended)".into(),
                    ))
                } else if k > n {
                    Err(Error::Budget(format!("keep count {k} exceeds N = {n}")))
                } else {
                    Ok(k)
                }
            }
            Budget::KeepRatio(r) => {
                check_ratio("keep ratio", r)?;
                Ok(((r * n as f64).round_ties_even() as usize).min(n))
            }
            Budget::PruneRatio(p) => {
                check_ratio("prune ratio", p)?;
                let k = ((n as f64 * (1.0 - p)).round_ties_even() as usize).min(n);
                Ok(if k == 0 && p < 1.0 && n > 0 { 1 } else { k })
            }
        }
    }
}

fn check_ratio(what: &str, r: f64) -> Result<()> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(Error::Budget(format!("{what} {r} is outside [0, 1]")))
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(k) => write!(f, "keep {k}"),
            Budget::KeepRatio(r) => write!(f, "keep ratio {r}"),
            Budget::PruneRatio(p) => write!(f, "prune ratio {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(Budget::KeepRatio(0.1).keep_count(4608).unwrap(), 461);
        assert_eq!(Budget::PruneRatio(0.9).keep_count(576).unwrap(), 58);
        assert_eq!(Budget::KeepRatio(0.5).keep_count(5).unwrap(), 2);
        assert_eq!(Budget::KeepRatio(0.1).keep_count(576).unwrap(), 58);
        assert_eq!(Budget::KeepRatio(0.25).keep_count(576).unwrap(), 144);
        assert_eq!(Budget::PruneRatio(0.75).keep_count(576).unwrap(), 144);
    }

    #[test]
    fn zero_rules() {
        // keep-ratio convention: may round to an empty selection
        assert_eq!(Budget::KeepRatio(0.1).keep_count(4).unwrap(), 0);
        assert_eq!(Budget::KeepRatio(0.0).keep_count(4).unwrap(), 0);
        // prune-ratio convention: at least one token while p < 1
        assert_eq!(Budget::PruneRatio(0.99).keep_count(4).unwrap(), 1);
        assert_eq!(Budget::PruneRatio(1.0).keep_count(4).unwrap(), 0);
        assert_eq!(Budget::PruneRatio(0.0).keep_count(4).unwrap(), 4);
        assert_eq!(Budget::KeepRatio(1.0).keep_count(4).unwrap(), 4);
    }

    #[test]
    fn half_even_not_half_away() {
        // 2.5 -> 2, 3.5 -> 4, 0.5 -> 0
        assert_eq!(Budget::KeepRatio(0.5).keep_count(5).unwrap(), 2);
        assert_eq!(Budget::KeepRatio(0.5).keep_count(7).unwrap(), 4);
        assert_eq!(Budget::KeepRatio(0.5).keep_count(1).unwrap(), 0);
        assert_eq!(Budget::PruneRatio(0.5).keep_count(1).unwrap(), 1);
    }

    #[test]
    fn rejects() {
        for b in [
            Budget::Count(0),
            Budget::Count(6),
            Budget::KeepRatio(-0.1),
            Budget::KeepRatio(1.5),
            Budget::KeepRatio(f64::NAN),
            Budget::PruneRatio(1.01),
            Budget::PruneRatio(f64::INFINITY),
        ] {
            let e = b.keep_count(5).unwrap_err().to_string();
            assert!(e.starts_with("budget: "), "{e}");
        }
        assert!(Budget::Count(6)
            .keep_count(5)
            .unwrap_err()
            .to_string()
            .contains("exceeds N = 5"));
    }
}
