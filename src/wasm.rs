//! JavaScript bindings (wasm32 only): the npm package's `Pruner`, a thin layer over
//! [`crate::Pruner`]. Inputs are validated by the same code as natively, so errors carry the
//! same messages; they reject the returned promise with a JS `Error`.

use std::rc::Rc;

use js_sys::{Array, Float32Array, Object, Reflect, Uint16Array, Uint32Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{
    BackendChoice, Budget, Error, Grid, IdPruner, Method, Pruner, PrunerOptions, Request,
    Selection, Tokens,
};

/// A pruner bound to one backend (WebGPU or CPU), created once and reused.
#[wasm_bindgen(js_name = Pruner)]
pub struct JsPruner {
    inner: Rc<Pruner>,
}

fn js_err(e: Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn param(msg: impl Into<String>) -> JsValue {
    js_err(Error::Param(msg.into()))
}

fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn number(obj: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| param(format!("options.{key} must be a number"))),
    }
}

fn count(obj: &JsValue, key: &str) -> Result<Option<usize>, JsValue> {
    match number(obj, key)? {
        None => Ok(None),
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => Ok(Some(v as usize)),
        Some(v) => Err(param(format!(
            "options.{key} must be a non-negative integer, got {v}"
        ))),
    }
}

fn name_of(v: &JsValue) -> String {
    v.dyn_ref::<Object>()
        .map(|o| String::from(o.constructor().name()))
        .unwrap_or_else(|| format!("{:?}", v.js_typeof()))
}

/// Copies a Float32Array, or f16 bits from a Float16Array / Uint16Array, into f32.
fn floats(v: &JsValue, what: &str) -> Result<Vec<f32>, JsValue> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    let bits = if let Some(a) = v.dyn_ref::<Uint16Array>() {
        a.to_vec()
    } else if name_of(v) == "Float16Array" {
        let buf = Reflect::get(v, &"buffer".into()).unwrap_or_default();
        let off = Reflect::get(v, &"byteOffset".into())
            .ok()
            .and_then(|x| x.as_f64());
        let len = Reflect::get(v, &"length".into())
            .ok()
            .and_then(|x| x.as_f64());
        match (buf.dyn_ref::<js_sys::ArrayBuffer>(), off, len) {
            (Some(b), Some(o), Some(l)) => {
                Uint16Array::new_with_byte_offset_and_length(b, o as u32, l as u32).to_vec()
            }
            _ => return Err(param(format!("{what}: unreadable Float16Array"))),
        }
    } else {
        return Err(param(format!(
            "{what} must be a Float32Array, Float16Array or Uint16Array (f16 bits), got {}",
            name_of(v)
        )));
    };
    Ok(bits
        .into_iter()
        .map(|b| half::f16::from_bits(b).to_f32())
        .collect())
}

/// The owned inputs of one pool, parsed from JS.
struct Pool {
    feats: Vec<f32>,
    n: usize,
    d: usize,
    method: String,
    budget: Budget,
    scores: Option<Vec<f32>>,
    lambda: f64,
    parallel_k: usize,
    seed: u64,
    grid: Option<Grid>,
    per_frame: bool,
}

impl Pool {
    fn parse(features: &JsValue, o: &JsValue) -> Result<Pool, JsValue> {
        if !o.is_object() {
            return Err(param(
                "options must be an object { n, d, method, keep | keepRatio | pruneRatio, ... }",
            ));
        }
        let feats = floats(features, "features")?;
        let n = count(o, "n")?.ok_or_else(|| param("options.n (number of tokens) is required"))?;
        let d = count(o, "d")?.ok_or_else(|| param("options.d (feature width) is required"))?;
        let method = match get(o, "method") {
            None => "divprune".to_string(),
            Some(m) => m
                .as_string()
                .ok_or_else(|| param("options.method must be a string"))?,
        };
        let budget = match (
            count(o, "keep")?,
            number(o, "keepRatio")?,
            number(o, "pruneRatio")?,
        ) {
            (Some(k), None, None) => Budget::Count(k),
            (None, Some(r), None) => Budget::KeepRatio(r),
            (None, None, Some(p)) => Budget::PruneRatio(p),
            _ => {
                return Err(js_err(Error::Budget(
                    "give exactly one of options.keep, options.keepRatio, options.pruneRatio"
                        .into(),
                )))
            }
        };
        let scores = match get(o, "importance").or_else(|| get(o, "scores")) {
            Some(v) => Some(floats(&v, "options.importance")?),
            None => None,
        };
        let grid = match get(o, "grid") {
            None => None,
            Some(g) => {
                let items: Vec<JsValue> = Array::from(&g).iter().collect();
                let parts: Vec<f64> = items.iter().filter_map(|x| x.as_f64()).collect();
                if parts.len() != items.len() {
                    return Err(param("options.grid must be [frames, height, width] or [height, width] of integers"));
                }
                match parts[..] {
                    [t, h, w] if [t, h, w].iter().all(|x| *x >= 0.0 && x.fract() == 0.0) => Some(Grid::new(t as usize, h as usize, w as usize)),
                    [h, w] if [h, w].iter().all(|x| *x >= 0.0 && x.fract() == 0.0) => Some(Grid::new(1, h as usize, w as usize)),
                    _ => return Err(param("options.grid must be [frames, height, width] or [height, width] of integers")),
                }
            }
        };
        Ok(Pool {
            feats,
            n,
            d,
            method,
            budget,
            scores,
            lambda: number(o, "lambda")?.unwrap_or(0.5),
            parallel_k: count(o, "parallelK")?.unwrap_or(1),
            seed: match number(o, "seed")? {
                None => 0,
                Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= 9007199254740991.0 => v as u64,
                Some(v) => {
                    return Err(param(format!(
                        "options.seed must be a non-negative integer, got {v}"
                    )))
                }
            },
            grid,
            per_frame: get(o, "perFrame")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }

    fn request(&self) -> Result<Request<'_>, JsValue> {
        let mut tokens = Tokens::new(&self.feats, self.n, self.d).map_err(js_err)?;
        if let Some(g) = self.grid {
            tokens = tokens.with_grid(g).map_err(js_err)?;
        }
        let need = |m: &str| {
            self.scores.as_deref().ok_or_else(|| {
                param(format!(
                    "method '{m}' needs options.importance (one score per token)"
                ))
            })
        };
        let method = match self.method.as_str() {
            "divprune" => Method::DivPrune,
            "idpruner" => Method::IdPruner(IdPruner {
                importance: need("idpruner")?,
                lambda: self.lambda,
                parallel_k: self.parallel_k,
            }),
            "topk" => Method::TopK {
                scores: need("topk")?,
            },
            "random" => Method::Random { seed: self.seed },
            "uniform" => Method::Uniform,
            m => {
                return Err(param(format!(
                    "method '{m}' is not one of {}",
                    Method::NAMES.join(", ")
                )))
            }
        };
        Request::new(tokens, method, self.budget).map_err(js_err)
    }
}

fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| {
            Reflect::get(&p, &"now".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .and_then(|f| f.call0(&p).ok())
        })
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

fn to_js(s: &Selection, elapsed_ms: f64) -> JsValue {
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&o, &k.into(), &v);
    };
    set("kept", Uint32Array::from(&s.kept[..]).into());
    set("order", Uint32Array::from(&s.order[..]).into());
    set("scores", Float32Array::from(&s.scores[..]).into());
    if let Some(c) = &s.coords {
        let flat: Vec<u32> = c.iter().flatten().copied().collect();
        set("coords", Uint32Array::from(&flat[..]).into());
    }
    set("backend", JsValue::from_str(&s.backend.to_string()));
    set("method", JsValue::from_str(s.method));
    set("n", JsValue::from_f64(s.n as f64));
    set("d", JsValue::from_f64(s.d as f64));
    set("elapsedMs", JsValue::from_f64(elapsed_ms));
    set(
        "notes",
        s.notes
            .iter()
            .map(|n| JsValue::from_str(n))
            .collect::<Array>()
            .into(),
    );
    o.into()
}

#[wasm_bindgen(js_class = Pruner)]
impl JsPruner {
    /// Creates a pruner on the first backend of `backends` that works (`"webgpu"`, `"cpu"`).
    pub async fn create(backends: Vec<String>) -> Result<JsPruner, JsValue> {
        let mut tried = Vec::new();
        for b in if backends.is_empty() {
            vec!["webgpu".to_string(), "cpu".into()]
        } else {
            backends
        } {
            let backend = match b.as_str() {
                "webgpu" | "gpu" => BackendChoice::Gpu,
                "cpu" => BackendChoice::Cpu,
                other => {
                    return Err(js_err(Error::Param(format!(
                        "backend '{other}' is not one of webgpu, cpu"
                    ))))
                }
            };
            match Pruner::new(PrunerOptions {
                backend,
                ..Default::default()
            })
            .await
            {
                Ok(p) => return Ok(JsPruner { inner: Rc::new(p) }),
                Err(e) => tried.push(format!("{b}: {e}")),
            }
        }
        Err(js_err(Error::Backend(format!(
            "no backend available ({})",
            tried.join("; ")
        ))))
    }

    /// The backend in use: `"cpu"` or `"gpu (<adapter>)"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend().to_string()
    }

    /// Prunes one pool. Resolves to `{ kept, order, scores, coords?, backend, elapsedMs, ... }`.
    pub fn prune(&self, features: JsValue, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let pool = Pool::parse(&features, &options);
        wasm_bindgen_futures::future_to_promise(async move {
            let pool = pool?;
            let req = pool.request()?;
            let t = now_ms();
            let sel = if pool.per_frame {
                inner.prune_per_frame(&req).await
            } else {
                inner.prune(&req).await
            }
            .map_err(js_err)?;
            Ok(to_js(&sel, now_ms() - t))
        })
    }

    /// Prunes many pools in one call: `items` is an array of `{ features, ...options }`.
    #[wasm_bindgen(js_name = pruneBatch)]
    pub fn prune_batch(&self, items: Array) -> js_sys::Promise {
        let inner = self.inner.clone();
        let pools: Result<Vec<Pool>, JsValue> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let f = get(&it, "features")
                    .ok_or_else(|| param(format!("batch item {i}: features missing")))?;
                Pool::parse(&f, &it).map_err(|e| prefix(e, i))
            })
            .collect();
        wasm_bindgen_futures::future_to_promise(async move {
            let pools = pools?;
            let reqs = pools
                .iter()
                .enumerate()
                .map(|(i, p)| p.request().map_err(|e| prefix(e, i)))
                .collect::<Result<Vec<_>, _>>()?;
            let t = now_ms();
            let sels = inner.prune_batch(&reqs).await.map_err(js_err)?;
            let ms = now_ms() - t;
            Ok(sels.iter().map(|s| to_js(s, ms)).collect::<Array>().into())
        })
    }
}

fn prefix(e: JsValue, i: usize) -> JsValue {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default();
    JsError::new(&format!("batch item {i}: {msg}")).into()
}

fn figure(v: Option<f32>) -> JsValue {
    v.map_or(JsValue::NULL, |v| JsValue::from_f64(v as f64))
}

/// Diversity and coverage of a kept set (see [`crate::metrics::kept_set_figures`]):
/// `{ minPairwiseDistance, maxUncoveredDistance, meanUncoveredDistance }`, each `null` when
/// undefined (fewer than two kept, nothing pruned).
#[wasm_bindgen(js_name = keptSetFigures)]
pub fn kept_set_figures(
    features: JsValue,
    n: usize,
    d: usize,
    kept: Uint32Array,
) -> Result<JsValue, JsValue> {
    let feats = floats(&features, "features")?;
    let tokens = Tokens::new(&feats, n, d).map_err(js_err)?;
    let f = crate::metrics::kept_set_figures(&tokens, &kept.to_vec()).map_err(js_err)?;
    let o = Object::new();
    let _ = Reflect::set(
        &o,
        &"minPairwiseDistance".into(),
        &figure(f.min_pairwise_distance),
    );
    let _ = Reflect::set(
        &o,
        &"maxUncoveredDistance".into(),
        &figure(f.max_uncovered_distance),
    );
    let _ = Reflect::set(
        &o,
        &"meanUncoveredDistance".into(),
        &figure(f.mean_uncovered_distance),
    );
    Ok(o.into())
}
