//! Faults of the GPU engine: a lost device, requests above the device's limits. Each must
//! become an `Error::Backend` (or, for pools too large for the device, a CPU run with a note),
//! quickly: never a panic, an abort or a hang. Policy and table: RELIABILITY.md.
#![cfg(feature = "gpu")]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{gpu, random_matrix};
use tokenprune::wgpu;
use tokenprune::{
    Backend, BackendChoice, Budget, DeviceTokens, GpuEngine, GpuOptions, GpuPath, IdPruner, Method,
    Pruner, PrunerOptions, Request, Tokens,
};

/// Runs `f` on its own thread and fails the test if it takes longer than `secs` (a hang), or
/// panics.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A device of the shared engine's adapter, opened the way an application would, with the
/// adapter's limits lowered by `limits`.
fn callers_device(limits: impl FnOnce(&mut wgpu::Limits)) -> (Arc<wgpu::Device>, Arc<wgpu::Queue>) {
    let g = gpu().expect("checked by the caller");
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| a.get_info().name == g.adapter_name())
        .expect("the shared engine's adapter");
    let mut l = adapter.limits();
    limits(&mut l);
    let desc = wgpu::DeviceDescriptor {
        required_limits: l,
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    (Arc::new(device), Arc::new(queue))
}

fn small_request(feats: &[f32], imp: &[f32]) -> Vec<Request<'static>> {
    // Leaked: the requests cross into the guarded thread.
    let feats: &'static [f32] = Box::leak(feats.to_vec().into_boxed_slice());
    let imp: &'static [f32] = Box::leak(imp.to_vec().into_boxed_slice());
    let t = Tokens::new(feats, 64, 8).unwrap();
    vec![
        Request::new(t, Method::DivPrune, Budget::Count(8)).unwrap(),
        Request::new(t, Method::IdPruner(IdPruner::new(imp)), Budget::Count(8)).unwrap(),
    ]
}

/// Destroys the device under an engine, then: every call is a quick `Error::Backend` naming the
/// loss, `is_lost()` is true, and a fresh engine works again.
fn lose_and_recover(engine: GpuEngine, label: &str) {
    let feats = random_matrix(64, 8, 1);
    let imp = random_matrix(64, 1, 2);
    let reqs = small_request(&feats, &imp);
    let before = Pruner::cpu().prune_batch_blocking(&reqs).unwrap();
    let e = engine.clone();
    let r = reqs.clone();
    let ok = within(60, "before the loss", move || {
        Pruner::from_gpu(e.clone()).prune_batch_blocking(&r)
    });
    assert_eq!(ok.unwrap().len(), 2, "{label}: works before the loss");
    assert!(!engine.is_lost(), "{label}");

    engine.device().0.destroy();
    let e = engine.clone();
    let r = reqs.clone();
    let t0 = Instant::now();
    let first = within(30, "first call after the loss", move || {
        Pruner::from_gpu(e.clone()).prune_batch_blocking(&r)
    });
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;
    let msg = first.expect_err("a lost device must fail").to_string();
    eprintln!("{label}: first call after destroy(): {first_ms:.1} ms: {msg}");
    assert!(msg.starts_with("backend: "), "{label}: {msg}");
    assert!(msg.contains("lost"), "{label}: {msg}");
    assert!(msg.contains("build a new"), "{label}: {msg}");
    assert!(engine.is_lost(), "{label}: is_lost after the loss");
    // Later calls fail at once, on every entry point, without touching the device.
    let e = engine.clone();
    let r = reqs.clone();
    let later = within(5, "later calls", move || {
        let t0 = Instant::now();
        let a = Pruner::from_gpu(e.clone()).prune_batch_blocking(&r);
        let b = Pruner::from_gpu(e).prune_blocking(&r[1]);
        (a, b, t0.elapsed())
    });
    assert!(later.0.unwrap_err().to_string().contains("lost"), "{label}");
    assert!(later.1.unwrap_err().to_string().contains("lost"), "{label}");
    assert!(later.2 < Duration::from_secs(1), "{label}: {:?}", later.2);
    let p = Pruner::from_gpu(engine.clone());
    assert!(p.is_lost());
    assert!(p.prune_blocking(&reqs[0]).is_err());

    // Recreate: a new pruner on a new device works and agrees with the CPU engine.
    let r = reqs.clone();
    let again = within(120, "recreated pruner", move || {
        let p = Pruner::new_blocking(PrunerOptions {
            backend: BackendChoice::Gpu,
            ..Default::default()
        })?;
        assert!(!p.is_lost());
        p.prune_batch_blocking(&r)
    });
    let again = again.unwrap();
    for (a, b) in again.iter().zip(&before) {
        assert!(matches!(a.backend, Backend::Gpu(_)));
        assert_eq!(a.order, b.order, "{label}: after recreation");
    }
}

#[test]
fn a_destroyed_device_of_our_own_is_a_typed_error_and_a_new_pruner_works() {
    if gpu().is_none() {
        return;
    }
    let engine = GpuEngine::new_blocking(GpuOptions::default()).unwrap();
    lose_and_recover(engine, "own device");
}

#[test]
fn a_destroyed_callers_device_is_a_typed_error_and_a_new_engine_works() {
    if gpu().is_none() {
        return;
    }
    let (device, queue) = callers_device(|_| {});
    let engine =
        pollster::block_on(GpuEngine::from_device(device, queue, GpuOptions::default())).unwrap();
    lose_and_recover(engine, "caller's device");
}

#[test]
fn a_device_with_small_limits_streams_chunks_or_falls_back_never_panics() {
    if gpu().is_none() {
        return;
    }
    // The device itself has 64 KiB buffers: anything above would be a wgpu validation error
    // (and this caller's device keeps wgpu's default handler, which panics on uncaptured
    // errors), so the engine must keep every buffer under the real limit.
    let cap = 64u64 << 10;
    let (device, queue) = callers_device(|l| {
        l.max_storage_buffer_binding_size = cap;
        l.max_buffer_size = cap;
    });
    let engine =
        pollster::block_on(GpuEngine::from_device(device, queue, GpuOptions::default())).unwrap();
    assert_eq!(engine.binding_cap(), cap);
    // 100 x 16: S = 40 KB, dense. 200 x 16: S = 160 KB, streams. 100 x 400: the features
    // alone (160 KB) do not fit: CPU engine with a note. 300 x 1 keeping 280: the step table
    // (281 x 256 bytes) does not fit: CPU engine with a note.
    let shapes = [(100, 16, 10), (200, 16, 20), (100, 400, 5), (300, 1, 280)];
    let feats: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(n, d, _)| random_matrix(n, d, (n + d) as u64))
        .collect();
    let imp = random_matrix(300, 1, 3);
    let mut reqs = Vec::new();
    for (i, &(n, d, k)) in shapes.iter().enumerate() {
        let t = Tokens::new(&feats[i], n, d).unwrap();
        reqs.push(Request::new(t, Method::DivPrune, Budget::Count(k)).unwrap());
        let m = Method::IdPruner(IdPruner::new(&imp[..n]));
        reqs.push(Request::new(t, m, Budget::Count(k)).unwrap());
    }
    let paths: Vec<GpuPath> = reqs
        .iter()
        .map(|r| engine.path_for(r.n(), r.d(), r.keep(), r.method()))
        .collect();
    use GpuPath::*;
    assert_eq!(
        paths,
        [Dense, Dense, Streaming, Streaming, Cpu, Cpu, Cpu, Cpu]
    );
    let pruner = Pruner::from_gpu(engine.clone());
    let batch = pruner.prune_batch_blocking(&reqs).unwrap();
    let cpu = Pruner::cpu().prune_batch_blocking(&reqs).unwrap();
    for (i, ((sel, c), path)) in batch.iter().zip(&cpu).zip(&paths).enumerate() {
        assert_eq!(sel.order, c.order, "pool {i}");
        if *path == Cpu {
            assert_eq!(sel.backend, Backend::Cpu, "pool {i}");
            let note = sel.notes.last().unwrap();
            assert!(note.starts_with("ran on the CPU engine: "), "{note}");
            assert!(note.contains("limit"), "{note}");
            eprintln!("pool {i}: {note}");
        } else {
            assert!(matches!(sel.backend, Backend::Gpu(_)), "pool {i}");
            assert!(sel.notes.is_empty(), "pool {i}");
        }
        // Each alone gives the same as in the batch.
        assert_eq!(&pruner.prune_batch_blocking(&reqs[i..=i]).unwrap()[0], sel);
    }
    // Features already in a GPU buffer cannot fall back: a typed error.
    let (dev, q) = engine.device();
    let buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 5000 * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let x = random_matrix(5000, 1, 9);
    q.write_buffer(&buf, 0, bytemuck::cast_slice(&x));
    // 5000 x 1 in place: 20 KB of features fit, but the 80 KB of normalised rows (padded to
    // vec4) do not.
    let on_device = DeviceTokens::new(&buf, 0, 5000, 1).unwrap();
    let req = Request::new(on_device, Method::DivPrune, Budget::Count(4)).unwrap();
    let e = pruner.prune_blocking(&req).unwrap_err().to_string();
    assert!(
        e.starts_with("backend: ") && e.contains("cannot fall back"),
        "{e}"
    );
    assert!(!engine.is_lost());
}
