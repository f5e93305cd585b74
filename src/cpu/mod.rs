//! The CPU engine: the selector math, written as the same stages the GPU kernels run
//! (normalise -> tiled similarity -> greedy argmax), each stage in its own file beside its
//! WGSL twin's name. It is the test oracle for every other backend and the fallback where no
//! GPU exists (wasm included). Multi-threaded natively (rayon), single-threaded on wasm32.

pub(crate) mod baselines;
pub(crate) mod cdpruner;
pub(crate) mod evs;
pub(crate) mod greedy;
pub(crate) mod matmul;
pub(crate) mod normalize;
mod par;
mod rownorm;
pub(crate) mod similarity;
pub(crate) mod vidcom2;
mod video;

/// CDPruner (both variants), EVS and VidCom2 as plain functions over slices, for the
/// integration tests until they are wired into [`Method`] (phase 2). Not a stable API.
#[doc(hidden)]
pub mod __methods {
    pub use super::cdpruner::{Relevance, Split};
    pub use super::vidcom2::CountMode;
    pub use super::video::KeptSet;
    use crate::{Budget, Grid, Result};

    /// A ranked selection: (selection order, score of each pick, notes).
    pub type Ranked = (Vec<u32>, Vec<f32>, Vec<String>);

    fn ranked(p: super::greedy::Picks) -> Ranked {
        (p.order, p.scores, p.notes)
    }

    /// `cdpruner`: see `cpu::cdpruner::cdpruner`.
    pub fn cdpruner(
        features: &[f32],
        n: usize,
        d: usize,
        relevance: Relevance<'_>,
        pools: usize,
        k: usize,
    ) -> Result<Ranked> {
        super::cdpruner::cdpruner(features, n, d, relevance, pools, k).map(ranked)
    }

    /// `cdpruner-openvino`: see `cpu::cdpruner::cdpruner_openvino`.
    #[allow(clippy::too_many_arguments)]
    pub fn cdpruner_openvino(
        features: &[f32],
        n: usize,
        d: usize,
        text: &[f32],
        weight: f32,
        negate: bool,
        split: Split,
        k: usize,
    ) -> Result<Ranked> {
        super::cdpruner::cdpruner_openvino(features, n, d, text, weight, negate, split, k)
            .map(ranked)
    }

    /// K per pool for `cdpruner`.
    pub fn cdpruner_keep_per_pool(n: usize, pools: usize, budget: Budget) -> Result<usize> {
        super::cdpruner::keep_per_pool(n, pools, budget)
    }

    /// OpenVINO GenAI's percent budget.
    pub fn openvino_keep_from_percent(n: usize, percent: f64) -> Result<usize> {
        super::cdpruner::openvino_keep_from_percent(n, percent)
    }

    /// EVS keeping `k` tokens.
    pub fn evs(
        features: &[f32],
        n: usize,
        d: usize,
        grid: Option<Grid>,
        k: usize,
    ) -> Result<KeptSet> {
        super::evs::evs(features, n, d, grid, k)
    }

    /// K for EVS.
    pub fn evs_keep_count(grid: Grid, budget: Budget) -> Result<usize> {
        super::evs::keep_count(grid, budget)
    }

    /// VidCom2.
    pub fn vidcom2(
        features: &[f32],
        n: usize,
        d: usize,
        grid: Option<Grid>,
        budget: Budget,
        mode: CountMode,
    ) -> Result<KeptSet> {
        super::vidcom2::vidcom2(features, n, d, grid, budget, mode)
    }

    /// K for VidCom2 (`None` in `official` mode).
    pub fn vidcom2_keep_count(
        grid: Grid,
        budget: Budget,
        mode: CountMode,
    ) -> Result<Option<usize>> {
        super::vidcom2::keep_count(grid, budget, mode)
    }
}

use crate::method::{Method, Request};
use crate::selection::{Backend, Selection};

/// Default cap on the bytes of similarity tiles kept for the greedy steps (native).
#[cfg(not(target_arch = "wasm32"))]
pub const DEFAULT_DENSE_LIMIT: usize = 1 << 30;
/// Default cap on the bytes of similarity tiles kept for the greedy steps (wasm32).
#[cfg(target_arch = "wasm32")]
pub const DEFAULT_DENSE_LIMIT: usize = 128 << 20;

/// The CPU engine's settings.
#[derive(Debug, Clone, Copy)]
pub struct CpuEngine {
    /// DivPrune keeps the similarity tiles (N^2/2 floats) for its greedy steps while they fit
    /// in this many bytes; above it each step recomputes one row (N x D dot products).
    pub dense_limit: usize,
}

impl Default for CpuEngine {
    fn default() -> Self {
        CpuEngine {
            dense_limit: DEFAULT_DENSE_LIMIT,
        }
    }
}

impl CpuEngine {
    /// Prunes one pool.
    pub fn run(&self, req: &Request) -> Selection {
        let tokens = req.tokens();
        let (n, k) = (tokens.n(), req.keep());
        if k == n {
            // SPEC: K = N keeps everything in positional order, nothing is computed.
            let order = (0..n as u32).collect();
            return Selection::from_order(req, order, vec![0.0; n], Backend::Cpu, Vec::new());
        }
        let (order, scores, notes) = match req.method() {
            Method::DivPrune => {
                let p = greedy::divprune(tokens, k, self.dense_limit);
                (p.order, p.scores, p.notes)
            }
            Method::IdPruner(params) => {
                let p = greedy::idpruner(tokens, k, params);
                (p.order, p.scores, p.notes)
            }
            m => {
                let (order, s) = baseline(m, n, k, tokens.grid()).expect("a baseline method");
                (order, s, Vec::new())
            }
        };
        Selection::from_order(req, order, scores, Backend::Cpu, notes)
    }

    /// Prunes many independent pools, in parallel natively.
    pub fn run_batch(&self, reqs: &[Request]) -> Vec<Selection> {
        par::map(reqs, |r| self.run(r))
    }
}

/// A baseline's selection (order, scores) from its inputs alone; `None` for the greedy
/// methods. Every engine runs baselines through this one function.
pub(crate) fn baseline(
    method: &Method,
    n: usize,
    k: usize,
    grid: Option<crate::tokens::Grid>,
) -> Option<(Vec<u32>, Vec<f32>)> {
    match method {
        Method::TopK { scores } => {
            let order = baselines::top_k(scores, k);
            let s = order.iter().map(|&i| scores[i as usize]).collect();
            Some((order, s))
        }
        Method::Random { seed } => Some(baselines::random(n, k, *seed)),
        Method::Uniform => Some((baselines::uniform(n, k, grid), vec![0.0; k])),
        _ => None,
    }
}
