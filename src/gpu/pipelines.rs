//! The compute pipelines and bind group layouts, created once per engine.

// Each kernel's source is `common.wgsl` (the pool table, the tie rule, the f32 key mapping)
// followed by the kernel; the two greedy kernels also share `greedy.wgsl` (workgroup argmax and
// the per-token state machine), so a change to the selection rule is made once.
macro_rules! wgsl {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../shaders/", $file)), "\n"),+)
    };
}

/// `normalize.wgsl`.
pub(crate) const NORMALIZE_WGSL: &str = wgsl!("common.wgsl", "normalize.wgsl");
/// `similarity.wgsl` (entry points `dense` and `nearest`).
pub(crate) const SIMILARITY_WGSL: &str = wgsl!("common.wgsl", "similarity.wgsl");
/// `select.wgsl`.
pub(crate) const SELECT_WGSL: &str = wgsl!("common.wgsl", "greedy.wgsl", "select.wgsl");
/// `stream.wgsl`.
pub(crate) const STREAM_WGSL: &str = wgsl!("common.wgsl", "greedy.wgsl", "stream.wgsl");

/// Bytes of one `Step` uniform (stream.wgsl).
pub(crate) const STEP_BYTES: u64 = 16;

#[derive(Debug)]
pub(crate) struct Pipelines {
    pub normalize_layout: wgpu::BindGroupLayout,
    pub normalize: wgpu::ComputePipeline,
    pub sim_layout: wgpu::BindGroupLayout,
    pub sim_dense: wgpu::ComputePipeline,
    pub sim_nearest: wgpu::ComputePipeline,
    pub select_layout: wgpu::BindGroupLayout,
    pub select: wgpu::ComputePipeline,
    pub stream_layout: wgpu::BindGroupLayout,
    pub stream: wgpu::ComputePipeline,
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn layout(
    device: &wgpu::Device,
    label: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    })
}

fn pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    module: &wgpu::ShaderModule,
    entry: &str,
) -> wgpu::ComputePipeline {
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(&pl),
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn module(device: &wgpu::Device, label: &str, src: &'static str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    })
}

impl Pipelines {
    /// Creates everything; call inside an error scope (shader errors are reported there).
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let normalize_layout = layout(
            device,
            "tokenprune normalize",
            &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, false),
            ],
        );
        let sim_layout = layout(
            device,
            "tokenprune similarity",
            &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, false),
            ],
        );
        let select_layout = layout(
            device,
            "tokenprune select",
            &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, true),
                storage(4, false),
            ],
        );
        let stream_layout = layout(
            device,
            "tokenprune stream",
            &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, true),
                storage(4, false),
                storage(5, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 6,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(STEP_BYTES),
                    },
                    count: None,
                },
            ],
        );
        let m_norm = module(device, "normalize.wgsl", NORMALIZE_WGSL);
        let m_sim = module(device, "similarity.wgsl", SIMILARITY_WGSL);
        let m_sel = module(device, "select.wgsl", SELECT_WGSL);
        let m_stream = module(device, "stream.wgsl", STREAM_WGSL);
        Pipelines {
            normalize: pipeline(device, "normalize", &normalize_layout, &m_norm, "main"),
            sim_dense: pipeline(device, "similarity dense", &sim_layout, &m_sim, "dense"),
            sim_nearest: pipeline(device, "similarity nearest", &sim_layout, &m_sim, "nearest"),
            select: pipeline(device, "select", &select_layout, &m_sel, "main"),
            stream: pipeline(device, "stream", &stream_layout, &m_stream, "main"),
            normalize_layout,
            sim_layout,
            select_layout,
            stream_layout,
        }
    }
}
