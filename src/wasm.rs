//! JavaScript bindings (wasm32 only): the npm package's `Pruner`, a thin layer over
//! [`crate::Pruner`]. Option objects are read with the request schema ([`crate::schema`]), so
//! the names, defaults, checks and messages are the same as on the command line and in Rust;
//! errors reject the returned promise with a JS `Error`.
//!
//! The package's JavaScript layer (`web/src/inputs.js`) hands these functions snapshots: plain
//! objects of primitives, arrays of at most four primitives, and fresh typed-array views of
//! this realm. Anything it could not read arrives as a marker object (`{ "tokenprune:bad":
//! why }`, `{ "tokenprune:type": name }`) that the schema parse turns into an error naming the
//! option. Every JavaScript call made here is `catch`-marked or cannot throw, so a hostile
//! value never unwinds through Rust frames (which would leave a borrow of the pruner held).

use std::rc::Rc;

use js_sys::{Array, Float32Array, Int32Array, Object, Reflect, Uint16Array, Uint32Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::cpu::normalize::NormPolicy;
use crate::cpu::split;
use crate::schema::{self, Field, Kind, Surface, Value, Values};
use crate::{
    Backend, BackendChoice, Error, Grid, Pruner, PrunerOptions, Request, Selection, Tokens,
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

#[wasm_bindgen]
extern "C" {
    /// `Array.isArray`, which throws for a revoked Proxy.
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    fn is_array_checked(v: &JsValue) -> Result<bool, JsValue>;
}

fn is_array(v: &JsValue) -> bool {
    is_array_checked(v).unwrap_or(false)
}

/// The marker the JS layer leaves for a value it could not read: `Some(why)`.
fn bad_marker(v: &JsValue) -> Option<String> {
    if !v.is_object() {
        return None;
    }
    Reflect::get(v, &JsValue::from_str("tokenprune:bad"))
        .ok()
        .and_then(|m| m.as_string())
}

/// A value's kind for messages: `number`, `string`, the constructor's name of an object, or
/// the name the JS layer recorded in a `{ "tokenprune:type": name }` marker.
fn name_of(v: &JsValue) -> String {
    if !v.is_object() {
        return v.js_typeof().as_string().unwrap_or_else(|| "value".into());
    }
    let get = |o: &JsValue, k: &str| Reflect::get(o, &JsValue::from_str(k)).ok();
    if let Some(t) = get(v, "tokenprune:type").and_then(|t| t.as_string()) {
        return t;
    }
    get(v, "constructor")
        .filter(|c| c.is_function())
        .and_then(|c| get(&c, "name"))
        .and_then(|n| n.as_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Object".into())
}

/// Reads `obj[key]` (a throwing getter is an error naming the option).
fn read(obj: &JsValue, key: &str, what: &str) -> Result<JsValue, JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|e| {
            let msg = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}"));
            param(format!("{what}: reading it threw: {msg}"))
        })
        .and_then(|v| match bad_marker(&v) {
            Some(why) => Err(param(format!("{what}: {why}"))),
            None => Ok(v),
        })
}

/// Copies a Float32Array, or f16 bits from a Float16Array / Uint16Array, into f32.
fn floats(v: &JsValue, what: &str) -> Result<Vec<f32>, JsValue> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    let bits = if let Some(a) = v.dyn_ref::<Uint16Array>() {
        a.to_vec()
    } else if name_of(v) == "Float16Array" {
        let buf = read(v, "buffer", what)?;
        let off = read(v, "byteOffset", what)?.as_f64();
        let len = read(v, "length", what)?.as_f64();
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

/// One option as read from JS, owning its data.
enum Raw {
    Number(f64),
    Name(String),
    Flag(bool),
    Grid(Grid),
    Floats(Vec<f32>),
}

fn integer(v: f64, max: f64) -> bool {
    v >= 0.0 && v.fract() == 0.0 && v <= max
}

/// Reads one option of `kind` from a JS value.
fn raw(f: &Field, v: &JsValue) -> Result<Raw, JsValue> {
    let what = f.display(Surface::Js);
    let number = || {
        v.as_f64()
            .ok_or_else(|| param(format!("{what} must be a number, got {}", name_of(v))))
    };
    Ok(match f.kind {
        Kind::Number => Raw::Number(number()?),
        Kind::Count | Kind::Seed => {
            let x = number()?;
            let max = if f.kind == Kind::Seed {
                9007199254740991.0
            } else {
                u32::MAX as f64
            };
            if !integer(x, max) {
                return Err(param(format!(
                    "{what} must be a non-negative integer, got {x}"
                )));
            }
            Raw::Number(x)
        }
        Kind::Choice(names) => {
            let s = v
                .as_string()
                .ok_or_else(|| param(format!("{what} must be one of {}", names.join(", "))))?;
            Raw::Name(s)
        }
        Kind::Flag => Raw::Flag(
            v.as_bool()
                .ok_or_else(|| param(format!("{what} must be true or false")))?,
        ),
        Kind::Grid => {
            let bad = || {
                param(format!(
                    "{what} must be [frames, height, width] or [height, width] of non-negative integers"
                ))
            };
            if !is_array(v) {
                return Err(bad());
            }
            let get = |k: JsValue| Reflect::get(v, &k).map_err(|_| bad());
            let len = get(JsValue::from_str("length"))?.as_f64().unwrap_or(0.0);
            if !(2.0..=3.0).contains(&len) {
                return Err(bad());
            }
            let parts = (0..len as u32)
                .map(|i| get(JsValue::from(i)).map(|x| x.as_f64()))
                .collect::<Result<Option<Vec<f64>>, _>>()?
                .ok_or_else(bad)?;
            if !parts.iter().all(|&x| integer(x, u32::MAX as f64)) {
                return Err(bad());
            }
            let p: Vec<usize> = parts.iter().map(|&x| x as usize).collect();
            Raw::Grid(match p[..] {
                [t, h, w] => Grid::new(t, h, w),
                [h, w] => Grid::new(1, h, w),
                _ => return Err(bad()),
            })
        }
        Kind::PerToken | Kind::Rows | Kind::Vectors => Raw::Floats(floats(v, &what)?),
    })
}

/// The nearest option name to an unknown key (for "did you mean").
fn suggest(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    schema::fields()
        .chain(schema::SHAPE.iter())
        .map(|f| (distance(key, f.js), f.js))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, js)| js)
}

/// The owned inputs of one pool, read from JS.
struct Pool {
    feats: Vec<f32>,
    n: usize,
    d: usize,
    options: Vec<(&'static Field, Raw)>,
    /// Whether `feats` passed [`Tokens::new`]'s checks (a threaded call reads its pool three
    /// times: the scan for NaN is done once).
    checked: std::cell::Cell<bool>,
}

impl Pool {
    /// Reads `features` and the option object `o` (`extra`: keys allowed besides the schema's,
    /// e.g. a batch item's `features`).
    fn parse(features: &JsValue, o: &JsValue, extra: &[&str]) -> Result<Pool, JsValue> {
        if !o.is_object() || is_array(o) {
            return Err(param(
                "options must be an object { n, d, method, keep | keepRatio | pruneRatio, ... }",
            ));
        }
        let keys = Reflect::own_keys(o.unchecked_ref())
            .map_err(|_| param("options: its keys cannot be read"))?;
        let mut n = None;
        let mut d = None;
        let mut options = Vec::new();
        for key in keys.iter() {
            let Some(key) = key.as_string() else { continue };
            if extra.contains(&key.as_str()) {
                continue;
            }
            let Some(f) = schema::fields()
                .chain(schema::SHAPE.iter())
                .find(|f| f.js == key || f.aliases.contains(&key.as_str()))
            else {
                let hint = suggest(&key)
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                return Err(param(format!("options.{key} is not an option{hint}")));
            };
            let v = read(o, &key, &f.display(Surface::Js))?;
            if v.is_undefined() || v.is_null() {
                continue;
            }
            let r = raw(f, &v)?;
            match (f.name, &r) {
                ("n", Raw::Number(x)) => n = Some(*x as usize),
                ("d", Raw::Number(x)) => d = Some(*x as usize),
                _ => options.push((f, r)),
            }
        }
        let n = n.ok_or_else(|| param("options.n (number of tokens) is required"))?;
        let d = d.ok_or_else(|| param("options.d (feature width) is required"))?;
        Ok(Pool {
            feats: floats(features, "features")?,
            n,
            d,
            options,
            checked: false.into(),
        })
    }

    /// The request and whether it asks for per-frame budgets.
    fn request(&self) -> Result<(Request<'_>, bool), JsValue> {
        let mut values = Values::new(Surface::Js);
        for (f, r) in &self.options {
            values.set(
                f,
                match r {
                    Raw::Number(x) => Value::Number(*x),
                    Raw::Name(s) => Value::Name(s),
                    Raw::Flag(b) => Value::Flag(*b),
                    Raw::Grid(g) => Value::Grid(*g),
                    Raw::Floats(v) => Value::Floats(v),
                },
            );
        }
        let parsed = values.parse().map_err(js_err)?;
        let tokens = match self.checked.get() {
            true => Tokens::validated(&self.feats, self.n, self.d),
            false => Tokens::new(&self.feats, self.n, self.d).map_err(js_err)?,
        };
        self.checked.set(true);
        let req = parsed.request(tokens).map_err(js_err)?;
        Ok((req, parsed.per_frame))
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

fn set(o: &Object, k: &str, v: JsValue) {
    let _ = Reflect::set(o, &k.into(), &v);
}

/// `{ kind: 'webgpu' | 'cpu', adapter: string | null }`.
fn backend_js(b: &Backend) -> JsValue {
    let o = Object::new();
    let (kind, adapter) = match b {
        Backend::Cpu => ("cpu", JsValue::NULL),
        Backend::Gpu(name) => ("webgpu", JsValue::from_str(name)),
    };
    set(&o, "kind", JsValue::from_str(kind));
    set(&o, "adapter", adapter);
    o.into()
}

fn to_js(s: &Selection, elapsed_ms: f64) -> JsValue {
    let o = Object::new();
    set(&o, "kept", Uint32Array::from(&s.kept[..]).into());
    set(&o, "order", Uint32Array::from(&s.order[..]).into());
    set(&o, "scores", Float32Array::from(&s.scores[..]).into());
    if let Some(c) = &s.coords {
        let flat: Vec<u32> = c.iter().flatten().copied().collect();
        set(&o, "coords", Uint32Array::from(&flat[..]).into());
    }
    set(&o, "backend", backend_js(&s.backend));
    set(&o, "method", JsValue::from_str(s.method));
    set(&o, "n", JsValue::from_f64(s.n as f64));
    set(&o, "d", JsValue::from_f64(s.d as f64));
    set(&o, "elapsedMs", JsValue::from_f64(elapsed_ms));
    set(
        &o,
        "gpuMs",
        s.gpu_ms.map_or(JsValue::NULL, JsValue::from_f64),
    );
    let notes: Array = s.notes.iter().map(|n| JsValue::from_str(n)).collect();
    set(&o, "notes", notes.into());
    o.into()
}

/// Whether this global has `navigator.gpu` (a window or a worker of a WebGPU browser). wgpu
/// aborts the module when asked for WebGPU anywhere else (Node.js), so it is never asked there.
fn has_webgpu() -> bool {
    let global = js_sys::global();
    let get = |o: &JsValue, k: &str| Reflect::get(o, &JsValue::from_str(k)).ok();
    let in_browser = ["Window", "WorkerGlobalScope"]
        .iter()
        .any(|k| get(&global, k).is_some_and(|v| !v.is_undefined()));
    in_browser
        && get(&global, "navigator")
            .filter(|n| n.is_object())
            .and_then(|n| get(&n, "gpu"))
            .is_some_and(|g| g.is_object())
}

/// Polls a future once: the CPU engine's calls complete without waiting on anything.
fn now<T>(f: impl std::future::Future<Output = T>) -> Result<T, JsValue> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Ok(v),
        std::task::Poll::Pending => Err(js_err(Error::Backend(
            "internal: this call waits on the GPU; use the asynchronous method".into(),
        ))),
    }
}

/// Reads the items of a batch: each `{ features, ...options }`.
fn batch_pools(items: &JsValue) -> Result<Vec<Pool>, JsValue> {
    if !is_array(items) {
        return Err(param(
            "pruneBatch() takes an array of { features, n, d, ... }",
        ));
    }
    let len = Reflect::get(items, &JsValue::from_str("length"))
        .ok()
        .and_then(|l| l.as_f64())
        .unwrap_or(0.0) as u32;
    (0..len)
        .map(|i| {
            let it = Reflect::get(items, &JsValue::from(i))
                .map_err(|_| param(format!("batch item {i}: unreadable")))?;
            let f = read(&it, "features", &format!("batch item {i}: features"))?;
            if f.is_undefined() || f.is_null() {
                return Err(param(format!("batch item {i}: features missing")));
            }
            Pool::parse(&f, &it, &["features"]).map_err(|e| prefix(e, i as usize))
        })
        .collect()
}

/// The requests of a batch's pools, with their per-frame flags.
fn batch_requests(pools: &[Pool]) -> Result<Vec<(Request<'_>, bool)>, JsValue> {
    pools
        .iter()
        .enumerate()
        .map(|(i, p)| p.request().map_err(|e| prefix(e, i)))
        .collect()
}

/// Runs one request (frame by frame when it asks for it), timed.
async fn run_one(inner: &Pruner, req: &Request<'_>, per_frame: bool) -> Result<JsValue, JsValue> {
    let t = now_ms();
    let sel = if per_frame {
        inner.prune_per_frame(req).await
    } else {
        inner.prune(req).await
    }
    .map_err(js_err)?;
    Ok(to_js(&sel, now_ms() - t))
}

/// Runs a batch: on the CPU each pool alone (each result timed on its own); on the GPU the
/// whole pools in one submission (their `elapsedMs` is that submission's, and a note says
/// so), per-frame pools frame by frame.
async fn run_batch(inner: &Pruner, reqs: &[(Request<'_>, bool)]) -> Result<JsValue, JsValue> {
    let out = Array::new();
    if inner.backend() == Backend::Cpu {
        for (i, (req, per_frame)) in reqs.iter().enumerate() {
            out.push(
                &run_one(inner, req, *per_frame)
                    .await
                    .map_err(|e| prefix(e, i))?,
            );
        }
        return Ok(out.into());
    }
    let whole: Vec<Request> = reqs.iter().filter(|r| !r.1).map(|r| r.0).collect();
    let t = now_ms();
    let batch = inner.prune_batch(&whole).await.map_err(js_err)?;
    let shared_ms = now_ms() - t;
    let shared = batch.len();
    let mut batch = batch.into_iter();
    for (req, per_frame) in reqs {
        out.push(&if *per_frame {
            run_one(inner, req, true).await?
        } else {
            let mut sel = batch
                .next()
                .ok_or_else(|| js_err(Error::Backend("internal: missing result".into())))?;
            if shared > 1 {
                sel.notes.push(format!(
                    "ran in one GPU submission with {} other pools of the batch: elapsedMs is that submission's time",
                    shared - 1
                ));
            }
            to_js(&sel, shared_ms)
        });
    }
    Ok(out.into())
}

#[wasm_bindgen(js_class = Pruner)]
impl JsPruner {
    /// Creates a pruner on the first backend of `backends` that works (`"webgpu"`, `"cpu"`).
    /// WebGPU is tried only where the global has `navigator.gpu`.
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
            if backend == BackendChoice::Gpu && !has_webgpu() {
                tried.push(format!(
                    "{b}: WebGPU does not exist here (no navigator.gpu in a window or worker)"
                ));
                continue;
            }
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

    /// A pruner on the CPU engine, created before returning (nothing to wait for): a trap
    /// would be an exception of this call.
    #[wasm_bindgen(js_name = createCpu)]
    pub fn create_cpu() -> JsPruner {
        JsPruner {
            inner: Rc::new(Pruner::cpu()),
        }
    }

    /// The backend in use: `{ kind: 'webgpu' | 'cpu', adapter: string | null }`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> JsValue {
        backend_js(&self.inner.backend())
    }

    /// Prunes one pool. Resolves to `{ kept, order, scores, coords?, backend, elapsedMs, ... }`.
    pub fn prune(&self, features: JsValue, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let pool = Pool::parse(&features, &options, &[]);
        wasm_bindgen_futures::future_to_promise(async move {
            let pool = pool?;
            let (req, per_frame) = pool.request()?;
            run_one(&inner, &req, per_frame).await
        })
    }

    /// [`JsPruner::prune`] run to completion before returning (the CPU backend): a trap then
    /// surfaces as an exception of this call, never in a later microtask.
    #[wasm_bindgen(js_name = pruneNow)]
    pub fn prune_now(&self, features: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let pool = Pool::parse(&features, &options, &[])?;
        let (req, per_frame) = pool.request()?;
        now(run_one(&self.inner, &req, per_frame))?
    }

    /// Reads one pool for a threaded call and plans the split of its similarity stage across
    /// `threads` CPU threads (`force`: split even where it does not pay; tests). Bad input is
    /// an error here, before any thread starts. Then [`JsPruner::run_prepared`].
    pub fn prepare(
        &self,
        features: JsValue,
        options: JsValue,
        threads: u32,
        force: bool,
    ) -> Result<Prepared, JsValue> {
        let pool = Pool::parse(&features, &options, &[])?;
        let (req, per_frame) = pool.request()?;
        let plan = (!per_frame && self.inner.backend() == Backend::Cpu)
            .then(|| {
                let limit = self.inner.cpu_engine().dense_limit;
                split::plan(&req, threads as usize, limit, force)
            })
            .flatten();
        Ok(Prepared {
            pool,
            plan,
            mine: None,
        })
    }

    /// Runs a prepared pool to completion: alone (`shared` null), or joining what the workers
    /// computed (`shared`: `{ nns, tiles }`, each worker's nearest-neighbour maxima and the
    /// tiles region they wrote their tiles into, both on shared memory) with this thread's
    /// own part ([`Prepared::compute_share`]).
    #[wasm_bindgen(js_name = runPrepared)]
    pub fn run_prepared(
        &self,
        mut prepared: Prepared,
        shared: JsValue,
    ) -> Result<JsValue, JsValue> {
        let mine = prepared.mine.take();
        let (req, per_frame) = prepared.pool.request()?;
        let (Some(plan), false) = (&prepared.plan, shared.is_null() || shared.is_undefined())
        else {
            return now(run_one(&self.inner, &req, per_frame))?;
        };
        let bad = || {
            js_err(Error::Backend(
                "internal: the threads' parts do not fit the plan".into(),
            ))
        };
        let (tokens, mine) = (req.tokens().ok_or_else(bad)?, mine.ok_or_else(bad)?);
        let get = |k: &str| Reflect::get(&shared, &JsValue::from_str(k)).map_err(|_| bad());
        let nns: Vec<Vec<f32>> = Array::from(&get("nns")?)
            .iter()
            .map(|v| v.dyn_into::<Float32Array>().map(|a| a.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let tiles = get("tiles")?
            .dyn_into::<Float32Array>()
            .map_err(|_| bad())?;
        let others: Vec<&[f32]> = nns.iter().map(|v| &v[..]).collect();
        // The tiles this thread lacks, run by run, straight from shared memory into place.
        let size = plan.tile_len() as u32;
        let fill = |r: std::ops::Range<usize>, out: &mut [f32]| {
            let (a, b) = (r.start as u32 * size, r.end as u32 * size);
            (b <= tiles.length() && out.len() == (b - a) as usize)
                .then(|| tiles.subarray(a, b).copy_to(out))
                .is_some()
        };
        let given = split::join(plan, tokens, mine, &others, fill).ok_or_else(bad)?;
        split::with_given(given, || now(run_one(&self.inner, &req, per_frame)))?
    }

    /// Prunes many pools in one call: `items` is an array of `{ features, ...options }`.
    /// Items with `perFrame` run frame by frame; on the GPU the others together in one batch.
    #[wasm_bindgen(js_name = pruneBatch)]
    pub fn prune_batch(&self, items: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let pools = batch_pools(&items);
        wasm_bindgen_futures::future_to_promise(async move {
            let pools = pools?;
            let reqs = batch_requests(&pools)?;
            run_batch(&inner, &reqs).await
        })
    }

    /// [`JsPruner::prune_batch`] run to completion before returning (the CPU backend).
    #[wasm_bindgen(js_name = pruneBatchNow)]
    pub fn prune_batch_now(&self, items: JsValue) -> Result<JsValue, JsValue> {
        let pools = batch_pools(&items)?;
        let reqs = batch_requests(&pools)?;
        now(run_batch(&self.inner, &reqs))?
    }
}

/// One pool read for a threaded call ([`JsPruner::prepare`]): its inputs, and how its
/// similarity stage is shared out across the package's CPU threads (none: run it here alone).
#[wasm_bindgen]
pub struct Prepared {
    pool: Pool,
    plan: Option<split::Plan>,
    /// This thread's part of the split ([`Prepared::compute_share`]).
    mine: Option<split::Mine>,
}

fn policy_name(p: NormPolicy) -> &'static str {
    match p {
        NormPolicy::DivPrune => "divprune",
        NormPolicy::IdPruner => "idpruner",
    }
}

#[wasm_bindgen]
impl Prepared {
    /// The split, or `null` when the call runs in one thread: `{ policy, n, d, block,
    /// keepTiles, threads, tiles, tileLen, blocks }` (`tiles` tiles of `tileLen` values, taken
    /// by `threads` threads, this one included, from one shared counter; `blocks` row blocks of
    /// `block` rows, normalised by whichever thread takes them from a second counter).
    #[wasm_bindgen(getter)]
    pub fn plan(&self) -> JsValue {
        let Some(p) = &self.plan else {
            return JsValue::NULL;
        };
        let o = Object::new();
        set(&o, "policy", JsValue::from_str(policy_name(p.policy)));
        for (k, v) in [
            ("n", p.n),
            ("d", p.d),
            ("block", p.block),
            ("threads", p.threads),
            ("tiles", p.tiles()),
            ("tileLen", p.tile_len()),
            ("blocks", p.blocks()),
        ] {
            set(&o, k, JsValue::from_f64(v as f64));
        }
        set(&o, "keepTiles", JsValue::from_bool(p.keep_tiles));
        o.into()
    }

    /// Copies the pool's features (f32, as read and checked here) into `out`, the shared
    /// memory the workers read their rows from: a Float32Array of N x D.
    #[wasm_bindgen(js_name = writeFeatures)]
    pub fn write_features(&self, out: Float32Array) -> Result<(), JsValue> {
        if out.length() as usize != self.pool.feats.len() {
            return Err(param(
                "writeFeatures(): out must be a Float32Array of N x D",
            ));
        }
        out.copy_from(&self.pool.feats);
        Ok(())
    }

    /// This thread's part of the split, computed here while the workers compute theirs:
    /// `share` is `{ counter, ready, rows }` on shared memory (below, [`similarity_part`]);
    /// the row blocks taken from `counter[1]` are normalised here and published, then tiles
    /// taken from `counter[0]` until none is left, kept in place for
    /// [`JsPruner::run_prepared`].
    #[wasm_bindgen(js_name = computeShare)]
    pub fn compute_share(&mut self, share: JsValue) -> Result<(), JsValue> {
        let (req, _) = self.pool.request()?;
        let (Some(plan), Some(tokens)) = (&self.plan, req.tokens()) else {
            return Err(param("computeShare(): this call is not split"));
        };
        let mut ex = Side {
            shared: Shared::read(&share, plan)?,
            raw: RawRows::Own(tokens),
        };
        self.mine = Some(split::Mine::work(tokens, plan, &mut ex));
        Ok(())
    }
}

/// The shared memory of a split, as every thread sees it: `counter` (an Int32Array: element 0
/// hands out tile numbers, element 1 row blocks, by `Atomics.add`), `ready` (an Int32Array, one
/// flag per row block, set by `Atomics.store` once its rows are published) and `rows` (a
/// Float32Array of N x D, the normalised rows).
struct Shared {
    counter: Int32Array,
    ready: Int32Array,
    rows: Float32Array,
    /// Values per row block.
    block_len: u32,
}

impl Shared {
    fn read(share: &JsValue, plan: &split::Plan) -> Result<Shared, JsValue> {
        let array = |k: &str| Reflect::get(share, &JsValue::from_str(k)).ok();
        let counter = array("counter")
            .and_then(|v| v.dyn_into::<Int32Array>().ok())
            .filter(|c| c.length() >= 2)
            .ok_or_else(|| param("share: counter must be an Int32Array of 2"))?;
        let ready = array("ready")
            .and_then(|v| v.dyn_into::<Int32Array>().ok())
            .filter(|c| c.length() as usize >= plan.blocks())
            .ok_or_else(|| {
                param(format!(
                    "share: ready must be an Int32Array of {}",
                    plan.blocks()
                ))
            })?;
        let rows = array("rows")
            .and_then(|v| v.dyn_into::<Float32Array>().ok())
            .filter(|a| a.length() as usize == plan.n * plan.d)
            .ok_or_else(|| param("share: rows must be a Float32Array of N x D"))?;
        Ok(Shared {
            counter,
            ready,
            rows,
            block_len: (plan.block * plan.d) as u32,
        })
    }

    /// The next number of counter `i` (`None` when it cannot be read: then this thread takes
    /// no more, the others take the rest).
    fn next(&self, i: u32) -> Option<usize> {
        js_sys::Atomics::add(&self.counter, i, 1)
            .ok()
            .and_then(|t| usize::try_from(t).ok())
    }

    fn publish(&self, b: usize, rows: &[f32]) {
        let a = b as u32 * self.block_len;
        self.rows.subarray(a, a + rows.len() as u32).copy_from(rows);
        let _ = js_sys::Atomics::store(&self.ready, b as u32, 1);
    }

    fn fetch(&self, b: usize, out: &mut [f32]) -> bool {
        let a = b as u32 * self.block_len;
        let ready = js_sys::Atomics::load(&self.ready, b as u32) == Ok(1);
        ready && {
            self.rows.subarray(a, a + out.len() as u32).copy_to(out);
            true
        }
    }
}

/// Where a thread of a split reads the raw rows it normalises.
enum RawRows<'a> {
    /// The calling thread: its own checked copy of the pool.
    Own(&'a crate::Tokens<'a>),
    /// A worker: block by block, from the features the calling thread wrote to shared memory
    /// ([`Prepared::write_features`]).
    Shared {
        features: Float32Array,
        d: usize,
        scratch: Vec<f32>,
    },
}

/// One thread's side of a split: the shared memory, and where its raw rows come from.
struct Side<'a> {
    shared: Shared,
    raw: RawRows<'a>,
}

impl split::Exchange for Side<'_> {
    fn next_tile(&mut self) -> Option<usize> {
        self.shared.next(0)
    }
    fn next_block(&mut self) -> Option<usize> {
        self.shared.next(1)
    }
    fn raw(&mut self, rows: std::ops::Range<usize>) -> &[f32] {
        match &mut self.raw {
            RawRows::Own(tokens) => {
                let d = tokens.d();
                &tokens.data()[rows.start * d..rows.end * d]
            }
            RawRows::Shared {
                features,
                d,
                scratch,
            } => {
                let (a, b) = ((rows.start * *d) as u32, (rows.end * *d) as u32);
                scratch.resize((b - a) as usize, 0.0);
                features.subarray(a, b).copy_to(scratch);
                scratch
            }
        }
    }
    fn publish(&mut self, b: usize, rows: &[f32]) {
        self.shared.publish(b, rows)
    }
    fn fetch(&mut self, b: usize, out: &mut [f32]) -> bool {
        self.shared.fetch(b, out)
    }
}

/// A number field of a plain object made by the package's own JavaScript.
fn field(o: &JsValue, k: &str) -> Result<f64, JsValue> {
    Reflect::get(o, &JsValue::from_str(k))
        .ok()
        .and_then(|v| v.as_f64())
        .ok_or_else(|| param(format!("share: {k} missing")))
}

/// One worker's part of a split similarity stage (run in each CPU thread's own instance of
/// the module, [`split::work`]): `features` is the pool as the calling thread wrote it to
/// shared memory (a Float32Array of N x D). Row blocks taken from `share.counter[1]` are
/// normalised as `share.policy` says and published to `share.rows` (flagged in `share.ready`);
/// the others are copied from there (or normalised here when not yet published); then tiles
/// taken from `share.counter[0]` until none is left, each computed by the CPU engine's own
/// kernel and, when `share.keepTiles`, written to its place in `share.tiles` (a Float32Array
/// of `tiles x block^2` values on shared memory). The maxima of the tiles taken go to
/// `share.nn` (a Float32Array of N).
#[wasm_bindgen(js_name = similarityPart)]
pub fn similarity_part(features: JsValue, share: JsValue) -> Result<(), JsValue> {
    let (n, d) = (
        count(field(&share, "n")?, "n")?,
        count(field(&share, "d")?, "d")?,
    );
    let block = count(field(&share, "block")?, "block")?;
    let policy = match Reflect::get(&share, &"policy".into())
        .ok()
        .and_then(|v| v.as_string())
        .as_deref()
    {
        Some("divprune") => NormPolicy::DivPrune,
        Some("idpruner") => NormPolicy::IdPruner,
        _ => return Err(param("share: policy must be divprune or idpruner")),
    };
    let keep_tiles = Reflect::get(&share, &"keepTiles".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if block == 0 || n == 0 {
        return Err(param(format!(
            "share: no tiles of block {block} in a pool of {n} tokens"
        )));
    }
    let plan = split::Plan {
        policy,
        n,
        d,
        block,
        keep_tiles,
        threads: 1,
    };
    let array = |k: &str| Reflect::get(&share, &JsValue::from_str(k)).ok();
    let shared = Shared::read(&share, &plan)?;
    let nn_out = array("nn")
        .and_then(|v| v.dyn_into::<Float32Array>().ok())
        .filter(|a| a.length() as usize == n)
        .ok_or_else(|| param(format!("share: nn must be a Float32Array of {n}")))?;
    let want = plan.tiles() * plan.tile_len();
    let tiles_out = match keep_tiles {
        false => None,
        true => Some(
            array("tiles")
                .and_then(|v| v.dyn_into::<Float32Array>().ok())
                .filter(|a| a.length() as usize == want)
                .ok_or_else(|| param(format!("share: tiles must be a Float32Array of {want}")))?,
        ),
    };
    let features = features
        .dyn_into::<Float32Array>()
        .ok()
        .filter(|a| a.length() as usize == n * d)
        .ok_or_else(|| param("features: a Float32Array of N x D on shared memory"))?;
    let size = plan.tile_len() as u32;
    let put = |t: usize, tile: &[f32]| {
        if let Some(out) = &tiles_out {
            let a = t as u32 * size;
            out.subarray(a, a + size).copy_from(&tile[..size as usize]);
        }
    };
    let mut ex = Side {
        shared,
        raw: RawRows::Shared {
            features,
            d,
            scratch: Vec::new(),
        },
    };
    let nn = split::work(&plan, &mut ex, put);
    nn_out.copy_from(&nn);
    Ok(())
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

/// A count given as a JS number: a non-negative integer that fits this build's `usize`.
fn count(v: f64, what: &str) -> Result<usize, JsValue> {
    if integer(v, u32::MAX as f64) {
        Ok(v as usize)
    } else {
        Err(param(format!(
            "{what} must be a non-negative integer below 2^32, got {v}"
        )))
    }
}

/// Diversity and coverage of a kept set (see [`crate::metrics::kept_set_figures`]):
/// `{ minPairwiseDistance, maxUncoveredDistance, meanUncoveredDistance }`, each `null` when
/// undefined (fewer than two kept, nothing pruned).
#[wasm_bindgen(js_name = keptSetFigures)]
pub fn kept_set_figures(
    features: JsValue,
    n: f64,
    d: f64,
    kept: Uint32Array,
) -> Result<JsValue, JsValue> {
    let (n, d) = (count(n, "n")?, count(d, "d")?);
    let feats = floats(&features, "features")?;
    let tokens = Tokens::new(&feats, n, d).map_err(js_err)?;
    let f = crate::metrics::kept_set_figures(&tokens, &kept.to_vec()).map_err(js_err)?;
    let o = Object::new();
    set(&o, "minPairwiseDistance", figure(f.min_pairwise_distance));
    set(&o, "maxUncoveredDistance", figure(f.max_uncovered_distance));
    set(
        &o,
        "meanUncoveredDistance",
        figure(f.mean_uncovered_distance),
    );
    Ok(o.into())
}

/// Test hook: traps the module (a Rust panic), as a bug would. The package's tests use it to
/// check that the JavaScript layer replaces a dead module; nothing else calls it.
#[wasm_bindgen(js_name = __trapForTests)]
pub fn trap_for_tests() {
    panic!("tokenprune: trap requested by a test");
}
