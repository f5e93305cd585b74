//! What an engine runs: jobs prepared by the select layer, and what comes back. Engines know
//! nothing else about methods: budgets, baselines, relevance and importance preparation, the
//! host-side steps of the video methods, notes and result assembly all happen in the select
//! layer, once for every engine.

use crate::tokens::Features;

/// IDPruner's prepared inputs (SPEC "IDPruner"): min-max normalised importance and the f32
/// weights every engine multiplies by.
#[derive(Debug, Clone)]
pub(crate) struct Mmr {
    /// `(w - min w) / (max w - min w + 1e-6)` per token.
    pub imp: Vec<f32>,
    /// `lambda` as f32.
    pub lambda: f32,
    /// `1 - lambda`, subtracted in f64 first (as Python does before torch casts it), as f32.
    pub one_minus: f32,
    /// Tokens per round, at least 1 and at most max(K, 1).
    pub parallel_k: usize,
}

/// CDPruner's DPP kernel (SPEC "CDPruner").
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DppForm {
    /// `cdpruner`: `L_ij = (r_i * S_ij) * r_j`, S from rows normalised by their plain norms.
    Official,
    /// `cdpruner-openvino`: `K_ij = S_ij (1 - w) + ((r_i S_ij) r_j) w`, rows normalised by
    /// `sqrt(sum v^2 + 1e-6)`.
    OpenVino { weight: f32 },
}

/// Where a DPP job's relevance comes from.
#[derive(Debug, Clone)]
pub(crate) enum DppRelevance {
    /// r per token of the pool, prepared on the host (`cdpruner`).
    Given(Vec<f32>),
    /// From the pool's own normalised rows against a text vector `[D]` (`cdpruner-openvino`):
    /// `a = u . t_hat`, then the OpenVINO min-max over the pool.
    Text(Vec<f32>),
}

/// One CDPruner DPP over one pool.
#[derive(Debug, Clone)]
pub(crate) struct Dpp {
    pub form: DppForm,
    pub relevance: DppRelevance,
}

/// What a DPP run reports besides its picks (the select layer turns it into notes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct DppReport {
    /// `cdpruner`: the DPP stopped after this many picks with this best gain (the rank
    /// policy); the rest were filled by relevance.
    pub stopped: Option<(usize, f32)>,
    /// `cdpruner-openvino`: picks made after the gains became NaN.
    pub degenerate: usize,
    /// `cdpruner-openvino`: the relevance was equal for every token (r = 0).
    pub constant_relevance: bool,
}

/// The greedy rule of a job.
#[derive(Debug, Clone)]
pub(crate) enum Greedy {
    /// Max-min cosine distance (SPEC "DivPrune").
    DivPrune,
    /// Maximal marginal relevance (SPEC "IDPruner").
    IdPruner(Mmr),
    /// Conditional DPP, greedy MAP by incremental Cholesky (SPEC "CDPruner").
    Dpp(Dpp),
}

/// The per-token scores of a video method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scoring {
    /// EVS: frame 0 scores 255, later tokens `1 - cos` with the same position one frame
    /// earlier.
    Evs { frame_len: usize },
    /// VidCom2: low-variance channels, centres, Gaussian similarity sums.
    VidCom2 { frames: usize, frame_len: usize },
}

/// What to run on one pool.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// K greedy picks (0 <= K < N).
    Greedy { k: usize, rule: Greedy },
    /// Per-token scores (the host then selects).
    Scores(Scoring),
}

/// One pool for an engine.
#[derive(Debug, Clone)]
pub(crate) struct Job<'a> {
    pub features: Features<'a>,
    pub work: Work,
}

#[cfg_attr(not(feature = "gpu"), allow(dead_code))] // the GPU engine's planner reads them
impl Job<'_> {
    pub fn n(&self) -> usize {
        self.features.n()
    }

    pub fn d(&self) -> usize {
        self.features.d()
    }
}

/// A greedy run's result: picks in order with their scores, and the zero rows seen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picks {
    pub order: Vec<u32>,
    pub scores: Vec<f32>,
    pub zero_rows: usize,
    /// DPP runs only.
    pub dpp: Option<DppReport>,
}

/// A scoring run's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VideoScores {
    /// The method's score per token (EVS: higher = kept first; VidCom2: lower = kept first).
    pub s: Vec<f32>,
    /// VidCom2: each token's Gaussian similarity to the video centre (the frame scores).
    pub g_video: Vec<f32>,
    pub zero_rows: usize,
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    Picks(Picks),
    Scores(VideoScores),
}

/// What an engine did with one job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It ran.
    Ran(Output),
    /// It does not fit the engine (a GPU's limits, or no kernel), and why; the select layer
    /// falls back to the CPU engine. Only the GPU engine produces it.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    Misfit(String),
    /// Its features (in a caller's GPU buffer, checked by the GPU) hold a NaN or an infinity:
    /// the first one, in the job's rows. Only the GPU engine produces it.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    NonFinite(BadValue),
}

/// A non-finite feature: row (within the job), column and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BadValue {
    pub row: usize,
    pub column: usize,
    pub value: f32,
}

impl BadValue {
    /// The error host features with this value get (`Tokens::new`), the row counted from
    /// the request's first row (`start`: the job's first row in its request).
    pub fn error(&self, start: usize) -> crate::Error {
        crate::Error::NonFinite {
            what: "features",
            at: format!("row {}, column {}", start + self.row, self.column),
            value: self.value.to_string(),
        }
    }
}

#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
impl Outcome {
    /// `Ran`, or `NonFinite` for a job whose features hold a bad value.
    pub fn ran(r: std::result::Result<Output, BadValue>) -> Self {
        match r {
            Ok(o) => Outcome::Ran(o),
            Err(b) => Outcome::NonFinite(b),
        }
    }
}
