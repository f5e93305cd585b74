//! The CPU engine: the selector math, written as the same stages the GPU kernels run
//! (normalise -> tiled similarity -> greedy argmax), each stage in its own file beside its
//! WGSL twin's name. It is the test oracle for every other backend and the fallback where no
//! GPU exists (wasm included). Multi-threaded natively (rayon), single-threaded on wasm32.

pub(crate) mod baselines;
pub(crate) mod greedy;
pub(crate) mod matmul;
pub(crate) mod normalize;
mod par;
pub(crate) mod similarity;

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
