//! Adapter choice, device creation and the wgpu error plumbing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use crate::error::{Error, Result};

/// Environment variable naming the wgpu backend to use (`vulkan`, `metal`, `dx12`, `gl`,
/// `webgpu`); unset = every backend this build has.
pub const ENV_BACKEND: &str = "TOKENPRUNE_WGPU_BACKEND";
/// Environment variable selecting the adapter by a case-insensitive substring of its name.
pub const ENV_ADAPTER: &str = "TOKENPRUNE_ADAPTER";

/// What the kernels need from a device (from the kernel table, `kernels.rs`): WG invocations
/// per workgroup (all along x), their storage buffers and workgroup memory per stage.
pub(crate) fn too_small(l: &wgpu::Limits) -> Option<String> {
    use super::kernels::{storage_buffers_needed, NEED_WORKGROUP_BYTES, WG};
    if l.max_compute_invocations_per_workgroup < WG || l.max_compute_workgroup_size_x < WG {
        return Some(format!(
            "workgroups of {} invocations (need {WG})",
            l.max_compute_invocations_per_workgroup
                .min(l.max_compute_workgroup_size_x)
        ));
    }
    let storage = storage_buffers_needed();
    if l.max_storage_buffers_per_shader_stage < storage {
        return Some(format!(
            "{} storage buffers per stage (need {storage})",
            l.max_storage_buffers_per_shader_stage
        ));
    }
    if l.max_compute_workgroup_storage_size < NEED_WORKGROUP_BYTES {
        return Some(format!(
            "{} bytes of workgroup memory (need {NEED_WORKGROUP_BYTES})",
            l.max_compute_workgroup_storage_size
        ));
    }
    None
}

/// The backends named by `TOKENPRUNE_WGPU_BACKEND`, or all of them.
pub(crate) fn backends_from_env() -> Result<wgpu::Backends> {
    let Ok(v) = std::env::var(ENV_BACKEND) else {
        return Ok(wgpu::Backends::all());
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(wgpu::Backends::all()),
        "vulkan" => Ok(wgpu::Backends::VULKAN),
        "metal" => Ok(wgpu::Backends::METAL),
        "dx12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        "webgpu" => Ok(wgpu::Backends::BROWSER_WEBGPU),
        other => Err(Error::Param(format!(
            "{ENV_BACKEND}='{other}' is not one of vulkan, metal, dx12, gl, webgpu"
        ))),
    }
}

/// `TOKENPRUNE_ADAPTER`, lower-cased, when set and non-empty.
pub(crate) fn adapter_filter() -> Option<String> {
    std::env::var(ENV_ADAPTER)
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// A summary of one wgpu adapter, for `tokenprune info`.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Name, backend, device type, driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's limits.
    pub limits: wgpu::Limits,
    /// Whether it supports timestamp queries.
    pub timestamps: bool,
    /// Why the engine cannot use it, if it cannot.
    pub unsuitable: Option<String>,
}

/// Every adapter wgpu sees on the backends the environment allows.
pub async fn adapters() -> Result<Vec<AdapterSummary>> {
    let instance = instance()?;
    let backends = backends_from_env()?;
    Ok(instance
        .enumerate_adapters(backends)
        .await
        .into_iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            limits: a.limits(),
            timestamps: a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
            unsuitable: unsuitable(&a),
        })
        .collect())
}

/// A new wgpu instance on the backends the environment allows.
pub(crate) fn instance() -> Result<wgpu::Instance> {
    let backends = backends_from_env()?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    Ok(wgpu::Instance::new(desc))
}

/// Why an adapter cannot run the kernels, or `None` when it can.
pub(crate) fn unsuitable(adapter: &wgpu::Adapter) -> Option<String> {
    let caps = adapter.get_downlevel_capabilities();
    if !caps.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Some("no compute shaders".into());
    }
    too_small(&adapter.limits())
}

/// The adapter to use: the environment's choice, else the best suitable one (discrete, then
/// integrated, virtual, other, software).
pub(crate) async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    let backends = backends_from_env()?;
    let mut adapters = instance.enumerate_adapters(backends).await;
    if adapters.is_empty() {
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        if let Ok(a) = instance.request_adapter(&opts).await {
            adapters.push(a);
        }
    }
    let seen: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    let filter = adapter_filter();
    let mut rejected = Vec::new();
    let mut ok: Vec<wgpu::Adapter> = Vec::new();
    for a in adapters {
        let info = a.get_info();
        if let Some(f) = &filter {
            if !info.name.to_ascii_lowercase().contains(f.as_str()) {
                continue;
            }
        }
        match unsuitable(&a) {
            Some(why) => rejected.push(format!("{}: {why}", info.name)),
            None => ok.push(a),
        }
    }
    ok.sort_by_key(|a| type_rank(a.get_info().device_type));
    ok.into_iter().next().ok_or_else(|| {
        let mut msg = String::from("no GPU adapter found");
        if let Some(f) = &filter {
            msg.push_str(&format!(" matching {ENV_ADAPTER}='{f}'"));
        }
        if seen.is_empty() && cfg!(target_arch = "wasm32") {
            msg.push_str(" (the browser offers no WebGPU adapter: WebGPU is disabled, blocklisted or unsupported here)");
        } else if seen.is_empty() {
            msg.push_str(" (no wgpu adapter at all: install a Vulkan/Metal/DX12 driver, or mesa-vulkan-drivers for the lavapipe software adapter)");
        } else {
            msg.push_str(&format!(" (adapters seen: {})", seen.join(", ")));
        }
        if !rejected.is_empty() {
            msg.push_str(&format!("; unsuitable: {}", rejected.join("; ")));
        }
        Error::Backend(msg)
    })
}

/// A device with the adapter's real limits, and timestamp queries where supported.
pub(crate) async fn request_device(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue)> {
    let mut features = wgpu::Features::empty();
    if adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        features |= wgpu::Features::TIMESTAMP_QUERY;
    }
    let desc = wgpu::DeviceDescriptor {
        label: Some("tokenprune"),
        required_features: features,
        required_limits: adapter.limits(),
        ..Default::default()
    };
    adapter.request_device(&desc).await.map_err(|e| {
        Error::Backend(format!(
            "cannot open a device on adapter '{}': {e}",
            adapter.get_info().name
        ))
    })
}

/// Turns a wgpu error into the crate's error.
pub(crate) fn backend_error(what: &str, e: &wgpu::Error) -> Error {
    match e {
        wgpu::Error::OutOfMemory { .. } => Error::Backend(format!(
            "{what}: the GPU is out of memory (free GPU memory, prune fewer or smaller pools per call, lower GpuOptions::max_binding_bytes, or use the CPU engine)"
        )),
        wgpu::Error::Validation { description, .. } => {
            Error::Backend(format!("{what}: wgpu validation error: {description}"))
        }
        wgpu::Error::Internal { description, .. } => {
            Error::Backend(format!("{what}: wgpu internal error: {description}"))
        }
    }
}

/// Error scopes around one batch of wgpu calls (validation, out-of-memory, internal).
pub(crate) struct Scopes {
    oom: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl Scopes {
    pub(crate) fn push(device: &wgpu::Device) -> Self {
        Scopes {
            oom: device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            internal: device.push_error_scope(wgpu::ErrorFilter::Internal),
            validation: device.push_error_scope(wgpu::ErrorFilter::Validation),
        }
    }

    /// Pops the scopes (innermost first); the future yields the first error caught.
    pub(crate) fn pop(self) -> impl Future<Output = Option<wgpu::Error>> {
        let v = self.validation.pop();
        let i = self.internal.pop();
        let o = self.oom.pop();
        async move {
            if let Some(e) = v.await {
                return Some(e);
            }
            if let Some(e) = i.await {
                return Some(e);
            }
            o.await
        }
    }
}

/// Errors that wgpu reported outside any error scope (uncaptured) or through the device-lost
/// callback, kept for the next call to report instead of panicking.
#[derive(Debug, Default)]
pub(crate) struct ErrorSink {
    msg: Mutex<Option<String>>,
    /// Set once the device is lost; never cleared (a lost device stays lost).
    lost: Mutex<Option<String>>,
}

impl ErrorSink {
    /// Marks the device lost (the first reason is kept).
    pub(crate) fn set_lost(&self, msg: String) {
        if let Ok(mut g) = self.lost.lock() {
            g.get_or_insert(msg);
        }
    }

    /// Why the device is lost, when it is.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn put(&self, msg: String) {
        if let Ok(mut g) = self.msg.lock() {
            g.get_or_insert(msg);
        }
    }

    pub(crate) fn take(&self) -> Option<String> {
        self.msg.lock().ok().and_then(|mut g| g.take())
    }
}

/// Installs the handlers that route uncaptured errors and device loss into `sink` (our own
/// devices only: a caller's device keeps its handlers).
pub(crate) fn install_handlers(device: &wgpu::Device, sink: &Arc<ErrorSink>) {
    let s = sink.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        // Stored without the "backend: " prefix: the call that reports it adds one.
        s.put(match backend_error("uncaptured", &e) {
            Error::Backend(m) => m,
            other => other.to_string(),
        });
    }));
    let s = sink.clone();
    device.set_device_lost_callback(move |reason, msg| {
        let msg = msg.trim();
        s.set_lost(match reason {
            wgpu::DeviceLostReason::Destroyed => "the GPU device is lost (destroyed)".to_string(),
            _ if msg.is_empty() => format!("the GPU device is lost ({reason:?})"),
            _ => format!("the GPU device is lost ({reason:?}: {msg})"),
        });
    });
}

/// A one-shot channel for wgpu callbacks (buffer mapping): the sender side is the callback,
/// the receiver a future. Natively the device poll runs the callback before the future is
/// awaited; in a browser the event loop does.
pub(crate) fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

pub(crate) struct Sender<T>(Arc<Mutex<Slot<T>>>);
pub(crate) struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Sender<T> {
    pub(crate) fn send(self, v: T) {
        if let Ok(mut g) = self.0.lock() {
            g.value = Some(v);
            if let Some(w) = g.waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> Drop for Sender<T> {
    /// A sender dropped without sending (callback discarded) wakes the receiver, which then
    /// sees it is alone and resolves to `None` instead of sleeping forever.
    fn drop(&mut self) {
        let waker = self.0.lock().ok().and_then(|mut g| g.waker.take());
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let Ok(mut g) = self.0.lock() else {
            return Poll::Ready(None);
        };
        match g.value.take() {
            Some(v) => Poll::Ready(Some(v)),
            None => {
                // The sender was dropped without sending: nothing will come.
                if Arc::strong_count(&self.0) == 1 {
                    return Poll::Ready(None);
                }
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_says_what_to_do_and_loss_is_sticky() {
        let oom = wgpu::Error::OutOfMemory {
            source: "vkAllocateMemory failed".into(),
        };
        let msg = backend_error("running the kernels", &oom).to_string();
        assert!(
            msg.starts_with("backend: running the kernels: the GPU is out of memory (free GPU memory, prune fewer or smaller pools per call"),
            "{msg}"
        );
        assert!(msg.ends_with("or use the CPU engine)"), "{msg}");
        let sink = ErrorSink::default();
        assert_eq!(sink.lost(), None);
        sink.set_lost("first".into());
        sink.set_lost("second".into());
        assert_eq!(sink.lost().as_deref(), Some("first"));
        assert_eq!(sink.lost().as_deref(), Some("first"), "stays lost");
        assert_eq!(sink.take(), None, "loss is not a one-shot error");
    }
}
