//! CDPruner's host-side rules (SPEC "CDPruner"): `cdpruner`'s relevance from the image and
//! text embeddings (or the caller's raw relevance) and its min-max, joint over the crops;
//! the pools each DPP job runs on (crops, or `cdpruner-openvino`'s halves); the notes a run's
//! report becomes. The DPP itself runs on the engine (`src/cpu/cdpruner.rs`,
//! `shaders/dpp.wgsl`).

use super::job::{Dpp, DppForm, DppRelevance, DppReport, Greedy, Job, Work};
use crate::cpu::matmul::dot_rows;
use crate::cpu::rownorm::{normalize_rows_eps, Eps};
use crate::error::{Error, Result};
use crate::method::{CdPruner, CdPrunerOpenVino, Relevance, Split};
use crate::tokens::Features;

/// `cdpruner`: `a_i = mean_m(-(e_i . t_m))` with E `[n, de]` and T `[m, de]` normalised by
/// their plain norms (negated, as upstream). Returns `a` and notes on zero rows.
pub(crate) fn relevance_from_embeddings(
    image: &[f32],
    text: &[f32],
    n: usize,
    m: usize,
    de: usize,
) -> (Vec<f32>, Vec<String>) {
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
    (a, notes)
}

fn min_max(a: &[f32]) -> (f32, f32) {
    a.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// `cdpruner`: `r_i = (a_i - min a + 1e-6) / (max a - min a)` in f32 (the 1e-6 in the
/// numerator, as upstream); in f64 where the f32 range overflows. `None` when every `a` is
/// equal (upstream divides by zero; tokenprune then uses r = 1).
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

/// `cdpruner`'s jobs: one DPP per crop (`k` picks each) on the relevance min-maxed jointly
/// over all crops; with the notes of the preparation.
pub(crate) fn cdpruner_jobs<'a>(
    features: &Features<'a>,
    c: &CdPruner,
    k: usize,
) -> (Vec<(usize, Job<'a>)>, Vec<String>) {
    let n = features.n();
    let (a, mut notes) = match c.relevance {
        Relevance::Embeddings { image, text } => {
            let de = image.len() / n;
            relevance_from_embeddings(image, text, n, text.len() / de, de)
        }
        Relevance::Raw(a) => (a.to_vec(), Vec::new()),
    };
    let r = relevance_minmax(&a).unwrap_or_else(|| {
        notes.push(
            "relevance is equal for every token (max a = min a): r = 1 everywhere, a plain DPP on the similarity"
                .into(),
        );
        vec![1.0; n]
    });
    let len = n / c.crops;
    let jobs = (0..c.crops)
        .map(|p| {
            let (s, e) = (p * len, (p + 1) * len);
            let job = Job {
                features: features.slice(s, e),
                work: Work::Greedy {
                    k,
                    rule: Greedy::Dpp(Dpp {
                        form: DppForm::Official,
                        relevance: DppRelevance::Given(r[s..e].to_vec()),
                    }),
                },
            };
            (s, job)
        })
        .collect();
    (jobs, notes)
}

/// The pools of `cdpruner-openvino`: `(start, end, picks)`.
pub(crate) fn split_pools(n: usize, k: usize, split: Split) -> Vec<(usize, usize, usize)> {
    match split {
        Split::None => vec![(0, n, k)],
        Split::Halves => vec![(0, n / 2, k / 2), (n / 2, n, k - k / 2)],
    }
}

/// `cdpruner-openvino`'s jobs: one DPP per pool (the whole pool, or its halves), each with its
/// own relevance min-max from the text vector (negated when asked).
pub(crate) fn openvino_jobs<'a>(
    features: &Features<'a>,
    c: &CdPrunerOpenVino,
    k: usize,
) -> Vec<(usize, Job<'a>)> {
    let text: Vec<f32> = if c.negate {
        c.text.iter().map(|v| -v).collect()
    } else {
        c.text.to_vec()
    };
    split_pools(features.n(), k, c.split)
        .into_iter()
        .map(|(s, e, kk)| {
            let job = Job {
                features: features.slice(s, e),
                work: Work::Greedy {
                    k: kk,
                    rule: Greedy::Dpp(Dpp {
                        form: DppForm::OpenVino {
                            weight: c.weight as f32,
                        },
                        relevance: DppRelevance::Text(text.clone()),
                    }),
                },
            };
            (s, job)
        })
        .collect()
}

/// The notes of one DPP run over a pool of `k` picks.
pub(crate) fn report_notes(report: &DppReport, k: usize) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some((done, g)) = report.stopped {
        notes.push(format!(
            "DPP stopped after {done} of {k} picks: the best remaining gain ({g:e}) is not > 0 (the kernel's numerical rank is exhausted); the other {} picks are the unchosen tokens of highest relevance, scored 0",
            k - done
        ));
    }
    if report.degenerate > 0 {
        notes.push(format!(
            "{} pick(s) made after the DPP gains became NaN (counted as -FLT_MAX, as upstream): lowest index first",
            report.degenerate
        ));
    }
    if report.constant_relevance {
        notes.push(
            "relevance is equal for every token: r = 0, the kernel is (1 - w) S (as upstream)"
                .into(),
        );
    }
    notes
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
    use crate::{Budget, Method};

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
        assert_eq!(split_pools(7, 5, Split::Halves), vec![(0, 3, 2), (3, 7, 3)]);
    }

    #[test]
    fn crops_take_the_budget_each() {
        let a = [0.0f32; 1152];
        let two = Method::CdPruner(CdPruner::from_relevance(&a).crops(2));
        assert_eq!(
            two.keep_count(1152, None, Budget::Count(64)).unwrap(),
            Some(128)
        );
        assert_eq!(
            two.keep_count(1152, None, Budget::KeepRatio(0.25)).unwrap(),
            Some(288)
        );
        let e = two.keep_count(1152, None, Budget::Count(600)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "budget: keep count 600 exceeds the 576 tokens of a crop"
        );
    }
}
