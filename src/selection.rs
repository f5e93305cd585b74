//! The result of pruning one pool.

use crate::tokens::Tokens;

/// Which engine produced a result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The CPU engine.
    Cpu,
    /// The GPU engine (wgpu), with the adapter's name.
    Gpu(String),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Cpu => f.write_str("cpu"),
            Backend::Gpu(adapter) => write!(f, "gpu ({adapter})"),
        }
    }
}

/// The tokens kept from one pool. Two selections are equal when everything but
/// [`Selection::gpu_ms`] (a timing, not part of the result) is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Selection {
    /// The method that ran.
    pub method: &'static str,
    /// Number of tokens in the pool.
    pub n: usize,
    /// Feature width.
    pub d: usize,
    /// Kept indices in selection order (first = seed).
    pub order: Vec<u32>,
    /// Kept indices in positional (ascending) order: what a model consumes.
    pub kept: Vec<u32>,
    /// The score of each pick when it was picked, aligned with `order`: DivPrune the min
    /// distance to the kept set (the seed: distance to its nearest neighbour), IDPruner the MMR
    /// score (first round: normalised importance), TopK the supplied score, Random the random
    /// key in [0, 1), Uniform 0. When K = N nothing is computed and every score is 0.
    pub scores: Vec<f32>,
    /// (t, h, w) grid coordinates of the kept tokens, aligned with `kept`, when a grid was given.
    pub coords: Option<Vec<[u32; 3]>>,
    /// The engine that ran.
    pub backend: Backend,
    /// Things worth knowing about this run (zero-norm rows, fallbacks, ...).
    pub notes: Vec<String>,
    /// GPU time of the engine call that computed this selection, in milliseconds, from
    /// timestamp queries around its compute passes (summed over its submissions). A batch is
    /// one call: its selections carry the same figure. `None` on the CPU engine, where the
    /// adapter has no timestamp queries, and where no kernel ran for this selection (K = N,
    /// the baselines, a fallback to the CPU engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_ms: Option<f64>,
}

impl PartialEq for Selection {
    fn eq(&self, o: &Self) -> bool {
        (self.method, self.n, self.d) == (o.method, o.n, o.d)
            && (&self.order, &self.kept, &self.scores) == (&o.order, &o.kept, &o.scores)
            && (&self.coords, &self.backend, &self.notes) == (&o.coords, &o.backend, &o.notes)
    }
}

impl Selection {
    /// The number of kept tokens K.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The kept rows of `tokens`, in positional order, as a `[K, D]` row-major matrix.
    ///
    /// # Panics
    /// If `tokens` is not the matrix this selection was computed from (different N or D).
    pub fn gather(&self, tokens: &Tokens) -> Vec<f32> {
        assert!(
            tokens.n() == self.n && tokens.d() == self.d,
            "gather: selection is for {}x{} tokens, got {}x{}",
            self.n,
            self.d,
            tokens.n(),
            tokens.d()
        );
        let mut out = Vec::with_capacity(self.kept.len() * self.d);
        for &i in &self.kept {
            out.extend_from_slice(tokens.row(i as usize));
        }
        out
    }
}
