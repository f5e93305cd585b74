//! # tokenprune
//!
//! Prunes the visual tokens of multimodal LLMs with the published attention-free selectors,
//! DivPrune (greedy max-min diversity) and IDPruner (MMR of importance and diversity), plus
//! the TopK / Random / Uniform baselines. The same selection runs on the CPU engine (this
//! crate's oracle and fallback) and on any GPU through wgpu (module `gpu`, feature `gpu`, on by
//! default; see `docs/GPU.md`), and in the browser.
//!
//! ```
//! use tokenprune::{Budget, Method, Pruner, Request, Tokens};
//! let feats: Vec<f32> = (0..16 * 8).map(|i| ((i * 7919) % 97) as f32).collect();
//! let tokens = Tokens::new(&feats, 16, 8)?;
//! let req = Request::new(tokens, Method::DivPrune, Budget::KeepRatio(0.25))?;
//! let sel = Pruner::cpu().prune_blocking(&req)?;
//! assert_eq!(sel.kept.len(), 4);
//! let kept_rows = sel.gather(&tokens); // [4, 8]
//! # assert_eq!(kept_rows.len(), 32);
//! # Ok::<(), tokenprune::Error>(())
//! ```
//!
//! The API types ([`Tokens`], [`Budget`], [`Method`], [`Request`], [`Selection`], [`Pruner`])
//! are re-exported here; the GPU engine's extras live in `gpu` (feature `gpu`), the file
//! readers in `io` (feature `io`), kept-set figures in [`metrics`]. How the crate is built
//! (the select layer, the engines, the kernels): ARCHITECTURE.md.

mod budget;
mod cpu;
mod error;
#[cfg(feature = "gpu")]
// On wasm32, wgpu's handles are neither Send nor Sync; the engine's `Arc`s are for native threads.
#[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
pub mod gpu;
#[cfg(feature = "io")]
pub mod io;
mod method;
pub mod metrics;
mod pruner;
pub mod schema;
mod select;
mod selection;
mod tokens;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use budget::Budget;
pub use cpu::{CpuEngine, DEFAULT_DENSE_LIMIT};
pub use error::{Error, Result};
/// The (t, h, w) coordinate type of [`Grid::coord`] (glam's).
pub use glam::UVec3;
pub use method::{
    CdPruner, CdPrunerOpenVino, CountMode, IdPruner, Method, Relevance, Request, Split,
};
pub use pruner::{BackendChoice, Pruner, PrunerOptions};
pub use selection::{Backend, Selection};
#[cfg(feature = "gpu")]
pub use tokens::DeviceTokens;
pub use tokens::{Features, Grid, Tokens};

#[cfg(feature = "gpu")]
pub use gpu::{GpuEngine, GpuOptions, GpuPath};
/// The wgpu crate this build uses (for [`GpuEngine::from_device`] and [`DeviceTokens`]).
#[cfg(feature = "gpu")]
pub use wgpu;
