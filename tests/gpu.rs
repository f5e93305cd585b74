//! The GPU engine against the CPU engine (the oracle): edge sizes, parallel_k and lambda,
//! zero rows and extreme scales, a caller's buffer, on the dense and the streaming path (one
//! test per path, `common::backend_tests!`); mixed and chunked batches, repeated calls, a
//! caller's device. The conformance vectors run on both paths in tests/conformance.rs.
//!
//! Greedy methods: tie-aware (SPEC) everywhere and exact where no step is near a tie;
//! baselines: exactly equal. Every test skips with a line on stderr when no adapter exists,
//! and fails instead when `TOKENPRUNE_REQUIRE_GPU=1`.
#![cfg(feature = "gpu")]

mod common;

use common::{check_against_cpu, gpu, random_matrix, TestBackend};
use tokenprune::wgpu;
use tokenprune::{
    Backend, BackendChoice, Budget, DeviceTokens, GpuEngine, GpuOptions, GpuPath, Grid, IdPruner,
    Method, Pruner, PrunerOptions, Request, Tokens,
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
