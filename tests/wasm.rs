//! Rust-side tests in a real browser (wasm-bindgen-test in headless Chromium, see
//! `webdriver.json`): the same library on wasm32, on the CPU engine and, where the page has
//! WebGPU, the GPU engine (headless Chromium: SwiftShader, 256 invocations per workgroup and
//! 10 storage buffers per stage, which every kernel fits). CDPruner (both variants), EVS and
//! VidCom2 run on both engines: the exact conformance vectors v11, v12 and v14-v18 reproduced
//! exactly by each, and `cdpruner-openvino` (no official vector) equal on both. Run by
//! `scripts/test-all.sh` (with `WASM_BINDGEN_TEST_TIMEOUT=300`: the runner's default 20 s
//! covers the whole file, which takes about 30 s).
#![cfg(target_arch = "wasm32")]

use tokenprune::io::read_npy;
use tokenprune::{
    Backend, BackendChoice, Budget, CdPruner, CdPrunerOpenVino, CountMode, Grid, IdPruner, Method,
    Pruner, PrunerOptions, Relevance, Request, Split, Tokens,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const GAUSS: &[u8] = include_bytes!("data/f_gauss_576x1024.npy");
const GAUSS_IMP: &[u8] = include_bytes!("data/f_gauss_576x1024.importance.npy");
const V01: &str = include_str!("data/v01_divprune.json");
const V05: &str = include_str!("data/v05_idpruner.json");
const IMG: &[u8] = include_bytes!("data/clip_img_gauss_576x64_s101.npy");
const TXT1: &[u8] = include_bytes!("data/clip_txt_gauss_1x64_s101.npy");
const TXT3: &[u8] = include_bytes!("data/clip_txt_gauss_3x64_s101.npy");
const V11: &str = include_str!("data/v11_cdpruner.json");
const V12: &str = include_str!("data/v12_cdpruner.json");
const VIDEO: &[u8] = include_bytes!("data/f_video_drift_8x12x12x512.npy");
const V14: &str = include_str!("data/v14_evs.json");
const V15: &str = include_str!("data/v15_evs.json");
const V16: &str = include_str!("data/v16_vidcom2.json");
const V17: &str = include_str!("data/v17_vidcom2.json");
const V18: &str = include_str!("data/v18_vidcom2_vllm.json");

fn expected(json: &str) -> Vec<u32> {
    expected_field(json, "selection_order")
}

fn expected_field(json: &str, field: &str) -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["expected"][field]
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

/// CDPruner (v11, v12), EVS (v14, v15) and VidCom2 (v16, v17 official; v18 exact): every one
/// of these vectors is `compare: exact`, so each engine must reproduce it. Returns the
/// `cdpruner-openvino` selection order on v11 with a text vector, for the engines to compare.
async fn new_method_cases(pruner: &Pruner) -> Vec<u32> {
    let on = |sel: &tokenprune::Selection| {
        assert_eq!(
            sel.backend,
            pruner.backend(),
            "{}: {:?}",
            sel.method,
            sel.notes
        );
    };
    let x = read_npy(GAUSS, "gauss").unwrap();
    let img = read_npy(IMG, "img").unwrap();
    let tokens = Tokens::new(&x.data, 576, 1024).unwrap();
    for (json, txt, k) in [(V11, TXT1, 64), (V12, TXT3, 128)] {
        let txt = read_npy(txt, "txt").unwrap();
        let m = Method::CdPruner(CdPruner {
            relevance: Relevance::Embeddings {
                image: &img.data,
                text: &txt.data,
            },
            crops: 1,
        });
        let sel = pruner
            .prune(&Request::new(tokens, m, Budget::Count(k)).unwrap())
            .await
            .unwrap();
        on(&sel);
        assert_eq!(sel.order, expected(json));
    }
    let video = read_npy(VIDEO, "video").unwrap();
    let grid = Grid::new(8, 12, 12);
    let frames = Tokens::new(&video.data, 1152, 512)
        .unwrap()
        .with_grid(grid)
        .unwrap();
    let official = CountMode::Official;
    for (json, m, b) in [
        (V14, Method::Evs, Budget::PruneRatio(0.5)),
        (V15, Method::Evs, Budget::PruneRatio(0.9)),
        (
            V16,
            Method::VidCom2 { count: official },
            Budget::KeepRatio(0.25),
        ),
        (
            V17,
            Method::VidCom2 { count: official },
            Budget::KeepRatio(0.5),
        ),
        (
            V18,
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::PruneRatio(0.75),
        ),
    ] {
        let sel = pruner
            .prune(&Request::new(frames, m, b).unwrap())
            .await
            .unwrap();
        on(&sel);
        assert_eq!(sel.kept, expected_field(json, "sorted"), "{}", m.name());
    }
    // The text vector: the mean of the first 40 tokens (upstream: the prompt's mean embedding).
    let text: Vec<f32> = (0..1024)
        .map(|j| (0..40).map(|i| x.data[i * 1024 + j]).sum::<f32>() / 40.0)
        .collect();
    let m = Method::CdPrunerOpenVino(CdPrunerOpenVino {
        text: &text,
        weight: 0.5,
        split: Split::Halves,
        negate: false,
    });
    let sel = pruner
        .prune(&Request::new(tokens, m, Budget::Count(32)).unwrap())
        .await
        .unwrap();
    on(&sel);
    assert_eq!(sel.order.len(), 32);
    sel.order
}

async fn cpu_pruner() -> Pruner {
    Pruner::new(PrunerOptions {
        backend: BackendChoice::Cpu,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[wasm_bindgen_test]
async fn cpu_engine_reproduces_exact_conformance_cases() {
    exact_cases(&cpu_pruner().await).await;
}

#[wasm_bindgen_test]
async fn new_methods_on_both_engines() {
    let cpu = new_method_cases(&cpu_pruner().await).await;
    if !has_webgpu() {
        return;
    }
    let gpu = Pruner::new(PrunerOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    })
    .await
    .expect("navigator.gpu exists: the GPU engine must build");
    assert!(matches!(gpu.backend(), Backend::Gpu(_)));
    console_log!("new methods on {}", gpu.backend());
    // cdpruner-openvino at K = 32: far from any tie on these tokens (the f64 gaps of the
    // native tests' replay), so the GPU's other summation order makes the same picks.
    assert_eq!(new_method_cases(&gpu).await, cpu);
}

fn has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined())
}

#[wasm_bindgen_test]
async fn gpu_engine_in_the_browser_when_webgpu_exists() {
    let has_gpu = has_webgpu();
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
