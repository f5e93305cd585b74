//! The compute pipelines and their bind group layouts, built once per engine from the kernel
//! table (`kernels.rs`): a kernel's layout is its table entry's bindings, its source the
//! generated prelude plus its files.

use super::kernels::{source, Access, KernelId, KERNELS};

/// One kernel's pipeline and layout.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub layout: wgpu::BindGroupLayout,
    pub pipeline: wgpu::ComputePipeline,
}

/// Every kernel's pipeline, indexed by [`KernelId`].
#[derive(Debug)]
pub(crate) struct Pipelines(Vec<Pipeline>);

impl std::ops::Index<KernelId> for Pipelines {
    type Output = Pipeline;
    fn index(&self, id: KernelId) -> &Pipeline {
        &self.0[id as usize]
    }
}

fn layout_entry(binding: u32, access: Access) -> wgpu::BindGroupLayoutEntry {
    let ty = match access {
        Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage {
                read_only: access == Access::Read,
            },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        Access::DynamicUniform { size } => wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(size),
        },
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    }
}

impl Pipelines {
    /// Creates every pipeline; call inside an error scope (shader errors are reported there).
    /// Kernels that share their files share one shader module.
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let mut modules: Vec<(&[&str], wgpu::ShaderModule)> = Vec::new();
        let mut out = Vec::with_capacity(KERNELS.len());
        for id in KernelId::ALL {
            let kernel = id.kernel();
            let label = id.label();
            let at = match modules.iter().position(|(f, _)| *f == kernel.files) {
                Some(at) => at,
                None => {
                    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(&label),
                        source: wgpu::ShaderSource::Wgsl(source(kernel).into()),
                    });
                    modules.push((kernel.files, module));
                    modules.len() - 1
                }
            };
            let module = &modules[at].1;
            let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| layout_entry(i as u32, b.access))
                .collect();
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pl),
                module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            out.push(Pipeline { layout, pipeline });
        }
        Pipelines(out)
    }
}
