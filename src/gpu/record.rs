//! Recording one submission: the buffers it takes from the pool, the uploads, and one encode
//! function per kernel, named after its shader, that binds what the [`Layout`] describes and
//! dispatches.

use super::buffers::{BufferPool, Role};
use super::kernels::{KernelId, StepEntry, STEP_STRIDE, TILE};
use super::layout::Layout;
use super::pipelines::Pipelines;
use super::GpuJob;

/// The buffers of one submission, taken from the engine's pool and given back afterwards.
pub(crate) struct Buffers {
    pools: wgpu::Buffer,
    input: wgpu::Buffer,
    norm: wgpu::Buffer,
    sim: wgpu::Buffer,
    state: wgpu::Buffer,
    imp: wgpu::Buffer,
    out: wgpu::Buffer,
    partials: wgpu::Buffer,
    steps: wgpu::Buffer,
    pub readback: wgpu::Buffer,
    resolve: Option<wgpu::Buffer>,
}

impl Buffers {
    /// Takes every buffer `layout` needs (and one for resolved timestamps).
    pub(crate) fn take(
        pool: &BufferPool,
        device: &wgpu::Device,
        max_buffer: u64,
        layout: &Layout,
        timestamps: bool,
    ) -> Self {
        let s = &layout.sizes;
        let take = |role: Role, size: u64| pool.take(device, max_buffer, role, size);
        Buffers {
            pools: take(Role::Pools, s.pools),
            input: take(Role::Input, s.input),
            norm: take(Role::Norm, s.norm),
            sim: take(Role::Sim, s.sim),
            state: take(Role::State, s.state),
            imp: take(Role::Imp, s.imp),
            out: take(Role::Out, s.out),
            partials: take(Role::Partials, s.partials),
            steps: take(Role::Steps, s.steps),
            readback: take(Role::Readback, s.readback),
            resolve: timestamps.then(|| take(Role::Resolve, 16)),
        }
    }

    /// Gives every buffer back to the pool.
    pub(crate) fn give(self, pool: &BufferPool) {
        for (role, b) in [
            (Role::Pools, self.pools),
            (Role::Input, self.input),
            (Role::Norm, self.norm),
            (Role::Sim, self.sim),
            (Role::State, self.state),
            (Role::Imp, self.imp),
            (Role::Out, self.out),
            (Role::Partials, self.partials),
            (Role::Steps, self.steps),
            (Role::Readback, self.readback),
        ] {
            pool.give(role, b);
        }
        if let Some(r) = self.resolve {
            pool.give(Role::Resolve, r);
        }
    }
}

/// Writes the pool table, the host features, the importance pairs and the step table.
pub(crate) fn upload(queue: &wgpu::Queue, layout: &Layout, jobs: &[&GpuJob], b: &Buffers) {
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
    if !layout.stream.is_empty() {
        let mut steps = vec![0u8; layout.sizes.steps as usize];
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
        queue.write_buffer(&b.steps, 0, &steps);
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

/// What the encode functions share: the device, the pipelines, the layout and the buffers.
pub(crate) struct Recorder<'a> {
    pub device: &'a wgpu::Device,
    pub pipes: &'a Pipelines,
    pub layout: &'a Layout,
    pub bufs: &'a Buffers,
    /// The caller's buffer holding device features, when the pools read theirs in place.
    pub source: Option<&'a wgpu::Buffer>,
    /// A small buffer bound where a kernel's binding is unused (similarity `nearest`'s S).
    pub dummy: &'a wgpu::Buffer,
    pub max_workgroups: u32,
}

impl Recorder<'_> {
    /// A bind group for kernel `id`: `resources` in its table's binding order.
    fn group(&self, id: KernelId, resources: Vec<wgpu::BindingResource>) -> wgpu::BindGroup {
        let bindings = id.kernel().bindings;
        debug_assert_eq!(
            resources.len(),
            bindings.len(),
            "{}: bind {:?}",
            id.label(),
            bindings.iter().map(|b| b.name).collect::<Vec<_>>()
        );
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
    }

    /// The pool table, whole.
    fn pools_all(&self) -> wgpu::BindingResource<'_> {
        bind(&self.bufs.pools, 0, self.layout.sizes.pools)
    }

    /// The streaming pools' part of the pool table.
    fn pools_stream(&self) -> wgpu::BindingResource<'_> {
        let entry = std::mem::size_of::<super::kernels::PoolEntry>() as u64;
        let l = self.layout;
        bind(
            &self.bufs.pools,
            l.stream_start as u64 * entry,
            l.stream.len() as u64 * entry,
        )
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass, id: KernelId, group: &wgpu::BindGroup) {
        pass.set_pipeline(&self.pipes[id].pipeline);
        pass.set_bind_group(0, group, &[]);
    }
}

/// normalize.wgsl: every row of every pool, one workgroup per row (rows over x and y, pools
/// over z).
pub(crate) fn encode_normalize(r: &Recorder, pass: &mut wgpu::ComputePass) {
    let (l, b) = (r.layout, r.bufs);
    let input = match (r.source, l.device_range) {
        (Some(buf), Some((base, size))) => bind(buf, base, size),
        _ => bind(&b.input, 0, l.sizes.input),
    };
    let group = r.group(
        KernelId::Normalize,
        vec![
            r.pools_all(),
            input,
            bind(&b.norm, 0, l.sizes.norm),
            bind(&b.out, 0, l.sizes.out),
        ],
    );
    r.dispatch(pass, KernelId::Normalize, &group);
    let x = l.nmax.min(r.max_workgroups).max(1);
    pass.dispatch_workgroups(x, l.nmax.div_ceil(x), l.table.len() as u32);
}

/// similarity.wgsl: `dense` stores S of every dense pool and folds the nearest neighbours;
/// `nearest` only folds them, for the streaming DivPrune pools. Tiles over (x, y), pools over z.
pub(crate) fn encode_similarity(r: &Recorder, pass: &mut wgpu::ComputePass, id: KernelId) {
    let (l, b) = (r.layout, r.bufs);
    let (pools, sim, n, count) = match id {
        KernelId::SimilarityDense => (
            r.pools_all(),
            bind(&b.sim, 0, l.sizes.sim),
            l.n_dense_max,
            l.dense.len(),
        ),
        _ => (
            r.pools_stream(),
            bind(r.dummy, 0, 256),
            l.n_stream_max,
            l.stream.len(),
        ),
    };
    let Some(n) = n else { return };
    let group = r.group(
        id,
        vec![
            pools,
            bind(&b.norm, 0, l.sizes.norm),
            sim,
            bind(&b.state, 0, l.sizes.state),
        ],
    );
    r.dispatch(pass, id, &group);
    let t = (n as u32).div_ceil(TILE);
    pass.dispatch_workgroups(t, t, count as u32);
}

/// select.wgsl: all K picks of every dense pool in one dispatch, one workgroup per pool.
pub(crate) fn encode_select(r: &Recorder, pass: &mut wgpu::ComputePass) {
    let (l, b) = (r.layout, r.bufs);
    if l.n_dense_max.is_none() {
        return;
    }
    let group = r.group(
        KernelId::Select,
        vec![
            r.pools_all(),
            bind(&b.sim, 0, l.sizes.sim),
            bind(&b.state, 0, l.sizes.state),
            bind(&b.imp, 0, l.sizes.imp),
            bind(&b.out, 0, l.sizes.out),
        ],
    );
    r.dispatch(pass, KernelId::Select, &group);
    pass.dispatch_workgroups(l.dense.len() as u32, 1, 1);
}

/// stream.wgsl: steps 0..=K of every streaming pool, one dispatch per step (the step number
/// from the step table at a dynamic offset), all in this pass.
pub(crate) fn encode_stream(r: &Recorder, pass: &mut wgpu::ComputePass) {
    let (l, b) = (r.layout, r.bufs);
    if l.stream.is_empty() {
        return;
    }
    let group = r.group(
        KernelId::Stream,
        vec![
            r.pools_stream(),
            bind(&b.norm, 0, l.sizes.norm),
            bind(&b.state, 0, l.sizes.state),
            bind(&b.imp, 0, l.sizes.imp),
            bind(&b.out, 0, l.sizes.out),
            bind(&b.partials, 0, l.sizes.partials),
            bind(&b.steps, 0, std::mem::size_of::<StepEntry>() as u64),
        ],
    );
    let parts = l.stream.iter().map(|&i| l.table[l.slot_of[i]].parts).max();
    pass.set_pipeline(&r.pipes[KernelId::Stream].pipeline);
    for t in 0..=l.kmax {
        pass.set_bind_group(0, &group, &[(t as u64 * STEP_STRIDE) as u32]);
        pass.dispatch_workgroups(parts.unwrap_or(1), l.stream.len() as u32, 1);
    }
}

/// Records the whole submission: clears, one compute pass (normalise, similarity, select,
/// streaming; timestamps around it where supported), and the copy of the results (and
/// timestamps) into the readback buffer.
pub(crate) fn record(r: &Recorder, queries: Option<&wgpu::QuerySet>) -> wgpu::CommandBuffer {
    let (l, b) = (r.layout, r.bufs);
    let mut enc = r
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tokenprune"),
        });
    enc.clear_buffer(&b.state, 0, Some(l.sizes.state));
    enc.clear_buffer(&b.out, 0, Some(l.sizes.out));
    {
        let timestamp_writes = queries.map(|q| wgpu::ComputePassTimestampWrites {
            query_set: q,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("tokenprune"),
            timestamp_writes,
        });
        encode_normalize(r, &mut pass);
        encode_similarity(r, &mut pass, KernelId::SimilarityDense);
        encode_select(r, &mut pass);
        if l.stream_divprune {
            encode_similarity(r, &mut pass, KernelId::SimilarityNearest);
        }
        encode_stream(r, &mut pass);
    }
    if let (Some(q), Some(res)) = (queries, &b.resolve) {
        enc.resolve_query_set(q, 0..2, res, 0);
        enc.copy_buffer_to_buffer(res, 0, &b.readback, l.sizes.ts_off, Some(16));
    }
    enc.copy_buffer_to_buffer(&b.out, 0, &b.readback, 0, Some(l.sizes.out));
    enc.finish()
}
