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

/// Where CDPruner's relevance comes from (SPEC "CDPruner").
#[derive(Debug, Clone, Copy)]
pub enum Relevance<'a> {
    /// Image embeddings E `[N, De]` (tokens in a joint image-text space, e.g. CLIP's visual
    /// projection) and text embeddings T `[M, De]` (one per text segment), both row-major;
    /// De is `image.len() / N`, M is `text.len() / De`. Relevance is the negated mean cosine,
    /// as upstream.
    Embeddings {
        /// E, `[N, De]`.
        image: &'a [f32],
        /// T, `[M, De]`.
        text: &'a [f32],
    },
    /// A relevance `a` `[N]` the caller computed (its sign is the caller's).
    Raw(&'a [f32]),
}

/// `cdpruner` parameters: the official code's conditional DPP (SPEC "CDPruner").
#[derive(Debug, Clone, Copy)]
pub struct CdPruner<'a> {
    /// The relevance.
    pub relevance: Relevance<'a>,
    /// Equal crops the tokens are made of (LLaVA-NeXT), at least 1: the relevance min-max is
    /// joint over all of them, then each crop runs its own DPP with the budget applied to its
    /// own tokens. Default 1.
    pub crops: usize,
}

impl<'a> CdPruner<'a> {
    /// CDPruner with relevance from image and text embeddings.
    pub fn from_embeddings(image: &'a [f32], text: &'a [f32]) -> Self {
        CdPruner {
            relevance: Relevance::Embeddings { image, text },
            crops: 1,
        }
    }

    /// CDPruner with a raw relevance vector.
    pub fn from_relevance(relevance: &'a [f32]) -> Self {
        CdPruner {
            relevance: Relevance::Raw(relevance),
            crops: 1,
        }
    }

    /// Sets the number of crops.
    pub fn crops(mut self, crops: usize) -> Self {
        self.crops = crops;
        self
    }
}

/// How `cdpruner-openvino` cuts the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// One DPP over the whole pool (tokenprune's default).
    #[default]
    None,
    /// Upstream's default: `[0, N/2)` gets `K/2` picks, `[N/2, N)` the rest, each half with
    /// its own relevance min-max and kernel.
    Halves,
}

impl std::str::FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Split::None),
            "halves" => Ok(Split::Halves),
            _ => Err(Error::Param(format!(
                "unknown split '{s}' (expected none or halves)"
            ))),
        }
    }
}

/// `cdpruner-openvino` parameters: OpenVINO GenAI's selector of the same name, a different
/// formula (SPEC "cdpruner-openvino").
#[derive(Debug, Clone, Copy)]
pub struct CdPrunerOpenVino<'a> {
    /// One text vector `[D]` in the features' space (upstream: the mean LLM input embedding of
    /// the prompt's text tokens).
    pub text: &'a [f32],
    /// Relevance weight w in [0, 1]. Default 0.5.
    pub weight: f64,
    /// Split the pool in halves (upstream's default) or not (tokenprune's default).
    pub split: Split,
    /// Negate the relevance (`a = -x . t`); upstream does not. Default false.
    pub negate: bool,
}

impl<'a> CdPrunerOpenVino<'a> {
    /// The OpenVINO variant with the default weight 0.5, no split, no negation.
    pub fn new(text: &'a [f32]) -> Self {
        CdPrunerOpenVino {
            text,
            weight: 0.5,
            split: Split::None,
            negate: false,
        }
    }

    /// OpenVINO GenAI's own budget, for users porting its settings: a pruning percent `p`
    /// gives `K = round_half_away_from_zero(N * (1 - p / 100))` (f64; not half to even:
    /// N = 5, p = 50 keeps 3); pass the result as `Budget::Count`.
    pub fn keep_from_percent(n: usize, percent: f64) -> Result<usize> {
        crate::select::dpp::openvino_keep_from_percent(n, percent)
    }
}

/// How many tokens VidCom2 keeps in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountMode {
    /// vLLM's reconcile to `K = max(T, min(trunc(N * b), N))`: K is a pure function of
    /// (N, T, budget) (tokenprune's default).
    #[default]
    Exact,
    /// The authors' code: K = the sum of the per-frame budgets, which depends on the data.
    Official,
}

impl std::str::FromStr for CountMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(CountMode::Exact),
            "official" => Ok(CountMode::Official),
            _ => Err(Error::Param(format!(
                "unknown count mode '{s}' (expected exact or official)"
            ))),
        }
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
    /// CDPruner (Zhang et al., NeurIPS 2025, the official code): instruction-aware conditional
    /// DPP.
    CdPruner(CdPruner<'a>),
    /// OpenVINO GenAI's CDPruner: a different kernel and relevance under the same name.
    CdPrunerOpenVino(CdPrunerOpenVino<'a>),
    /// EVS (efficient video sampling, as in vLLM): the tokens that changed most since the
    /// previous frame; needs the video grid.
    Evs,
    /// VidCom2 (frame-adaptive video compression): needs the video grid.
    VidCom2 {
        /// Exact (vLLM's reconcile, default) or official (data-dependent K).
        count: CountMode,
    },
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
            Method::CdPruner(_) => "cdpruner",
            Method::CdPrunerOpenVino(_) => "cdpruner-openvino",
            Method::Evs => "evs",
            Method::VidCom2 { .. } => "vidcom2",
        }
    }

    /// The keep count K of this method on `n` tokens (with their grid, where it has one)
    /// under `budget`: a pure function of its inputs, so a serving engine can size its
    /// placeholders before pruning. `None` only for `vidcom2` with `count = official`, whose K
    /// depends on the data.
    pub fn keep_count(
        &self,
        n: usize,
        grid: Option<Grid>,
        budget: Budget,
    ) -> Result<Option<usize>> {
        crate::select::keep_count(self, n, grid, budget)
    }

    pub(crate) fn validate(&self, n: usize, d: usize, grid: Option<Grid>) -> Result<()> {
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
            Method::CdPruner(c) => {
                if c.crops == 0 || !n.is_multiple_of(c.crops) {
                    return Err(Error::Shape(format!(
                        "{n} tokens do not split into {} equal crops",
                        c.crops
                    )));
                }
                match c.relevance {
                    Relevance::Raw(a) => check_scores("relevance", a, n),
                    Relevance::Embeddings { image, text } => {
                        let de = image.len() / n;
                        if de == 0 || image.len() != n * de {
                            return Err(Error::Shape(format!(
                                "image embeddings hold {} values, not [N = {n}, De] for any De",
                                image.len()
                            )));
                        }
                        check_matrix("image embeddings", image, n, de)?;
                        if text.is_empty() || !text.len().is_multiple_of(de) {
                            return Err(Error::Shape(format!(
                                "text embeddings hold {} values, not [M, De = {de}] (De from the image embeddings)",
                                text.len()
                            )));
                        }
                        check_matrix("text embeddings", text, text.len() / de, de)
                    }
                }
            }
            Method::CdPrunerOpenVino(c) => {
                if c.text.len() != d {
                    return Err(Error::Shape(format!(
                        "the text embedding holds {} values but the features have D = {d} (cdpruner-openvino takes one text vector in the features' space)",
                        c.text.len()
                    )));
                }
                check_matrix("text embedding", c.text, 1, d)?;
                if !(c.weight.is_finite() && (0.0..=1.0).contains(&c.weight)) {
                    return Err(Error::Param(format!(
                        "relevance weight {} is outside [0, 1]",
                        c.weight
                    )));
                }
                Ok(())
            }
            Method::Evs | Method::VidCom2 { .. } => video_grid(self.name(), n, grid).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// True for the video methods, which need the grid and prune the whole video at once.
    pub fn is_video(&self) -> bool {
        matches!(self, Method::Evs | Method::VidCom2 { .. })
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
    Ok(grid)
}

/// Checks a companion matrix (embeddings): `rows x cols` values, all finite.
pub(crate) fn check_matrix(
    what: &'static str,
    data: &[f32],
    rows: usize,
    cols: usize,
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(Error::Shape(format!("{what} are empty ({rows} x {cols})")));
    }
    if Some(data.len()) != rows.checked_mul(cols) {
        return Err(Error::Shape(format!(
            "{what} hold {} values but {rows} x {cols} = {} are needed",
            data.len(),
            rows.saturating_mul(cols)
        )));
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what,
            at: format!("row {}, column {}", pos / cols, pos % cols),
            value: data[pos].to_string(),
        });
    }
    Ok(())
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
    /// K is a pure function of the inputs (false only for `vidcom2` official).
    exact: bool,
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
        let (n, grid) = (features.n(), features.grid());
        method.validate(n, features.d(), grid)?;
        let (keep, exact) = match crate::select::keep_count(&method, n, grid, budget)? {
            Some(k) => (k, true),
            None => (
                crate::select::nominal_keep(&method, n, grid, budget)?,
                false,
            ),
        };
        Ok(Request {
            features,
            method,
            budget,
            keep,
            exact,
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

    /// The keep count K. For `vidcom2` with `count = official` K depends on the data: this is
    /// then the nominal `trunc(N * b)` and the selection may hold a few more or fewer (see
    /// [`Request::exact_keep`]).
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// The keep count K when it is a pure function of the inputs (every method but `vidcom2`
    /// with `count = official`), `None` otherwise.
    pub fn exact_keep(&self) -> Option<usize> {
        self.exact.then_some(self.keep)
    }

    /// Splits a request whose features carry a multi-frame grid into one request per frame,
    /// each with the same budget applied to its own frame. Returns each frame's first token
    /// index with it.
    pub fn per_frame(&self) -> Result<Vec<(usize, Request<'a>)>> {
        if self.method.is_video() {
            return Err(Error::Param(format!(
                "{} budgets the frames of a video itself: prune the whole video, not per frame",
                self.method.name()
            )));
        }
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
                    Method::CdPruner(c) => Method::CdPruner(CdPruner {
                        relevance: match c.relevance {
                            Relevance::Raw(a) => Relevance::Raw(&a[start..end]),
                            Relevance::Embeddings { image, text } => {
                                let de = image.len() / self.n();
                                Relevance::Embeddings {
                                    image: &image[start * de..end * de],
                                    text,
                                }
                            }
                        },
                        ..c
                    }),
                    m => m,
                };
                Ok((start, Request::new(features, method, self.budget)?))
            })
            .collect()
    }
}
