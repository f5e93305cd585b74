//! The GPU engine: the CPU engine's stages as WGSL compute shaders on wgpu (Vulkan, Metal,
//! DX12, GL, WebGPU). See `docs/GPU.md` for the design; in short:
//!
//! - `shaders/normalize.wgsl` (twin of `cpu::normalize`) normalises every row of every pool;
//! - `shaders/similarity.wgsl` (twin of `cpu::similarity`) computes `U U^T` in 64 x 64 tiles,
//!   either stored (dense path) or folded into each token's nearest-neighbour similarity
//!   (DivPrune's seed on the streaming path);
//! - `shaders/select.wgsl` (twin of `cpu::greedy`) runs all K greedy picks of a pool in one
//!   workgroup, one workgroup per pool, one dispatch for the whole batch (dense path);
//! - `shaders/stream.wgsl` runs one pick per dispatch, K + 1 dispatches recorded in one command
//!   buffer, recomputing one similarity row per pick (streaming path, for pools whose N x N
//!   matrix is too large).
//!
//! The TopK / Random / Uniform baselines are pure functions of their inputs; the GPU engine
//! runs them on the CPU (the CPU engine's own code), so their results equal the CPU engine's
//! exactly. K = N keeps every token without computing anything, as on the CPU.
//!
//! Results of the greedy methods equal the CPU engine's wherever no step is closer to a tie
//! than f32 rounding (the GPU sums in a different order); elsewhere they are valid under the
//! SPEC's tie-aware rule.

mod buffers;
mod context;
mod pipelines;

use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use crate::budget::Budget;
use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
use crate::method::{Method, Request};
use crate::selection::{Backend, Selection};
use buffers::{BufferPool, Role};
use context::ErrorSink;
use pipelines::{Pipelines, STEP_BYTES};

pub use context::{ENV_ADAPTER, ENV_BACKEND};

/// Default [`GpuOptions::stream_threshold_bytes`]: 1 GiB.
pub const DEFAULT_STREAM_THRESHOLD: u64 = 1 << 30;

/// Largest binding the engine uses, whatever the device allows: keeps every element index in
/// the kernels' u32 arithmetic far from overflow.
const BIND_CAP: u64 = (4 << 30) - 256;

/// Workgroup size of every kernel.
const WG: u32 = 256;
/// Similarity tile side.
const TILE: u32 = 64;
/// Tokens per GEMV pass of one streaming workgroup.
const STREAM_GROUP: u32 = 32;
/// Uniform stride of the streaming step parameters (the largest allowed dynamic-offset
/// alignment).
const STEP_STRIDE: u64 = 256;
/// `dense iff N <= IDPRUNER_DENSE_RATIO * K` for IDPruner (see [`GpuEngine::path_for`]).
const IDPRUNER_DENSE_RATIO: u64 = 32;

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

/// One pool of the pool table (`struct Pool` in every shader; 64 bytes, std430).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct PoolEntry {
    n: u32,
    k: u32,
    method: u32,
    pk: u32,
    d: u32,
    d4: u32,
    src_off: u32,
    u_off: u32,
    row0: u32,
    cache_off: u32,
    sim_off: u32,
    out_off: u32,
    parts: u32,
    iters: u32,
    part_off: u32,
    om: f32,
}

/// `struct Step` of stream.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct StepEntry {
    t: u32,
    pstride: u32,
    pad: [u32; 2],
}

/// Where a job's features are.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A host slice, uploaded.
    Host(&'a [f32]),
    /// A caller's GPU buffer: f32 [N, D] row-major at a byte offset.
    Buffer {
        buffer: &'a wgpu::Buffer,
        offset: u64,
    },
}

/// One greedy pool for the GPU.
struct Job<'a> {
    n: usize,
    d: usize,
    k: usize,
    /// 0 DivPrune, 1 IDPruner (the shaders' `method`).
    method: u32,
    pk: u32,
    om: f32,
    /// IDPruner: (normalised importance, lambda * that), both rounded to f32 on the host.
    imp: Option<Vec<[f32; 2]>>,
    src: Source<'a>,
    path: GpuPath,
}

impl Job<'_> {
    fn d4(&self) -> usize {
        self.d.div_ceil(4)
    }

    fn stream_shape(&self) -> (u32, u32) {
        stream_shape(self.n)
    }

    /// Bytes this job needs in each buffer: input, norm, sim, state, imp, out, partials.
    fn bytes(&self) -> [u64; 7] {
        let host = matches!(self.src, Source::Host(_));
        job_bytes(self.n, self.d, self.k, self.path, host)
    }
}

/// Bytes a pool needs in each buffer: input (host features only), norm, sim, state, imp, out,
/// partials.
fn job_bytes(n: usize, d: usize, k: usize, path: GpuPath, host: bool) -> [u64; 7] {
    let (n, d4, k) = (n as u64, d.div_ceil(4) as u64, k as u64);
    let d = d as u64;
    let input = if host { n * d * 4 } else { 0 };
    let sim = if path == GpuPath::Dense && k > 0 {
        n * n * 4
    } else {
        0
    };
    let parts = if path == GpuPath::Streaming {
        stream_shape(n as usize).1 as u64
    } else {
        0
    };
    [
        input,
        n * d4 * 16,
        sim,
        n * 8,
        n * 8,
        (1 + 2 * k) * 4,
        parts * 16,
    ]
}

/// Streaming: 32-token groups per workgroup (so at most 256 workgroups per pool) and the
/// workgroup count, for a pool of `n` tokens.
fn stream_shape(n: usize) -> (u32, u32) {
    let g = STREAM_GROUP as usize;
    let iters = n.div_ceil(g * WG as usize).max(1);
    let parts = n.div_ceil(g * iters);
    (iters as u32, parts as u32)
}

/// A binding of `size` bytes of `buffer` from `offset`.
fn bind(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    })
}

/// One job's raw result.
struct JobResult {
    order: Vec<u32>,
    scores: Vec<f32>,
    zero_rows: usize,
}

/// Error scopes around one batch of wgpu calls (validation, out-of-memory, internal).
struct Scopes {
    oom: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl Scopes {
    fn push(device: &wgpu::Device) -> Self {
        Scopes {
            oom: device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            internal: device.push_error_scope(wgpu::ErrorFilter::Internal),
            validation: device.push_error_scope(wgpu::ErrorFilter::Validation),
        }
    }

    /// Pops the scopes (innermost first); the future yields the first error caught.
    fn pop(self) -> impl std::future::Future<Output = Option<wgpu::Error>> {
        let v = self.validation.pop();
        let i = self.internal.pop();
        let o = self.oom.pop();
        async move {
            if let Some(e) = v.await {
                return Some(e);
            }
            if let Some(e) = i.await {
                return Some(e);
            }
            o.await
        }
    }
}

struct Inner {
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

/// The GPU engine. Create it once (adapter, device, pipelines and layouts are set up here)
/// and reuse it: buffers are pooled, so repeated calls of similar sizes allocate nothing.
/// Cloning is cheap and shares the device, pipelines and buffer pool. `Send + Sync` natively.
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

/// A summary of one wgpu adapter, for `tokenprune info`.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Name, backend, device type, driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's limits.
    pub limits: wgpu::Limits,
    /// Whether it supports timestamp queries.
    pub timestamps: bool,
    /// Why the engine cannot use it, if it cannot.
    pub unsuitable: Option<String>,
}

/// Every adapter wgpu sees on the backends the environment allows.
pub async fn adapters() -> Result<Vec<AdapterSummary>> {
    let instance = context::instance()?;
    let backends = context::backends_from_env()?;
    Ok(instance
        .enumerate_adapters(backends)
        .await
        .into_iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            limits: a.limits(),
            timestamps: a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
            unsuitable: context::unsuitable(&a),
        })
        .collect())
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
        Self::build(
            Arc::new(device),
            Arc::new(queue),
            adapter.get_info(),
            sink,
            options,
        )
        .await
    }

    /// Builds the engine on a caller's device and queue (e.g. the one a renderer or an
    /// inference runtime already uses). The device's own limits and features are respected;
    /// its error handlers are left alone (the engine uses error scopes).
    pub async fn from_device(
        device: Arc<wgpu::Device>,
        queue: Arc<wgpu::Queue>,
        options: GpuOptions,
    ) -> Result<Self> {
        let l = device.limits();
        if l.max_compute_invocations_per_workgroup < context::NEED_INVOCATIONS
            || l.max_compute_workgroup_size_x < context::NEED_INVOCATIONS
            || l.max_storage_buffers_per_shader_stage < context::NEED_STORAGE_BUFFERS
            || l.max_compute_workgroup_storage_size < context::NEED_WORKGROUP_BYTES
        {
            return Err(Error::Backend(format!(
                "the device's limits are too small for the kernels (need {} invocations per workgroup, {} storage buffers per stage, {} bytes of workgroup memory)",
                context::NEED_INVOCATIONS,
                context::NEED_STORAGE_BUFFERS,
                context::NEED_WORKGROUP_BYTES
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
            return Err(context::backend_error(
                &format!("building the kernels on '{}'", info.name),
                &e,
            ));
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

    /// The device and queue (to create buffers for [`GpuEngine::run_on_buffer`]).
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

    /// The error every call on a lost engine returns.
    fn check_lost(&self) -> Result<()> {
        match self.inner.errors.lost() {
            None => Ok(()),
            Some(why) => Err(Error::Backend(format!(
                "{why}; this GPU engine cannot be used again: build a new Pruner / GpuEngine, or use the CPU engine"
            ))),
        }
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

    /// The largest single binding the engine will use on this device.
    pub fn binding_cap(&self) -> u64 {
        let l = &self.inner.limits;
        l.max_storage_buffer_binding_size
            .min(l.max_buffer_size)
            .min(BIND_CAP)
            .min(self.options.max_binding_bytes.unwrap_or(u64::MAX))
            .max(256)
    }

    /// The path a pool of `n` tokens of width `d`, keeping `keep`, takes with `method`:
    /// - K = N: nothing to compute; baselines: the CPU.
    /// - DivPrune: dense when the 4 N^2 bytes of S fit under the stream threshold and the
    ///   binding cap, else streaming (its seed needs every token's nearest neighbour either way,
    ///   an N^2 D/2 pass, so storing S costs little more).
    /// - IDPruner needs no N x N matrix (its seed is the top importance). Dense costs one
    ///   N^2 D/2 GEMM, streaming K GEMVs of N D; a GEMV is memory-bound and runs roughly 16x
    ///   fewer multiply-adds per second than the tiled GEMM, so dense when
    ///   `N^2 D / 2 <= 16 K N D`, i.e. `N <= 32 K` (and S fits), else streaming.
    /// - A pool whose buffers exceed the device's limits even when streaming (the N x D
    ///   features, or the streaming step table) runs on the CPU engine: [`GpuPath::Cpu`].
    pub fn path_for(&self, n: usize, d: usize, keep: usize, method: &Method) -> GpuPath {
        let idpruner = match method {
            Method::DivPrune => false,
            Method::IdPruner(_) => true,
            _ => return GpuPath::Cpu,
        };
        if keep == n {
            return GpuPath::Host;
        }
        let path = self.greedy_path(n, keep, idpruner);
        if self.misfit(n, d, keep, path, true).is_some() {
            return GpuPath::Cpu;
        }
        path
    }

    fn greedy_path(&self, n: usize, k: usize, idpruner: bool) -> GpuPath {
        if k == 0 {
            // Nothing to pick: only the zero-row count is computed; no matrix.
            return GpuPath::Dense;
        }
        let n64 = n as u64;
        let sim = n64.saturating_mul(n64).saturating_mul(4);
        if sim > self.options.stream_threshold_bytes.min(self.binding_cap()) {
            return GpuPath::Streaming;
        }
        if idpruner && n64 > IDPRUNER_DENSE_RATIO.saturating_mul(k as u64) {
            return GpuPath::Streaming;
        }
        GpuPath::Dense
    }

    /// Prunes one pool.
    pub async fn run(&self, req: &Request<'_>) -> Result<Selection> {
        let mut v = self.run_batch(std::slice::from_ref(req)).await?;
        v.pop()
            .ok_or_else(|| Error::Backend("internal: no result".into()))
    }

    /// Prunes many independent pools; every greedy pool of the batch runs in the same
    /// dispatches (one command buffer) while the device limits allow, else in consecutive
    /// chunks. Results are in request order and equal to pruning each alone.
    ///
    /// A greedy pool that does not fit this device's limits even on the streaming path runs on
    /// the CPU engine instead: its selection carries [`Backend::Cpu`] and a note saying why
    /// (the other pools of the batch still run on the GPU). Once the device is lost every call
    /// is an [`Error::Backend`] saying so (see [`GpuEngine::is_lost`]).
    pub async fn run_batch(&self, reqs: &[Request<'_>]) -> Result<Vec<Selection>> {
        self.check_lost()?;
        let backend = self.backend();
        let mut out: Vec<Option<Selection>> = vec![None; reqs.len()];
        let mut jobs = Vec::new();
        let mut job_req = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let tokens = req.tokens();
            let (n, k) = (tokens.n(), req.keep());
            let job = if k == n {
                None
            } else {
                self.job(n, tokens.d(), k, req.method(), Source::Host(tokens.data()))
            };
            let misfit = job
                .as_ref()
                .and_then(|j| self.misfit(j.n, j.d, j.k, j.path, true));
            match (job, misfit) {
                (Some(j), None) => {
                    jobs.push(j);
                    job_req.push(i);
                }
                (Some(_), Some(why)) => {
                    // Too large for this device: the CPU engine, tagged as such, with a note.
                    let mut sel = CpuEngine::default().run(req);
                    sel.notes.push(format!("ran on the CPU engine: {why}"));
                    out[i] = Some(sel);
                }
                (None, _) => {
                    // K = N or a baseline: the CPU engine's own code, retagged.
                    let mut sel = CpuEngine::default().run(req);
                    sel.backend = backend.clone();
                    out[i] = Some(sel);
                }
            }
        }
        let results = self.run_jobs(&jobs).await?;
        for (res, &i) in results.into_iter().zip(&job_req) {
            out[i] = Some(Selection::from_order(
                &reqs[i],
                res.order,
                res.scores,
                backend.clone(),
                crate::cpu::greedy::zero_row_note(res.zero_rows),
            ));
        }
        out.into_iter()
            .map(|s| s.ok_or_else(|| Error::Backend("internal: missing result".into())))
            .collect()
    }

    /// Prunes features that already live in `buffer` on this engine's device: `n` rows of `d`
    /// f32 values, row-major, starting at byte `offset` (a multiple of 4). No upload, no copy:
    /// the normalisation kernel reads the buffer in place, so it needs `BufferUsages::STORAGE`.
    /// The method's per-token inputs (importance, scores) are host slices as usual. The
    /// features are not checked for NaN/inf (they are never read on the host).
    pub async fn run_on_buffer(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        n: usize,
        d: usize,
        method: &Method<'_>,
        budget: Budget,
    ) -> Result<Selection> {
        self.set_gpu_time(None);
        self.check_lost()?;
        if n == 0 || d == 0 {
            return Err(Error::Shape(format!(
                "features in a buffer must have N >= 1 and D >= 1, got {n} x {d}"
            )));
        }
        let bytes = (n as u64)
            .checked_mul(d as u64)
            .and_then(|x| x.checked_mul(4))
            .ok_or_else(|| Error::Shape(format!("N x D = {n} x {d} overflows")))?;
        if !offset.is_multiple_of(4) {
            return Err(Error::Shape(format!(
                "buffer offset {offset} is not a multiple of 4"
            )));
        }
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > buffer.size())
        {
            return Err(Error::Shape(format!(
                "{n} x {d} f32 features at offset {offset} need {bytes} bytes but the buffer holds {}",
                buffer.size()
            )));
        }
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::Param(
                "the features buffer needs BufferUsages::STORAGE".into(),
            ));
        }
        method.validate(n)?;
        let k = budget.keep_count(n)?;
        let backend = self.backend();
        let (order, scores, notes) = if k == n {
            ((0..n as u32).collect(), vec![0.0; n], Vec::new())
        } else if let Some(job) = self.job(n, d, k, method, Source::Buffer { buffer, offset }) {
            if let Some(why) = self.misfit(n, d, k, job.path, false) {
                return Err(Error::Backend(format!(
                    "{why}; features in a GPU buffer cannot fall back to the CPU engine: copy them to the host and call run(), or prune fewer tokens"
                )));
            }
            let mut r = self.run_jobs(&[job]).await?;
            let r = r
                .pop()
                .ok_or_else(|| Error::Backend("internal: no result".into()))?;
            let notes = crate::cpu::greedy::zero_row_note(r.zero_rows);
            (r.order, r.scores, notes)
        } else {
            let (order, scores) = crate::cpu::baseline(method, n, k, None)
                .ok_or_else(|| Error::Backend("internal: not a baseline".into()))?;
            (order, scores, Vec::new())
        };
        let mut kept = order.clone();
        kept.sort_unstable();
        Ok(Selection {
            method: method.name(),
            n,
            d,
            order,
            kept,
            scores,
            coords: None,
            backend,
            notes,
        })
    }

    /// A GPU job for a greedy method, `None` for the baselines.
    fn job<'a>(
        &self,
        n: usize,
        d: usize,
        k: usize,
        method: &Method,
        src: Source<'a>,
    ) -> Option<Job<'a>> {
        let (m, pk, om, imp) = match method {
            Method::DivPrune => (0, 1, 0.0, None),
            Method::IdPruner(p) => {
                let (lam, om) = p.weights();
                let imp = crate::cpu::greedy::normalize_importance(p.importance)
                    .into_iter()
                    .map(|i| [i, lam * i])
                    .collect();
                let pk = p.parallel_k.min(k.max(1)).min(u32::MAX as usize) as u32;
                (1, pk, om, Some(imp))
            }
            _ => return None,
        };
        Some(Job {
            n,
            d,
            k,
            method: m,
            pk,
            om,
            imp,
            src,
            path: self.greedy_path(n, k, m == 1),
        })
    }

    /// Runs greedy jobs in as few chunks as the device limits allow; records the GPU time.
    async fn run_jobs(&self, jobs: &[Job<'_>]) -> Result<Vec<JobResult>> {
        self.set_gpu_time(None);
        self.check_lost()?;
        if let Some(e) = self.inner.errors.take() {
            return Err(Error::Backend(format!(
                "an earlier GPU error was reported: {e}"
            )));
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut results = Vec::with_capacity(jobs.len());
        let mut gpu_ms: Option<f64> = Some(0.0);
        for range in self.chunks(jobs)? {
            let (r, ms) = self.execute(&jobs[range]).await?;
            results.extend(r);
            gpu_ms = match (gpu_ms, ms) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        self.set_gpu_time(gpu_ms);
        Ok(results)
    }

    /// The largest step table (streaming uniforms, 256 bytes per pick) one submission may use
    /// (also under 4 GiB: its dynamic offsets are u32).
    fn steps_cap(&self) -> u64 {
        self.inner
            .limits
            .max_buffer_size
            .min(BIND_CAP)
            .min(self.options.max_binding_bytes.unwrap_or(u64::MAX))
    }

    /// Why a pool of `n` x `d` keeping `k` on `path` cannot run on this device at all (a buffer
    /// above the binding cap, more workgroups than a dispatch dimension allows, a step table
    /// above the buffer cap), or `None` when it fits. `host`: the features are uploaded.
    fn misfit(&self, n: usize, d: usize, k: usize, path: GpuPath, host: bool) -> Option<String> {
        let cap = self.binding_cap();
        let b = job_bytes(n, d, k, path, host);
        const NAMES: [&str; 7] = [
            "features",
            "normalised features",
            "N x N similarity",
            "per-token state",
            "importance",
            "results",
            "partial argmax",
        ];
        if let Some(i) = (0..7).find(|&i| b[i] > cap) {
            return Some(format!(
                "a {n} x {d} pool needs a {}-byte buffer ({}) on the {} path, above the GPU binding limit of {cap} bytes",
                b[i],
                NAMES[i],
                path
            ));
        }
        let max_dim = self.inner.limits.max_compute_workgroups_per_dimension as usize;
        let tiles = n.div_ceil(TILE as usize);
        let rows_y = n.div_ceil(n.min(max_dim).max(1));
        if tiles > max_dim || rows_y > max_dim {
            return Some(format!(
                "a pool of {n} tokens needs more workgroups than the GPU's {max_dim} per dimension"
            ));
        }
        let steps = (k as u64 + 1) * STEP_STRIDE;
        if path == GpuPath::Streaming && steps > self.steps_cap() {
            return Some(format!(
                "K = {k} streaming steps need {steps} bytes of step uniforms, above the GPU buffer limit of {} bytes",
                self.steps_cap()
            ));
        }
        None
    }

    /// Splits jobs into consecutive chunks whose buffers each fit one binding and whose pool
    /// count fits one dispatch dimension. Every job must fit alone (see [`GpuEngine::misfit`]).
    fn chunks(&self, jobs: &[Job]) -> Result<Vec<std::ops::Range<usize>>> {
        let cap = self.binding_cap();
        let l = &self.inner.limits;
        let max_dim = l.max_compute_workgroups_per_dimension as usize;
        let max_pools = max_dim.saturating_sub(8).max(1);
        let steps_cap = self.steps_cap();
        let mut out = Vec::new();
        let mut start = 0;
        let mut sum = [0u64; 7];
        let mut kmax = 0usize;
        for (i, job) in jobs.iter().enumerate() {
            let host = matches!(job.src, Source::Host(_));
            if let Some(why) = self.misfit(job.n, job.d, job.k, job.path, host) {
                return Err(Error::Backend(why));
            }
            let b = job.bytes();
            let k_stream = if job.path == GpuPath::Streaming {
                job.k
            } else {
                0
            };
            let fits = (0..7).all(|x| sum[x] + b[x] <= cap)
                && i - start < max_pools
                && (kmax.max(k_stream) as u64 + 1) * STEP_STRIDE <= steps_cap;
            if !fits && i > start {
                out.push(start..i);
                start = i;
                sum = [0; 7];
                kmax = 0;
            }
            for x in 0..7 {
                sum[x] += b[x];
            }
            kmax = kmax.max(k_stream);
        }
        out.push(start..jobs.len());
        Ok(out)
    }

    /// Runs one chunk: upload, one compute pass, readback.
    async fn execute(&self, jobs: &[Job<'_>]) -> Result<(Vec<JobResult>, Option<f64>)> {
        let inner = &*self.inner;
        let _in_flight = inner.pool.enter();
        let device = &*inner.device;
        let max_buffer = inner.limits.max_buffer_size;
        let align = (inner.limits.min_storage_buffer_offset_alignment as usize / 64).max(1);

        // Pool table: dense pools first, the streaming ones from an aligned slot on.
        let dense: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].path == GpuPath::Dense)
            .collect();
        let stream: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].path == GpuPath::Streaming)
            .collect();
        let stream_start = dense.len().div_ceil(align) * align;
        let entries = if stream.is_empty() {
            dense.len()
        } else {
            stream_start + stream.len()
        };
        let mut table = vec![PoolEntry::default(); entries];
        let mut slot_of = vec![0usize; jobs.len()];
        for (s, &i) in dense.iter().enumerate() {
            slot_of[i] = s;
        }
        for (s, &i) in stream.iter().enumerate() {
            slot_of[i] = stream_start + s;
        }
        let (mut row0, mut u_off, mut src_off, mut sim_off, mut out_off, mut part_off) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut src_range = None;
        for (i, job) in jobs.iter().enumerate() {
            let (iters, parts) = if job.path == GpuPath::Streaming {
                job.stream_shape()
            } else {
                (0, 0)
            };
            let this_src = match job.src {
                Source::Host(_) => src_off,
                Source::Buffer { buffer, offset } => {
                    let a = inner.limits.min_storage_buffer_offset_alignment as u64;
                    let src_base = offset - offset % a;
                    let size =
                        (offset - src_base + job.n as u64 * job.d as u64 * 4).div_ceil(4) * 4;
                    src_range = Some((buffer, src_base, size));
                    (offset - src_base) / 4
                }
            };
            table[slot_of[i]] = PoolEntry {
                n: job.n as u32,
                k: job.k as u32,
                method: job.method,
                pk: job.pk.max(1),
                d: job.d as u32,
                d4: job.d4() as u32,
                src_off: this_src as u32,
                u_off: u_off as u32,
                row0: row0 as u32,
                cache_off: 0,
                sim_off: sim_off as u32,
                out_off: out_off as u32,
                parts,
                iters,
                part_off: part_off as u32,
                om: job.om,
            };
            let b = job.bytes();
            row0 += job.n as u64;
            u_off += b[1] / 16;
            src_off += b[0] / 4;
            sim_off += b[2] / 4;
            out_off += b[5] / 4;
            part_off += parts as u64;
        }
        let rows = row0;
        for e in &mut table {
            e.cache_off = rows as u32;
        }
        let pstride = part_off;
        let kmax = stream.iter().map(|&i| jobs[i].k).max().unwrap_or(0);
        let nmax = jobs.iter().map(|j| j.n).max().unwrap_or(1) as u32;
        let n_dense_max = dense
            .iter()
            .filter(|&&i| jobs[i].k > 0)
            .map(|&i| jobs[i].n)
            .max();
        let n_stream_max = stream.iter().map(|&i| jobs[i].n).max();
        let stream_divprune = stream.iter().any(|&i| jobs[i].method == 0);

        let bytes = |x: u64| x.max(4).div_ceil(4) * 4;
        let pools_bytes = entries as u64 * 64;
        let input_bytes = bytes(src_off * 4);
        let norm_bytes = bytes(u_off * 16);
        let sim_bytes = bytes(sim_off * 4);
        let state_bytes = bytes(rows * 8);
        let imp_bytes = bytes(rows * 8);
        let out_bytes = bytes(out_off * 4);
        let part_bytes = bytes(pstride * 16);
        let steps_bytes = (kmax as u64 + 1) * STEP_STRIDE;
        let ts_off = out_bytes.div_ceil(8) * 8;
        let readback_bytes = ts_off + 16;

        let take = |role: Role, size: u64| inner.pool.take(device, max_buffer, role, size);
        let b_pools = take(Role::Pools, pools_bytes);
        let b_input = take(Role::Input, input_bytes);
        let b_norm = take(Role::Norm, norm_bytes);
        let b_sim = take(Role::Sim, sim_bytes);
        let b_state = take(Role::State, state_bytes);
        let b_imp = take(Role::Imp, imp_bytes);
        let b_out = take(Role::Out, out_bytes);
        let b_part = take(Role::Partials, part_bytes);
        let b_steps = take(Role::Steps, steps_bytes);
        let b_read = take(Role::Readback, readback_bytes);
        let b_resolve = inner.timestamps.then(|| take(Role::Resolve, 16));
        let queries = if inner.timestamps {
            let q = inner.queries.lock().ok().and_then(|mut q| q.pop());
            Some(q.unwrap_or_else(|| {
                device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("tokenprune timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                })
            }))
        } else {
            None
        };

        // Everything from the uploads to the readback; the buffers go back to the pool
        // afterwards whatever happened, so an error does not leak them.
        let outcome: Result<Vec<u8>> = async {
            let caught = {
                let scopes = Scopes::push(device);
                let queue = &*inner.queue;
                // Uploads.
                queue.write_buffer(&b_pools, 0, bytemuck::cast_slice(&table));
                let mut off = 0u64;
                for job in jobs {
                    if let Source::Host(data) = job.src {
                        queue.write_buffer(&b_input, off, bytemuck::cast_slice(data));
                        off += data.len() as u64 * 4;
                    }
                }
                let mut imp = vec![[0.0f32; 2]; rows as usize];
                let mut r = 0usize;
                for job in jobs {
                    if let Some(v) = &job.imp {
                        imp[r..r + job.n].copy_from_slice(v);
                    }
                    r += job.n;
                }
                queue.write_buffer(&b_imp, 0, bytemuck::cast_slice(&imp));
                if !stream.is_empty() {
                    let mut steps = vec![0u8; steps_bytes as usize];
                    for t in 0..=kmax {
                        let e = StepEntry {
                            t: t as u32,
                            pstride: pstride as u32,
                            pad: [0; 2],
                        };
                        let at = t * STEP_STRIDE as usize;
                        steps[at..at + STEP_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&e));
                    }
                    queue.write_buffer(&b_steps, 0, &steps);
                }

                let group = |layout: &wgpu::BindGroupLayout, res: Vec<wgpu::BindingResource>| {
                    let entries: Vec<wgpu::BindGroupEntry> = res
                        .into_iter()
                        .enumerate()
                        .map(|(i, resource)| wgpu::BindGroupEntry {
                            binding: i as u32,
                            resource,
                        })
                        .collect();
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout,
                        entries: &entries,
                    })
                };
                let pools_all = || bind(&b_pools, 0, pools_bytes);
                let stream_pools =
                    || bind(&b_pools, stream_start as u64 * 64, stream.len() as u64 * 64);
                let input = match src_range {
                    Some((buf, base, size)) => bind(buf, base, size),
                    None => bind(&b_input, 0, input_bytes),
                };
                let g_norm = group(
                    &inner.pipes.normalize_layout,
                    vec![
                        pools_all(),
                        input,
                        bind(&b_norm, 0, norm_bytes),
                        bind(&b_out, 0, out_bytes),
                    ],
                );

                let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tokenprune"),
                });
                enc.clear_buffer(&b_state, 0, Some(state_bytes));
                enc.clear_buffer(&b_out, 0, Some(out_bytes));
                {
                    let timestamp_writes =
                        queries.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                            query_set: q,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        });
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("tokenprune"),
                        timestamp_writes,
                    });
                    // 1. Normalise every row of every pool.
                    let max_dim = inner.limits.max_compute_workgroups_per_dimension;
                    let x = nmax.min(max_dim).max(1);
                    pass.set_pipeline(&inner.pipes.normalize);
                    pass.set_bind_group(0, &g_norm, &[]);
                    pass.dispatch_workgroups(x, nmax.div_ceil(x), entries as u32);
                    // 2. Dense similarity (+ nearest neighbours for DivPrune) and greedy select.
                    if let Some(nd) = n_dense_max {
                        let t = (nd as u32).div_ceil(TILE);
                        let g_sim = group(
                            &inner.pipes.sim_layout,
                            vec![
                                pools_all(),
                                bind(&b_norm, 0, norm_bytes),
                                bind(&b_sim, 0, sim_bytes),
                                bind(&b_state, 0, state_bytes),
                            ],
                        );
                        pass.set_pipeline(&inner.pipes.sim_dense);
                        pass.set_bind_group(0, &g_sim, &[]);
                        pass.dispatch_workgroups(t, t, dense.len() as u32);
                        let g_sel = group(
                            &inner.pipes.select_layout,
                            vec![
                                pools_all(),
                                bind(&b_sim, 0, sim_bytes),
                                bind(&b_state, 0, state_bytes),
                                bind(&b_imp, 0, imp_bytes),
                                bind(&b_out, 0, out_bytes),
                            ],
                        );
                        pass.set_pipeline(&inner.pipes.select);
                        pass.set_bind_group(0, &g_sel, &[]);
                        pass.dispatch_workgroups(dense.len() as u32, 1, 1);
                    }
                    // 3. Streaming: nearest neighbours (DivPrune seed), then K + 1 steps.
                    if let Some(ns) = n_stream_max {
                        if stream_divprune {
                            let t = (ns as u32).div_ceil(TILE);
                            let g_nn = group(
                                &inner.pipes.sim_layout,
                                vec![
                                    stream_pools(),
                                    bind(&b_norm, 0, norm_bytes),
                                    bind(&inner.dummy, 0, 256),
                                    bind(&b_state, 0, state_bytes),
                                ],
                            );
                            pass.set_pipeline(&inner.pipes.sim_nearest);
                            pass.set_bind_group(0, &g_nn, &[]);
                            pass.dispatch_workgroups(t, t, stream.len() as u32);
                        }
                        let g_stream = group(
                            &inner.pipes.stream_layout,
                            vec![
                                stream_pools(),
                                bind(&b_norm, 0, norm_bytes),
                                bind(&b_state, 0, state_bytes),
                                bind(&b_imp, 0, imp_bytes),
                                bind(&b_out, 0, out_bytes),
                                bind(&b_part, 0, part_bytes),
                                bind(&b_steps, 0, STEP_BYTES),
                            ],
                        );
                        let pmax = stream.iter().map(|&i| table[slot_of[i]].parts).max();
                        pass.set_pipeline(&inner.pipes.stream);
                        for t in 0..=kmax {
                            pass.set_bind_group(0, &g_stream, &[(t as u64 * STEP_STRIDE) as u32]);
                            pass.dispatch_workgroups(pmax.unwrap_or(1), stream.len() as u32, 1);
                        }
                    }
                }
                if let (Some(q), Some(r)) = (&queries, &b_resolve) {
                    enc.resolve_query_set(q, 0..2, r, 0);
                    enc.copy_buffer_to_buffer(r, 0, &b_read, ts_off, Some(16));
                }
                enc.copy_buffer_to_buffer(&b_out, 0, &b_read, 0, Some(out_bytes));
                queue.submit([enc.finish()]);
                scopes.pop()
            };
            if let Some(e) = caught.await {
                return Err(context::backend_error("running the kernels", &e));
            }
            self.read(&b_read, readback_bytes).await
        }
        .await;
        // Give the buffers back.
        let pool = &inner.pool;
        for (role, b) in [
            (Role::Pools, b_pools),
            (Role::Input, b_input),
            (Role::Norm, b_norm),
            (Role::Sim, b_sim),
            (Role::State, b_state),
            (Role::Imp, b_imp),
            (Role::Out, b_out),
            (Role::Partials, b_part),
            (Role::Steps, b_steps),
            (Role::Readback, b_read),
        ] {
            pool.give(role, b);
        }
        if let Some(r) = b_resolve {
            pool.give(Role::Resolve, r);
        }
        if let (Some(q), Ok(mut list)) = (queries, inner.queries.lock()) {
            list.push(q);
        }
        let data = outcome?;
        let words: Vec<u32> = data
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let gpu_ms = if inner.timestamps {
            let at = ts_off as usize;
            let t = |o: usize| {
                u64::from_le_bytes(data[at + o..at + o + 8].try_into().unwrap_or([0; 8]))
            };
            let period = inner.queue.get_timestamp_period() as f64;
            Some(t(8).saturating_sub(t(0)) as f64 * period / 1e6)
        } else {
            None
        };

        let mut results = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let off = table[slot_of[i]].out_off as usize;
            let k = job.k;
            let zero_rows = words[off] as usize;
            let order = words[off + 1..off + 1 + k].to_vec();
            let scores = words[off + 1 + k..off + 1 + 2 * k]
                .iter()
                .map(|&b| f32::from_bits(b))
                .collect();
            let mut seen = vec![false; job.n];
            for &p in &order {
                let p = p as usize;
                if p >= job.n || seen[p] {
                    return Err(Error::Backend(format!(
                        "the GPU returned an invalid selection for a {} x {} pool (index {p}); the adapter '{}' may be faulty",
                        job.n, job.d, inner.info.name
                    )));
                }
                seen[p] = true;
            }
            results.push(JobResult {
                order,
                scores,
                zero_rows,
            });
        }
        Ok((results, gpu_ms))
    }

    /// Maps `buffer` and copies its first `size` bytes out. A mapping that fails or is
    /// abandoned means the device is lost (the engine's own buffers are always mappable): the
    /// engine is marked lost so later calls fail at once.
    async fn read(&self, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let slice = buffer.slice(0..size);
        let (tx, rx) = context::oneshot();
        let caught = {
            let scopes = Scopes::push(&self.inner.device);
            slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
            scopes.pop()
        };
        if let Some(e) = caught.await {
            return Err(context::backend_error("reading the results back", &e));
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend(format!("waiting for the GPU: {e}")))?;
        let failed = match rx.await {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(format!("reading the results back failed ({e})")),
            None => Some("reading the results back was abandoned".to_string()),
        };
        if let Some(what) = failed {
            let extra = self.inner.errors.take();
            self.inner.errors.set_lost(match extra {
                Some(m) => format!("the GPU device is lost or unusable ({what}: {m})"),
                None => format!("the GPU device is lost or unusable ({what})"),
            });
            self.check_lost()?;
        }
        let data = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Backend(format!("reading the results back: {e}")))?;
            view.to_vec()
        };
        buffer.unmap();
        Ok(data)
    }
}

/// Blocking constructors (native only): the async ones driven by `pollster`.
#[cfg(not(target_arch = "wasm32"))]
impl GpuEngine {
    /// Blocking [`GpuEngine::new`].
    pub fn new_blocking(options: GpuOptions) -> Result<Self> {
        pollster::block_on(GpuEngine::new(options))
    }

    /// Blocking [`GpuEngine::run_batch`].
    pub fn run_batch_blocking(&self, reqs: &[Request<'_>]) -> Result<Vec<Selection>> {
        pollster::block_on(self.run_batch(reqs))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_sync_and_pool_entry_is_64_bytes() {
        assert_send_sync::<GpuEngine>();
        assert_eq!(std::mem::size_of::<PoolEntry>(), 64);
        assert_eq!(std::mem::size_of::<StepEntry>() as u64, STEP_BYTES);
    }
}

/// Whether `TOKENPRUNE_ADAPTER` names an adapter explicitly.
pub(crate) fn adapter_named_by_env() -> bool {
    context::adapter_filter().is_some()
}
