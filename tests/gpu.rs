//! The GPU engine against the CPU engine (the oracle): edge sizes, parallel_k and lambda,
//! zero rows and extreme scales, a caller's buffer, on the dense and the streaming path (one
//! test per path, `common::backend_tests!`); mixed and chunked batches, repeated calls, a
//! caller's device. The conformance vectors run on both paths in tests/conformance.rs.
//!
//! Greedy methods: tie-aware (SPEC) everywhere and exact where no step is near a tie;
//! baselines: exactly equal. CDPruner (both variants), EVS and VidCom2 (the second half of this
//! file): the GPU's DPP replayed in f64 (deficit <= 1e-5) and equal to the CPU engine's order
//! where the CPU run's f64 gaps stay above 1e-4; the video methods' kept sets equal to the CPU
//! engine's, their scores within 1e-5 relative (the GPU sums each dot product in another
//! order: for unit rows of D <= 1024 that moves a score by a few 1e-7). Every test skips with a line on stderr when no adapter exists,
//! and fails instead when `TOKENPRUNE_REQUIRE_GPU=1`.
#![cfg(feature = "gpu")]

mod common;

use common::{
    cdpruner_minmax_f64, check_against_cpu, gpu, load_f32, random_matrix, replay_cdpruner,
    replay_cdpruner_openvino, run_on, TestBackend, MAX_DEFICIT,
};
use tokenprune::wgpu;
use tokenprune::{
    Backend, BackendChoice, Budget, CdPruner, CdPrunerOpenVino, CountMode, DeviceTokens, GpuEngine,
    GpuOptions, GpuPath, Grid, IdPruner, Method, Pruner, PrunerOptions, Relevance, Request,
    Selection, Split, Tokens,
};

fn every_method_and_edge_size_matches_the_cpu_engine(b: &TestBackend) {
    // N not a multiple of the workgroup (1, 7, 257, 300) or the tile; D not a multiple of 4.
    let sizes = [
        (1, 1),
        (2, 3),
        (7, 13),
        (64, 4),
        (129, 1),
        (257, 3),
        (300, 1023),
    ];
    for (n, d) in sizes {
        let feats = random_matrix(n, d, (n * 1000 + d) as u64);
        let imp = random_matrix(n, 1, n as u64 + 7);
        let tokens = Tokens::new(&feats, n, d)
            .unwrap()
            .with_grid(Grid::new(1, 1, n))
            .unwrap();
        let methods = [
            Method::DivPrune,
            Method::IdPruner(IdPruner::new(&imp)),
            Method::IdPruner(IdPruner::new(&imp).parallel_k(3).lambda(0.3)),
            Method::TopK { scores: &imp },
            Method::Random { seed: 9 },
            Method::Uniform,
        ];
        let mut keeps = vec![1, n / 2, n.saturating_sub(1), n];
        keeps.retain(|&k| k >= 1);
        keeps.dedup();
        for k in keeps {
            for m in methods {
                let req = Request::new(tokens, m, Budget::Count(k)).unwrap();
                let what = format!("{n}x{d} K={k} {}", m.name());
                let sel = b.prune_checked(&what, &req);
                assert_eq!(sel.coords.as_ref().map(Vec::len), Some(k), "{what}");
            }
        }
    }
}

fn parallel_k_and_lambda_extremes(b: &TestBackend) {
    let (n, d) = (200, 48);
    let feats = random_matrix(n, d, 5);
    let imp = random_matrix(n, 1, 6);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for pk in [1, 2, 3, 8, 40] {
        for lambda in [0.0, 0.3, 0.5, 1.0] {
            let m = Method::IdPruner(IdPruner::new(&imp).parallel_k(pk).lambda(lambda));
            let req = Request::new(tokens, m, Budget::Count(37)).unwrap();
            b.prune_checked(&format!("pk={pk} lambda={lambda}"), &req);
        }
    }
}

fn zero_rows_extreme_scales_and_empty_budgets(b: &TestBackend) {
    let (n, d) = (40, 6);
    let mut feats = random_matrix(n, d, 21);
    feats[3 * d..4 * d].fill(0.0);
    feats[17 * d..18 * d].fill(0.0);
    feats[5 * d..6 * d].iter_mut().for_each(|v| *v *= 1e30);
    feats[8 * d..9 * d].iter_mut().for_each(|v| *v *= 1e-30);
    feats[9 * d..10 * d].iter_mut().for_each(|v| *v *= 3e37);
    let imp = random_matrix(n, 1, 22);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for m in [Method::DivPrune, Method::IdPruner(IdPruner::new(&imp))] {
        for budget in [Budget::Count(12), Budget::KeepRatio(0.01), Budget::Count(n)] {
            let req = Request::new(tokens, m, budget).unwrap();
            b.prune_checked(&format!("{} {budget}", m.name()), &req);
        }
    }
}

/// The features in a (caller's) GPU buffer: the same selection as from host memory.
fn features_already_in_a_gpu_buffer(b: &TestBackend) {
    let (n, d) = (97, 21);
    let feats = random_matrix(n, d, 3);
    let imp = random_matrix(n, 1, 4);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    let offset = 260u64; // not a multiple of the storage offset alignment
    let buffer = features_buffer(b.engine(), offset, &feats);
    let on_device = DeviceTokens::new(&buffer, offset, n, d).unwrap();
    for m in [
        Method::DivPrune,
        Method::IdPruner(IdPruner::new(&imp).parallel_k(2)),
        Method::TopK { scores: &imp },
        Method::Random { seed: 1 },
    ] {
        let budget = Budget::KeepRatio(0.25);
        let what = m.name();
        let on_buffer = b.prune(what, &Request::new(on_device, m, budget).unwrap());
        let host = b.prune(what, &Request::new(tokens, m, budget).unwrap());
        assert_eq!(on_buffer, host, "{what}");
        assert_eq!(on_buffer.backend, b.pruner.backend(), "{what}");
    }
}

/// A storage buffer on `g`'s device holding `feats` at byte `offset`, with 64 bytes to spare.
fn features_buffer(g: &GpuEngine, offset: u64, feats: &[f32]) -> wgpu::Buffer {
    let (device, queue) = g.device();
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller's features"),
        size: offset + (feats.len() * 4) as u64 + 64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&buffer, offset, bytemuck::cast_slice(feats));
    buffer
}

/// Repeated calls on an engine of its own (the shared one's pool also serves the tests running
/// beside this one).
fn repeated_calls_give_the_same_result_and_allocate_nothing_new(b: &TestBackend) {
    let own = b.own_pruner();
    let engine = own.gpu().expect("a GPU pruner");
    let (n, d) = (150, 40);
    let feats = random_matrix(n, d, 77);
    let imp = random_matrix(n, 1, 78);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    let reqs = [
        Request::new(tokens, Method::DivPrune, Budget::Count(20)).unwrap(),
        Request::new(
            tokens,
            Method::IdPruner(IdPruner::new(&imp)),
            Budget::Count(20),
        )
        .unwrap(),
    ];
    let first = own.prune_batch_blocking(&reqs).unwrap();
    let allocated = engine.allocated_bytes();
    assert!(allocated > 0);
    for _ in 0..4 {
        assert_eq!(own.prune_batch_blocking(&reqs).unwrap(), first);
        // One request alone needs no buffer larger than the batch's.
        assert_eq!(own.prune_blocking(&reqs[1]).unwrap(), first[1]);
    }
    assert_eq!(
        engine.allocated_bytes(),
        allocated,
        "repeated calls allocated"
    );
}

common::backend_tests!(
    on [gpu, gpu_streaming]:
    every_method_and_edge_size_matches_the_cpu_engine,
    parallel_k_and_lambda_extremes,
    zero_rows_extreme_scales_and_empty_budgets,
    features_already_in_a_gpu_buffer,
    repeated_calls_give_the_same_result_and_allocate_nothing_new,
    cdpruner_matches_the_cpu_engine_at_edge_sizes,
    cdpruner_openvino_matches_the_cpu_engine_at_edge_sizes,
    video_methods_match_the_cpu_engine_at_edge_sizes,
    cdpruner_exact_rank_stop_and_relevance_fill,
    cdpruner_openvino_degenerate_gains_and_constant_relevance,
);

#[test]
fn a_mixed_batch_runs_together_and_equals_each_alone() {
    let Some(g) = gpu() else { return };
    // Pools above 120 tokens stream, the rest are dense: both paths in one command buffer.
    let mixed = g.with_options(GpuOptions {
        stream_threshold_bytes: 120 * 120 * 4,
        ..Default::default()
    });
    let shapes = [
        (100, 32),
        (150, 7),
        (33, 1),
        (576, 64),
        (90, 129),
        (200, 16),
        (5, 3),
        (121, 5),
    ];
    let feats: Vec<Vec<f32>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(n, d))| random_matrix(n, d, i as u64 + 40))
        .collect();
    let imps: Vec<Vec<f32>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(n, _))| random_matrix(n, 1, i as u64 + 90))
        .collect();
    let reqs: Vec<Request> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(n, d))| {
            let t = Tokens::new(&feats[i], n, d).unwrap();
            let m = match i % 4 {
                0 | 2 => Method::DivPrune,
                1 => Method::IdPruner(IdPruner::new(&imps[i]).parallel_k(2)),
                _ => Method::IdPruner(IdPruner::new(&imps[i]).lambda(0.7)),
            };
            let budget = if i == 6 {
                Budget::KeepRatio(0.05) // K = 0
            } else {
                Budget::KeepRatio(0.3)
            };
            Request::new(t, m, budget).unwrap()
        })
        .collect();
    let paths: Vec<GpuPath> = reqs
        .iter()
        .map(|r| mixed.path_for(r.n(), r.d(), r.keep(), r.method()))
        .collect();
    assert!(paths.contains(&GpuPath::Dense) && paths.contains(&GpuPath::Streaming));
    let pruner = Pruner::from_gpu(mixed.clone());
    let batch = pruner.prune_batch_blocking(&reqs).unwrap();
    for (i, (req, sel)) in reqs.iter().zip(&batch).enumerate() {
        let alone = pruner.prune_blocking(req).unwrap();
        assert_eq!(sel, &alone, "pool {i}");
        assert!(matches!(sel.backend, Backend::Gpu(_)), "pool {i}: backend");
        check_against_cpu(&format!("batch pool {i}"), req, sel);
    }
    if g.has_timestamps() {
        let ms = mixed.last_gpu_time_ms().expect("GPU time");
        assert!(ms > 0.0, "{ms}");
    }
}

#[test]
fn bad_device_tokens_are_errors_not_panics() {
    let Some(g) = gpu() else { return };
    let (n, d) = (97, 21);
    let feats = random_matrix(n, d, 3);
    let offset = 260u64;
    let buffer = features_buffer(g, offset, &feats);
    let e = |r: tokenprune::Result<DeviceTokens>| r.expect_err("should fail").to_string();
    assert!(e(DeviceTokens::new(&buffer, 2, n, d)).contains("multiple of 4"));
    assert!(e(DeviceTokens::new(&buffer, offset, n + 10, d)).contains("holds"));
    assert!(e(DeviceTokens::new(&buffer, 0, 0, d)).contains("N >= 1"));
    let no_storage = g.device().0.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4096,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    assert!(e(DeviceTokens::new(&no_storage, 0, 10, 4)).contains("STORAGE"));
}

#[test]
fn a_callers_own_device() {
    let Some(g) = gpu() else { return };
    // A second device on the same adapter kind, created the way an application would.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let Some(adapter) = adapters
        .into_iter()
        .find(|a| a.get_info().name == g.adapter_name())
    else {
        panic!("adapter '{}' not found again", g.adapter_name());
    };
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let own = pollster::block_on(GpuEngine::from_device(
        std::sync::Arc::new(device),
        std::sync::Arc::new(queue),
        GpuOptions::default(),
    ))
    .unwrap();
    assert!(!own.has_timestamps() || g.has_timestamps());
    let feats = random_matrix(60, 9, 12);
    let tokens = Tokens::new(&feats, 60, 9).unwrap();
    let req = Request::new(tokens, Method::DivPrune, Budget::Count(6)).unwrap();
    let on_own = Pruner::from_gpu(own).prune_blocking(&req).unwrap();
    assert_eq!(
        on_own,
        Pruner::from_gpu(g.clone()).prune_blocking(&req).unwrap()
    );
}

#[test]
fn pruner_on_the_gpu_backend() {
    let Some(g) = gpu() else { return };
    let p = Pruner::new_blocking(PrunerOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(p.backend(), Backend::Gpu(g.adapter_name().to_string()));
    assert_eq!(p.gpu().map(|e| e.adapter_name()), Some(g.adapter_name()));
    let auto = Pruner::new_blocking(PrunerOptions::default()).unwrap();
    match auto.backend() {
        Backend::Gpu(_) => assert!(auto.fallback_reason().is_none()),
        Backend::Cpu => assert!(auto.fallback_reason().is_some()),
    }
    // Paths the engine reports.
    assert_eq!(g.path_for(576, 1024, 58, &Method::DivPrune), GpuPath::Dense);
    assert_eq!(g.path_for(576, 1024, 576, &Method::DivPrune), GpuPath::Host);
    assert_eq!(g.path_for(576, 1024, 58, &Method::Uniform), GpuPath::Cpu);
    let imp = vec![0.0f32; 4608];
    let idp = Method::IdPruner(IdPruner::new(&imp));
    assert_eq!(g.path_for(4608, 1024, 461, &idp), GpuPath::Dense);
    assert_eq!(g.path_for(4608, 1024, 5, &idp), GpuPath::Streaming);
}

#[test]
fn batches_larger_than_a_binding_are_split_into_chunks() {
    let Some(g) = gpu() else { return };
    // 64 KiB bindings: each 100 x 64 pool needs 25.6 KB of normalised rows and 40 KB of S, so
    // a batch of 12 runs in several chunks; a 200 x 32 pool (S = 160 KB) streams.
    let small = g.with_options(GpuOptions {
        max_binding_bytes: Some(64 << 10),
        ..Default::default()
    });
    let feats: Vec<Vec<f32>> = (0..12).map(|i| random_matrix(100, 64, 500 + i)).collect();
    let big = random_matrix(200, 32, 600);
    let imp = random_matrix(200, 1, 601);
    let mut reqs: Vec<Request> = feats
        .iter()
        .map(|f| {
            let t = Tokens::new(f, 100, 64).unwrap();
            Request::new(t, Method::DivPrune, Budget::Count(10)).unwrap()
        })
        .collect();
    let t = Tokens::new(&big, 200, 32).unwrap();
    reqs.push(Request::new(t, Method::IdPruner(IdPruner::new(&imp)), Budget::Count(30)).unwrap());
    assert_eq!(
        small.path_for(200, 32, 30, reqs[12].method()),
        GpuPath::Streaming
    );
    let pruner = Pruner::from_gpu(small.clone());
    let batch = pruner.prune_batch_blocking(&reqs).unwrap();
    for (i, (req, sel)) in reqs.iter().zip(&batch).enumerate() {
        assert_eq!(sel, &pruner.prune_blocking(req).unwrap(), "pool {i}");
        assert!(matches!(sel.backend, Backend::Gpu(_)), "pool {i}: backend");
        check_against_cpu(&format!("chunked pool {i}"), req, sel);
    }
    // A pool whose rows alone exceed the cap runs on the CPU engine, with a note saying why.
    let wide = random_matrix(100, 400, 7);
    let t = Tokens::new(&wide, 100, 400).unwrap();
    let req = Request::new(t, Method::DivPrune, Budget::Count(5)).unwrap();
    assert_eq!(small.path_for(100, 400, 5, req.method()), GpuPath::Cpu);
    let sel = pruner.prune_blocking(&req).unwrap();
    assert_eq!(sel.backend, Backend::Cpu);
    assert_eq!(sel.order, Pruner::cpu().prune_blocking(&req).unwrap().order);
    assert_eq!(
        sel.notes,
        ["ran on the CPU engine: a 100 x 400 pool needs a 160000-byte buffer (features) on the dense path, above the GPU binding limit of 65536 bytes"]
    );
}

// ---- CDPruner (both variants), EVS and VidCom2 ----

fn cdpruner(relevance: Relevance, crops: usize) -> Method {
    Method::CdPruner(CdPruner { relevance, crops })
}

fn openvino(text: &[f32], weight: f64, negate: bool, split: Split) -> Method<'_> {
    Method::CdPrunerOpenVino(CdPrunerOpenVino {
        text,
        weight,
        split,
        negate,
    })
}

/// Notes with the DPP's stopping gain (f32 rounding noise) taken out.
fn without_gain(notes: &[String]) -> Vec<String> {
    notes
        .iter()
        .map(|n| match (n.find("gain ("), n.find(") is not")) {
            (Some(a), Some(b)) => format!("{}{}", &n[..a + 6], &n[b..]),
            _ => n.clone(),
        })
        .collect()
}

fn sorted(order: &[u32]) -> Vec<u32> {
    let mut s = order.to_vec();
    s.sort_unstable();
    s
}

/// Edge sizes (N = 1, below and across the 256-wide workgroup, D not a multiple of 4, K from
/// 1 to N - 1, K above the rank of a D = 3 pool) against the CPU engine.
fn cdpruner_matches_the_cpu_engine_at_edge_sizes(b: &TestBackend) {
    let cpu = Pruner::cpu();
    for (n, d, k, seed) in [
        (2, 1, 1, 1u64),
        (7, 3, 3, 2),
        (9, 3, 8, 3),
        (129, 37, 20, 4),
        (300, 64, 45, 5),
        (257, 130, 100, 6),
    ] {
        let x = random_matrix(n, d, seed);
        let a = random_matrix(n, 1, seed + 100);
        let m = cdpruner(Relevance::Raw(&a), 1);
        let r = cdpruner_minmax_f64(&a.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let want = run_on(&cpu, &x, n, d, None, m, Budget::Count(k)).unwrap();
        let got = run_on(&b.pruner, &x, n, d, None, m, Budget::Count(k)).unwrap();
        let what = format!("{} {n}x{d} K {k}", b.name);
        // K above the numerical rank (9 x 3, K = 8): exactly K unique tokens and the same
        // note, but for the gain it stopped at (rounding noise around 0, e.g. -2e-18).
        assert_eq!(
            without_gain(&got.notes),
            without_gain(&want.notes),
            "{what}"
        );
        assert_eq!(got.order.len(), k, "{what}");
        assert_eq!(
            sorted(&got.order)
                .windows(2)
                .filter(|w| w[0] == w[1])
                .count(),
            0
        );
        let rep = replay_cdpruner(&x, n, d, &r, 1, &got.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{what}: deficit {:e}",
            rep.deficit
        );
        if replay_cdpruner(&x, n, d, &r, 1, &want.order).min_gap > 1e-4 {
            assert_eq!(got.order, want.order, "{what}");
        }
        for (g, c) in got.scores.iter().zip(&want.scores) {
            assert!(
                (g - c).abs() <= 1e-4 * c.abs().max(1.0),
                "{what}: {g} vs {c}"
            );
        }
    }
}

fn cdpruner_openvino_matches_the_cpu_engine_at_edge_sizes(b: &TestBackend) {
    let cpu = Pruner::cpu();
    for (n, d, k, split, w, seed) in [
        (3, 2, 1, Split::None, 0.5, 7u64),
        (9, 4, 4, Split::None, 0.5, 8),
        (130, 33, 30, Split::Halves, 0.3, 9),
        (300, 64, 50, Split::None, 1.0, 10),
    ] {
        let x = random_matrix(n, d, seed);
        let t = random_matrix(1, d, seed + 100);
        let m = openvino(&t, w, false, split);
        let want = run_on(&cpu, &x, n, d, None, m, Budget::Count(k)).unwrap();
        let got = run_on(&b.pruner, &x, n, d, None, m, Budget::Count(k)).unwrap();
        let what = format!("{} {n}x{d} K {k}", b.name);
        assert_eq!(got.notes, want.notes, "{what}");
        let halves = split == Split::Halves;
        let rep = replay_cdpruner_openvino(&x, n, d, &t, w, false, halves, &got.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{what}: deficit {:e}",
            rep.deficit
        );
        let cpu_rep = replay_cdpruner_openvino(&x, n, d, &t, w, false, halves, &want.order);
        if cpu_rep.min_gap > 1e-4 {
            assert_eq!(got.order, want.order, "{what}");
        }
    }
}

/// EVS and VidCom2 on grids from 2 frames of 1 x 3 to 6 x 6 x 6, D from 5 to 64.
fn video_methods_match_the_cpu_engine_at_edge_sizes(b: &TestBackend) {
    let cpu = Pruner::cpu();
    for (t, h, w, d, seed) in [(2, 1, 3, 5, 11u64), (4, 3, 5, 33, 12), (6, 6, 6, 64, 13)] {
        let grid = Some(Grid::new(t, h, w));
        let n = t * h * w;
        let x = random_matrix(n, d, seed);
        for (m, budget) in [
            (Method::Evs, Budget::PruneRatio(0.6)),
            (
                Method::VidCom2 {
                    count: CountMode::Exact,
                },
                Budget::KeepRatio(0.3),
            ),
            (
                Method::VidCom2 {
                    count: CountMode::Official,
                },
                Budget::KeepRatio(0.5),
            ),
        ] {
            let what = format!("{} {} {t}x{h}x{w}x{d}", b.name, m.name());
            let want = run_on(&cpu, &x, n, d, grid, m, budget).unwrap();
            let got = run_on(&b.pruner, &x, n, d, grid, m, budget).unwrap();
            assert_eq!(got.kept, want.kept, "{what}");
            assert_eq!(got.notes, want.notes, "{what}");
            for (a, c) in got.scores.iter().zip(&want.scores) {
                assert!(
                    (a - c).abs() <= 1e-5 * c.abs().max(1.0),
                    "{what}: {a} vs {c}"
                );
            }
        }
    }
}

/// Exact arithmetic: one-hot rows, equal relevance. 0, 2, 3 share a direction, 1 and 4
/// another: after two picks every gain is exactly 0, the DPP stops and the fill takes 2, 3 by
/// index; with zero rows the fill follows the relevance, highest first.
fn cdpruner_exact_rank_stop_and_relevance_fill(b: &TestBackend) {
    let x = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let m = cdpruner(Relevance::Raw(&[0.0; 5]), 1);
    let want = run_on(&Pruner::cpu(), &x, 5, 2, None, m, Budget::Count(4)).unwrap();
    let sel = run_on(&b.pruner, &x, 5, 2, None, m, Budget::Count(4)).unwrap();
    assert_eq!(sel.order, vec![0, 1, 2, 3]);
    assert_eq!(sel.scores, vec![1.0, 1.0, 0.0, 0.0]);
    assert_eq!(sel.notes, want.notes);
    assert!(
        sel.notes[1].starts_with("DPP stopped after 2 of 4 picks"),
        "{:?}",
        sel.notes
    );
    let x = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let a = [0.0f32, 0.3, 0.9, 0.5];
    let sel = run_on(
        &b.pruner,
        &x,
        4,
        2,
        None,
        cdpruner(Relevance::Raw(&a), 1),
        Budget::Count(3),
    )
    .unwrap();
    assert_eq!(sel.order, vec![0, 2, 3]);
    assert!(
        sel.notes.iter().any(|n| n.contains("3 all-zero row")),
        "{:?}",
        sel.notes
    );
}

/// OpenVINO on identical tokens: after the first pick every gain degenerates and upstream
/// keeps picking by its argmax (lowest index among equals), noted; a zero text vector makes
/// r = 0 everywhere, noted.
fn cdpruner_openvino_degenerate_gains_and_constant_relevance(b: &TestBackend) {
    let cpu = Pruner::cpu();
    let x = [1.0f32, 0.0].repeat(5);
    let m = openvino(&[1.0, 0.0], 0.5, false, Split::None);
    let want = run_on(&cpu, &x, 5, 2, None, m, Budget::Count(4)).unwrap();
    let sel = run_on(&b.pruner, &x, 5, 2, None, m, Budget::Count(4)).unwrap();
    assert_eq!(sel.order, want.order);
    assert_eq!(sel.notes, want.notes);
    let y = random_matrix(40, 6, 14);
    let zero = openvino(&[0.0; 6], 0.5, false, Split::None);
    let want = run_on(&cpu, &y, 40, 6, None, zero, Budget::Count(10)).unwrap();
    let sel = run_on(&b.pruner, &y, 40, 6, None, zero, Budget::Count(10)).unwrap();
    assert_eq!(sel.notes, want.notes);
    assert!(
        sel.notes.iter().any(|n| n.contains("relevance is equal")),
        "{:?}",
        sel.notes
    );
    let rep = replay_cdpruner_openvino(&y, 40, 6, &[0.0; 6], 0.5, false, false, &sel.order);
    assert!(rep.deficit <= MAX_DEFICIT, "deficit {:e}", rep.deficit);
}

#[test]
fn evs_exact_ties_at_the_boundary_and_zero_rows() {
    let Some(g) = gpu() else { return };
    let p = Pruner::from_gpu(g.clone());
    let one_hot = |dims: &[usize]| -> Vec<f32> {
        dims.iter()
            .flat_map(|&k| (0..4).map(move |j| if j == k { 1.0 } else { 0.0 }))
            .collect()
    };
    // Frame 1 differs from frame 0 everywhere (score exactly 1), frame 2 repeats frame 1
    // (exactly 0): K = 6 cuts inside frame 1's tie, the lower flat indices win.
    let mut x = one_hot(&[0, 1, 2, 3]);
    x.extend(one_hot(&[1, 2, 3, 0]));
    x.extend(one_hot(&[1, 2, 3, 0]));
    let sel = run_on(
        &p,
        &x,
        12,
        4,
        Some(Grid::new(3, 2, 2)),
        Method::Evs,
        Budget::Count(6),
    )
    .unwrap();
    assert_eq!(sel.kept, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(sel.scores, vec![255.0, 255.0, 255.0, 255.0, 1.0, 1.0]);
    // A zero row has cosine 0 with its predecessor: score 1, noted.
    let x = [1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let sel = run_on(
        &p,
        &x,
        4,
        2,
        Some(Grid::new(2, 1, 2)),
        Method::Evs,
        Budget::Count(3),
    )
    .unwrap();
    assert_eq!(sel.kept, vec![0, 1, 2]);
    assert_eq!(sel.scores[2], 1.0);
    assert!(sel.notes[0].contains("1 all-zero row"), "{:?}", sel.notes);
    // Identical frames of exact-arithmetic rows: every later frame scores exactly 0.
    let (shape, exact) = load_f32("f_exact_576x1024.npy");
    let x = exact[..144 * shape[1]].repeat(3);
    let grid = Some(Grid::new(3, 12, 12));
    let sel = run_on(
        &p,
        &x,
        432,
        shape[1],
        grid,
        Method::Evs,
        Budget::PruneRatio(0.5),
    )
    .unwrap();
    assert_eq!(sel.kept, (0..216).collect::<Vec<u32>>());
}

#[test]
fn vidcom2_zero_rows_constant_and_huge_channels() {
    let Some(g) = gpu() else { return };
    let p = Pruner::from_gpu(g.clone());
    let (t, h, w, d) = (3, 4, 4, 16);
    let n = t * h * w;
    let mut x = random_matrix(n, d, 15);
    for i in 0..n {
        // Channels 0..4 constant (variance exactly 0: always kept), channel 5 scaled by 1e30
        // (its squares overflow f32 unless the variance is scaled first).
        for c in 0..4 {
            x[i * d + c] = 0.5;
        }
        x[i * d + 5] *= 1e30;
    }
    for i in [3, 40] {
        x[i * d..(i + 1) * d].fill(0.0);
    }
    for count in [CountMode::Exact, CountMode::Official] {
        let m = Method::VidCom2 { count };
        let grid = Some(Grid::new(t, h, w));
        let want = run_on(&Pruner::cpu(), &x, n, d, grid, m, Budget::KeepRatio(0.4)).unwrap();
        let sel = run_on(&p, &x, n, d, grid, m, Budget::KeepRatio(0.4)).unwrap();
        assert_eq!(sel.kept, want.kept);
        assert_eq!(sel.notes, want.notes);
        assert!(
            sel.notes.iter().any(|n| n.contains("2 all-zero row")),
            "{:?}",
            sel.notes
        );
    }
}

/// Pools over the GPU's limits run on the Pruner's CPU engine, with the reason in a note; the
/// planner names the buffer and the limit.
#[test]
fn new_methods_over_the_limits_fall_back_with_a_note() {
    let Some(g) = gpu() else { return };
    // 1 KiB bindings: the 64 x 8 features (2 KiB), or a 32 x 8 half and its text, do not fit.
    let small = Pruner::from_gpu(g.with_options(GpuOptions {
        max_binding_bytes: Some(1024),
        ..Default::default()
    }));
    let (n, d) = (64, 8);
    let x = random_matrix(n, d, 16);
    let a = random_matrix(n, 1, 17);
    let t = random_matrix(1, d, 18);
    let grid = Some(Grid::new(4, 4, 4));
    for (m, budget, pool) in [
        (
            cdpruner(Relevance::Raw(&a), 1),
            Budget::Count(10),
            "a 64 x 8 pool",
        ),
        (
            openvino(&t, 0.5, false, Split::Halves),
            Budget::Count(10),
            "a 32 x 8 pool",
        ),
        (Method::Evs, Budget::PruneRatio(0.5), "a 64 x 8 pool"),
        (
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::KeepRatio(0.3),
            "a 64 x 8 pool",
        ),
    ] {
        let mut tokens = Tokens::new(&x, n, d).unwrap();
        if let Some(gr) = grid {
            tokens = tokens.with_grid(gr).unwrap();
        }
        let req = Request::new(tokens, m, budget).unwrap();
        let sel = small.prune_blocking(&req).unwrap();
        let cpu = Pruner::cpu().prune_blocking(&req).unwrap();
        assert_eq!(sel.backend, Backend::Cpu, "{}", m.name());
        assert_eq!(sel.order, cpu.order, "{}", m.name());
        let note = sel.notes.last().unwrap();
        assert!(
            note.starts_with(&format!("ran on the CPU engine: {pool} needs")),
            "{note}"
        );
        assert!(
            note.contains("above the GPU binding limit of 1024 bytes"),
            "{note}"
        );
        assert_eq!(
            g.with_options(small_options()).path_for(n, d, 10, &m),
            GpuPath::Cpu
        );
    }
    // The same requests fit the default limits: scores on the GPU, picks dense.
    let m = Method::Evs;
    assert_eq!(g.path_for(n, d, 10, &m), GpuPath::Scores);
    assert_eq!(
        g.path_for(n, d, 10, &cdpruner(Relevance::Raw(&a), 1)),
        GpuPath::Dense
    );
}

fn small_options() -> GpuOptions {
    GpuOptions {
        max_binding_bytes: Some(1024),
        ..Default::default()
    }
}

#[test]
fn new_methods_on_features_already_on_the_gpu() {
    let Some(g) = gpu() else { return };
    let (n, d) = (96, 20);
    let x = random_matrix(n, d, 19);
    let t = random_matrix(1, d, 20);
    let a = random_matrix(n, 1, 21);
    // At a 4-byte-aligned offset that is not storage-aligned.
    let buf = features_buffer(g, 1028, &x);
    let pruner = Pruner::from_gpu(g.clone());
    let grid = Grid::new(6, 4, 4);
    for (m, budget) in [
        (cdpruner(Relevance::Raw(&a), 2), Budget::Count(9)),
        (openvino(&t, 0.5, false, Split::Halves), Budget::Count(21)),
        (Method::Evs, Budget::PruneRatio(0.5)),
        (
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::KeepRatio(0.3),
        ),
    ] {
        let host = run_on(&pruner, &x, n, d, Some(grid), m, budget).unwrap();
        let on = DeviceTokens::new(&buf, 1028, n, d)
            .unwrap()
            .with_grid(grid)
            .unwrap();
        let sel = pruner
            .prune_blocking(&Request::new(on, m, budget).unwrap())
            .unwrap();
        assert!(matches!(sel.backend, Backend::Gpu(_)), "{}", m.name());
        assert_eq!(sel.order, host.order, "{}", m.name());
        assert_eq!(sel.scores, host.scores, "{}", m.name());
    }
}

/// One batch mixing every kind of job: DivPrune (greedy submission), CDPruner in two crops
/// and OpenVINO (one DPP submission), EVS and VidCom2 (one video submission): each equals
/// its request alone, and a repeated batch allocates nothing new.
#[test]
fn a_batch_mixing_the_new_methods_equals_each_alone() {
    let Some(g) = gpu() else { return };
    let pruner = Pruner::from_gpu(g.clone());
    let (n, d) = (72, 24);
    let x = random_matrix(n, d, 22);
    let a = random_matrix(n, 1, 23);
    let t = random_matrix(1, d, 24);
    let tokens = Tokens::new(&x, n, d)
        .unwrap()
        .with_grid(Grid::new(2, 6, 6))
        .unwrap();
    let reqs = [
        Request::new(tokens, Method::DivPrune, Budget::Count(9)).unwrap(),
        Request::new(tokens, cdpruner(Relevance::Raw(&a), 2), Budget::Count(10)).unwrap(),
        Request::new(tokens, Method::Evs, Budget::PruneRatio(0.5)).unwrap(),
        Request::new(
            tokens,
            openvino(&t, 0.3, true, Split::None),
            Budget::Count(7),
        )
        .unwrap(),
        Request::new(
            tokens,
            Method::VidCom2 {
                count: CountMode::Official,
            },
            Budget::KeepRatio(0.5),
        )
        .unwrap(),
    ];
    let alone: Vec<Selection> = reqs
        .iter()
        .map(|r| pruner.prune_blocking(r).unwrap())
        .collect();
    let batch = pruner.prune_batch_blocking(&reqs).unwrap();
    let bytes = g.allocated_bytes();
    let again = pruner.prune_batch_blocking(&reqs).unwrap();
    assert_eq!(
        g.allocated_bytes(),
        bytes,
        "repeated calls allocate nothing"
    );
    for ((a, b), c) in alone.iter().zip(&batch).zip(&again) {
        assert!(
            matches!(b.backend, Backend::Gpu(_)),
            "{}: {:?}",
            a.method,
            b.notes
        );
        assert_eq!(a.order, b.order, "{}", a.method);
        assert_eq!(b.order, c.order, "{}", a.method);
        assert_eq!(a.notes, b.notes, "{}", a.method);
    }
}

// ---- The GPU leftovers: checks on a caller's buffer, shared devices, split submissions ----

/// NaN and infinities in a caller's buffer are found on the GPU (normalize.wgsl) and rejected
/// with the error host features get, naming the first bad row and column, on every kind of
/// submission and both paths; the engine stays usable and a clean buffer still works.
#[test]
fn non_finite_features_in_a_gpu_buffer_are_rejected_like_host_input() {
    let Some(g) = gpu() else { return };
    let (n, d) = (96, 20);
    let x = random_matrix(n, d, 31);
    let a = random_matrix(n, 1, 32);
    let t = random_matrix(1, d, 33);
    let grid = Grid::new(6, 4, 4);
    let methods = [
        (Method::DivPrune, Budget::Count(9)),
        (Method::IdPruner(IdPruner::new(&a)), Budget::Count(9)),
        (cdpruner(Relevance::Raw(&a), 2), Budget::Count(9)),
        (openvino(&t, 0.5, false, Split::Halves), Budget::Count(21)),
        (Method::Evs, Budget::PruneRatio(0.5)),
        (
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::KeepRatio(0.3),
        ),
    ];
    let streaming = g.with_options(GpuOptions {
        stream_threshold_bytes: 0,
        ..Default::default()
    });
    // (bad values placed: (row, column, value)), the error expected: the lowest position.
    type Bad = [(usize, usize, f32)];
    let cases: [(&Bad, &str); 3] = [
        (&[(40, 7, f32::NAN)], "(NaN) at row 40, column 7"),
        (
            &[(77, 0, f32::NAN), (13, 19, f32::INFINITY)],
            "(inf) at row 13, column 19",
        ),
        (
            &[(95, 19, f32::NEG_INFINITY)],
            "(-inf) at row 95, column 19",
        ),
    ];
    let offset = 1028;
    for (bad, want) in cases {
        let mut y = x.clone();
        for &(r, c, v) in bad {
            y[r * d + c] = v;
        }
        // The host check says the same.
        let host_err = Tokens::new(&y, n, d).unwrap_err().to_string();
        assert!(host_err.ends_with(want), "{host_err}");
        let buf = features_buffer(g, offset, &y);
        for engine in [g, &streaming] {
            let pruner = Pruner::from_gpu(engine.clone());
            for (m, budget) in methods {
                let on = DeviceTokens::new(&buf, offset, n, d)
                    .unwrap()
                    .with_grid(grid)
                    .unwrap();
                let err = pruner
                    .prune_blocking(&Request::new(on, m, budget).unwrap())
                    .expect_err(m.name());
                assert!(
                    matches!(err, tokenprune::Error::NonFinite { .. }),
                    "{}: {err}",
                    m.name()
                );
                assert_eq!(err.to_string(), host_err, "{}", m.name());
            }
        }
    }
    // A clean buffer on the same engine: the host result.
    let clean = features_buffer(g, offset, &x);
    let pruner = Pruner::from_gpu(g.clone());
    for (m, budget) in methods {
        let on = DeviceTokens::new(&clean, offset, n, d)
            .unwrap()
            .with_grid(grid)
            .unwrap();
        let sel = pruner
            .prune_blocking(&Request::new(on, m, budget).unwrap())
            .unwrap();
        let host = run_on(&pruner, &x, n, d, Some(grid), m, budget).unwrap();
        assert_eq!(sel.order, host.order, "{}", m.name());
    }
}

/// Two engines on one caller's device, and concurrent calls on each: every call waits for its
/// own submission only (not the whole device) and still reads its own results.
#[test]
fn two_engines_sharing_a_callers_device_called_concurrently() {
    let Some(g) = gpu() else { return };
    let (device, queue) = g.device();
    let engines: Vec<GpuEngine> = (0..2)
        .map(|_| {
            pollster::block_on(GpuEngine::from_device(
                device.clone(),
                queue.clone(),
                GpuOptions::default(),
            ))
            .unwrap()
        })
        .collect();
    let inputs: Vec<(usize, usize, Vec<f32>)> = [(120, 24), (64, 40), (200, 8), (33, 17)]
        .iter()
        .enumerate()
        .map(|(i, &(n, d))| (n, d, random_matrix(n, d, 50 + i as u64)))
        .collect();
    fn request((n, d, x): &(usize, usize, Vec<f32>)) -> Request<'_> {
        let tokens = Tokens::new(x, *n, *d).unwrap();
        Request::new(tokens, Method::DivPrune, Budget::Count(n / 4)).unwrap()
    }
    // One call at a time on the shared engine.
    let alone = Pruner::from_gpu(g.clone());
    let expected: Vec<Selection> = inputs
        .iter()
        .map(|i| alone.prune_blocking(&request(i)).unwrap())
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (engine, inputs, expected) = (&engines[t % 2], &inputs, &expected);
            s.spawn(move || {
                let pruner = Pruner::from_gpu(engine.clone());
                for round in 0..6 {
                    let i = (t + round) % inputs.len();
                    let sel = pruner.prune_blocking(&request(&inputs[i])).unwrap();
                    assert_eq!(sel.order, expected[i].order, "thread {t}, input {i}");
                }
            });
        }
    });
}

/// Bind groups (and uniform tables) are made once per buffer generation: 100 calls of one
/// shape class (N varying below the warm-up's, every kind of submission, both paths) create
/// no bind group and allocate nothing; a larger call grows the buffers and makes new ones.
#[test]
fn bind_groups_are_made_once_per_buffer_generation() {
    if gpu().is_none() {
        return;
    }
    let engine = GpuEngine::new_blocking(GpuOptions::default()).unwrap();
    let streaming = engine.with_options(GpuOptions {
        stream_threshold_bytes: 0,
        ..Default::default()
    });
    let (dense, stream) = (
        Pruner::from_gpu(engine.clone()),
        Pruner::from_gpu(streaming),
    );
    let d = 24;
    let x = random_matrix(512, d, 61);
    let a = random_matrix(512, 1, 62);
    let t = random_matrix(1, d, 63);
    let call = |n: usize, i: usize| {
        let tokens = Tokens::new(&x[..n * d], n, d).unwrap();
        let grid = Grid::new(n / 8, 2, 4);
        let (m, budget) = match i % 6 {
            0 => (Method::DivPrune, Budget::Count(n / 8)),
            1 => (
                Method::IdPruner(IdPruner::new(&a[..n]).parallel_k(2)),
                Budget::Count(n / 8),
            ),
            2 => (cdpruner(Relevance::Raw(&a[..n]), 1), Budget::Count(n / 8)),
            3 => (
                openvino(&t, 0.5, false, Split::Halves),
                Budget::Count(n / 8),
            ),
            4 => (Method::Evs, Budget::KeepRatio(0.25)),
            _ => (
                Method::VidCom2 {
                    count: CountMode::Exact,
                },
                Budget::KeepRatio(0.25),
            ),
        };
        let req = Request::new(tokens.with_grid(grid).unwrap(), m, budget).unwrap();
        let p = if (i / 6).is_multiple_of(2) {
            &dense
        } else {
            &stream
        };
        let sel = p.prune_blocking(&req).unwrap();
        assert!(matches!(sel.backend, Backend::Gpu(_)), "{}", m.name());
        sel
    };
    // Warm-up: the largest shape of the class on every kind of submission and path, then one
    // round of the calls below (the pool may hand a smaller call another free buffer of a
    // role: each such set of buffers is bound once).
    let n_of = |r: usize| 128 - 8 * (r % 4);
    for i in 0..12 {
        call(128, i);
    }
    for r in 0..12 {
        call(n_of(r), r);
    }
    let (groups, bytes) = (engine.bind_groups_created(), engine.allocated_bytes());
    assert!(groups > 0);
    let first = call(120, 0);
    for r in 0..100 {
        let n = n_of(r);
        let sel = call(n, r);
        if n == 120 && r % 12 == 0 {
            assert_eq!(sel, first, "repeated call {r}");
        }
    }
    assert_eq!(engine.allocated_bytes(), bytes, "100 calls allocated");
    assert_eq!(
        engine.bind_groups_created(),
        groups,
        "100 calls made bind groups"
    );
    // Four times the tokens: larger buffers, a new generation, new bind groups (then flat).
    call(512, 0);
    let grown = engine.bind_groups_created();
    assert!(engine.allocated_bytes() > bytes && grown > groups);
    for _ in 0..5 {
        call(512, 0);
    }
    assert_eq!(engine.bind_groups_created(), grown);
}

/// Each selection carries its call's GPU time: measured (timestamp queries, which lavapipe
/// has) for kernels that ran, shared by a batch, `None` where no kernel ran for it or on the
/// CPU engine; the engine's last-call figure agrees.
#[test]
fn every_selection_carries_its_calls_gpu_time() {
    let Some(g) = gpu() else { return };
    let engine = GpuEngine::new_blocking(GpuOptions::default()).unwrap();
    let pruner = Pruner::from_gpu(engine.clone());
    let (n, d) = (100, 16);
    let x = random_matrix(n, d, 71);
    let grid = Grid::new(4, 5, 5);
    let tokens = Tokens::new(&x, n, d).unwrap().with_grid(grid).unwrap();
    let req = |m, b| Request::new(tokens, m, b).unwrap();
    let sel = pruner
        .prune_blocking(&req(Method::DivPrune, Budget::Count(10)))
        .unwrap();
    assert_eq!(sel.gpu_ms.is_some(), g.has_timestamps(), "{:?}", sel.gpu_ms);
    assert_eq!(sel.gpu_ms, engine.last_gpu_time_ms());
    if let Some(ms) = sel.gpu_ms {
        assert!(ms > 0.0 && ms.is_finite(), "{ms}");
    }
    let batch = pruner
        .prune_batch_blocking(&[
            req(Method::DivPrune, Budget::Count(10)),
            req(Method::Evs, Budget::Count(10)),
            req(Method::Uniform, Budget::Count(10)),
            req(Method::DivPrune, Budget::Count(n)),
        ])
        .unwrap();
    assert_eq!(batch[0].gpu_ms, batch[1].gpu_ms);
    assert_eq!(batch[0].gpu_ms, engine.last_gpu_time_ms());
    assert_eq!(
        (batch[2].gpu_ms, batch[3].gpu_ms),
        (None, None),
        "no kernel ran"
    );
    let cpu = Pruner::cpu().prune_blocking(&req(Method::DivPrune, Budget::Count(10)));
    assert_eq!(cpu.unwrap().gpu_ms, None);
    // The timing is not part of the result.
    let mut other = sel.clone();
    other.gpu_ms = Some(1e9);
    assert_eq!(other, sel);
}

/// A per-submission work cap of 1 puts every tile row of the similarity, every streaming step
/// and every DPP dispatch in a submission of its own: the selections equal the
/// one-submission run's exactly.
#[test]
fn long_selections_split_over_many_submissions_select_the_same() {
    if gpu().is_none() {
        return;
    }
    let engine = GpuEngine::new_blocking(GpuOptions::default()).unwrap();
    let streaming = GpuOptions {
        stream_threshold_bytes: 0,
        ..Default::default()
    };
    let one = |o: &GpuOptions| Pruner::from_gpu(engine.with_options(o.clone()));
    let split = |o: &GpuOptions| {
        one(&GpuOptions {
            submission_work: 1,
            ..o.clone()
        })
    };
    let (n, d) = (300, 24);
    let x = random_matrix(n, d, 81);
    let a = random_matrix(n, 1, 82);
    let tokens = Tokens::new(&x, n, d).unwrap();
    for options in [GpuOptions::default(), streaming] {
        for (m, budget) in [
            (Method::DivPrune, Budget::Count(40)),
            (
                Method::IdPruner(IdPruner::new(&a).parallel_k(3)),
                Budget::Count(40),
            ),
            (cdpruner(Relevance::Raw(&a), 1), Budget::Count(192)),
        ] {
            let req = Request::new(tokens, m, budget).unwrap();
            let whole = one(&options).prune_blocking(&req).unwrap();
            let before = engine.submissions();
            let parts = split(&options).prune_blocking(&req).unwrap();
            let made = engine.submissions() - before;
            let what = format!(
                "{} (stream threshold {})",
                m.name(),
                options.stream_threshold_bytes
            );
            assert_eq!(parts, whole, "{what}");
            // 300 tokens: 5 tile rows of similarity, each a submission of its own.
            let streamed = options.stream_threshold_bytes == 0 && !matches!(m, Method::CdPruner(_));
            let want = match (streamed, &m) {
                // The nearest-neighbour fold's rows, then K + 1 steps.
                (true, Method::DivPrune) => 5 + 41,
                (true, _) => 41,
                // The similarity's rows, then the select dispatch.
                (false, Method::DivPrune | Method::IdPruner(_)) => 5 + 1,
                _ => 0,
            };
            if want > 0 {
                assert_eq!(made, want, "{what}");
            } else {
                // CDPruner: its DPP dispatches, after the stored similarity's 5 rows if dense.
                let rows = if options.stream_threshold_bytes == 0 {
                    0
                } else {
                    5
                };
                assert!(made > rows + 1, "{what}: {made} submissions");
            }
        }
    }
}
