//! The entry point: a [`Pruner`] owns an engine (set up once) and prunes many requests.

use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::{GpuEngine, GpuOptions};
use crate::method::Request;
use crate::selection::{Backend, Selection};

/// Which engine a [`Pruner`] should use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The best available: the GPU when a hardware adapter exists, else the CPU. Software
    /// adapters (device type CPU, e.g. lavapipe) are slower than the CPU engine and are used
    /// only when `TOKENPRUNE_ADAPTER` names them.
    #[default]
    Auto,
    /// The CPU engine.
    Cpu,
    /// The GPU engine; an error when no adapter is available.
    Gpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            _ => Err(Error::Param(format!(
                "backend '{s}' is not one of auto, cpu, gpu"
            ))),
        }
    }
}

/// How to build a [`Pruner`].
#[derive(Debug, Clone, Default)]
pub struct PrunerOptions {
    /// Which engine to use.
    pub backend: BackendChoice,
    /// CPU engine settings.
    pub cpu: CpuEngine,
    /// GPU engine settings.
    #[cfg(feature = "gpu")]
    pub gpu: GpuOptions,
}

#[derive(Debug)]
enum Engine {
    Cpu(CpuEngine),
    #[cfg(feature = "gpu")]
    Gpu(GpuEngine),
}

/// Prunes visual tokens. Build one and reuse it: set-up work happens once here, and each call
/// does only what it needs. `Send + Sync`: share it between threads.
#[derive(Debug)]
pub struct Pruner {
    engine: Engine,
    /// Why `Auto` did not pick the GPU, when it did not.
    fallback: Option<String>,
}

impl Pruner {
    /// Builds a pruner on the chosen backend.
    pub async fn new(options: PrunerOptions) -> Result<Self> {
        match options.backend {
            BackendChoice::Cpu => Ok(Pruner::cpu_with(options.cpu)),
            #[cfg(feature = "gpu")]
            BackendChoice::Gpu => Ok(Pruner::from_gpu(GpuEngine::new(options.gpu).await?)),
            #[cfg(feature = "gpu")]
            BackendChoice::Auto => {
                let why = match GpuEngine::new(options.gpu).await {
                    Ok(g) => {
                        let software = g.adapter_info().device_type == wgpu::DeviceType::Cpu;
                        let named = crate::gpu::adapter_named_by_env();
                        if !software || named {
                            return Ok(Pruner::from_gpu(g));
                        }
                        format!(
                            "the only GPU adapter, '{}', is a software rasteriser (set {} to use it)",
                            g.adapter_name(),
                            crate::gpu::ENV_ADAPTER
                        )
                    }
                    Err(e) => e.to_string(),
                };
                let mut p = Pruner::cpu_with(options.cpu);
                p.fallback = Some(why);
                Ok(p)
            }
            #[cfg(not(feature = "gpu"))]
            BackendChoice::Auto => {
                let mut p = Pruner::cpu_with(options.cpu);
                p.fallback = Some("this build has no GPU engine (feature `gpu`)".into());
                Ok(p)
            }
            #[cfg(not(feature = "gpu"))]
            BackendChoice::Gpu => Err(Error::Backend(
                "the GPU engine is not available in this build (feature `gpu`)".into(),
            )),
        }
    }

    /// A pruner on an existing GPU engine (shares its device, pipelines and buffers).
    #[cfg(feature = "gpu")]
    pub fn from_gpu(engine: GpuEngine) -> Self {
        Pruner {
            engine: Engine::Gpu(engine),
            fallback: None,
        }
    }

    /// The GPU engine, when this pruner runs on one (e.g. for
    /// [`GpuEngine::last_gpu_time_ms`]).
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<&GpuEngine> {
        match &self.engine {
            Engine::Gpu(g) => Some(g),
            _ => None,
        }
    }

    /// True when this pruner's GPU device is lost (destroyed, reset by the driver, removed):
    /// every call then returns [`Error::Backend`] at once, and the remedy is a new pruner
    /// ([`Pruner::new`]). Always false on the CPU engine.
    pub fn is_lost(&self) -> bool {
        match &self.engine {
            Engine::Cpu(_) => false,
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.is_lost(),
        }
    }

    /// Why [`BackendChoice::Auto`] fell back to the CPU, when it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// A pruner on the CPU engine with default settings (never fails).
    pub fn cpu() -> Self {
        Pruner::cpu_with(CpuEngine::default())
    }

    /// A pruner on the CPU engine with the given settings.
    pub fn cpu_with(engine: CpuEngine) -> Self {
        Pruner {
            engine: Engine::Cpu(engine),
            fallback: None,
        }
    }

    /// The backend this pruner runs on.
    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.backend(),
        }
    }

    /// Prunes one pool.
    pub async fn prune(&self, req: &Request<'_>) -> Result<Selection> {
        match &self.engine {
            Engine::Cpu(e) => Ok(e.run(req)),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.run(req).await,
        }
    }

    /// Prunes many independent pools (a batch of images) in one call; results are in request
    /// order and equal to pruning each alone.
    pub async fn prune_batch(&self, reqs: &[Request<'_>]) -> Result<Vec<Selection>> {
        match &self.engine {
            Engine::Cpu(e) => Ok(e.run_batch(reqs)),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.run_batch(reqs).await,
        }
    }

    /// Prunes a multi-frame pool (a video) frame by frame, each frame with the request's
    /// budget applied to its own tokens, and returns one selection over the whole pool
    /// (indices and coordinates global). To prune a video as one pool, call [`Pruner::prune`].
    pub async fn prune_per_frame(&self, req: &Request<'_>) -> Result<Selection> {
        let frames = req.per_frame()?;
        let reqs: Vec<Request> = frames.iter().map(|(_, r)| *r).collect();
        let parts = self.prune_batch(&reqs).await?;
        let parts = frames.iter().map(|(s, _)| *s).zip(parts).collect();
        Ok(Selection::merge_frames(req, parts))
    }
}

/// Blocking wrappers (native only): the async core driven by `pollster`.
#[cfg(not(target_arch = "wasm32"))]
impl Pruner {
    /// Blocking [`Pruner::new`].
    pub fn new_blocking(options: PrunerOptions) -> Result<Self> {
        pollster::block_on(Pruner::new(options))
    }

    /// Blocking [`Pruner::prune`].
    pub fn prune_blocking(&self, req: &Request<'_>) -> Result<Selection> {
        pollster::block_on(self.prune(req))
    }

    /// Blocking [`Pruner::prune_batch`].
    pub fn prune_batch_blocking(&self, reqs: &[Request<'_>]) -> Result<Vec<Selection>> {
        pollster::block_on(self.prune_batch(reqs))
    }

    /// Blocking [`Pruner::prune_per_frame`].
    pub fn prune_per_frame_blocking(&self, req: &Request<'_>) -> Result<Selection> {
        pollster::block_on(self.prune_per_frame(req))
    }
}
