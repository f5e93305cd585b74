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
pub(crate) mod rownorm;
pub(crate) mod similarity;
pub(crate) mod split;
pub(crate) mod vidcom2;

use crate::error::{Error, Result};
use crate::select::{Greedy, Job, Output, Scoring, Work};

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
    /// Runs jobs, in parallel natively; outputs in job order. Features must be in host
    /// memory.
    pub(crate) fn run(&self, jobs: &[Job]) -> Result<Vec<Output>> {
        let tokens = jobs
            .iter()
            .map(|j| j.features.host())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::Backend(
                    "features in a GPU buffer need a Pruner on the GPU engine (this one runs on the CPU)".into(),
                )
            })?;
        let work: Vec<_> = jobs.iter().zip(tokens).map(|(j, t)| (t, &j.work)).collect();
        Ok(par::map(&work, |&(tokens, work)| match work {
            Work::Greedy { k, rule } => Output::Picks(match rule {
                Greedy::DivPrune => greedy::divprune(tokens, *k, self.dense_limit),
                Greedy::IdPruner(mmr) => greedy::idpruner(tokens, *k, mmr),
                Greedy::Dpp(dpp) => cdpruner::run(tokens, *k, dpp),
            }),
            Work::Scores(Scoring::Evs { frame_len }) => {
                Output::Scores(evs::run(tokens, *frame_len))
            }
            Work::Scores(Scoring::VidCom2 { frames, frame_len }) => {
                Output::Scores(vidcom2::run(tokens, *frames, *frame_len))
            }
        }))
    }
}
