//! Figures that describe a kept set: how diverse it is and how well it covers what was pruned.

use crate::cpu::matmul::similarity_rows;
use crate::cpu::normalize::{normalize_rows, NormPolicy};
use crate::error::{Error, Result};
use crate::tokens::Tokens;

/// Diversity and coverage of a selection, in DivPrune's cosine distance `1 - cos`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KeptSetFigures {
    /// The smallest distance between two kept tokens (higher = more diverse; 0 = a duplicate
    /// was kept). `None` with fewer than two kept tokens.
    pub min_pairwise_distance: Option<f32>,
    /// The largest distance from a pruned token to its nearest kept token (lower = better
    /// coverage). `None` when nothing was pruned or nothing kept.
    pub max_uncovered_distance: Option<f32>,
    /// The mean distance from a pruned token to its nearest kept token.
    pub mean_uncovered_distance: Option<f32>,
}

/// Computes [`KeptSetFigures`] for the kept token indices `kept` (e.g. `Selection::kept`) over
/// the tokens they were selected from. An index out of range or given twice is an error.
pub fn kept_set_figures(tokens: &Tokens, kept: &[u32]) -> Result<KeptSetFigures> {
    let n = tokens.n();
    let mut is_kept = vec![false; n];
    for &i in kept {
        match is_kept.get_mut(i as usize) {
            None => {
                return Err(Error::Param(format!(
                    "kept index {i} is out of range for {n} tokens"
                )))
            }
            Some(true) => return Err(Error::Param(format!("kept index {i} is given twice"))),
            Some(k) => *k = true,
        }
    }
    let (u, _) = normalize_rows(tokens, NormPolicy::DivPrune);
    let kept: Vec<usize> = kept.iter().map(|&i| i as usize).collect();
    let mut sims = vec![0.0f32; kept.len() * n];
    similarity_rows(&u, tokens.d(), &kept, &mut sims);
    let mut nearest = vec![f32::INFINITY; n];
    let mut min_pair: Option<f32> = None;
    for (a, row) in sims.chunks(n.max(1)).enumerate() {
        for (j, &s) in row.iter().enumerate() {
            let dist = 1.0 - s;
            nearest[j] = nearest[j].min(dist);
            if is_kept[j] && j != kept[a] {
                min_pair = Some(min_pair.map_or(dist, |m| m.min(dist)));
            }
        }
    }
    let pruned: Vec<f32> = (0..n)
        .filter(|&j| !is_kept[j])
        .map(|j| nearest[j])
        .collect();
    let (max_unc, mean_unc) = if pruned.is_empty() || kept.is_empty() {
        (None, None)
    } else {
        let max = pruned.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let mean = pruned.iter().map(|&v| v as f64).sum::<f64>() / pruned.len() as f64;
        (Some(max), Some(mean as f32))
    };
    Ok(KeptSetFigures {
        min_pairwise_distance: min_pair,
        max_uncovered_distance: max_unc,
        mean_uncovered_distance: mean_unc,
    })
}
