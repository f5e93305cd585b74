//! What to compute: the selector ([`Method`]) and a validated [`Request`] (tokens + method + budget).

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::tokens::{check_scores, Features, Grid, Tokens};

/// IDPruner parameters (SPEC "IDPruner"): maximal marginal relevance of importance and
/// diversity.
#[derive(Debug, Clone, Copy)]
pub struct IdPruner<'a> {
    /// One raw importance score per token (upstream: the logit of a trained selector). It is
    /// min-max normalised internally.
    pub importance: &'a [f32],
    /// Weight of importance against diversity, in [0, 1]. Default 0.5.
    pub lambda: f64,
    /// Tokens taken per greedy round (>= 1). Default 1.
    pub parallel_k: usize,
}

impl<'a> IdPruner<'a> {
    /// IDPruner with the paper's defaults (lambda 0.5, one token per round).
    pub fn new(importance: &'a [f32]) -> Self {
        IdPruner {
            importance,
            lambda: 0.5,
            parallel_k: 1,
        }
    }

    /// Sets lambda.
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// Sets the number of tokens taken per round.
    pub fn parallel_k(mut self, parallel_k: usize) -> Self {
        self.parallel_k = parallel_k;
        self
    }
}

/// A token selector.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Method<'a> {
    /// DivPrune (Alvar et al., CVPR 2025): greedy max-min diversity over cosine distance.
    DivPrune,
    /// IDPruner (AngelSlim, 2026): MMR of importance and diversity.
    IdPruner(IdPruner<'a>),
    /// Baseline: the K tokens with the highest supplied score (lowest index first on ties).
    TopK {
        /// One score per token.
        scores: &'a [f32],
    },
    /// Baseline: K tokens drawn uniformly at random, reproducible from the seed on every
    /// backend.
    Random {
        /// The seed.
        seed: u64,
    },
    /// Baseline: K tokens spread evenly over the grid (a near-square lattice per frame).
    Uniform,
}

impl Method<'_> {
    /// The method's name as used by the CLI and in results.
    pub fn name(&self) -> &'static str {
        match self {
            Method::DivPrune => "divprune",
            Method::IdPruner(_) => "idpruner",
            Method::TopK { .. } => "topk",
            Method::Random { .. } => "random",
            Method::Uniform => "uniform",
        }
    }

    pub(crate) fn validate(&self, n: usize) -> Result<()> {
        match self {
            Method::IdPruner(p) => {
                check_scores("importance", p.importance, n)?;
                if !(p.lambda.is_finite() && (0.0..=1.0).contains(&p.lambda)) {
                    return Err(Error::Param(format!(
                        "lambda {} is outside [0, 1]",
                        p.lambda
                    )));
                }
                if p.parallel_k == 0 {
                    return Err(Error::Param("parallel_k must be at least 1".into()));
                }
                Ok(())
            }
            Method::TopK { scores } => check_scores("scores", scores, n),
            _ => Ok(()),
        }
    }
}

/// One pool to prune: features, method and budget, checked against each other.
///
/// A `Request` that exists is valid: the keep count is known and every per-token input has
/// length N and finite values.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    features: Features<'a>,
    method: Method<'a>,
    budget: Budget,
    keep: usize,
}

impl<'a> Request<'a> {
    /// Checks the method's inputs and the budget against the features ([`Tokens`] in host
    /// memory, or [`crate::DeviceTokens`] in a GPU buffer).
    pub fn new(
        features: impl Into<Features<'a>>,
        method: Method<'a>,
        budget: Budget,
    ) -> Result<Self> {
        let features = features.into();
        let n = features.n();
        method.validate(n)?;
        let keep = crate::select::keep_count(&method, n, features.grid(), budget)?;
        Ok(Request {
            features,
            method,
            budget,
            keep,
        })
    }

    /// The features.
    pub fn features(&self) -> &Features<'a> {
        &self.features
    }

    /// The host token matrix (`None` for features in a GPU buffer).
    pub fn tokens(&self) -> Option<&Tokens<'a>> {
        self.features.host()
    }

    /// Number of tokens N.
    pub fn n(&self) -> usize {
        self.features.n()
    }

    /// Feature width D.
    pub fn d(&self) -> usize {
        self.features.d()
    }

    /// The grid, when one was attached to the features.
    pub fn grid(&self) -> Option<Grid> {
        self.features.grid()
    }

    /// The method.
    pub fn method(&self) -> &Method<'a> {
        &self.method
    }

    /// The budget as given.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The keep count K.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Splits a request whose features carry a multi-frame grid into one request per frame,
    /// each with the same budget applied to its own frame. Returns each frame's first token
    /// index with it.
    pub fn per_frame(&self) -> Result<Vec<(usize, Request<'a>)>> {
        let grid = self.grid().ok_or_else(|| {
            Error::Shape("per-frame budgets need a grid (frames, height, width)".into())
        })?;
        let hw = grid.frame_len();
        (0..grid.frames)
            .map(|f| {
                let (start, end) = (f * hw, (f + 1) * hw);
                let features =
                    self.features
                        .rows(start, end, Grid::new(1, grid.height, grid.width))?;
                let method = match self.method {
                    Method::IdPruner(p) => Method::IdPruner(IdPruner {
                        importance: &p.importance[start..end],
                        ..p
                    }),
                    Method::TopK { scores } => Method::TopK {
                        scores: &scores[start..end],
                    },
                    Method::Random { seed } => Method::Random {
                        seed: seed.wrapping_add(f as u64),
                    },
                    m => m,
                };
                Ok((start, Request::new(features, method, self.budget)?))
            })
            .collect()
    }
}
