//! The GPU engine: the CPU engine's stages as WGSL compute shaders on wgpu (Vulkan, Metal,
//! DX12, GL, WebGPU). See `docs/GPU.md` for the design. The engine runs the jobs the select
//! layer (`src/select/`) prepares, in three kinds of submission (one command buffer and one
//! compute pass each): greedy picks (DivPrune, IDPruner), CDPruner DPP picks, and the video
//! methods' scores (EVS, VidCom2; their selection from the scores runs on the host, in the
//! select layer). A submission goes through these stages, each in its own file:
//!
//! | stage | file | what |
//! |---|---|---|
//! | jobs | `jobs.rs` | the select layer's jobs sorted into submissions (greedy, DPP, video), or a misfit with its reason |
//! | plan | `plan.rs` | the path of each pool (dense, streaming, or over the limits) and the cut into submissions: pure functions of the device's [`plan::Caps`] |
//! | layout | `layout.rs` | the pool table and where each pool sits in the shared buffers |
//! | record | `record.rs` | uploads, then one encode function per kernel: `normalize.wgsl`, `similarity.wgsl` (dense S or nearest neighbours only), `select.wgsl` (all K picks of every dense pool in one dispatch), `stream.wgsl` (K + 1 one-pick dispatches, for pools whose S is too large), `dpp.wgsl` (text relevance; the K DPP picks of every pool in rounds over a few dispatches, `plan::dpp_rounds`), `evs.wgsl`, `vidcom2_channels.wgsl`, `vidcom2_centres.wgsl`, `vidcom2_scores.wgsl` |
//! | readback | `readback.rs` | map, decode and validate the picks or scores, GPU time |
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
mod jobs;
pub(crate) mod kernels;
mod layout;
mod pipelines;
mod plan;
mod readback;
mod record;

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::method::Method;
use crate::select::{Job, Outcome, Output, Picks, VideoScores};
use crate::selection::Backend;
use buffers::{BindCache, BufferPool};
use context::{ErrorSink, Scopes};
use jobs::{classify, greedy_chunks, one_source, source, DppJob, GpuJob, GpuWork, VideoJob};
use kernels::MethodCode;
use layout::{DppSpec, PoolSpec, VideoSpec};
use pipelines::Pipelines;
use plan::{Caps, DppShape, Shape, VideoShape};
use readback::PoolResult;
use record::{Buffers, DppBuffers, Kit, Recorder, VideoBuffers};

pub use context::{adapters, AdapterSummary, ENV_ADAPTER, ENV_BACKEND};

/// Default [`GpuOptions::stream_threshold_bytes`]: 1 GiB.
pub const DEFAULT_STREAM_THRESHOLD: u64 = 1 << 30;

/// Default [`GpuOptions::submission_work`]: 2^33 multiply-adds, well under a second on an
/// integrated GPU, a few milliseconds on a data-centre one.
pub const DEFAULT_SUBMISSION_WORK: u64 = 1 << 33;

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
    /// Estimated multiply-adds one submission may hold (default
    /// [`DEFAULT_SUBMISSION_WORK`]). A selection with more (the streaming path's K GEMVs,
    /// CDPruner's rounds) is split over several submissions, each waited for by the GPU in
    /// turn, so no single one runs long enough for a watchdog (Windows TDR: 2 s; browsers: a
    /// few seconds) to reset the device. Tests set 1 to force one dispatch per submission.
    pub submission_work: u64,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            stream_threshold_bytes: DEFAULT_STREAM_THRESHOLD,
            max_binding_bytes: None,
            submission_work: DEFAULT_SUBMISSION_WORK,
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
    /// One similarity row per pick: DivPrune and IDPruner in K + 1 dispatches of one
    /// command buffer; CDPruner recomputes its kernel entries in each of its rounds.
    Streaming,
    /// EVS and VidCom2: per-token scores on the GPU, the selection on the host.
    Scores,
}

impl std::fmt::Display for GpuPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GpuPath::Host => "none (K = N)",
            GpuPath::Cpu => "cpu",
            GpuPath::Dense => "dense",
            GpuPath::Streaming => "streaming",
            GpuPath::Scores => "scores",
        })
    }
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
    binds: BindCache,
    submissions: std::sync::atomic::AtomicU64,
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
                binds: BindCache::default(),
                submissions: Default::default(),
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
    /// [`GpuPath::Host`] for K = N, [`GpuPath::Cpu`] for the baselines and for pools over
    /// this device's limits, [`GpuPath::Scores`] for EVS and VidCom2 (checked as one frame),
    /// else [`GpuPath::Dense`] or [`GpuPath::Streaming`] (the rules are in `plan.rs`; a
    /// CDPruner pool is a crop or, with `split = halves`, the larger half).
    pub fn path_for(&self, n: usize, d: usize, keep: usize, method: &Method) -> GpuPath {
        if keep == n {
            return GpuPath::Host;
        }
        let caps = self.caps();
        let dpp = |n: usize, k: usize, text: bool| {
            let shape = DppShape {
                n,
                d,
                k,
                text,
                host: true,
            };
            let path = plan::dpp_path(&caps, n, k);
            match plan::dpp_misfit(&caps, &shape, path) {
                Some(_) => GpuPath::Cpu,
                None => path,
            }
        };
        let method = match method {
            Method::DivPrune => MethodCode::DivPrune,
            Method::IdPruner(_) => MethodCode::IdPruner,
            Method::CdPruner(c) => {
                let crops = c.crops.max(1);
                return dpp(n / crops, keep / crops, false);
            }
            Method::CdPrunerOpenVino(c) => {
                let pools = crate::select::dpp::split_pools(n, keep, c.split);
                let (s, e, k) = pools[pools.len() - 1];
                return dpp(e - s, k, true);
            }
            Method::Evs | Method::VidCom2 { .. } => {
                let shape = VideoShape {
                    n,
                    c: d,
                    frames: 1,
                    vidcom2: matches!(method, Method::VidCom2 { .. }),
                    host: true,
                };
                return match plan::video_misfit(&caps, &shape) {
                    Some(_) => GpuPath::Cpu,
                    None => GpuPath::Scores,
                };
            }
            _ => return GpuPath::Cpu,
        };
        let shape = Shape {
            n,
            d,
            k: keep,
            method,
            host: true,
        };
        plan::path_for(&caps, &shape)
    }

    /// Runs jobs: every job that fits this device's limits in as few submissions as they
    /// allow (each a single command buffer; greedy, DPP and video jobs in separate ones); the
    /// others come back as [`Outcome::Misfit`] for the select layer to fall back. Records the
    /// GPU time (returned, and kept for [`Self::last_gpu_time_ms`]).
    pub(crate) async fn run(&self, jobs: &[Job<'_>]) -> Result<(Vec<Outcome>, Option<f64>)> {
        self.set_gpu_time(None);
        check_lost(&self.inner)?;
        if let Some(e) = self.inner.errors.take() {
            return Err(Error::Backend(format!(
                "an earlier GPU error was reported: {e}"
            )));
        }
        let caps = self.caps();
        let mut outcomes: Vec<Option<Outcome>> = (0..jobs.len()).map(|_| None).collect();
        let (mut greedy, mut dpp, mut video) = (Vec::new(), Vec::new(), Vec::new());
        for (i, job) in jobs.iter().enumerate() {
            match classify(&caps, job) {
                Err(why) => outcomes[i] = Some(Outcome::Misfit(why)),
                Ok(GpuWork::Greedy(g)) => greedy.push((i, g)),
                Ok(GpuWork::Dpp(g)) => dpp.push((i, g)),
                Ok(GpuWork::Video(g)) => video.push((i, g)),
            }
        }
        let mut gpu_ms = Some(0.0);
        let ran = !(greedy.is_empty() && dpp.is_empty() && video.is_empty());
        for range in greedy_chunks(&caps, &greedy) {
            let chunk: Vec<&GpuJob> = greedy[range.clone()].iter().map(|(_, j)| j).collect();
            let (picks, ms) = self.execute(&chunk).await?;
            for ((i, _), p) in greedy[range].iter().zip(picks) {
                outcomes[*i] = Some(Outcome::ran(p.map(Output::Picks)));
            }
            gpu_ms = gpu_ms.zip(ms).map(|(a, b)| a + b);
        }
        let sources: Vec<_> = dpp
            .iter()
            .map(|(_, j)| source(j.device, j.spec.device_offset, &j.spec.shape))
            .collect();
        let bytes: Vec<_> = dpp
            .iter()
            .map(|(_, j)| plan::dpp_bytes(&j.spec.shape, j.spec.path))
            .collect();
        for range in plan::pack(dpp.len(), |r| {
            one_source(&caps, &sources[r.clone()]) && plan::sums_fit(&caps, &bytes[r])
        }) {
            let chunk: Vec<&DppJob> = dpp[range.clone()].iter().map(|(_, j)| j).collect();
            let (picks, ms) = self.execute_dpp(&chunk).await?;
            for ((i, _), p) in dpp[range].iter().zip(picks) {
                outcomes[*i] = Some(Outcome::ran(p.map(Output::Picks)));
            }
            gpu_ms = gpu_ms.zip(ms).map(|(a, b)| a + b);
        }
        let sources: Vec<_> = video
            .iter()
            .map(|(_, j)| source(j.device, j.spec.device_offset, &j.spec.shape))
            .collect();
        let bytes: Vec<_> = video
            .iter()
            .map(|(_, j)| plan::video_bytes(&j.spec.shape))
            .collect();
        for range in plan::pack(video.len(), |r| {
            one_source(&caps, &sources[r.clone()]) && plan::sums_fit(&caps, &bytes[r])
        }) {
            let chunk: Vec<&VideoJob> = video[range.clone()].iter().map(|(_, j)| j).collect();
            let (scores, ms) = self.execute_video(&chunk).await?;
            for ((i, _), v) in video[range].iter().zip(scores) {
                outcomes[*i] = Some(Outcome::ran(v.map(Output::Scores)));
            }
            gpu_ms = gpu_ms.zip(ms).map(|(a, b)| a + b);
        }
        let gpu_ms = gpu_ms.filter(|_| ran);
        self.set_gpu_time(gpu_ms);
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| Error::Backend("internal: a job was not run".into())))
            .collect::<Result<_>>()?;
        Ok((outcomes, gpu_ms))
    }

    /// What every encode function needs (`source`: the caller's buffer the features are
    /// read from). Made after the submission's buffers are taken: its generation covers them.
    fn kit<'a>(&'a self, source: Option<&'a wgpu::Buffer>) -> Kit<'a> {
        let inner = &*self.inner;
        Kit {
            device: &inner.device,
            pipes: &inner.pipes,
            dummy: &inner.dummy,
            max_workgroups: inner.limits.max_compute_workgroups_per_dimension,
            max_binding: inner.limits.max_storage_buffer_binding_size,
            binds: &inner.binds,
            generation: inner.pool.generation(),
            source,
        }
    }

    /// Submissions this engine (and its clones) ever made: one per call and kind of job, more
    /// where a long selection is split ([`GpuOptions::submission_work`]).
    pub fn submissions(&self) -> u64 {
        self.inner
            .submissions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bind groups this engine (and its clones) ever created. They are made once per buffer
    /// generation and reused: repeated calls whose buffers the pool already holds create
    /// none (a figure for tests and diagnostics).
    pub fn bind_groups_created(&self) -> u64 {
        self.inner.binds.created()
    }

    /// One submission: `record` uploads and records the command buffer (given the query set
    /// for the timestamps), inside error scopes; then the results are read back from
    /// `readback` (`size` bytes, timestamps at `ts_off`). Returns them and the GPU time.
    async fn submit(
        &self,
        readback: &wgpu::Buffer,
        (size, ts_off): (u64, u64),
        record: impl FnOnce(Option<&wgpu::QuerySet>) -> Vec<wgpu::CommandBuffer>,
    ) -> Result<(Vec<u8>, Option<f64>)> {
        let inner = &*self.inner;
        let queries = inner.timestamps.then(|| self.query_set());
        let outcome: Result<Vec<u8>> = async {
            let (index, caught) = {
                let scopes = Scopes::push(&inner.device);
                // One submission per command buffer (plan::submissions), in order; the
                // readback waits for the last.
                let mut index = None;
                for cb in record(queries.as_ref()) {
                    index = Some(inner.queue.submit([cb]));
                    inner
                        .submissions
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                (index, scopes.pop())
            };
            let index =
                index.ok_or_else(|| Error::Backend("internal: nothing was recorded".into()))?;
            if let Some(e) = caught.await {
                return Err(context::backend_error("running the kernels", &e));
            }
            readback::read(inner, readback, size, index).await
        }
        .await;
        if let (Some(q), Ok(mut list)) = (queries, inner.queries.lock()) {
            list.push(q);
        }
        let data = outcome?;
        let period = inner.queue.get_timestamp_period();
        let ms = inner
            .timestamps
            .then(|| readback::gpu_ms(&data, ts_off, period));
        Ok((data, ms))
    }

    /// Runs one greedy submission: buffers from the pool, upload, record, submit, read back.
    /// The buffers go back to the pool whatever happened, so an error does not leak them.
    async fn execute(&self, jobs: &[&GpuJob<'_>]) -> Result<(Vec<PoolResult<Picks>>, Option<f64>)> {
        let inner = &*self.inner;
        let _in_flight = inner.pool.enter();
        let specs: Vec<PoolSpec> = jobs.iter().map(|j| j.spec).collect();
        let align = inner.limits.min_storage_buffer_offset_alignment as u64;
        let layout = layout::layout(&specs, align);
        let max = inner.limits.max_buffer_size;
        let bufs = Buffers::take(&inner.pool, &inner.device, max, &layout, inner.timestamps);
        let sizes = (layout.sizes.readback, layout.sizes.ts_off);
        let result = self
            .submit(&bufs.readback, sizes, |queries| {
                let kit = self.kit(jobs.iter().find_map(|j| j.device));
                record::upload(&inner.queue, &kit, &layout, jobs, &bufs);
                let shapes: Vec<_> = layout.stream.iter().map(|&i| specs[i].shape).collect();
                let costs = match shapes.is_empty() {
                    true => vec![],
                    false => plan::stream_costs(&shapes, layout.kmax),
                };
                let nd = |i: &usize| (specs[*i].shape.n, specs[*i].shape.d);
                let dense: Vec<_> = layout
                    .dense
                    .iter()
                    .filter(|&&i| specs[i].shape.k > 0)
                    .map(nd)
                    .collect();
                let nearest: Vec<_> = layout
                    .stream
                    .iter()
                    .filter(|&&i| specs[i].shape.method == kernels::MethodCode::DivPrune)
                    .map(nd)
                    .collect();
                let recorder = Recorder {
                    kit,
                    layout: &layout,
                    bufs: &bufs,
                    segments: plan::greedy_segments(&self.caps(), &dense, &nearest, &costs),
                };
                record::record(&recorder, queries)
            })
            .await;
        bufs.give(&inner.pool);
        let (data, ms) = result?;
        let ks: Vec<usize> = specs.iter().map(|s| s.shape.k).collect();
        let ns: Vec<usize> = specs.iter().map(|s| s.shape.n).collect();
        Ok((
            readback::decode(&layout, &ks, &ns, &data, &inner.info.name)?,
            ms,
        ))
    }

    /// Runs one DPP submission (as [`Self::execute`]).
    async fn execute_dpp(
        &self,
        jobs: &[&DppJob<'_>],
    ) -> Result<(Vec<PoolResult<Picks>>, Option<f64>)> {
        let inner = &*self.inner;
        let _in_flight = inner.pool.enter();
        let specs: Vec<DppSpec> = jobs.iter().map(|j| j.spec).collect();
        let align = inner.limits.min_storage_buffer_offset_alignment as u64;
        let layout = layout::dpp_layout(&specs, align);
        let max = inner.limits.max_buffer_size;
        let bufs = DppBuffers::take(&inner.pool, &inner.device, max, &layout, inner.timestamps);
        let sizes = (layout.sizes.readback, layout.sizes.ts_off);
        let result = self
            .submit(&bufs.readback, sizes, |queries| {
                let kit = self.kit(jobs.iter().find_map(|j| j.device));
                record::upload_dpp(&inner.queue, &kit, &layout, jobs, &bufs);
                let pools: Vec<_> = specs.iter().map(|s| (s.shape, s.path)).collect();
                let costs = plan::dpp_costs(&pools, &layout.rounds);
                let dense: Vec<_> = pools
                    .iter()
                    .filter(|(s, p)| *p == GpuPath::Dense && s.k > 0)
                    .map(|(s, _)| (s.n, s.d))
                    .collect();
                let rows = plan::similarity_costs(&dense);
                let segments: Vec<_> = plan::submissions_of(&self.caps(), &[&rows, &costs])
                    .into_iter()
                    .map(|g| [g[0].clone(), g[1].clone()])
                    .collect();
                record::record_dpp(&kit, &layout, &bufs, &segments, queries)
            })
            .await;
        bufs.give(&inner.pool);
        let (data, ms) = result?;
        Ok((readback::decode_dpp(&layout, &data, &inner.info.name)?, ms))
    }

    /// Runs one video submission (as [`Self::execute`]).
    async fn execute_video(
        &self,
        jobs: &[&VideoJob<'_>],
    ) -> Result<(Vec<PoolResult<VideoScores>>, Option<f64>)> {
        let inner = &*self.inner;
        let _in_flight = inner.pool.enter();
        let specs: Vec<VideoSpec> = jobs.iter().map(|j| j.spec).collect();
        let align = inner.limits.min_storage_buffer_offset_alignment as u64;
        let layout = layout::video_layout(&specs, align);
        let max = inner.limits.max_buffer_size;
        let bufs = VideoBuffers::take(&inner.pool, &inner.device, max, &layout, inner.timestamps);
        let sizes = (layout.sizes.readback, layout.sizes.ts_off);
        let result = self
            .submit(&bufs.readback, sizes, |queries| {
                record::upload_video(&inner.queue, &layout, jobs, &bufs);
                let kit = self.kit(jobs.iter().find_map(|j| j.device));
                record::record_video(&kit, &layout, &bufs, queries)
            })
            .await;
        bufs.give(&inner.pool);
        let (data, ms) = result?;
        Ok((readback::decode_video(&layout, &data)?, ms))
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
