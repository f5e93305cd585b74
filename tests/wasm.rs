//! Rust-side tests in a real browser (wasm-bindgen-test in headless Chromium, see
//! `webdriver.json`): the same library on wasm32, on the CPU engine and, where the page has
//! WebGPU, the GPU engine. Run by `scripts/test-all.sh`.
#![cfg(target_arch = "wasm32")]

use tokenprune::io::read_npy;
use tokenprune::{BackendChoice, Budget, IdPruner, Method, Pruner, PrunerOptions, Request, Tokens};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const GAUSS: &[u8] = include_bytes!("data/f_gauss_576x1024.npy");
const GAUSS_IMP: &[u8] = include_bytes!("data/f_gauss_576x1024.importance.npy");
const V01: &str = include_str!("data/v01_divprune.json");
const V05: &str = include_str!("data/v05_idpruner.json");

fn expected(json: &str) -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["expected"]["selection_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The exact conformance cases (gaps above 1e-5: any correct f32 implementation matches).
async fn exact_cases(pruner: &Pruner) {
    let x = read_npy(GAUSS, "gauss").unwrap();
    let imp = read_npy(GAUSS_IMP, "imp").unwrap();
    let tokens = Tokens::new(&x.data, 576, 1024).unwrap();
    let req = Request::new(tokens, Method::DivPrune, Budget::KeepRatio(0.1)).unwrap();
    assert_eq!(pruner.prune(&req).await.unwrap().order, expected(V01));
    let req = Request::new(
        tokens,
        Method::IdPruner(IdPruner::new(&imp.data)),
        Budget::PruneRatio(0.9),
    )
    .unwrap();
    assert_eq!(pruner.prune(&req).await.unwrap().order, expected(V05));
}

#[wasm_bindgen_test]
async fn cpu_engine_reproduces_exact_conformance_cases() {
    let pruner = Pruner::new(PrunerOptions {
        backend: BackendChoice::Cpu,
        ..Default::default()
    })
    .await
    .unwrap();
    exact_cases(&pruner).await;
}

#[wasm_bindgen_test]
async fn gpu_engine_in_the_browser_when_webgpu_exists() {
    let has_gpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined());
    let pruner = Pruner::new(PrunerOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    })
    .await;
    match (has_gpu, pruner) {
        (true, Ok(p)) => {
            assert!(p.backend().to_string().starts_with("gpu"));
            exact_cases(&p).await;
        }
        (true, Err(e)) => panic!("navigator.gpu exists but the GPU engine failed: {e}"),
        (false, r) => assert!(r.is_err(), "no navigator.gpu, yet a GPU pruner was built"),
    }
}

#[wasm_bindgen_test]
async fn errors_carry_the_native_messages() {
    let f = [1.0f32, f32::NAN, 0.0, 1.0];
    assert_eq!(
        Tokens::new(&f, 2, 2).unwrap_err().to_string(),
        "features has a non-finite value (NaN) at row 0, column 1"
    );
    let ok = [1.0f32; 4];
    let t = Tokens::new(&ok, 2, 2).unwrap();
    assert_eq!(
        Request::new(t, Method::DivPrune, Budget::Count(3))
            .unwrap_err()
            .to_string(),
        "budget: keep count 3 exceeds N = 2"
    );
}
