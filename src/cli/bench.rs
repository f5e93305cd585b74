//! `tokenprune bench`: medians per size and backend, next to the official PyTorch figures.
//! With the GPU engine (feature `gpu`) and an adapter, every case also runs on the GPU: its
//! rows give the whole-call wall time, the GPU time of the dispatches (timestamp queries) and
//! the ratio to the CPU engine, with the adapter named on every row.

use std::time::Instant;

use tokenprune::{Budget, IdPruner, Method, Pruner, Request, Result, Tokens};

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per case (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Skip the 2304 x 4096 case (a smoke run for slow adapters).
    #[arg(long)]
    quick: bool,
    /// Skip the GPU rows even when an adapter exists.
    #[arg(long)]
    no_gpu: bool,
}

/// One benchmark case: `batch` pools of N x D, keep ratio 0.1.
struct Case {
    name: &'static str,
    method: &'static str,
    batch: usize,
    n: usize,
    d: usize,
    /// The official implementation measured on this machine type (issue #3): DivPrune from
    /// vbdi/divprune, f32, torch with 2 threads; milliseconds.
    reference_ms: Option<f64>,
}

const CASES: &[Case] = &[
    Case {
        name: "divprune 576x1024 K=58",
        method: "divprune",
        batch: 1,
        n: 576,
        d: 1024,
        reference_ms: Some(8.0),
    },
    Case {
        name: "divprune 2304x4096 K=230",
        method: "divprune",
        batch: 1,
        n: 2304,
        d: 4096,
        reference_ms: Some(293.0),
    },
    Case {
        name: "divprune 4608x1024 K=461",
        method: "divprune",
        batch: 1,
        n: 4608,
        d: 1024,
        reference_ms: Some(1005.0),
    },
    Case {
        name: "divprune batch 32x576x1024 K=58",
        method: "divprune",
        batch: 32,
        n: 576,
        d: 1024,
        reference_ms: None,
    },
    Case {
        name: "idpruner 576x1024 K=58",
        method: "idpruner",
        batch: 1,
        n: 576,
        d: 1024,
        reference_ms: None,
    },
    Case {
        name: "idpruner 4608x1024 K=461",
        method: "idpruner",
        batch: 1,
        n: 4608,
        d: 1024,
        reference_ms: None,
    },
];

fn features(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The pruners to time: the CPU engine, then the GPU engine when one can be built.
fn pruners(no_gpu: bool) -> Vec<Pruner> {
    #[allow(unused_mut)]
    let mut v = vec![Pruner::cpu()];
    #[cfg(feature = "gpu")]
    if !no_gpu {
        match tokenprune::GpuEngine::new_blocking(Default::default()) {
            Ok(g) => v.push(Pruner::from_gpu(g)),
            Err(e) => eprintln!("bench: no GPU rows: {e}"),
        }
    }
    #[cfg(not(feature = "gpu"))]
    let _ = no_gpu;
    v
}

/// GPU time of the pruner's last call (timestamp queries), when it has one.
fn gpu_ms(p: &Pruner) -> Option<f64> {
    #[cfg(feature = "gpu")]
    {
        p.gpu().and_then(|g| g.last_gpu_time_ms())
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = p;
        None
    }
}

pub fn run(a: Args) -> Result<()> {
    let repeats = a.repeats.max(1);
    let pruners = pruners(a.no_gpu);
    println!("| case | backend | median ms | min ms | GPU ms (timestamps) | official PyTorch ms | speed-up | vs CPU engine |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for case in CASES {
        if a.quick && (case.n * case.d * case.batch > 576 * 1024 * 32 || case.d > 1024) {
            continue;
        }
        let feats = features(case.batch * case.n * case.d, 1);
        let importance = features(case.n, 2);
        let reqs: Vec<Request> = (0..case.batch)
            .map(|b| {
                let rows = &feats[b * case.n * case.d..(b + 1) * case.n * case.d];
                let tokens = Tokens::new(rows, case.n, case.d)?;
                let method = match case.method {
                    "idpruner" => Method::IdPruner(IdPruner::new(&importance)),
                    _ => Method::DivPrune,
                };
                Request::new(tokens, method, Budget::KeepRatio(0.1))
            })
            .collect::<Result<_>>()?;
        let mut cpu_med = None;
        for pruner in &pruners {
            let mut gpu_runs = Vec::new();
            let mut time = || -> Result<f64> {
                let t = Instant::now();
                pruner.prune_batch_blocking(&reqs)?;
                let wall = t.elapsed().as_secs_f64() * 1e3;
                if let Some(g) = gpu_ms(pruner) {
                    gpu_runs.push(g);
                }
                Ok(wall)
            };
            time()?;
            let runs: Vec<f64> = (0..repeats).map(|_| time()).collect::<Result<_>>()?;
            let min = runs.iter().cloned().fold(f64::INFINITY, f64::min);
            let med = median(runs);
            let (reference, ratio) = match case.reference_ms {
                Some(r) => (format!("{r:.1}"), format!("{:.1}x", r / med)),
                None => ("-".into(), "-".into()),
            };
            // The first run of the list is the warm-up.
            let gpu = if gpu_runs.len() > 1 {
                format!("{:.3}", median(gpu_runs[1..].to_vec()))
            } else {
                "-".into()
            };
            let vs_cpu = match (pruner.backend(), cpu_med) {
                (tokenprune::Backend::Cpu, _) => {
                    cpu_med = Some(med);
                    "1.0x".into()
                }
                (_, Some(c)) => format!("{:.2}x", c / med),
                _ => "-".into(),
            };
            println!(
                "| {} | {} | {med:.2} | {min:.2} | {gpu} | {reference} | {ratio} | {vs_cpu} |",
                case.name,
                pruner.backend()
            );
        }
    }
    Ok(())
}
