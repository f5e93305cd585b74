//! The entry point: a [`Pruner`] owns an engine (set up once) and prunes many requests.

use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::{GpuEngine, GpuOptions};
use crate::method::Request;
use crate::select::{self, Engine};
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

/// Prunes visual tokens. Build one and reuse it: set-up work happens once here, and each call
/// does only what it needs. `Send + Sync`: share it between threads.
#[derive(Debug)]
pub struct Pruner {
    /// The GPU engine, when this pruner runs on one.
    #[cfg(feature = "gpu")]
    gpu: Option<GpuEngine>,
    /// The CPU engine: the engine itself, or a GPU pruner's fallback for pools over the
    /// GPU's limits.
    cpu: CpuEngine,
    /// Why `Auto` did not pick the GPU, when it did not.
    fallback: Option<String>,
}

impl Pruner {
    /// Builds a pruner on the chosen backend.
    pub async fn new(options: PrunerOptions) -> Result<Self> {
        match options.backend {
            BackendChoice::Cpu => Ok(Pruner::cpu_with(options.cpu)),
            #[cfg(feature = "gpu")]
            BackendChoice::Gpu => {
                Ok(Pruner::from_gpu(GpuEngine::new(options.gpu).await?).with_cpu(options.cpu))
            }
            #[cfg(feature = "gpu")]
            BackendChoice::Auto => {
                let why = match GpuEngine::new(options.gpu).await {
                    Ok(g) => {
                        let software = g.adapter_info().device_type == wgpu::DeviceType::Cpu;
                        let named = crate::gpu::adapter_named_by_env();
                        if !software || named {
                            return Ok(Pruner::from_gpu(g).with_cpu(options.cpu));
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

    /// A pruner on an existing GPU engine (shares its device, pipelines and buffers); pools
    /// over the GPU's limits run on a default CPU engine (see [`Pruner::with_cpu`]).
    #[cfg(feature = "gpu")]
    pub fn from_gpu(engine: GpuEngine) -> Self {
        Pruner {
            gpu: Some(engine),
            cpu: CpuEngine::default(),
            fallback: None,
        }
    }

    /// The same pruner with other CPU engine settings (the engine itself, or a GPU pruner's
    /// fallback).
    pub fn with_cpu(mut self, cpu: CpuEngine) -> Self {
        self.cpu = cpu;
        self
    }

    /// The GPU engine, when this pruner runs on one (e.g. for
    /// [`GpuEngine::last_gpu_time_ms`]).
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<&GpuEngine> {
        self.gpu.as_ref()
    }

    /// The CPU engine settings in force.
    pub fn cpu_engine(&self) -> &CpuEngine {
        &self.cpu
    }

    fn engine(&self) -> Engine<'_> {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            return Engine::Gpu(g);
        }
        Engine::Cpu(&self.cpu)
    }

    /// True when this pruner's GPU device is lost (destroyed, reset by the driver, removed):
    /// every call then returns [`Error::Backend`] at once, and the remedy is a new pruner
    /// ([`Pruner::new`]). Always false on the CPU engine.
    pub fn is_lost(&self) -> bool {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            return g.is_lost();
        }
        false
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
            #[cfg(feature = "gpu")]
            gpu: None,
            cpu: engine,
            fallback: None,
        }
    }

    /// The backend this pruner runs on.
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            return g.backend();
        }
        Backend::Cpu
    }

    /// Prunes one pool.
    pub async fn prune(&self, req: &Request<'_>) -> Result<Selection> {
        self.prune_batch(std::slice::from_ref(req))
            .await?
            .pop()
            .ok_or_else(|| Error::Backend("internal: no result".into()))
    }

    /// Prunes many independent pools (a batch of images) in one call; results are in request
    /// order and equal to pruning each alone. On the GPU every greedy pool of the batch runs
    /// in the same dispatches while the device's limits allow; a pool over them runs on the
    /// CPU engine (its selection says so in `notes` and carries [`Backend::Cpu`]).
    pub async fn prune_batch(&self, reqs: &[Request<'_>]) -> Result<Vec<Selection>> {
        select::prune_batch(self.engine(), &self.cpu, reqs).await
    }

    /// Prunes a multi-frame pool (a video) frame by frame, each frame with the request's
    /// budget applied to its own tokens, and returns one selection over the whole pool
    /// (indices and coordinates global). To prune a video as one pool, call [`Pruner::prune`].
    pub async fn prune_per_frame(&self, req: &Request<'_>) -> Result<Selection> {
        select::prune_per_frame(self.engine(), &self.cpu, req).await
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
