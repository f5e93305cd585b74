// The wasm module in this thread: loading it, replacing it when it traps, choosing a backend,
// and the pruners that run on it. Everything here takes input snapshots (./inputs.js).
// The same code runs on the page and inside the worker (./worker.js).
import init, {
  initSync,
  Pruner as RawPruner,
  keptSetFigures as rawFigures,
  similarityPart as rawSimilarityPart,
  __wbg_reset_state as resetState,
  __trapForTests,
} from '../dist/tokenprune.js';
import { messageOf, paramError } from './inputs.js';
import { Threads, splitAll, threadError, threadsFor, threadsOption } from './threads.js';

let ready = null;
let wasmSource = null;
let loadedFrom;
let exportsOf = null;
/** Bumps each time a trapped module is replaced; a pruner lives in one generation. */
let generation = 0;
/** Why the current module is dead (it trapped), or null. */
let trapped = null;

const isNode = () => typeof process !== 'undefined' && process.versions?.node != null && typeof window === 'undefined';

/** The source given to `setWasmSource()`, if any (a worker pruner passes it on). */
export function wasmSourceOverride() {
  return wasmSource ?? undefined;
}

/** Overrides where the `.wasm` is loaded from. Call before the first `Pruner.create()`. */
export function setWasmSource(source) {
  if (ready) throw new Error('tokenprune: setWasmSource() must be called before Pruner.create()');
  wasmSource = source;
}

// The specifier is not a literal: bundlers (Vite, webpack) leave it alone and never try to
// bundle node:fs for the browser, where this branch never runs.
const NODE_FS = 'node:fs/promises';
const NODE_URL = 'node:url';

/**
 * Node.js cannot fetch `file:` URLs: a `file:` URL (string or URL) or a plain path is read from
 * disk there. Everything else goes to wasm-bindgen's loader as given (URL, Response, bytes,
 * WebAssembly.Module).
 */
async function resolveSource(source) {
  if (!isNode()) return source;
  let url = null;
  if (source instanceof URL || (source && typeof source === 'object' && typeof source.href === 'string' && typeof source.protocol === 'string')) {
    url = new URL(source.href);
  } else if (typeof source === 'string') {
    if (/^[a-z][a-z0-9+.-]+:/i.test(source) && !/^[a-z]:[\\/]/i.test(source)) url = new URL(source);
    else return (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_FS)).readFile(source);
  }
  if (url?.protocol === 'file:') {
    const { fileURLToPath } = await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_URL);
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_FS)).readFile(fileURLToPath(url));
  }
  return url ?? source;
}

/** Loads the module once (`source`: only the first call may give one). */
export function ensureInit(source) {
  if (ready && source !== undefined && source !== loadedFrom) {
    throw new Error('tokenprune: the wasm module is already loaded; pass wasmUrl only to the first Pruner.create()');
  }
  if (!ready) {
    loadedFrom = source;
    ready = (async () => {
      const from = source ?? wasmSource ?? new URL('../dist/tokenprune_bg.wasm', import.meta.url);
      exportsOf = await init({ module_or_path: await resolveSource(await from) });
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/** Bytes of wasm linear memory in use by the module (diagnostics; 0 before the first create). */
export function wasmMemoryBytes() {
  return exportsOf ? exportsOf.memory.buffer.byteLength : 0;
}

/** Whether `e` is the module trapping (a Rust panic, out of memory, a stack overflow). */
function isTrap(e) {
  return e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /call stack/i.test(e.message));
}

/** Pending asynchronous (GPU) calls of this generation: rejected when the module traps. */
const pending = new Set();
let listening = false;

function markTrapped(e, during) {
  if (trapped) return;
  trapped = `the wasm module trapped (${e?.name ?? 'Error'}: ${messageOf(e)}) during ${during}`;
  for (const p of pending) p.reject(trapError(trapped));
  pending.clear();
}

function trapError(why) {
  return new Error(`tokenprune: ${why}; this pruner is gone: create a new Pruner (the module is replaced by a fresh instance)`);
}

/**
 * A trap inside an asynchronous call surfaces in a later microtask, out of reach of the call's
 * promise: on a page or in a worker it reaches the global `error` event, which marks the module
 * dead and rejects the pending calls. (Node.js has no WebGPU: its calls are all synchronous.)
 */
function listenForTraps() {
  if (listening || typeof globalThis.addEventListener !== 'function') return;
  listening = true;
  globalThis.addEventListener('error', (ev) => {
    if (isTrap(ev.error)) markTrapped(ev.error, 'an asynchronous call');
  });
}

/** Replaces a trapped module with a fresh instance of the same compiled module. */
function live() {
  if (trapped) {
    resetState();
    exportsOf = initSync(); // the glue's exports, now the fresh instance's
    generation++;
    trapped = null;
  }
  return generation;
}

/** Runs `fn` (a synchronous call into the module); a trap marks the module dead and becomes an Error. */
function guard(during, fn) {
  live();
  try {
    return fn();
  } catch (e) {
    if (!isTrap(e)) throw e;
    markTrapped(e, during);
    throw trapError(trapped);
  }
}

/**
 * Runs an asynchronous call into the module: a trap while it runs (in a later microtask, out of
 * the promise's reach) rejects it through the global `error` listener.
 */
function asyncCall(during, fn) {
  listenForTraps();
  return new Promise((resolve, reject) => {
    const entry = { reject };
    pending.add(entry);
    let p;
    try {
      p = guard(during, fn);
    } catch (e) {
      pending.delete(entry);
      reject(e);
      return;
    }
    p.then(
      (r) => {
        pending.delete(entry);
        resolve(r);
      },
      (e) => {
        pending.delete(entry);
        if (isTrap(e)) {
          markTrapped(e, during);
          reject(trapError(trapped));
        } else reject(e);
      },
    );
  });
}

/** Test hook: traps the module, as a Rust panic would. */
export async function trapForTests() {
  await ensureInit();
  return guard('trapForTests()', () => __trapForTests());
}

/** One worker's part of a split similarity stage (in a thread of ./threads.js): writes into the shared memory `share` points at. */
export function similarityPart(features, share) {
  return guard('a CPU thread\'s share', () => rawSimilarityPart(features, share));
}

/** Diversity and coverage of a kept set (inputs already checked and snapshotted). */
export async function keptSetFigures(features, n, d, kept) {
  await ensureInit();
  return guard('keptSetFigures()', () => rawFigures(features, n, d, kept));
}

// The wasm side reports the backend as { kind, adapter }; results carry both as fields.
function shape(result, name) {
  const { kind, adapter } = result.backend;
  result.backend = kind;
  result.adapter = kind === 'cpu' ? null : name ?? adapter;
  return result;
}

/** A pruner on this thread's module. Methods take snapshots; results are plain objects. */
export class LocalPruner {
  #raw;
  #gen;
  #dead = null;
  /** The CPU engine's threads (./threads.js), or null: one thread. */
  #threads = null;

  constructor(raw, fallbackReason, adapterName = null) {
    this.#raw = raw;
    this.#gen = generation;
    this.threads = 1;
    this.threadsReason = null;
    const { kind, adapter } = raw.backend;
    this.backend = kind;
    // The browser's own GPUAdapterInfo (description, else vendor and architecture) names the
    // adapter better than wgpu can (it sees only the description, often left empty)
    this.adapter = kind === 'cpu' ? null : adapterName && adapterName !== 'unnamed' ? adapterName : adapter;
    this.fallbackReason = fallbackReason;
  }

  #check(during) {
    if (!this.#raw) throw new Error('tokenprune: this Pruner was freed');
    if (this.#dead) throw new Error(this.#dead);
    if (this.#gen !== generation || trapped) {
      this.#dead = `tokenprune: this pruner's wasm module trapped during an earlier call (${trapped ?? 'since replaced'}); create a new Pruner`;
      throw new Error(this.#dead);
    }
    return during;
  }

  #run(during, sync, async) {
    this.#check(during);
    if (this.backend === 'cpu') {
      // The CPU engine completes in the call: a trap is an exception of this call.
      try {
        return shapeAll(guard(during, () => sync(this.#raw)), this.adapter);
      } catch (e) {
        if (trapped || this.#gen !== generation) this.#dead = messageOf(e);
        throw e;
      }
    }
    return asyncCall(during, () => async(this.#raw))
      .then((r) => shapeAll(r, this.adapter))
      .catch((e) => {
      if (trapped || this.#gen !== generation) this.#dead = messageOf(e);
      throw e;
    });
  }

  /** Gives this (CPU) pruner its threads: `{ count, reason }` from `threadsFor()`. */
  async startThreads({ count, reason }, source) {
    this.threadsReason = reason;
    if (count < 2) return;
    try {
      this.#threads = await Threads.start(count, source);
      this.threads = count;
    } catch (e) {
      this.threadsReason = `threads: starting ${count} CPU threads failed (${messageOf(e)}): the CPU engine runs in one thread`;
    }
  }

  /** Ends the threads (after one failed): later calls run in one thread. */
  #endThreads(why) {
    this.#threads?.close();
    this.#threads = null;
    this.threads = 1;
    this.threadsReason = why;
  }

  /** Runs `fn(raw)` (a synchronous call into the module) as #run does for the CPU engine. */
  #sync(during, fn) {
    this.#check(during);
    try {
      return guard(during, () => fn(this.#raw));
    } catch (e) {
      if (trapped || this.#gen !== generation) this.#dead = messageOf(e);
      throw e;
    }
  }

  /**
   * A call on the threads: the pool read and its split planned here (bad input rejects before
   * any thread starts), the shares computed by the threads, joined and finished here.
   */
  async #pruneThreaded(args) {
    const during = 'prune()';
    const t0 = performance.now();
    const prepared = this.#sync(during, (raw) => raw.prepare(args.features, args.options, this.#threads.size, splitAll()));
    const plan = prepared.plan;
    if (!plan) return { ...shapeAll(this.#sync(during, (raw) => raw.runPrepared(prepared, null)), this.adapter), threads: 1 };
    // The workers start on the tiles, this thread takes tiles from the same counter meanwhile.
    let call;
    try {
      call = this.#threads.run(plan, (view) => prepared.writeFeatures(view));
    } catch (e) {
      prepared.free();
      throw e;
    }
    call.done.catch(() => {}); // awaited below, or dropped when this thread's part fails
    try {
      this.#sync(during, () => prepared.computeShare({ counter: call.counter, ready: call.ready, rows: call.rows }));
      await call.done;
    } catch (e) {
      call.release();
      if (this.#gen === generation && !trapped) prepared.free();
      if (this.#gen !== generation || trapped) throw e; // this thread's module trapped
      const err = threadError(e, during);
      this.#endThreads(err.message.replace(/^tokenprune: /, 'threads: '));
      throw err;
    }
    let r;
    try {
      r = shapeAll(this.#sync(during, (raw) => raw.runPrepared(prepared, { nns: call.nns, tiles: call.tiles })), this.adapter);
    } finally {
      call.release();
    }
    // The whole call, the threads' shares included.
    return { ...r, elapsedMs: performance.now() - t0, threads: plan.threads };
  }

  /** Prunes one pool: `args` = `{ features, options }` from `pruneArgs()`. */
  async prune(args) {
    if (this.#threads) return this.#pruneThreaded(args);
    const r = await this.#run('prune()', (raw) => raw.pruneNow(args.features, args.options), (raw) => raw.prune(args.features, args.options));
    r.threads = 1;
    return r;
  }

  /** Prunes a batch: `items` from `batchArgs()`. */
  async pruneBatch(items) {
    const r = await this.#run('pruneBatch()', (raw) => raw.pruneBatchNow(items), (raw) => raw.pruneBatch(items));
    for (const x of r) x.threads = 1;
    return r;
  }

  /** Releases the module's memory for this pruner (nothing to release after a trap: the module was replaced). */
  free() {
    this.#threads?.close();
    this.#threads = null;
    const raw = this.#raw;
    this.#raw = null;
    if (raw && this.#gen === generation && !trapped) raw.free();
  }
}

function shapeAll(r, name) {
  return Array.isArray(r) ? r.map((x) => shape(x, name)) : shape(r, name);
}

// ---------------------------------------------------------------------------------------------
// Choosing a backend.

const KNOWN = ['webgpu', 'cpu'];

/** A backend list from `Pruner.create({ backends })`: checked, or an Error naming the problem. */
export function backendList(backends) {
  if (backends === undefined) return { list: ['webgpu', 'cpu'], explicit: false };
  if (!Array.isArray(backends) || backends.length === 0) {
    throw paramError(`backends must be a non-empty array of 'webgpu' and 'cpu', got ${Array.isArray(backends) ? '[]' : typeof backends}`);
  }
  const list = backends.map((b) => {
    const name = b === 'gpu' ? 'webgpu' : b;
    if (!KNOWN.includes(name)) throw paramError(`backend '${String(b)}' is not one of webgpu, cpu`);
    return name;
  });
  return { list, explicit: true };
}

/** What the adapter says about itself (`adapter.info`, or the older `requestAdapterInfo()`). */
async function adapterInfo(adapter) {
  try {
    if (adapter.info) return adapter.info;
    if (typeof adapter.requestAdapterInfo === 'function') return (await adapter.requestAdapterInfo()) ?? {};
  } catch {
    // an adapter that will not say
  }
  return {};
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|basic render|\bwarp\b/i;

/**
 * Whether an adapter is a software or fallback one: `{ software: true, why }`, `{ software:
 * false, name }`, or `{ silent: true }` when it reports nothing to decide on.
 */
export function classifyAdapter(adapter, info) {
  const text = ['vendor', 'architecture', 'device', 'description']
    .map((k) => (typeof info?.[k] === 'string' ? info[k] : ''))
    .filter(Boolean)
    .join(' ');
  const name = info?.description || text || 'unnamed';
  if (info?.isFallbackAdapter === true || adapter?.isFallbackAdapter === true) {
    return { software: true, name, why: 'a fallback adapter (it reports isFallbackAdapter)' };
  }
  const m = SOFTWARE.exec(text);
  if (m) return { software: true, name, why: `a ${m[0]} software rasteriser` };
  if (!text && info?.isFallbackAdapter === undefined) return { silent: true, name };
  return { software: false, name };
}

/** The probe pool: DivPrune, 576 x 256, keep 10 %, fixed values. */
function probePool() {
  const n = 576, d = 256;
  const features = new Float32Array(n * d);
  for (let i = 0; i < features.length; i++) features[i] = Math.sin(i * 0.7 + (i % d) * 0.37);
  return { features, options: { n, d, method: 'divprune', keepRatio: 0.1 } };
}

/** One timed call, after a tiny warm-up call (pipelines and buffers made once). */
async function timeOne(p, pool) {
  await p.prune({ features: pool.features.subarray(0, 64 * 16), options: { n: 64, d: 16, method: 'divprune', keep: 6 } });
  const t = performance.now();
  await p.prune(pool);
  return performance.now() - t;
}

/** A raw pruner: the CPU engine synchronously, WebGPU as an asynchronous call. */
async function rawCreate(kind) {
  if (kind === 'cpu') return guard('Pruner.create()', () => RawPruner.createCpu());
  return asyncCall('Pruner.create()', () => RawPruner.create([kind]));
}

/**
 * A LocalPruner on the first backend of `backends` that works. WebGPU is tried only where
 * `navigator.gpu` exists; a software or fallback adapter (SwiftShader, llvmpipe, WARP) is
 * skipped while a CPU backend follows it in the list (the CPU engine is faster), and taken
 * when WebGPU is asked for alone (`['webgpu']`). An adapter that reports nothing about itself
 * is timed against the CPU engine on a small DivPrune pool; the faster one is kept. A CPU
 * pruner gets its threads (`threads`: `'auto'` or a count; ./threads.js) once, here.
 */
export async function createLocal(backends, wasmUrl, threads) {
  const { list } = backendList(backends);
  const asked = threadsOption(threads);
  await ensureInit(wasmUrl);
  const p = await chooseBackend(list);
  if (p.backend === 'cpu') await p.startThreads(await threadsFor(asked), threadSource());
  else if (asked !== 1) p.threadsReason = 'threads: the WebGPU backend runs its work on the GPU';
  return p;
}

/** Where the threads load the module from: what this thread loaded it from, when it can be sent. */
function threadSource() {
  let source = loadedFrom ?? wasmSource ?? undefined;
  if (source instanceof URL) source = source.href;
  if (typeof source === 'string' && !isNode() && globalThis.location) source = new URL(source, globalThis.location.href).href;
  if (typeof Response === 'function' && source instanceof Response) return undefined;
  return source;
}

/** A LocalPruner on the first backend of `list` that works (see createLocal). */
async function chooseBackend(list) {
  const notes = [];
  for (let i = 0; i < list.length; i++) {
    const cpuAfter = list.slice(i + 1).includes('cpu');
    if (list[i] === 'cpu') {
      const raw = await rawCreate('cpu');
      return new LocalPruner(raw, notes.length ? notes.join('; ') : null);
    }
    const gpu = globalThis.navigator?.gpu;
    if (!gpu) {
      notes.push('webgpu: WebGPU does not exist here (no navigator.gpu' + (isNode() ? ': Node.js has none)' : ')'));
      continue;
    }
    let adapter = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch (e) {
      notes.push(`webgpu: navigator.gpu.requestAdapter() failed: ${messageOf(e)}`);
      continue;
    }
    if (!adapter) {
      notes.push('webgpu: the browser offers no WebGPU adapter (WebGPU is disabled, blocklisted or unsupported here)');
      continue;
    }
    const kind = classifyAdapter(adapter, await adapterInfo(adapter));
    if (cpuAfter && kind.software) {
      notes.push(`webgpu: the adapter '${kind.name}' is ${kind.why}, slower than the CPU engine (ask for backends: ['webgpu'] to use it anyway)`);
      continue;
    }
    let raw;
    try {
      raw = await rawCreate('webgpu');
    } catch (e) {
      if (trapped) throw e;
      notes.push(messageOf(e).replace(/^backend: no backend available \((.*)\)$/, '$1'));
      continue;
    }
    if (cpuAfter && kind.silent) {
      const cpu = new LocalPruner(await rawCreate('cpu'), null);
      const gpuP = new LocalPruner(raw, null, kind.name);
      const pool = probePool();
      const [g, c] = [await timeOne(gpuP, pool), await timeOne(cpu, pool)];
      if (g > c) {
        gpuP.free();
        notes.push(`webgpu: the adapter reports no vendor, architecture or description, and ran a DivPrune probe (576 x 256) in ${g.toFixed(1)} ms against ${c.toFixed(1)} ms on the CPU engine (ask for backends: ['webgpu'] to use it anyway)`);
        cpu.fallbackReason = notes.join('; ');
        return cpu;
      }
      cpu.free();
      gpuP.fallbackReason = notes.length ? notes.join('; ') : null;
      return gpuP;
    }
    return new LocalPruner(raw, notes.length ? notes.join('; ') : null, kind.name);
  }
  throw new Error(`backend: no backend available (${notes.join('; ')})`);
}
