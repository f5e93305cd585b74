//! The GPU engine: the CPU engine's stages as WGSL compute shaders on wgpu (Vulkan, Metal,
//! DX12, GL, WebGPU). See `docs/GPU.md` for the design. The engine runs greedy batches that
//! the select layer (`src/select/`) prepares; one submission goes through four stages, each in
//! its own file:
//!
//! | stage | file | what |
//! |---|---|---|
//! | plan | `plan.rs` | the path of each pool (dense, streaming, or over the limits) and the cut into submissions: pure functions of the device's [`plan::Caps`] |
//! | layout | `layout.rs` | the pool table and where each pool sits in the shared buffers |
//! | record | `record.rs` | uploads, then one encode function per kernel: `normalize.wgsl`, `similarity.wgsl` (dense S or nearest neighbours only), `select.wgsl` (all K picks of every dense pool in one dispatch), `stream.wgsl` (K + 1 one-pick dispatches, for pools whose S is too large) |
//! | readback | `readback.rs` | map, decode and validate the picks, GPU time |
//!
//! The host-shader contract (constants, the structs, the kernel table and its bindings) is
//! written once in `kernels.rs`; `pipelines.rs` builds from it, `buffers.rs` pools the buffers,
//! `context.rs` picks adapters and routes wgpu errors.
//!
//! Results of the greedy methods equal the CPU engine's wherever no step is closer to a tie
//! than f32 rounding (the GPU sums in a different order); elsewhere they are valid under the
//! SPEC's tie-aware rule.

mod buffers;
mod context;
pub(crate) mod kernels;
mod layout;
mod pipelines;
mod plan;
mod readback;
mod record;

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::method::Method;
use crate::select::{Greedy, Job, Mmr, Outcome, Output, Picks, Work};
use crate::selection::Backend;
use buffers::BufferPool;
use context::{ErrorSink, Scopes};
use kernels::MethodCode;
use layout::PoolSpec;
use pipelines::Pipelines;
use plan::{Caps, Shape};
use record::{Buffers, Recorder};

pub use context::{adapters, AdapterSummary, ENV_ADAPTER, ENV_BACKEND};

/// Default [`GpuOptions::stream_threshold_bytes`]: 1 GiB.
pub const DEFAULT_STREAM_THRESHOLD: u64 = 1 << 30;

/// The GPU engine's settings.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// A DivPrune or IDPruner pool whose N x N f32 similarity matrix (4 N^2 bytes) is larger
    /// than this runs on the streaming path (one similarity row per pick) instead of the dense
    /// path. The device's `max_storage_buffer_binding_size` and `max_buffer_size` cap it too.
    /// Tests set it to 0 to force streaming.
    pub stream_threshold_bytes: u64,
    /// Largest single buffer binding the engine may use, below the device's own limit (`None`:
    /// the device's `max_storage_buffer_binding_size` / `max_buffer_size`). Smaller values split
    /// large batches into more chunks (one submission each) and send large pools to the
    /// streaming path sooner.
    pub max_binding_bytes: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            stream_threshold_bytes: DEFAULT_STREAM_THRESHOLD,
            max_binding_bytes: None,
        }
    }
}

/// Where a pool is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuPath {
    /// K = N: every token is kept, nothing is computed.
    Host,
    /// Run on the CPU with the CPU engine's own code, results identical to it: a baseline
    /// (TopK, Random, Uniform), or a DivPrune / IDPruner pool that does not fit this device's
    /// limits even on the streaming path (its selection then says so in `notes` and carries
    /// [`Backend::Cpu`]).
    Cpu,
    /// The N x N similarity matrix is stored; all K picks in one dispatch.
    Dense,
    /// One similarity row per pick, K + 1 dispatches in one command buffer.
    Streaming,
}

impl std::fmt::Display for GpuPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GpuPath::Host => "none (K = N)",
            GpuPath::Cpu => "cpu",
            GpuPath::Dense => "dense",
            GpuPath::Streaming => "streaming",
        })
    }
}

/// One greedy pool as the GPU runs it: its layout spec, its host features (if uploaded) and
/// IDPruner's prepared inputs.
pub(crate) struct GpuJob<'a> {
    spec: PoolSpec,
    host: Option<&'a [f32]>,
    device: Option<&'a wgpu::Buffer>,
    mmr: Option<&'a Mmr>,
}

/// What the engine shares between clones and threads.
pub(crate) struct Inner {
    device: Arc<wgpu::Device>,
    queue: Arc<wgpu::Queue>,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    timestamps: bool,
    pipes: Pipelines,
    pool: BufferPool,
    queries: Mutex<Vec<wgpu::QuerySet>>,
    dummy: wgpu::Buffer,
    errors: Arc<ErrorSink>,
    last_gpu_ms: Mutex<Option<f64>>,
}

/// The error every call on a lost engine returns.
pub(crate) fn check_lost(inner: &Inner) -> Result<()> {
    match inner.errors.lost() {
        None => Ok(()),
        Some(why) => Err(Error::Backend(format!(
            "{why}; this GPU engine cannot be used again: build a new Pruner / GpuEngine, or use the CPU engine"
        ))),
    }
}

/// The GPU engine. Create it once (adapter, device, pipelines and layouts are set up here)
/// and reuse it through a [`crate::Pruner`] ([`crate::Pruner::from_gpu`]): buffers are
/// pooled, so repeated calls of similar sizes allocate nothing. Cloning is cheap and shares
/// the device, pipelines and buffer pool. `Send + Sync` natively.
#[derive(Clone)]
pub struct GpuEngine {
    inner: Arc<Inner>,
    options: GpuOptions,
}

impl std::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuEngine")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("options", &self.options)
            .finish()
    }
}

impl GpuEngine {
    /// Opens the best adapter (or the one `TOKENPRUNE_WGPU_BACKEND` / `TOKENPRUNE_ADAPTER`
    /// select) with its real limits and builds the pipelines. `Error::Backend` when there is
    /// no suitable adapter.
    pub async fn new(options: GpuOptions) -> Result<Self> {
        let instance = context::instance()?;
        let adapter = context::pick_adapter(&instance).await?;
        let (device, queue) = context::request_device(&adapter).await?;
        let sink = Arc::new(ErrorSink::default());
        context::install_handlers(&device, &sink);
        let info = adapter.get_info();
        Self::build(Arc::new(device), Arc::new(queue), info, sink, options).await
    }

    /// Builds the engine on a caller's device and queue (e.g. the one a renderer or an
    /// inference runtime already uses). The device's own limits and features are respected;
    /// its error handlers are left alone (the engine uses error scopes).
    pub async fn from_device(
        device: Arc<wgpu::Device>,
        queue: Arc<wgpu::Queue>,
        options: GpuOptions,
    ) -> Result<Self> {
        if let Some(why) = context::too_small(&device.limits()) {
            return Err(Error::Backend(format!(
                "the device's limits are too small for the kernels: {why}"
            )));
        }
        let info = device.adapter_info();
        Self::build(device, queue, info, Arc::new(ErrorSink::default()), options).await
    }

    async fn build(
        device: Arc<wgpu::Device>,
        queue: Arc<wgpu::Queue>,
        info: wgpu::AdapterInfo,
        errors: Arc<ErrorSink>,
        options: GpuOptions,
    ) -> Result<Self> {
        let (pipes, dummy, caught) = {
            let scopes = Scopes::push(&device);
            let pipes = Pipelines::new(&device);
            let dummy = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tokenprune dummy"),
                size: 256,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            (pipes, dummy, scopes.pop())
        };
        if let Some(e) = caught.await {
            let what = format!("building the kernels on '{}'", info.name);
            return Err(context::backend_error(&what, &e));
        }
        Ok(GpuEngine {
            inner: Arc::new(Inner {
                limits: device.limits(),
                timestamps: device.features().contains(wgpu::Features::TIMESTAMP_QUERY),
                device,
                queue,
                info,
                pipes,
                pool: BufferPool::default(),
                queries: Mutex::new(Vec::new()),
                dummy,
                errors,
                last_gpu_ms: Mutex::new(None),
            }),
            options,
        })
    }

    /// The same engine (device, pipelines, buffers shared) with other options.
    pub fn with_options(&self, options: GpuOptions) -> Self {
        GpuEngine {
            inner: self.inner.clone(),
            options,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// The adapter's name (also in every selection's [`Backend::Gpu`]).
    pub fn adapter_name(&self) -> &str {
        &self.inner.info.name
    }

    /// Full adapter information.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The device limits the engine respects.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The device and queue (to create buffers for [`crate::DeviceTokens`]).
    pub fn device(&self) -> (&Arc<wgpu::Device>, &Arc<wgpu::Queue>) {
        (&self.inner.device, &self.inner.queue)
    }

    /// Whether GPU time is measured (the adapter supports timestamp queries).
    pub fn has_timestamps(&self) -> bool {
        self.inner.timestamps
    }

    /// GPU time of the last call on this engine (from any thread or clone), in milliseconds,
    /// from timestamp queries around its compute pass(es); `None` when unsupported, when the
    /// last call ran no kernel (K = N, baselines) or failed. For a benchmark, call from one
    /// thread.
    pub fn last_gpu_time_ms(&self) -> Option<f64> {
        self.inner.last_gpu_ms.lock().ok().and_then(|g| *g)
    }

    fn set_gpu_time(&self, ms: Option<f64>) {
        if let Ok(mut g) = self.inner.last_gpu_ms.lock() {
            *g = ms;
        }
    }

    /// Bytes of all the GPU buffers the engine's pool has ever allocated (it grows only when a
    /// call needs a larger buffer than any it holds; repeated calls of the same sizes add
    /// nothing).
    pub fn allocated_bytes(&self) -> u64 {
        self.inner.pool.created_bytes()
    }

    /// True once the engine's device is lost (destroyed, reset by the driver, unplugged) or
    /// results can no longer be read back from it. A lost engine stays lost: every later call
    /// returns [`Error::Backend`] at once; build a new [`GpuEngine`] (or [`crate::Pruner`]).
    pub fn is_lost(&self) -> bool {
        self.inner.errors.lost().is_some()
    }

    /// The backend tag of this engine's selections: the adapter's name, or, where the platform
    /// hides it (browsers do), what is known of it.
    pub fn backend(&self) -> Backend {
        let info = &self.inner.info;
        Backend::Gpu(if !info.name.is_empty() {
            info.name.clone()
        } else if info.device_type == wgpu::DeviceType::Cpu {
            format!("{:?} software adapter, name hidden", info.backend)
        } else {
            format!("{:?} adapter, name hidden", info.backend)
        })
    }

    fn caps(&self) -> Caps {
        Caps::new(&self.inner.limits, &self.options)
    }

    /// The largest single binding the engine will use on this device.
    pub fn binding_cap(&self) -> u64 {
        self.caps().binding_cap
    }

    /// The path a pool of `n` host tokens of width `d`, keeping `keep`, takes with `method`:
    /// [`GpuPath::Host`] for K = N, [`GpuPath::Cpu`] for the baselines and for greedy pools
    /// over this device's limits, else [`GpuPath::Dense`] or [`GpuPath::Streaming`] (the rule
    /// is in `plan.rs`).
    pub fn path_for(&self, n: usize, d: usize, keep: usize, method: &Method) -> GpuPath {
        let method = match method {
            Method::DivPrune => MethodCode::DivPrune,
            Method::IdPruner(_) => MethodCode::IdPruner,
            _ => return GpuPath::Cpu,
        };
        if keep == n {
            return GpuPath::Host;
        }
        let shape = Shape {
            n,
            d,
            k: keep,
            method,
            host: true,
        };
        plan::path_for(&self.caps(), &shape)
    }

    /// Runs jobs: every job that fits this device's limits in as few submissions as they
    /// allow (each a single command buffer); the others come back as [`Outcome::Misfit`] for
    /// the select layer to fall back. Records the GPU time.
    pub(crate) async fn run(&self, jobs: &[Job<'_>]) -> Result<Vec<Outcome>> {
        self.set_gpu_time(None);
        check_lost(&self.inner)?;
        if let Some(e) = self.inner.errors.take() {
            return Err(Error::Backend(format!(
                "an earlier GPU error was reported: {e}"
            )));
        }
        let caps = self.caps();
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(jobs.len());
        let mut runnable: Vec<(usize, GpuJob)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let Some(gj) = gpu_job(&caps, job) else {
                outcomes.push(Some(Outcome::Misfit(format!(
                    "the GPU engine has no kernel for this {} job yet",
                    job_name(job)
                ))));
                continue;
            };
            match plan::misfit(&caps, &gj.spec.shape, gj.spec.path) {
                Some(why) => outcomes.push(Some(Outcome::Misfit(why))),
                None => {
                    outcomes.push(None);
                    runnable.push((i, gj));
                }
            }
        }
        let plans: Vec<_> = runnable
            .iter()
            .map(|(_, j)| (j.spec.shape, j.spec.path))
            .collect();
        let mut gpu_ms = Some(0.0);
        for range in plan::chunks(&caps, &plans) {
            let chunk = &runnable[range];
            let gjobs: Vec<&GpuJob> = chunk.iter().map(|(_, j)| j).collect();
            let (picks, ms) = self.execute(&gjobs).await?;
            for ((i, _), p) in chunk.iter().zip(picks) {
                outcomes[*i] = Some(Outcome::Ran(Output::Picks(p)));
            }
            gpu_ms = gpu_ms.zip(ms).map(|(a, b)| a + b);
        }
        if !runnable.is_empty() {
            self.set_gpu_time(gpu_ms);
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| Error::Backend("internal: a job was not run".into())))
            .collect()
    }

    /// Runs one submission: buffers from the pool, upload, record, submit, read back. The
    /// buffers go back to the pool whatever happened, so an error does not leak them.
    async fn execute(&self, jobs: &[&GpuJob<'_>]) -> Result<(Vec<Picks>, Option<f64>)> {
        let inner = &*self.inner;
        let _in_flight = inner.pool.enter();
        let device = &*inner.device;
        let specs: Vec<PoolSpec> = jobs.iter().map(|j| j.spec).collect();
        let layout = layout::layout(
            &specs,
            inner.limits.min_storage_buffer_offset_alignment as u64,
        );
        let bufs = Buffers::take(
            &inner.pool,
            device,
            inner.limits.max_buffer_size,
            &layout,
            inner.timestamps,
        );
        let queries = inner.timestamps.then(|| self.query_set());
        let outcome: Result<Vec<u8>> = async {
            let caught = {
                let scopes = Scopes::push(device);
                record::upload(&inner.queue, &layout, jobs, &bufs);
                let recorder = Recorder {
                    device,
                    pipes: &inner.pipes,
                    layout: &layout,
                    bufs: &bufs,
                    source: jobs.iter().find_map(|j| j.device),
                    dummy: &inner.dummy,
                    max_workgroups: inner.limits.max_compute_workgroups_per_dimension,
                };
                inner
                    .queue
                    .submit([record::record(&recorder, queries.as_ref())]);
                scopes.pop()
            };
            if let Some(e) = caught.await {
                return Err(context::backend_error("running the kernels", &e));
            }
            readback::read(inner, &bufs.readback, layout.sizes.readback).await
        }
        .await;
        bufs.give(&inner.pool);
        if let (Some(q), Ok(mut list)) = (queries, inner.queries.lock()) {
            list.push(q);
        }
        let data = outcome?;
        let gpu_ms = inner.timestamps.then(|| {
            readback::gpu_ms(
                &data,
                layout.sizes.ts_off,
                inner.queue.get_timestamp_period(),
            )
        });
        let ks: Vec<usize> = specs.iter().map(|s| s.shape.k).collect();
        let ns: Vec<usize> = specs.iter().map(|s| s.shape.n).collect();
        let picks = readback::decode(&layout, &ks, &ns, &data, &inner.info.name)?;
        Ok((picks, gpu_ms))
    }

    /// A timestamp query set (two timestamps) from the engine's stock, or a new one.
    fn query_set(&self) -> wgpu::QuerySet {
        let reused = self.inner.queries.lock().ok().and_then(|mut q| q.pop());
        reused.unwrap_or_else(|| {
            self.inner
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("tokenprune timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                })
        })
    }
}

/// A job's kind, for messages.
fn job_name(job: &Job) -> &'static str {
    match &job.work {
        Work::Greedy {
            rule: Greedy::Dpp(_),
            ..
        } => "CDPruner DPP",
        Work::Greedy { .. } => "greedy",
        Work::Scores(crate::select::Scoring::Evs { .. }) => "EVS scoring",
        Work::Scores(crate::select::Scoring::VidCom2 { .. }) => "VidCom2 scoring",
    }
}

/// The GPU's view of a greedy job: its method code, path and where its features are; `None`
/// for the jobs this engine has no kernels for.
fn gpu_job<'a>(caps: &Caps, job: &'a Job<'a>) -> Option<GpuJob<'a>> {
    let Work::Greedy { k, rule } = &job.work else {
        return None;
    };
    let (method, pk, om, mmr) = match rule {
        Greedy::DivPrune => (MethodCode::DivPrune, 1, 0.0, None),
        Greedy::IdPruner(m) => (
            MethodCode::IdPruner,
            m.parallel_k.min(u32::MAX as usize) as u32,
            m.one_minus,
            Some(m),
        ),
        Greedy::Dpp(_) => return None,
    };
    let host = job.features.host().map(|t| t.data());
    let device = match &job.features {
        crate::tokens::Features::Device(t) => Some((t.buffer(), t.offset())),
        _ => None,
    };
    let shape = Shape {
        n: job.n(),
        d: job.d(),
        k: *k,
        method,
        host: host.is_some(),
    };
    Some(GpuJob {
        spec: PoolSpec {
            shape,
            path: plan::greedy_path(caps, shape.n, shape.k, method),
            pk,
            om,
            device_offset: device.map(|(_, o)| o),
        },
        host,
        device: device.map(|(b, _)| b),
        mmr,
    })
}

/// Blocking constructors (native only): the async ones driven by `pollster`.
#[cfg(not(target_arch = "wasm32"))]
impl GpuEngine {
    /// Blocking [`GpuEngine::new`].
    pub fn new_blocking(options: GpuOptions) -> Result<Self> {
        pollster::block_on(GpuEngine::new(options))
    }
}

/// Whether `TOKENPRUNE_ADAPTER` names an adapter explicitly.
pub(crate) fn adapter_named_by_env() -> bool {
    context::adapter_filter().is_some()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_sync() {
        assert_send_sync::<GpuEngine>();
    }
}
