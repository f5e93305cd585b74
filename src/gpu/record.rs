//! Recording one submission: the buffers it takes from the pool, the uploads, and one encode
//! function per kernel, named after its shader, that binds what the layout describes
//! ([`Layout`] for the greedy jobs, [`DppLayout`], [`VideoLayout`]) and dispatches. Each kind
//! of job is its own submission (one command buffer, one compute pass).

use super::buffers::{BindCache, BufferPool, Role};
use super::jobs::{DppJob, GpuJob, VideoJob};
use super::kernels::{
    KernelId, PoolEntry, RoundsEntry, StepEntry, COLS, STEP_STRIDE, STREAM_GROUP, TILE, WG,
};
use super::layout::{DppLayout, Layout, SimRows, VideoLayout};
use super::pipelines::Pipelines;
use super::plan::Segment;
use crate::select::DppRelevance;

/// A submission's set of buffers: one field per [`Role`], each taken from the engine's pool at
/// its size in the layout (`sizes.<size>`) and all given back together afterwards, plus one for
/// resolved timestamps when the submission records them.
macro_rules! buffer_set {
    (
        $(#[$doc:meta])*
        $name:ident for $layout:ty {
            $($vis:vis $field:ident: $role:ident = $size:ident),* $(,)?
        }
    ) => {
        $(#[$doc])*
        pub(crate) struct $name {
            $($vis $field: wgpu::Buffer,)*
            resolve: Option<wgpu::Buffer>,
        }

        impl $name {
            /// Takes every buffer `layout` needs (and one for resolved timestamps).
            pub(crate) fn take(
                pool: &BufferPool,
                device: &wgpu::Device,
                max_buffer: u64,
                layout: &$layout,
                timestamps: bool,
            ) -> Self {
                let s = &layout.sizes;
                let take = |role: Role, size: u64| pool.take(device, max_buffer, role, size);
                $name {
                    $($field: take(Role::$role, s.$size),)*
                    resolve: timestamps.then(|| take(Role::Resolve, 16)),
                }
            }

            /// Gives every buffer back to the pool.
            pub(crate) fn give(self, pool: &BufferPool) {
                $(pool.give(Role::$role, self.$field);)*
                if let Some(r) = self.resolve {
                    pool.give(Role::Resolve, r);
                }
            }
        }
    };
}

buffer_set! {
    /// The buffers of one greedy submission (DivPrune and IDPruner pools).
    Buffers for Layout {
        pools: Pools = pools,
        input: Input = input,
        norm: Norm = norm,
        sim: Sim = sim,
        state: State = state,
        imp: Imp = imp,
        out: Out = out,
        partials: Partials = partials,
        steps: Steps = steps,
        pub readback: Readback = readback,
    }
}

/// Writes the pool table, the host features, the importance pairs and the step table.
pub(crate) fn upload(
    queue: &wgpu::Queue,
    kit: &Kit,
    layout: &Layout,
    jobs: &[&GpuJob],
    b: &Buffers,
) {
    queue.write_buffer(&b.pools, 0, bytemuck::cast_slice(&layout.table));
    let mut off = 0u64;
    for job in jobs {
        if let Some(data) = job.host {
            queue.write_buffer(&b.input, off, bytemuck::cast_slice(data));
            off += data.len() as u64 * 4;
        }
    }
    // (importance, lambda * importance) per row; zeros for DivPrune rows.
    let mut imp = vec![[0.0f32; 2]; layout.rows as usize];
    let mut r = 0usize;
    for job in jobs {
        if let Some(m) = job.mmr {
            for (dst, &i) in imp[r..r + job.spec.shape.n].iter_mut().zip(&m.imp) {
                *dst = [i, m.lambda * i];
            }
        }
        r += job.spec.shape.n;
    }
    queue.write_buffer(&b.imp, 0, bytemuck::cast_slice(&imp));
    let mut steps = vec![0u8; layout.sizes.steps as usize];
    if !layout.stream.is_empty() {
        for t in 0..=layout.kmax {
            let e = StepEntry {
                t: t as u32,
                pstride: layout.pstride as u32,
                ..Default::default()
            };
            let at = t * STEP_STRIDE as usize;
            steps[at..at + std::mem::size_of::<StepEntry>()]
                .copy_from_slice(bytemuck::bytes_of(&e));
        }
    }
    put_sim_rows(&mut steps, &layout.sim_rows);
    kit.write_uniform(queue, &b.steps, &steps);
}

/// Writes the similarity's tile-row entries into a uniform table.
fn put_sim_rows(table: &mut [u8], rows: &SimRows) {
    for (i, (first, end)) in rows.entries().enumerate() {
        let e = RoundsEntry {
            first,
            end,
            ..Default::default()
        };
        let at = (rows.base + i) * STEP_STRIDE as usize;
        table[at..at + std::mem::size_of::<RoundsEntry>()].copy_from_slice(bytemuck::bytes_of(&e));
    }
}

buffer_set! {
    /// The buffers of one DPP submission (`Picks` of CDPruner pools).
    DppBuffers for DppLayout {
        pools: Pools = pools,
        input: Input = input,
        norm: Norm = norm,
        sim: Sim = sim,
        state: State = state,
        chol: Chol = chol,
        out: Out = out,
        rounds: Steps = rounds,
        pub readback: Readback = readback,
    }
}

buffer_set! {
    /// The buffers of one video submission (EVS and VidCom2 scores).
    VideoBuffers for VideoLayout {
        pools: Pools = pools,
        input: Input = input,
        norm: Norm = norm,
        stats: Stats = stats,
        cent: Centres = cent,
        out: Out = out,
        pub readback: Readback = readback,
    }
}

/// Writes the DPP pool table, the rounds table, the host features, the text vectors and the
/// given relevance (into each pool's relevance slots of the state buffer, which the kernel
/// does not clear).
pub(crate) fn upload_dpp(
    queue: &wgpu::Queue,
    kit: &Kit,
    l: &DppLayout,
    jobs: &[&DppJob],
    b: &DppBuffers,
) {
    queue.write_buffer(&b.pools, 0, bytemuck::cast_slice(&l.table));
    let mut rounds = vec![0u8; l.sizes.rounds as usize];
    for (i, &(first, end)) in l.rounds.iter().enumerate() {
        let e = RoundsEntry {
            first,
            end,
            ..Default::default()
        };
        let at = i * STEP_STRIDE as usize;
        rounds[at..at + std::mem::size_of::<RoundsEntry>()].copy_from_slice(bytemuck::bytes_of(&e));
    }
    put_sim_rows(&mut rounds, &l.sim_rows);
    kit.write_uniform(queue, &b.rounds, &rounds);
    for (i, job) in jobs.iter().enumerate() {
        if let (Some(data), Some(at)) = (job.host, l.features_at[i]) {
            queue.write_buffer(&b.input, at, bytemuck::cast_slice(data));
        }
        let e = &l.table[l.slot_of[i]];
        match (job.relevance, l.text_at[i]) {
            (DppRelevance::Text(t), Some(at)) => {
                queue.write_buffer(&b.input, at, bytemuck::cast_slice(t));
            }
            (DppRelevance::Given(r), _) => {
                let at = (e.row0 as u64 + 2 * e.n as u64) * 4;
                queue.write_buffer(&b.state, at, bytemuck::cast_slice(r));
            }
            _ => {}
        }
    }
}

/// Writes the video pool table and the host features.
pub(crate) fn upload_video(
    queue: &wgpu::Queue,
    l: &VideoLayout,
    jobs: &[&VideoJob],
    b: &VideoBuffers,
) {
    queue.write_buffer(&b.pools, 0, bytemuck::cast_slice(&l.table));
    for (job, at) in jobs.iter().zip(&l.features_at) {
        if let (Some(data), Some(at)) = (job.host, at) {
            queue.write_buffer(&b.input, *at, bytemuck::cast_slice(data));
        }
    }
}

/// A binding of `size` bytes of `buffer` from `offset`.
fn bind(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    })
}

/// Slots `first..first + count` of a pool table.
fn table_range(pools: &wgpu::Buffer, first: usize, count: usize) -> wgpu::BindingResource<'_> {
    let entry = std::mem::size_of::<PoolEntry>() as u64;
    bind(pools, first as u64 * entry, count.max(1) as u64 * entry)
}

/// The features to normalise: the caller's buffer (its aligned range) when the pools read
/// theirs in place, else the input buffer.
fn features<'a>(
    kit: &Kit<'a>,
    range: Option<(u64, u64)>,
    input: &'a wgpu::Buffer,
) -> wgpu::BindingResource<'a> {
    match (kit.source, range) {
        (Some(buf), Some((base, size))) => bind(buf, base, size),
        _ => kit.whole(input),
    }
}

/// What every encode function needs: the device, the pipelines, a spare buffer, the dispatch
/// and binding limits, and the bind group cache of the buffers' generation.
pub(crate) struct Kit<'a> {
    pub device: &'a wgpu::Device,
    pub pipes: &'a Pipelines,
    /// A small buffer bound where a kernel's binding is unused (similarity `nearest`'s S).
    pub dummy: &'a wgpu::Buffer,
    pub max_workgroups: u32,
    /// The device's `max_storage_buffer_binding_size`.
    pub max_binding: u64,
    pub binds: &'a BindCache,
    /// The pool's generation once this submission's buffers were taken.
    pub generation: u64,
    /// The caller's buffer the features are read from, if any (never cached: the cache must
    /// not keep a caller's buffer alive).
    pub source: Option<&'a wgpu::Buffer>,
}

impl Kit<'_> {
    /// A whole pooled buffer as a binding (up to the device's binding limit): the same
    /// binding whatever the call's sizes, so its bind groups are reused across calls.
    fn whole<'b>(&self, buffer: &'b wgpu::Buffer) -> wgpu::BindingResource<'b> {
        let size = buffer.size().min(self.max_binding) / 4 * 4;
        bind(buffer, 0, size)
    }

    /// Writes a uniform table unless this generation already wrote exactly these bytes.
    fn write_uniform(&self, queue: &wgpu::Queue, buffer: &wgpu::Buffer, bytes: &[u8]) {
        if self.binds.uniform_changed(self.generation, buffer, bytes) {
            queue.write_buffer(buffer, 0, bytes);
        }
    }

    /// The bind group for kernel `id` with `resources` in its table's binding order: from
    /// the generation's cache, made once per set of buffers and ranges.
    fn group(&self, id: KernelId, resources: Vec<wgpu::BindingResource>) -> wgpu::BindGroup {
        let bindings = id.kernel().bindings;
        debug_assert_eq!(
            resources.len(),
            bindings.len(),
            "{}: bind {:?}",
            id.label(),
            bindings.iter().map(|b| b.name).collect::<Vec<_>>()
        );
        let ranges: Vec<_> = resources
            .iter()
            .filter_map(|r| match r {
                wgpu::BindingResource::Buffer(b) => Some((b.buffer.clone(), b.offset, b.size)),
                _ => None,
            })
            .collect();
        let cache = !ranges.iter().any(|(b, ..)| Some(b) == self.source);
        let key = (id.label(), ranges);
        self.binds.group(self.generation, key, cache, || {
            let entries: Vec<wgpu::BindGroupEntry> = resources
                .into_iter()
                .enumerate()
                .map(|(i, resource)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&id.label()),
                layout: &self.pipes[id].layout,
                entries: &entries,
            })
        })
    }

    /// Binds kernel `id` with `resources` and dispatches (x, y, z) workgroups.
    fn run(
        &self,
        pass: &mut wgpu::ComputePass,
        id: KernelId,
        resources: Vec<wgpu::BindingResource>,
        [x, y, z]: [u32; 3],
    ) {
        let group = self.group(id, resources);
        pass.set_pipeline(&self.pipes[id].pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// `count` workgroups as an (x, y) grid within the per-dimension limit.
    fn grid(&self, count: u32) -> (u32, u32) {
        let x = count.min(self.max_workgroups).max(1);
        (x, count.div_ceil(x))
    }
}

/// What the greedy encode functions share: the kit, the layout and the buffers.
pub(crate) struct Recorder<'a> {
    pub kit: Kit<'a>,
    pub layout: &'a Layout,
    pub bufs: &'a Buffers,
    /// What each submission records (`plan::greedy_segments`; one segment when everything
    /// fits one submission).
    pub segments: Vec<Segment>,
}

impl Recorder<'_> {
    /// The pool table, whole.
    fn pools_all(&self) -> wgpu::BindingResource<'_> {
        self.kit.whole(&self.bufs.pools)
    }

    /// The streaming pools' part of the pool table.
    fn pools_stream(&self) -> wgpu::BindingResource<'_> {
        table_range(
            &self.bufs.pools,
            self.layout.stream_start,
            self.layout.stream.len(),
        )
    }
}

/// normalize.wgsl's bindings (kernel table order) and extent.
pub(crate) struct NormalizeRun<'a> {
    pub pools: wgpu::BindingResource<'a>,
    pub src: wgpu::BindingResource<'a>,
    pub u: wgpu::BindingResource<'a>,
    pub out: wgpu::BindingResource<'a>,
    pub chan: wgpu::BindingResource<'a>,
    /// The most rows of a pool, and the pools.
    pub rows: u32,
    pub count: u32,
}

/// normalize.wgsl: every row of every pool, one workgroup per row (rows over x and y, pools
/// over z).
pub(crate) fn encode_normalize(kit: &Kit, pass: &mut wgpu::ComputePass, r: NormalizeRun) {
    let (x, y) = kit.grid(r.rows);
    let binds = vec![r.pools, r.src, r.u, r.out, r.chan];
    kit.run(pass, KernelId::Normalize, binds, [x, y, r.count]);
}

/// similarity.wgsl's bindings and extent: the largest N and the pools (the first `count` of
/// the table), and the tile rows this submission runs, with the table of row ranges.
pub(crate) struct SimilarityRun<'a> {
    pub pools: wgpu::BindingResource<'a>,
    pub u: wgpu::BindingResource<'a>,
    pub sim: wgpu::BindingResource<'a>,
    pub nn: wgpu::BindingResource<'a>,
    /// The uniform table holding the [`SimRows`] entries.
    pub table: &'a wgpu::Buffer,
    pub sim_rows: SimRows,
    pub rows: std::ops::Range<usize>,
    pub n: usize,
    pub count: usize,
}

/// similarity.wgsl: `dense` stores S of every dense pool (and folds the nearest neighbours
/// of DivPrune pools); `nearest` only folds them, for the streaming DivPrune pools. Tiles
/// over (x, y), pools over z; all tile rows in one dispatch, or (a similarity spread over
/// several submissions) this submission's rows one dispatch each.
pub(crate) fn encode_similarity(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    id: KernelId,
    r: SimilarityRun,
) {
    let t = (r.n as u32).div_ceil(TILE);
    let rows = (r.rows.start as u32).min(t)..(r.rows.end as u32).min(t);
    if rows.is_empty() {
        return;
    }
    let table = bind(r.table, 0, std::mem::size_of::<RoundsEntry>() as u64);
    let group = kit.group(id, vec![r.pools, r.u, r.sim, r.nn, table]);
    pass.set_pipeline(&kit.pipes[id].pipeline);
    let dispatches: Vec<std::ops::Range<u32>> = if rows.start == 0 && rows.end == t {
        std::iter::once(0..r.sim_rows.tiles).collect()
    } else {
        rows.map(|x| x..x + 1).collect()
    };
    for d in dispatches {
        let offset = r.sim_rows.index(d.clone()) as u64 * STEP_STRIDE;
        pass.set_bind_group(0, &group, &[offset as u32]);
        pass.dispatch_workgroups(t, d.len().min(t as usize) as u32, r.count as u32);
    }
}

/// select.wgsl: all K picks of every dense pool in one dispatch, one workgroup per pool.
pub(crate) fn encode_select(r: &Recorder, pass: &mut wgpu::ComputePass) {
    let (l, b) = (r.layout, r.bufs);
    if l.n_dense_max.is_none() {
        return;
    }
    let binds = vec![
        r.pools_all(),
        r.kit.whole(&b.sim),
        r.kit.whole(&b.state),
        r.kit.whole(&b.imp),
        r.kit.whole(&b.out),
    ];
    r.kit
        .run(pass, KernelId::Select, binds, [l.dense.len() as u32, 1, 1]);
}

/// stream.wgsl: steps 0..=K of every streaming pool, one dispatch per step (the step number
/// from the step table at a dynamic offset), all in this pass.
pub(crate) fn encode_stream(
    r: &Recorder,
    pass: &mut wgpu::ComputePass,
    steps: std::ops::Range<usize>,
) {
    let (l, b) = (r.layout, r.bufs);
    if l.stream.is_empty() || steps.is_empty() {
        return;
    }
    let group = r.kit.group(
        KernelId::Stream,
        vec![
            r.pools_stream(),
            r.kit.whole(&b.norm),
            r.kit.whole(&b.state),
            r.kit.whole(&b.imp),
            r.kit.whole(&b.out),
            r.kit.whole(&b.partials),
            bind(&b.steps, 0, std::mem::size_of::<StepEntry>() as u64),
        ],
    );
    let parts = l.stream.iter().map(|&i| l.table[l.slot_of[i]].parts).max();
    pass.set_pipeline(&r.kit.pipes[KernelId::Stream].pipeline);
    for t in steps {
        pass.set_bind_group(0, &group, &[(t as u64 * STEP_STRIDE) as u32]);
        pass.dispatch_workgroups(parts.unwrap_or(1), l.stream.len() as u32, 1);
    }
}

/// dpp.wgsl: `relevance` (the text relevance of every pool that has one, 32 tokens per
/// workgroup over (x, y), pools over z) or `greedy` (one workgroup per pool, one dispatch per
/// entry of the rounds table, its rounds at a dynamic offset).
pub(crate) fn encode_dpp(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    id: KernelId,
    l: &DppLayout,
    b: &DppBuffers,
    dispatches: std::ops::Range<usize>,
) {
    let pools = kit.whole(&b.pools);
    let (u, state) = (kit.whole(&b.norm), kit.whole(&b.state));
    if id == KernelId::DppRelevance {
        let (x, y) = kit.grid(l.nmax.div_ceil(STREAM_GROUP));
        kit.run(pass, id, vec![pools, u, state], [x, y, l.pools as u32]);
        return;
    }
    let binds = vec![
        pools,
        u,
        state,
        kit.whole(&b.sim),
        kit.whole(&b.chol),
        kit.whole(&b.out),
        bind(&b.rounds, 0, std::mem::size_of::<RoundsEntry>() as u64),
    ];
    let group = kit.group(KernelId::Dpp, binds);
    pass.set_pipeline(&kit.pipes[KernelId::Dpp].pipeline);
    for i in dispatches {
        pass.set_bind_group(0, &group, &[(i as u64 * STEP_STRIDE) as u32]);
        pass.dispatch_workgroups(l.pools as u32, 1, 1);
    }
}

/// evs.wgsl: the EVS pools' scores, 32 tokens per workgroup over (x, y), pools over z.
pub(crate) fn encode_evs(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    l: &VideoLayout,
    b: &VideoBuffers,
) {
    let (x, y) = kit.grid(l.nmax.div_ceil(STREAM_GROUP));
    let binds = vec![kit.whole(&b.pools), kit.whole(&b.norm), kit.whole(&b.out)];
    kit.run(pass, KernelId::Evs, binds, [x, y, l.table.len() as u32]);
}

/// vidcom2_channels.wgsl: `variance` (COLS channels per workgroup over x, pools over z) or
/// `choose` (WG channels per workgroup).
pub(crate) fn encode_vidcom2_channels(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    id: KernelId,
    l: &VideoLayout,
    b: &VideoBuffers,
    src: wgpu::BindingResource,
) {
    let (pools, stats) = (kit.whole(&b.pools), kit.whole(&b.stats));
    let count = l.table.len() as u32;
    if id == KernelId::VidCom2Variance {
        kit.run(
            pass,
            id,
            vec![pools, stats, src],
            [l.cmax.div_ceil(COLS), 1, count],
        );
    } else {
        kit.run(
            pass,
            id,
            vec![pools, stats],
            [l.cmax.div_ceil(WG), 1, count],
        );
    }
}

/// vidcom2_centres.wgsl: `frames` (COLS kept channels per workgroup over x, frames over y,
/// pools over z), then `video` (WG channels per workgroup).
pub(crate) fn encode_vidcom2_centres(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    id: KernelId,
    l: &VideoLayout,
    b: &VideoBuffers,
) {
    let binds = vec![kit.whole(&b.pools), kit.whole(&b.stats), kit.whole(&b.cent)];
    let count = l.table.len() as u32;
    if id == KernelId::VidCom2Frames {
        let mut binds = binds;
        binds.push(kit.whole(&b.norm));
        kit.run(pass, id, binds, [l.kcmax.div_ceil(COLS), l.fmax, count]);
    } else {
        kit.run(pass, id, binds, [l.kcmax.div_ceil(WG), 1, count]);
    }
}

/// vidcom2_scores.wgsl: the VidCom2 pools' scores, 32 tokens per workgroup over (x, y), pools
/// over z.
pub(crate) fn encode_vidcom2_scores(
    kit: &Kit,
    pass: &mut wgpu::ComputePass,
    l: &VideoLayout,
    b: &VideoBuffers,
) {
    let (x, y) = kit.grid(l.nmax.div_ceil(STREAM_GROUP));
    let binds = vec![
        kit.whole(&b.pools),
        kit.whole(&b.norm),
        kit.whole(&b.cent),
        kit.whole(&b.out),
    ];
    kit.run(
        pass,
        KernelId::VidCom2Scores,
        binds,
        [x, y, l.table.len() as u32],
    );
}

/// A compute pass of submission `i` of `count`: the first pass writes the begin timestamp,
/// the last the end one (where supported).
fn begin<'e>(
    enc: &'e mut wgpu::CommandEncoder,
    queries: Option<&'e wgpu::QuerySet>,
    (i, count): (usize, usize),
) -> wgpu::ComputePass<'e> {
    let (first, last) = (i == 0, i + 1 == count);
    let timestamp_writes =
        queries
            .filter(|_| first || last)
            .map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: first.then_some(0),
                end_of_pass_write_index: last.then_some(1),
            });
    enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("tokenprune"),
        timestamp_writes,
    })
}

/// The results (and resolved timestamps) into the readback buffer.
fn finish(
    mut enc: wgpu::CommandEncoder,
    queries: Option<&wgpu::QuerySet>,
    resolve: Option<&wgpu::Buffer>,
    (out, out_size): (&wgpu::Buffer, u64),
    (readback, ts_off): (&wgpu::Buffer, u64),
) -> wgpu::CommandBuffer {
    if let (Some(q), Some(res)) = (queries, resolve) {
        enc.resolve_query_set(q, 0..2, res, 0);
        enc.copy_buffer_to_buffer(res, 0, readback, ts_off, Some(16));
    }
    enc.copy_buffer_to_buffer(out, 0, readback, 0, Some(out_size));
    enc.finish()
}

fn encoder(device: &wgpu::Device) -> wgpu::CommandEncoder {
    device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("tokenprune"),
    })
}

/// Records a greedy run, one command buffer per submission ([`Recorder::segments`]), each one
/// compute pass of its part of: normalise (the first), the dense similarity's tile rows,
/// select, the nearest-neighbour fold's tile rows, the streaming steps. The first also clears,
/// the last copies the results (and timestamps) into the readback buffer.
pub(crate) fn record(r: &Recorder, queries: Option<&wgpu::QuerySet>) -> Vec<wgpu::CommandBuffer> {
    let (l, b, kit) = (r.layout, r.bufs, &r.kit);
    let count = r.segments.len();
    let mut out = Vec::with_capacity(count);
    let mut enc = encoder(kit.device);
    enc.clear_buffer(&b.state, 0, Some(l.sizes.state));
    enc.clear_buffer(&b.out, 0, Some(l.sizes.out));
    for (i, seg) in r.segments.iter().enumerate() {
        if i > 0 {
            out.push(std::mem::replace(&mut enc, encoder(kit.device)).finish());
        }
        let mut pass = begin(&mut enc, queries, (i, count));
        let norm = || kit.whole(&b.norm);
        if i == 0 {
            encode_normalize(
                kit,
                &mut pass,
                NormalizeRun {
                    pools: r.pools_all(),
                    src: features(kit, l.device_range, &b.input),
                    u: norm(),
                    out: kit.whole(&b.out),
                    chan: bind(kit.dummy, 0, 256),
                    rows: l.nmax,
                    count: l.table.len() as u32,
                },
            );
        }
        if let Some(n) = l.n_dense_max {
            let run = SimilarityRun {
                pools: r.pools_all(),
                u: norm(),
                sim: kit.whole(&b.sim),
                nn: kit.whole(&b.state),
                table: &b.steps,
                sim_rows: l.sim_rows,
                rows: seg.dense.clone(),
                n,
                count: l.dense.len(),
            };
            encode_similarity(kit, &mut pass, KernelId::SimilarityDense, run);
        }
        if !seg.select.is_empty() {
            encode_select(r, &mut pass);
        }
        if let (true, Some(n)) = (l.stream_divprune, l.n_stream_max) {
            let run = SimilarityRun {
                pools: r.pools_stream(),
                u: norm(),
                sim: bind(kit.dummy, 0, 256),
                nn: kit.whole(&b.state),
                table: &b.steps,
                sim_rows: l.sim_rows,
                rows: seg.nearest.clone(),
                n,
                count: l.stream.len(),
            };
            encode_similarity(kit, &mut pass, KernelId::SimilarityNearest, run);
        }
        encode_stream(r, &mut pass, seg.steps.clone());
    }
    let ts = l.sizes.ts_off;
    out.push(finish(
        enc,
        queries,
        b.resolve.as_ref(),
        (&b.out, l.sizes.out),
        (&b.readback, ts),
    ));
    out
}

/// Records a DPP run, one command buffer per submission (`segments`: for each, the tile rows
/// of the stored similarity and the `greedy` dispatches it runs, `plan::submissions_of`): the
/// first compute pass also runs normalize.wgsl (the pools, then the text rows) and dpp.wgsl
/// `relevance` (text relevance), after its similarity rows.
pub(crate) fn record_dpp(
    kit: &Kit,
    l: &DppLayout,
    b: &DppBuffers,
    segments: &[[std::ops::Range<usize>; 2]],
    queries: Option<&wgpu::QuerySet>,
) -> Vec<wgpu::CommandBuffer> {
    let s = &l.sizes;
    let count = segments.len();
    let mut enc = encoder(kit.device);
    enc.clear_buffer(&b.out, 0, Some(s.out));
    let similarity = |pass: &mut wgpu::ComputePass, rows: std::ops::Range<usize>| {
        if let Some(n) = l.n_dense_max {
            let run = SimilarityRun {
                pools: kit.whole(&b.pools),
                u: kit.whole(&b.norm),
                sim: kit.whole(&b.sim),
                nn: bind(kit.dummy, 0, 256),
                table: &b.rounds,
                sim_rows: l.sim_rows,
                rows,
                n,
                count: l.dense,
            };
            encode_similarity(kit, pass, KernelId::SimilarityDense, run);
        }
    };
    {
        let mut pass = begin(&mut enc, queries, (0, count));
        let norm = || kit.whole(&b.norm);
        let rows = |pools, src, rows, count| NormalizeRun {
            pools,
            src,
            u: norm(),
            out: kit.whole(&b.out),
            chan: bind(kit.dummy, 0, 256),
            rows,
            count,
        };
        let src = features(kit, l.device_range, &b.input);
        let run = rows(kit.whole(&b.pools), src, l.nmax, l.pools as u32);
        encode_normalize(kit, &mut pass, run);
        if l.texts > 0 {
            let texts = table_range(&b.pools, l.text_start, l.texts);
            let run = rows(texts, kit.whole(&b.input), 1, l.texts as u32);
            encode_normalize(kit, &mut pass, run);
        }
        similarity(&mut pass, segments[0][0].clone());
        if l.texts > 0 {
            encode_dpp(kit, &mut pass, KernelId::DppRelevance, l, b, 0..0);
        }
        encode_dpp(kit, &mut pass, KernelId::Dpp, l, b, segments[0][1].clone());
    }
    let mut out = Vec::with_capacity(count);
    for (i, [rows, range]) in segments.iter().enumerate().skip(1) {
        out.push(enc.finish());
        enc = encoder(kit.device);
        let mut pass = begin(&mut enc, queries, (i, count));
        similarity(&mut pass, rows.clone());
        encode_dpp(kit, &mut pass, KernelId::Dpp, l, b, range.clone());
    }
    out.push(finish(
        enc,
        queries,
        b.resolve.as_ref(),
        (&b.out, s.out),
        (&b.readback, s.ts_off),
    ));
    out
}

/// Records a video submission: one compute pass of vidcom2_channels.wgsl (`variance`,
/// `choose`), normalize.wgsl (through the channel maps), evs.wgsl, vidcom2_centres.wgsl
/// (`frames`, `video`) and vidcom2_scores.wgsl; each kernel skips the pools of the other
/// method.
pub(crate) fn record_video(
    kit: &Kit,
    l: &VideoLayout,
    b: &VideoBuffers,
    queries: Option<&wgpu::QuerySet>,
) -> Vec<wgpu::CommandBuffer> {
    let s = &l.sizes;
    let mut enc = encoder(kit.device);
    enc.clear_buffer(&b.out, 0, Some(s.out));
    enc.clear_buffer(&b.cent, 0, Some(s.cent));
    {
        let mut pass = begin(&mut enc, queries, (0, 1));
        let src = || features(kit, l.device_range, &b.input);
        let vidcom2 = l.cmax > 0;
        if vidcom2 {
            encode_vidcom2_channels(kit, &mut pass, KernelId::VidCom2Variance, l, b, src());
            encode_vidcom2_channels(kit, &mut pass, KernelId::VidCom2Choose, l, b, src());
        }
        let run = NormalizeRun {
            pools: kit.whole(&b.pools),
            src: src(),
            u: kit.whole(&b.norm),
            out: kit.whole(&b.out),
            chan: kit.whole(&b.stats),
            rows: l.nmax,
            count: l.table.len() as u32,
        };
        encode_normalize(kit, &mut pass, run);
        if l.any_evs {
            encode_evs(kit, &mut pass, l, b);
        }
        if vidcom2 {
            encode_vidcom2_centres(kit, &mut pass, KernelId::VidCom2Frames, l, b);
            encode_vidcom2_centres(kit, &mut pass, KernelId::VidCom2Video, l, b);
            encode_vidcom2_scores(kit, &mut pass, l, b);
        }
    }
    vec![finish(
        enc,
        queries,
        b.resolve.as_ref(),
        (&b.out, s.out),
        (&b.readback, s.ts_off),
    )]
}
