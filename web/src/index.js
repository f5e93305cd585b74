// tokenprune: visual-token pruning for multimodal LLMs, in the browser (WebGPU) or on the CPU.
// A thin layer over the wasm module built from the Rust crate (see ../README.md):
//   inputs.js  every caller value read once, in JavaScript, into a snapshot the module can read
//              without anything throwing (or an Error naming the problem);
//   host.js    the module in this thread: loading, replacing it when it traps, the backend
//              choice, the pruners;
//   worker.js, rpc.js  the same host in a Worker (`Pruner.create({ worker: true })`).
import { batchArgs, countOf, describe, detachable, featuresOf, indicesOf, paramError, pruneArgs, typedKind } from './inputs.js';
import { backendList, createLocal, ensureInit, keptSetFigures as localFigures, setWasmSource, wasmMemoryBytes, wasmSourceOverride } from './host.js';
import { Channel } from './rpc.js';
import { threadsOption } from './threads.js';

export { setWasmSource, wasmMemoryBytes };

const CREATE_KEYS = ['backends', 'threads', 'wasmUrl', 'worker'];

function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(prev + (a[i - 1] === b[j - 1] ? 0 : 1), row[j - 1] + 1, cur + 1);
      prev = cur;
    }
  }
  return row[b.length];
}

/** `Pruner.create()`'s options, read once and checked. */
function createOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw paramError(`Pruner.create() takes an options object { backends, threads, worker, wasmUrl }, got ${describe(options)}`);
  }
  const out = {};
  let keys;
  try {
    keys = Reflect.ownKeys(options);
  } catch (e) {
    throw paramError(`Pruner.create(): listing the options' keys threw: ${e?.message ?? e}`);
  }
  for (const key of keys) {
    if (typeof key !== 'string') continue;
    if (!CREATE_KEYS.includes(key)) {
      const near = CREATE_KEYS.find((k) => distance(k, key) <= 2);
      throw paramError(`Pruner.create(): options.${key} is not an option${near ? ` (did you mean ${near}?)` : ''}`);
    }
    try {
      out[key] = options[key];
    } catch (e) {
      throw paramError(`Pruner.create(): options.${key}: reading it threw: ${e?.message ?? e}`);
    }
  }
  if (out.backends !== undefined) {
    try {
      out.backends = Array.isArray(out.backends) ? Array.from(out.backends) : out.backends;
    } catch (e) {
      throw paramError(`Pruner.create(): options.backends: reading it threw: ${e?.message ?? e}`);
    }
  }
  backendList(out.backends);
  if (out.worker !== undefined && typeof out.worker !== 'boolean') {
    throw paramError(`Pruner.create(): options.worker must be true or false, got ${describe(out.worker)}`);
  }
  out.threads = threadsOption(out.threads);
  return out;
}

const isNode = () => typeof process !== 'undefined' && process.versions?.node != null && typeof window === 'undefined';
const NODE_WT = 'node:worker_threads';

/** A pruner that lives in a Worker: the same methods as a LocalPruner, over ./rpc.js. */
class WorkerPruner {
  #channel;
  #id;

  static async create({ backends, wasmUrl, threads }) {
    const given = wasmUrl ?? wasmSourceOverride();
    if (given !== undefined && typeof Response === 'function' && given instanceof Response) {
      throw paramError("Pruner.create({ worker: true }): wasmUrl cannot be a Response (it cannot be sent to a worker); pass a URL, the bytes or a WebAssembly.Module");
    }
    let worker;
    if (isNode()) {
      const { Worker } = await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_WT);
      worker = new Worker(new URL('./worker.js', import.meta.url));
    } else if (typeof Worker === 'function') {
      worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    } else {
      throw new Error('backend: worker: true needs Worker (a page or a worker with module workers, or Node.js)');
    }
    const channel = new Channel(worker);
    // A URL is resolved here (a relative one against the page, not the worker script).
    let source = wasmUrl ?? wasmSourceOverride();
    if (source instanceof URL) source = source.href;
    if (typeof source === 'string' && !isNode() && globalThis.location) source = new URL(source, globalThis.location.href).href;
    let info;
    try {
      info = await channel.call('create', { backends, wasmUrl: source, threads });
    } catch (e) {
      channel.close();
      throw e;
    }
    const p = new WorkerPruner();
    p.#channel = channel;
    p.#id = info.id;
    p.backend = info.backend;
    p.adapter = info.adapter;
    p.fallbackReason = info.fallbackReason;
    p.threads = info.threads;
    p.threadsReason = info.threadsReason;
    return p;
  }

  async prune(args) {
    const transfer = [];
    const a = detachable(args, transfer);
    try {
      return await this.#channel.call('prune', { id: this.#id, args: a }, transfer);
    } catch (e) {
      // A failed thread ends the pruner's threads in the worker: show it here too.
      if (this.threads > 1) {
        const info = await this.#channel.call('info', { id: this.#id }).catch(() => null);
        if (info) ({ threads: this.threads, threadsReason: this.threadsReason } = info);
      }
      throw e;
    }
  }

  pruneBatch(items) {
    const transfer = [];
    const a = detachable(items, transfer);
    return this.#channel.call('pruneBatch', { id: this.#id, items: a }, transfer);
  }

  free() {
    this.#channel.close();
  }
}

const TOKEN = Symbol('tokenprune.Pruner');

/** Prunes visual tokens. Create once with `Pruner.create()`, reuse for every call, `free()` at the end. */
export class Pruner {
  #impl;
  #worker;

  constructor(token, impl, worker) {
    if (token !== TOKEN) throw new Error('tokenprune: use `await Pruner.create()`, not `new Pruner()`');
    this.#impl = impl;
    this.#worker = worker;
  }

  /**
   * Creates a pruner on the first backend of `backends` that is available (default
   * `['webgpu', 'cpu']`: WebGPU on a hardware adapter, else the CPU engine, with the reason in
   * `fallbackReason`). `worker: true` runs it in a Worker (off this thread). `threads`
   * (`'auto'`, default, or a count) splits the CPU engine's large calls across Workers where
   * the page is cross-origin isolated.
   */
  static async create(options = {}) {
    const o = createOptions(options);
    const impl = o.worker ? await WorkerPruner.create(o) : await createLocal(o.backends, o.wasmUrl, o.threads);
    return new Pruner(TOKEN, impl, !!o.worker);
  }

  /** `'webgpu'` or `'cpu'`. */
  get backend() {
    return this.#live().backend;
  }

  /** The WebGPU adapter's name, or `null` on the CPU backend. */
  get adapter() {
    return this.#live().adapter;
  }

  /** Why an earlier backend of the list was not used (e.g. no WebGPU here), or `null`. */
  get fallbackReason() {
    return this.#live().fallbackReason;
  }

  /**
   * How many threads the CPU engine uses for a call that is worth splitting (1: one thread;
   * see `threadsReason`). Each result's `threads` says how many ran that call.
   */
  get threads() {
    return this.#live().threads;
  }

  /** Why the pruner has fewer threads than asked for (not cross-origin isolated, WebGPU, a failed thread), or `null`. */
  get threadsReason() {
    return this.#live().threadsReason;
  }

  /** Whether this pruner runs in a Worker. */
  get worker() {
    return this.#worker;
  }

  /** Prunes one pool of `n` tokens of width `d`. */
  async prune(features, options) {
    const impl = this.#live();
    return impl.prune(pruneArgs(features, options));
  }

  /** Prunes many pools in one call: `items` = `[{ features, n, d, ... }]`. */
  async pruneBatch(items) {
    const impl = this.#live();
    return impl.pruneBatch(batchArgs(items));
  }

  /** The kept rows of `features` (`[n, d]`), in positional order: a `[K, d]` array of the same type. */
  gather(features, result) {
    const { n, d, kept } = resultOf(result, 'gather()');
    const kind = typedKind(features);
    if (!kind) throw paramError(`gather(): features must be a typed array, got ${describe(features)}`);
    const view = typedView(features, kind, 'gather(): features');
    if (view.length !== n * d) {
      throw paramError(`gather(): features hold ${view.length} values, the result is for ${n} x ${d} = ${n * d}`);
    }
    for (let k = 0; k < kept.length; k++) {
      if (kept[k] >= n) throw paramError(`gather(): kept index ${kept[k]} is out of range for ${n} tokens`);
    }
    const out = new view.constructor(kept.length * d);
    for (let k = 0; k < kept.length; k++) out.set(view.subarray(kept[k] * d, (kept[k] + 1) * d), k * d);
    return out;
  }

  /** Releases the pruner's memory (GPU buffers included; a worker pruner's worker). Unusable afterwards. */
  free() {
    const impl = this.#impl;
    this.#impl = null;
    impl?.free();
  }

  #live() {
    if (!this.#impl) throw new Error('tokenprune: this Pruner was freed');
    return this.#impl;
  }
}

/** A fresh view of this realm over a typed array of any kind (no copy). */
function typedView(v, kind, what) {
  const Ctor = globalThis[kind];
  if (typeof Ctor !== 'function') throw paramError(`${what}: ${kind} does not exist in this JavaScript engine`);
  const buffer = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'buffer').get.call(v);
  try {
    new Uint8Array(buffer, 0, 0);
  } catch {
    throw paramError(`${what}: the ${kind}'s buffer is detached`);
  }
  const TA = Object.getPrototypeOf(Uint8Array.prototype);
  const offset = Object.getOwnPropertyDescriptor(TA, 'byteOffset').get.call(v);
  const length = Object.getOwnPropertyDescriptor(TA, 'length').get.call(v);
  return new Ctor(buffer, offset, length);
}

/** `{ n, d, kept }` of a result, checked: counts, and kept as integer indices. */
function resultOf(result, what) {
  if (result === null || typeof result !== 'object') throw paramError(`${what}: result must be a prune() result { n, d, kept }, got ${describe(result)}`);
  let n, d, kept;
  try {
    ({ n, d, kept } = result);
  } catch (e) {
    throw paramError(`${what}: reading the result threw: ${e?.message ?? e}`);
  }
  return { n: countOf(n, `${what}: result.n`), d: countOf(d, `${what}: result.d`), kept: indicesOf(kept, `${what}: result.kept`) };
}

/**
 * Diversity and coverage of the tokens a result kept, in cosine distance `1 - cos`:
 * `{ minPairwiseDistance, maxUncoveredDistance, meanUncoveredDistance }` (see the .d.ts).
 * `features` are the `[n, d]` tokens the result was computed from.
 */
export async function keptSetFigures(features, result) {
  const { n, d, kept } = resultOf(result, 'keptSetFigures()');
  await ensureInit();
  return localFigures(featuresOf(features), n, d, kept);
}

export default Pruner;
