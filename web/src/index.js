// tokenprune: visual-token pruning for multimodal LLMs, in the browser (WebGPU) or on the CPU.
// A thin layer over the wasm module built from the Rust crate (see ../README.md).
import init, { Pruner as RawPruner, keptSetFigures as rawFigures } from '../dist/tokenprune.js';

let ready = null;
let wasmSource = null;
let wasm = null;
let loadedFrom = null;

/**
 * Overrides where the `.wasm` is loaded from (a URL, a `Response`, bytes or a
 * `WebAssembly.Module`). Call before the first `Pruner.create()`.
 */
export function setWasmSource(source) {
  if (ready) throw new Error('tokenprune: setWasmSource() must be called before Pruner.create()');
  wasmSource = source;
}

async function defaultSource() {
  const url = new URL('../dist/tokenprune_bg.wasm', import.meta.url);
  const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return readFile(url);
  }
  return url;
}

function ensureInit(source) {
  if (ready && source !== undefined && source !== loadedFrom) {
    throw new Error('tokenprune: the wasm module is already loaded; pass wasmUrl only to the first Pruner.create()');
  }
  if (!ready) {
    loadedFrom = source;
    ready = (async () => {
      wasm = await init({ module_or_path: await (source ?? wasmSource ?? defaultSource()) });
    })();
    ready.catch(() => { ready = null; });
  }
  return ready;
}

/** Bytes of wasm linear memory in use by the module (diagnostics; 0 before the first create). */
export function wasmMemoryBytes() {
  return wasm ? wasm.memory.buffer.byteLength : 0;
}

/**
 * Diversity and coverage of the tokens a result kept, in cosine distance `1 - cos`:
 * `{ minPairwiseDistance, maxUncoveredDistance, meanUncoveredDistance }` (see the .d.ts).
 * `features` are the `[n, d]` tokens the result was computed from.
 */
export async function keptSetFigures(features, result) {
  await ensureInit();
  return rawFigures(features, result.n, result.d, result.kept);
}

// The wasm side reports the backend as { kind, adapter }; results carry both as fields.
function shape(result) {
  const { kind, adapter } = result.backend;
  result.backend = kind;
  result.adapter = adapter;
  return result;
}

/** Prunes visual tokens. Create once with `Pruner.create()`, reuse for every call, `free()` at the end. */
export class Pruner {
  #raw;

  constructor(raw) {
    this.#raw = raw;
  }

  /**
   * Creates a pruner on the first backend of `backends` that is available
   * (default `['webgpu', 'cpu']`).
   */
  static async create(options = {}) {
    await ensureInit(options.wasmUrl);
    const raw = await RawPruner.create(options.backends ?? ['webgpu', 'cpu']);
    return new Pruner(raw);
  }

  /** `'webgpu'` or `'cpu'`. */
  get backend() {
    return this.#live().backend.kind;
  }

  /** The WebGPU adapter's name, or `null` on the CPU backend. */
  get adapter() {
    return this.#live().backend.adapter;
  }

  /** Prunes one pool of `n` tokens of width `d`. */
  async prune(features, options) {
    return shape(await this.#live().prune(features, options));
  }

  /** Prunes many pools in one call: `items` = `[{ features, n, d, ... }]`. */
  async pruneBatch(items) {
    if (!Array.isArray(items)) throw new Error('tokenprune: pruneBatch() takes an array of { features, n, d, ... }');
    return (await this.#live().pruneBatch(items)).map(shape);
  }

  /** The kept rows of `features` (`[n, d]`), in positional order: a `[K, d]` array of the same type. */
  gather(features, result) {
    const d = result.d;
    if (features.length !== result.n * d) {
      throw new Error(`tokenprune: gather() got ${features.length} values, the result is for ${result.n} x ${d}`);
    }
    const out = new features.constructor(result.kept.length * d);
    result.kept.forEach((i, k) => out.set(features.subarray(i * d, (i + 1) * d), k * d));
    return out;
  }

  /** Releases the pruner's memory (GPU buffers included). The pruner is unusable afterwards. */
  free() {
    if (this.#raw) {
      this.#raw.free();
      this.#raw = null;
    }
  }

  #live() {
    if (!this.#raw) throw new Error('tokenprune: this Pruner was freed');
    return this.#raw;
  }
}

export default Pruner;
