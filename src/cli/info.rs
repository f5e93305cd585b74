//! `tokenprune info`: the wgpu adapters, their key limits, and the path each standard size
//! would take on the adapter the GPU engine picks.

use tokenprune::gpu::{self, GpuEngine, GpuOptions, ENV_ADAPTER, ENV_BACKEND};
use tokenprune::{Budget, IdPruner, Method, Result};

#[derive(clap::Args)]
pub struct Args {}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

pub fn run(_: Args) -> Result<()> {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "(unset)".into());
    println!(
        "{ENV_BACKEND}={}  {ENV_ADAPTER}={}",
        env(ENV_BACKEND),
        env(ENV_ADAPTER)
    );
    let adapters = pollster::block_on(gpu::adapters())?;
    println!("\nAdapters ({}):", adapters.len());
    println!("| # | name | backend | type | driver | timestamps | max storage binding | max buffer | workgroups/dim | invocations/workgroup | storage buffers/stage | usable |");
    println!("|---|---|---|---|---|---|---:|---:|---:|---:|---:|---|");
    for (i, a) in adapters.iter().enumerate() {
        let l = &a.limits;
        println!(
            "| {i} | {} | {:?} | {:?} | {} {} | {} | {} | {} | {} | {} | {} | {} |",
            a.info.name,
            a.info.backend,
            a.info.device_type,
            a.info.driver,
            a.info.driver_info,
            if a.timestamps { "yes" } else { "no" },
            mib(l.max_storage_buffer_binding_size),
            mib(l.max_buffer_size),
            l.max_compute_workgroups_per_dimension,
            l.max_compute_invocations_per_workgroup,
            l.max_storage_buffers_per_shader_stage,
            a.unsuitable.as_deref().unwrap_or("yes"),
        );
    }
    let engine = match GpuEngine::new_blocking(GpuOptions::default()) {
        Ok(e) => e,
        Err(e) => {
            println!("\nNo GPU engine: {e}");
            return Ok(());
        }
    };
    let i = engine.adapter_info();
    println!(
        "\nChosen adapter: {} ({:?}, {:?}); binding cap {}, stream threshold {}",
        i.name,
        i.backend,
        i.device_type,
        mib(engine.binding_cap()),
        mib(engine.options().stream_threshold_bytes)
    );
    println!("\n| size | K (keep 10%) | S = N x N f32 | divprune | idpruner |");
    println!("|---|---:|---:|---|---|");
    for (n, d) in [(576, 1024), (2304, 4096), (4608, 1024), (16384, 1024)] {
        let k = Budget::KeepRatio(0.1).keep_count(n)?;
        let imp = vec![0.0f32; n];
        let idp = Method::IdPruner(IdPruner::new(&imp));
        println!(
            "| {n}x{d} | {k} | {} | {} | {} |",
            mib(n as u64 * n as u64 * 4),
            engine.path_for(n, d, k, &Method::DivPrune),
            engine.path_for(n, d, k, &idp),
        );
    }
    Ok(())
}
