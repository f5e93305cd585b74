//! The backends a test body runs on, the macro that instantiates one `#[test]` per backend, and
//! the comparison of a backend's selection with the CPU engine (the oracle).
//!
//! ```ignore
//! fn every_conformance_case(b: &TestBackend) { ... }
//! fn another_body(b: &TestBackend) { ... }
//! common::backend_tests!(every_conformance_case, another_body);
//! // -> cpu::every_conformance_case, cpu_streaming::..., gpu::..., gpu_streaming::...
//! common::backend_tests!(on [gpu, gpu_streaming]: gpu_only_body);
//! ```

use tokenprune::{CpuEngine, Method, Pruner, Request, Selection};

use super::{replay, MAX_DEFICIT};

/// One `#[test]` per backend for each test body `fn name(b: &TestBackend)`, in modules named
/// after the backends: `cpu` (the CPU engine), `cpu_streaming` (its streaming path,
/// `CpuEngine { dense_limit: 0 }`), `gpu` (the GPU engine, dense path) and `gpu_streaming` (its
/// streaming path, `stream_threshold_bytes: 0`); the GPU ones only with feature `gpu`. Without
/// an adapter a GPU test prints a skip line (see [`gpu`]) and passes; with
/// `TOKENPRUNE_REQUIRE_GPU=1` it fails. `on [gpu, gpu_streaming]: ...` instantiates the bodies
/// on the listed backends only. Invoke it once per file.
#[allow(unused_macros)]
macro_rules! backend_tests {
    (on [$($backend:ident),+ $(,)?]: $($name:ident),+ $(,)?) => {
        $crate::common::backend_tests!(@each [$($backend),+] $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        $crate::common::backend_tests!(
            @each [cpu, cpu_streaming, gpu, gpu_streaming] $($name),+
        );
    };
    (@each [] $($name:ident),+) => {};
    (@each [$backend:ident $(, $rest:ident)*] $($name:ident),+) => {
        $crate::common::backend_tests!(@on $backend $($name),+);
        $crate::common::backend_tests!(@each [$($rest),*] $($name),+);
    };
    (@on cpu $($name:ident),+) => {
        $crate::common::backend_tests!(
            @module cpu, Some($crate::common::TestBackend::cpu()), $($name),+
        );
    };
    (@on cpu_streaming $($name:ident),+) => {
        $crate::common::backend_tests!(
            @module cpu_streaming, Some($crate::common::TestBackend::cpu_streaming()), $($name),+
        );
    };
    (@on gpu $($name:ident),+) => {
        #[cfg(feature = "gpu")]
        $crate::common::backend_tests!(
            @module gpu, $crate::common::TestBackend::gpu(), $($name),+
        );
    };
    (@on gpu_streaming $($name:ident),+) => {
        #[cfg(feature = "gpu")]
        $crate::common::backend_tests!(
            @module gpu_streaming, $crate::common::TestBackend::gpu_streaming(), $($name),+
        );
    };
    (@module $backend:ident, $make:expr, $($name:ident),+) => {
        mod $backend {
            $(
                #[test]
                fn $name() {
                    // None: a GPU backend without an adapter (a skip line was printed).
                    if let Some(b) = $make {
                        super::$name(&b);
                    }
                }
            )+
        }
    };
}
pub(crate) use backend_tests;

/// A backend under test: its name, a pruner on it and, on the GPU, its engine.
pub struct TestBackend {
    /// `cpu`, `cpu-streaming`, `gpu` or `gpu-streaming`.
    pub name: &'static str,
    /// A pruner on this backend.
    pub pruner: Pruner,
    /// The shared GPU engine ([`gpu`]) with this backend's options; `None` on the CPU.
    #[cfg(feature = "gpu")]
    pub gpu: Option<tokenprune::GpuEngine>,
}

impl TestBackend {
    fn on_cpu(name: &'static str, engine: CpuEngine) -> Self {
        TestBackend {
            name,
            pruner: Pruner::cpu_with(engine),
            #[cfg(feature = "gpu")]
            gpu: None,
        }
    }

    /// The CPU engine with default settings (the oracle itself).
    pub fn cpu() -> Self {
        Self::on_cpu("cpu", CpuEngine::default())
    }

    /// The CPU engine forced onto its streaming path: DivPrune recomputes one similarity row
    /// per pick.
    pub fn cpu_streaming() -> Self {
        Self::on_cpu("cpu-streaming", CpuEngine { dense_limit: 0 })
    }

    #[cfg(feature = "gpu")]
    fn on_gpu(name: &'static str, options: tokenprune::GpuOptions) -> Option<Self> {
        let engine = gpu()?.with_options(options);
        Some(TestBackend {
            name,
            pruner: Pruner::from_gpu(engine.clone()),
            gpu: Some(engine),
        })
    }

    /// The shared GPU engine with default options (dense path); `None` (after a skip line)
    /// without an adapter.
    #[cfg(feature = "gpu")]
    pub fn gpu() -> Option<Self> {
        Self::on_gpu("gpu", tokenprune::GpuOptions::default())
    }

    /// The shared GPU engine forced onto its streaming path (one similarity row per pick);
    /// `None` (after a skip line) without an adapter.
    #[cfg(feature = "gpu")]
    pub fn gpu_streaming() -> Option<Self> {
        Self::on_gpu(
            "gpu-streaming",
            tokenprune::GpuOptions {
                stream_threshold_bytes: 0,
                ..Default::default()
            },
        )
    }

    /// This backend's GPU engine; panics on a CPU backend.
    #[cfg(feature = "gpu")]
    pub fn engine(&self) -> &tokenprune::GpuEngine {
        self.gpu
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no GPU engine", self.name))
    }

    /// A pruner with this backend's settings on an engine of its own (on the GPU a new device,
    /// so its buffer pool and memory figures are its own).
    pub fn own_pruner(&self) -> Pruner {
        let cpu = *self.pruner.cpu_engine();
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            let own = tokenprune::GpuEngine::new_blocking(g.options().clone())
                .unwrap_or_else(|e| panic!("{}: a second GPU engine: {e}", self.name));
            return Pruner::from_gpu(own).with_cpu(cpu);
        }
        Pruner::cpu_with(cpu)
    }

    /// Prunes `req`; an error panics with `what` and the backend's name.
    pub fn prune(&self, what: &str, req: &Request) -> Selection {
        self.pruner
            .prune_blocking(req)
            .unwrap_or_else(|e| panic!("{what} on {}: {e}", self.name))
    }

    /// Prunes `req` and checks the selection: it ran on this backend (no fallback) and it
    /// agrees with the CPU engine ([`check_against_cpu`]).
    pub fn prune_checked(&self, what: &str, req: &Request) -> Selection {
        let sel = self.prune(what, req);
        let what = format!("{what} on {}", self.name);
        assert_eq!(sel.backend, self.pruner.backend(), "{what}: backend");
        check_against_cpu(&what, req, &sel);
        sel
    }
}

/// `sel` against the CPU engine's own result for `req`: identical for baselines, K = N and
/// K = 0; for greedy methods the same K, notes and positional order = sorted selection order,
/// the SPEC's tie-aware f64 replay, and the exact CPU order (scores within 1e-5) whenever the
/// CPU's run never came within 1e-5 of a tie.
pub fn check_against_cpu(what: &str, req: &Request, sel: &Selection) {
    let cpu = Pruner::cpu().prune_blocking(req).unwrap();
    let t = req.tokens().expect("features in host memory");
    let (n, d) = (t.n(), t.d());
    assert_eq!(sel.len(), cpu.len(), "{what}: K");
    assert_eq!(sel.notes, cpu.notes, "{what}: notes");
    assert_eq!(sel.coords.is_some(), cpu.coords.is_some(), "{what}: coords");
    let mut sorted = sel.order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, sel.kept, "{what}: kept = sorted order");
    let greedy = matches!(req.method(), Method::DivPrune | Method::IdPruner(_));
    if !greedy || req.keep() == n || req.keep() == 0 {
        assert_eq!(sel.order, cpu.order, "{what}: order");
        assert_eq!(sel.scores, cpu.scores, "{what}: scores");
        assert_eq!(sel.coords, cpu.coords, "{what}: coords");
        return;
    }
    let r = replay(t.data(), n, d, req.method(), &sel.order);
    assert!(r.deficit <= MAX_DEFICIT, "{what}: deficit {:e}", r.deficit);
    let cpu_gap = replay(t.data(), n, d, req.method(), &cpu.order).min_gap;
    if cpu_gap > 1e-5 {
        assert_eq!(sel.order, cpu.order, "{what}: order (min gap {cpu_gap:e})");
        for (g, c) in sel.scores.iter().zip(&cpu.scores) {
            assert!((g - c).abs() <= 1e-5, "{what}: score {g} vs {c}");
        }
    }
}

/// The GPU engine shared by every test of a test binary (created once: device creation and
/// shader compilation are the slow part). Without an adapter: `None`, after a skip line naming
/// the test on the real stderr (the test harness captures `eprintln!`, not this), or a panic
/// when `TOKENPRUNE_REQUIRE_GPU=1`.
#[cfg(feature = "gpu")]
pub fn gpu() -> Option<&'static tokenprune::GpuEngine> {
    match shared_gpu() {
        Ok(e) => Some(e),
        Err(err) => {
            if std::env::var("TOKENPRUNE_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("TOKENPRUNE_REQUIRE_GPU=1 but no GPU engine: {err}");
            }
            // libtest runs each test on a thread named after it.
            let line = format!(
                "SKIPPED {}: no GPU adapter (set TOKENPRUNE_REQUIRE_GPU=1 to fail)\n",
                std::thread::current().name().unwrap_or("a GPU test")
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            None
        }
    }
}

/// Sets up the shared GPU engine ([`gpu`]) now if it is not yet, and waits for a set-up under
/// way on another thread; nothing else (no skip line, no failure without an adapter). For
/// tests whose figures another test's set-up must not fall into.
#[cfg(feature = "gpu")]
pub fn set_up_gpu() {
    let _ = shared_gpu();
}

#[cfg(feature = "gpu")]
fn shared_gpu() -> &'static Result<tokenprune::GpuEngine, String> {
    static ENGINE: std::sync::OnceLock<Result<tokenprune::GpuEngine, String>> =
        std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        tokenprune::GpuEngine::new_blocking(tokenprune::GpuOptions::default())
            .map_err(|e| e.to_string())
    })
}
