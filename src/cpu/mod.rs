//! The CPU engine: the selector math, written as the same stages the GPU kernels run
//! (normalise -> tiled similarity -> greedy argmax), each stage in its own file beside its
//! WGSL twin's name. It is the test oracle for every other backend and the fallback where no
//! GPU exists (wasm included). Multi-threaded natively (rayon), single-threaded on wasm32.

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

    fn ranked(p: super::cdpruner::Picks) -> Ranked {
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

use crate::error::{Error, Result};
use crate::select::{Greedy, GreedyJob, Picks};

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
    /// Runs greedy jobs, in parallel natively; results in job order. Features must be in
    /// host memory.
    pub(crate) fn run_greedy(&self, jobs: &[GreedyJob]) -> Result<Vec<Picks>> {
        let tokens = jobs
            .iter()
            .map(|j| j.features.host())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::Backend(
                    "features in a GPU buffer need a Pruner on the GPU engine (this one runs on the CPU)".into(),
                )
            })?;
        let work: Vec<_> = jobs
            .iter()
            .zip(tokens)
            .map(|(j, t)| (t, j.k, &j.greedy))
            .collect();
        Ok(par::map(&work, |&(tokens, k, rule)| match rule {
            Greedy::DivPrune => greedy::divprune(tokens, k, self.dense_limit),
            Greedy::IdPruner(mmr) => greedy::idpruner(tokens, k, mmr),
        }))
    }
}
