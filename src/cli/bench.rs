//! `tokenprune bench`: medians per size, with everything a figure is compared to measured in
//! the same run on the same machine:
//! - the CPU engine, warm (median of repeated calls) and cold (the first call of a fresh
//!   process, as every CLI call is: median over several processes);
//! - the machine's SGEMM of the same shape (the full N x N x D product, via the `gemm` crate on
//!   every core, and NumPy's when it is importable), and from it the *floor*: the time SGEMM
//!   needs for the N^2 D flops of the upper triangle, the work the DivPrune seed cannot avoid;
//! - when Python with torch is importable, the upstream loops written from SPEC.md in torch
//!   (`scripts/bench/torch_loops.py`, run on the same features), with a check that they select
//!   the same tokens;
//! - with the GPU engine (feature `gpu`) and an adapter, the GPU rows: whole-call wall time, the
//!   GPU time of the dispatches (timestamp queries) and the ratio to the CPU engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tokenprune::{
    Budget, CdPruner, CdPrunerOpenVino, CountMode, Grid, IdPruner, Method, Pruner, Request, Result,
    Selection, Tokens,
};

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per case (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Fresh processes per case for the cold (first call in a process) figure; 0 skips it.
    #[arg(long, default_value_t = 5)]
    cold: usize,
    /// Skip the 2304 x 4096 and batch cases (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Skip the GPU rows even when an adapter exists.
    #[arg(long)]
    no_gpu: bool,
    /// Python interpreter for the reference script (NumPy SGEMM, torch loops). Default:
    /// $TOKENPRUNE_BENCH_PYTHON, else .cache/bench-venv/bin/python when it exists, else python3.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip the Python references.
    #[arg(long)]
    no_reference: bool,
    /// Internal: time the first call of case number N in this process and print it (ms).
    #[arg(long, hide = true)]
    cold_probe: Option<usize>,
}

/// One benchmark case: `batch` pools of N x D, keep ratio 0.1.
struct Case {
    name: &'static str,
    idpruner: bool,
    batch: usize,
    n: usize,
    d: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "DivPrune 576x1024 K=58",
        idpruner: false,
        batch: 1,
        n: 576,
        d: 1024,
    },
    Case {
        name: "DivPrune 2304x4096 K=230",
        idpruner: false,
        batch: 1,
        n: 2304,
        d: 4096,
    },
    Case {
        name: "DivPrune 4608x1024 K=461",
        idpruner: false,
        batch: 1,
        n: 4608,
        d: 1024,
    },
    Case {
        name: "DivPrune 32x576x1024 K=58 each",
        idpruner: false,
        batch: 32,
        n: 576,
        d: 1024,
    },
    Case {
        name: "IDPruner 576x1024 K=58",
        idpruner: true,
        batch: 1,
        n: 576,
        d: 1024,
    },
    Case {
        name: "IDPruner 4608x1024 K=461",
        idpruner: true,
        batch: 1,
        n: 4608,
        d: 1024,
    },
];

impl Case {
    fn skipped(&self, quick: bool) -> bool {
        quick && (self.batch > 1 || self.d > 1024)
    }

    fn k(&self) -> usize {
        // Budget::KeepRatio(0.1): round half to even of 0.1 N (no exact halves at these N).
        (self.n as f64 * 0.1).round() as usize
    }
}

/// The features and importance scores of a case (deterministic, in [-1, 1)).
struct Data {
    feats: Vec<f32>,
    importance: Vec<f32>,
}

impl Data {
    fn new(case: &Case) -> Data {
        Data {
            feats: features(case.batch * case.n * case.d, 1),
            importance: features(case.n, 2),
        }
    }

    fn requests(&self, case: &Case) -> Result<Vec<Request<'_>>> {
        (0..case.batch)
            .map(|b| {
                let rows = &self.feats[b * case.n * case.d..(b + 1) * case.n * case.d];
                let tokens = Tokens::new(rows, case.n, case.d)?;
                let method = if case.idpruner {
                    Method::IdPruner(IdPruner::new(&self.importance))
                } else {
                    Method::DivPrune
                };
                Request::new(tokens, method, Budget::KeepRatio(0.1))
            })
            .collect()
    }
}

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

/// Median and minimum of `repeats` timed calls of `f` (ms), after one untimed warm-up call.
fn time_ms<T>(repeats: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, f64, T)> {
    let mut last = f()?;
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        last = f()?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((median(runs), min, last))
}

/// The CPU's model name (as `lscpu` shows it), where the OS says.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
        + simd()
}

/// Which of the CPU engine's micro-kernels this CPU can run.
fn simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx2") && has!("fma") {
            return ", AVX-512";
        }
        if has!("avx2") && has!("fma") {
            return ", AVX2 + FMA, no AVX-512";
        }
    }
    ", no SIMD micro-kernel"
}

/// The 1, 5 and 15 minute load averages (Linux), or "?".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The full `[n, d] x [n, d]^T` SGEMM through the `gemm` crate, the output rows split over
/// every core (one single-threaded call per core).
fn sgemm_full(u: &[f32], n: usize, d: usize, out: &mut [f32]) {
    let rows = n.div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        for (t, dst) in out.chunks_mut(rows * n).enumerate() {
            let m = dst.len() / n;
            let a = &u[t * rows * d..(t * rows + m) * d];
            s.spawn(move || {
                // SAFETY: lhs is m x d (row stride d) inside `a`, rhs is u^T (d x n, column
                // stride d) inside `u`, dst is m x n (row stride n) and is exactly `dst`.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        d,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        d as isize,
                        u.as_ptr(),
                        d as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            });
        }
    });
}

/// One entry of the reference script's output.
struct Reference {
    ms: f64,
    order: Option<Vec<u32>>,
    /// The whole line (the "env" entry is shown as it is).
    line: String,
}

/// The methods beyond DivPrune and IDPruner, at the sizes they meet in models: CDPruner on
/// LLaVA-1.5's 576 x 4096 (relevance from 768-wide CLIP embeddings of the image and a 32-token
/// prompt) and LLaVA-NeXT's 2304 tokens; EVS and VidCom2 on Qwen2-VL-sized videos.
#[derive(Clone, Copy)]
enum Kind {
    CdPruner,
    CdPrunerOpenVino,
    Evs,
    VidCom2,
}

struct MethodCase {
    name: &'static str,
    kind: Kind,
    /// Frames (1 for a still image), rows and columns of the grid; N is their product.
    grid: (usize, usize, usize),
    d: usize,
    budget: Budget,
}

const EMBED: usize = 768;
const TEXT_TOKENS: usize = 32;

/// A method case (a `const fn` so the table reads one case per line).
const fn mcase(
    name: &'static str,
    kind: Kind,
    grid: (usize, usize, usize),
    d: usize,
    budget: Budget,
) -> MethodCase {
    MethodCase {
        name,
        kind,
        grid,
        d,
        budget,
    }
}

#[rustfmt::skip]
const METHOD_CASES: &[MethodCase] = &[
    mcase("CDPruner 576x4096 K=64", Kind::CdPruner, (1, 24, 24), 4096, Budget::Count(64)),
    mcase("CDPruner 576x4096 K=128", Kind::CdPruner, (1, 24, 24), 4096, Budget::Count(128)),
    mcase("CDPruner 576x4096 K=192", Kind::CdPruner, (1, 24, 24), 4096, Budget::Count(192)),
    mcase("CDPruner 2304x4096 K=256", Kind::CdPruner, (1, 48, 48), 4096, Budget::Count(256)),
    mcase("cdpruner-openvino 576x4096 K=128", Kind::CdPrunerOpenVino, (1, 24, 24), 4096, Budget::Count(128)),
    mcase("EVS 16x14x14x1152 keep 25%", Kind::Evs, (16, 14, 14), 1152, Budget::KeepRatio(0.25)),
    mcase("EVS 64x27x27x1152 keep 25%", Kind::Evs, (64, 27, 27), 1152, Budget::KeepRatio(0.25)),
    mcase("VidCom2 16x14x14x1152 keep 25%", Kind::VidCom2, (16, 14, 14), 1152, Budget::KeepRatio(0.25)),
    mcase("VidCom2 64x27x27x1152 keep 25%", Kind::VidCom2, (64, 27, 27), 1152, Budget::KeepRatio(0.25)),
];

impl MethodCase {
    fn n(&self) -> usize {
        self.grid.0 * self.grid.1 * self.grid.2
    }

    fn skipped(&self, quick: bool) -> bool {
        quick && self.n() > 4000
    }
}

/// Features (and the method's other inputs) of a method case.
struct MethodData {
    feats: Vec<f32>,
    image: Vec<f32>,
    text: Vec<f32>,
}

impl MethodData {
    fn new(case: &MethodCase) -> MethodData {
        let n = case.n();
        let (image, text) = match case.kind {
            Kind::CdPruner => (features(n * EMBED, 3), features(TEXT_TOKENS * EMBED, 4)),
            Kind::CdPrunerOpenVino => (Vec::new(), features(case.d, 4)),
            _ => (Vec::new(), Vec::new()),
        };
        MethodData {
            feats: features(n * case.d, 1),
            image,
            text,
        }
    }

    fn request(&self, case: &MethodCase) -> Result<Request<'_>> {
        let (t, h, w) = case.grid;
        let tokens = Tokens::new(&self.feats, case.n(), case.d)?.with_grid(Grid::new(t, h, w))?;
        let method = match case.kind {
            Kind::CdPruner => Method::CdPruner(CdPruner::from_embeddings(&self.image, &self.text)),
            Kind::CdPrunerOpenVino => Method::CdPrunerOpenVino(CdPrunerOpenVino::new(&self.text)),
            Kind::Evs => Method::Evs,
            Kind::VidCom2 => Method::VidCom2 {
                count: CountMode::Exact,
            },
        };
        Request::new(tokens, method, case.budget)
    }
}

/// The method cases: the CPU engine warm, and the GPU rows when an adapter exists.
fn method_table(a: &Args, cpu: &Pruner, gpu: Option<&Pruner>, repeats: usize) -> Result<()> {
    println!(
        "\n| case | K | CPU engine median ms | min ms | {} |",
        if gpu.is_some() {
            "GPU backend | GPU median ms | GPU ms (timestamps) | same selection"
        } else {
            "GPU"
        }
    );
    println!(
        "|---|---:|---:|---:|{}",
        if gpu.is_some() {
            "---|---:|---:|---|"
        } else {
            "---|"
        }
    );
    for case in METHOD_CASES.iter().filter(|c| !c.skipped(a.quick)) {
        let data = MethodData::new(case);
        let req = data.request(case)?;
        let (med, min, sel) = time_ms(repeats, || cpu.prune_blocking(&req))?;
        let gpu_cells = match gpu {
            Some(g) => {
                let mut gpu_runs = Vec::new();
                let (gmed, _, gsel) = time_ms(repeats, || {
                    let r = g.prune_blocking(&req);
                    gpu_runs.extend(gpu_ms(g));
                    r
                })?;
                let gpu_med = (gpu_runs.len() > 1).then(|| median(gpu_runs[1..].to_vec()));
                format!(
                    "{} | {gmed:.2} | {} | {} |",
                    gsel.backend,
                    fmt_ms(gpu_med),
                    if gsel.order == sel.order {
                        "same"
                    } else {
                        "differs"
                    }
                )
            }
            None => "- |".into(),
        };
        println!(
            "| {} | {} | {med:.2} | {min:.2} | {gpu_cells}",
            case.name,
            sel.kept.len()
        );
    }
    Ok(())
}

fn python(a: &Args) -> PathBuf {
    if let Some(p) = &a.python {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("TOKENPRUNE_BENCH_PYTHON") {
        return p.into();
    }
    let venv = Path::new(".cache/bench-venv/bin/python");
    if venv.exists() {
        return venv.into();
    }
    "python3".into()
}

/// Finds `scripts/bench/torch_loops.py` from the working directory or the executable's
/// location (target/<profile>/tokenprune in a checkout).
fn reference_script() -> Option<PathBuf> {
    let rel = Path::new("scripts/bench/torch_loops.py");
    let exe = std::env::current_exe().ok();
    std::iter::once(PathBuf::from("."))
        .chain(
            exe.iter()
                .flat_map(|e| e.ancestors().skip(1).map(Path::to_path_buf)),
        )
        .map(|dir| dir.join(rel))
        .find(|p| p.is_file())
}

/// Runs the reference script on one pool of the case; `Err` carries why nothing came back.
fn references(
    py: &Path,
    script: &Path,
    case: &Case,
    data: &Data,
    repeats: usize,
    only: &[&str],
) -> std::result::Result<BTreeMap<String, Reference>, String> {
    let dir = std::env::temp_dir();
    let tag = format!(
        "tokenprune-bench-{}-{}x{}",
        std::process::id(),
        case.n,
        case.d
    );
    let (fpath, ipath) = (
        dir.join(format!("{tag}.f32")),
        dir.join(format!("{tag}.imp.f32")),
    );
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let write = || -> std::io::Result<()> {
        std::fs::write(&fpath, bytes(&data.feats[..case.n * case.d]))?;
        std::fs::write(&ipath, bytes(&data.importance))
    };
    let out = write().and_then(|()| {
        Command::new(py)
            .arg(script)
            .args(["--features".as_ref(), fpath.as_os_str()])
            .args(["--importance".as_ref(), ipath.as_os_str()])
            .args(["--n", &case.n.to_string(), "--d", &case.d.to_string()])
            .args([
                "--k",
                &case.k().to_string(),
                "--repeats",
                &repeats.to_string(),
            ])
            .args([
                "--threads",
                &threads().to_string(),
                "--only",
                &only.join(","),
            ])
            .env("OPENBLAS_NUM_THREADS", threads().to_string())
            .output()
    });
    let _ = std::fs::remove_file(&fpath);
    let _ = std::fs::remove_file(&ipath);
    let out = out.map_err(|e| format!("{}: {e}", py.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let mut refs = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let (Some(name), ms) = (v["name"].as_str(), v["ms"].as_f64()) else {
            return Err(format!("unexpected line: {line}"));
        };
        let Some(ms) = ms.or((name == "env").then_some(0.0)) else {
            return Err(format!("no time in: {line}"));
        };
        let order = v["order"].as_array().map(|o| {
            o.iter()
                .filter_map(|i| i.as_u64().map(|i| i as u32))
                .collect()
        });
        let line = line.to_string();
        refs.insert(name.to_string(), Reference { ms, order, line });
    }
    Ok(refs)
}

/// The first call of case `i` in this process (ms), printed for the parent bench.
fn cold_probe(i: usize) -> Result<()> {
    let case = CASES
        .get(i)
        .ok_or_else(|| tokenprune::Error::Param(format!("no bench case number {i}")))?;
    let data = Data::new(case);
    let reqs = data.requests(case)?;
    let pruner = Pruner::cpu();
    let t = Instant::now();
    pruner.prune_batch_blocking(&reqs)?;
    println!("{}", t.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

/// Median over `runs` fresh processes of the first call of case `i` (ms).
fn cold_ms(i: usize, runs: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let times: Vec<f64> = (0..runs)
        .filter_map(|_| {
            let out = Command::new(&exe)
                .args(["bench", "--cold-probe", &i.to_string()])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        })
        .collect();
    (!times.is_empty()).then(|| median(times))
}

/// "same" when the reference picked the same tokens in the same order, else where it differs.
fn agreement(ours: &Selection, theirs: &Reference) -> String {
    match &theirs.order {
        Some(o) if *o == ours.order => "same".into(),
        Some(o) => {
            let at = o
                .iter()
                .zip(&ours.order)
                .take_while(|(a, b)| a == b)
                .count();
            format!("differs from step {at}")
        }
        None => "-".into(),
    }
}

fn fmt_ms(ms: Option<f64>) -> String {
    ms.map_or("-".into(), |m| format!("{m:.2}"))
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("-".into(), |b| format!("{:.2}x", a / b))
}

/// The pruners to time on the GPU, when one can be built.
fn gpu_pruner(no_gpu: bool) -> Option<Pruner> {
    #[cfg(feature = "gpu")]
    if !no_gpu {
        match tokenprune::GpuEngine::new_blocking(Default::default()) {
            Ok(g) => return Some(Pruner::from_gpu(g)),
            Err(e) => eprintln!("bench: no GPU rows: {e}"),
        }
    }
    let _ = no_gpu;
    None
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
    if let Some(i) = a.cold_probe {
        return cold_probe(i);
    }
    let repeats = a.repeats.max(1);
    let script = (!a.no_reference).then(reference_script).flatten();
    let py = python(&a);
    let cpu = Pruner::cpu();
    let gpu = gpu_pruner(a.no_gpu);
    println!(
        "Machine: {} ({} threads), load average {} at start. CPU engine and SGEMMs on {} \
         threads; floor = N^2 D flops at the best full-product SGEMM rate measured (gemm crate, \
         NumPy when importable); all times ms, medians of {repeats}.\n",
        cpu_model(),
        threads(),
        load_average(),
        threads()
    );
    let mut env_shown = false;
    println!(
        "| case | tokenprune warm | cold (first call) | cold / warm | SGEMM N x N x D gemm crate | \
         SGEMM NumPy | floor | tokenprune / floor | torch loop as authors | torch loop as AngelSlim | \
         tokenprune vs AngelSlim loop | selections |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut gpu_rows = Vec::new();
    // NumPy's full-product SGEMM per shape, measured once.
    let mut numpy_sgemm: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for (i, case) in CASES.iter().enumerate() {
        if case.skipped(a.quick) {
            continue;
        }
        let data = Data::new(case);
        let reqs = data.requests(case)?;
        let (n, d) = (case.n, case.d);
        // The CPU engine and the gemm crate's SGEMM of one pool, alternately (a change in the
        // machine's load hits both).
        let u = &data.feats[..n * d];
        let mut out = vec![0.0f32; n * n];
        let (mut sgemm_runs, mut warm_runs) = (Vec::new(), Vec::new());
        let mut sels = cpu.prune_batch_blocking(&reqs)?; // warm-up
        sgemm_full(u, n, d, &mut out);
        for _ in 0..repeats {
            let t = Instant::now();
            sgemm_full(u, n, d, &mut out);
            sgemm_runs.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            sels = cpu.prune_batch_blocking(&reqs)?;
            warm_runs.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (sgemm, warm) = (median(sgemm_runs), median(warm_runs));
        let cold = (a.cold > 0).then(|| cold_ms(i, a.cold)).flatten();

        // What the script runs for this case: NumPy's SGEMM once per shape, the loops of the
        // case's method on single pools.
        let mut only = Vec::new();
        if !numpy_sgemm.contains_key(&(n, d)) {
            only.push("numpy_sgemm");
        }
        match (case.batch, case.idpruner) {
            (1, true) => only.push("idpruner_mmr"),
            (1, false) => only.extend([
                "numpy_syrk",
                "torch_sgemm",
                "torch_gram",
                "divprune_authors",
                "divprune_angelslim",
            ]),
            _ => {}
        }
        let refs = match (&script, only.is_empty()) {
            (Some(s), false) => {
                references(&py, s, case, &data, repeats, &only).unwrap_or_else(|e| {
                    eprintln!("bench: no Python references for {}: {e}", case.name);
                    BTreeMap::new()
                })
            }
            _ => BTreeMap::new(),
        };
        if let (Some(env), false) = (refs.get("env"), env_shown) {
            eprintln!("bench: Python references: {}", env.line);
            env_shown = true;
        }
        let get = |name: &str| refs.get(name).map(|r| r.ms);
        if let Some(ms) = get("numpy_sgemm") {
            numpy_sgemm.insert((n, d), ms);
        }
        let numpy = numpy_sgemm.get(&(n, d)).copied();
        // The floor: N^2 D flops (per pool) at the best full-product SGEMM rate (2 N^2 D flops).
        let best_full = numpy.map_or(sgemm, |np| np.min(sgemm));
        let floor = case.batch as f64 * best_full / 2.0;
        let (authors, angelslim) = if case.idpruner {
            (None, get("idpruner_mmr"))
        } else {
            (get("divprune_authors"), get("divprune_angelslim"))
        };
        let checks: Vec<String> = ["divprune_authors", "divprune_angelslim", "idpruner_mmr"]
            .iter()
            .filter_map(|name| refs.get(*name).map(|r| (name, r)))
            .map(|(name, r)| format!("{name}: {}", agreement(&sels[0], r)))
            .collect();
        println!(
            "| {} | {warm:.2} | {} | {} | {sgemm:.2} | {} | {floor:.2} | {:.2}x | {} | {} | {} | {} |",
            case.name,
            fmt_ms(cold),
            cold.map_or("-".into(), |c| format!("{:.2}", c / warm)),
            fmt_ms(numpy),
            warm / floor,
            fmt_ms(authors),
            fmt_ms(angelslim),
            angelslim.map_or("-".into(), |t| format!("{:.2}x faster", t / warm)),
            if checks.is_empty() { "-".into() } else { checks.join("; ") },
        );
        if let Some(g) = &gpu {
            let mut gpu_runs = Vec::new();
            let (med, min, _) = time_ms(repeats, || {
                let r = g.prune_batch_blocking(&reqs);
                gpu_runs.extend(gpu_ms(g));
                r
            })?;
            // The first entry belongs to the warm-up call.
            let gpu_med = (gpu_runs.len() > 1).then(|| median(gpu_runs[1..].to_vec()));
            gpu_rows.push(format!(
                "| {} | {} | {med:.2} | {min:.2} | {} | {} |",
                case.name,
                g.backend(),
                fmt_ms(gpu_med),
                ratio(warm, Some(med))
            ));
        }
        let extra: Vec<String> = ["torch_sgemm", "torch_gram", "numpy_syrk"]
            .iter()
            .filter_map(|n| get(n).map(|ms| format!("{n} {ms:.2} ms")))
            .collect();
        if !extra.is_empty() {
            eprintln!("bench: {}: {}", case.name, extra.join(", "));
        }
    }
    method_table(&a, &cpu, gpu.as_ref(), repeats)?;
    println!("\nLoad average at the end: {}", load_average());
    if !gpu_rows.is_empty() {
        println!("\n| case | backend | median ms | min ms | GPU ms (timestamps) | speed-up vs CPU engine |");
        println!("|---|---|---:|---:|---:|---:|");
        for r in gpu_rows {
            println!("{r}");
        }
    }
    Ok(())
}
