//! What an engine runs: greedy pools prepared by the select layer, and what comes back.
//! Engines know nothing else about methods: budgets, baselines, importance normalisation,
//! notes and result assembly all happen in the select layer, once for every engine.

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

/// The greedy rule of a job.
#[derive(Debug, Clone)]
pub(crate) enum Greedy {
    /// Max-min cosine distance (SPEC "DivPrune").
    DivPrune,
    /// Maximal marginal relevance (SPEC "IDPruner").
    IdPruner(Mmr),
}

/// One pool for an engine's greedy loop: 0 <= K < N.
#[derive(Debug, Clone)]
pub(crate) struct GreedyJob<'a> {
    pub features: Features<'a>,
    pub k: usize,
    pub greedy: Greedy,
}

impl GreedyJob<'_> {
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
}

/// What an engine did with one job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It ran.
    Picked(Picks),
    /// It does not fit the engine (a GPU's limits), and why; the select layer falls back.
    Misfit(String),
}
