/**
 * tokenprune: prune the visual tokens of a multimodal LLM before they reach the language
 * model, with DivPrune or IDPruner, on WebGPU or the CPU.
 */

import type { FloatArray, Method, PruneOptions } from './options.js';
// The request options are generated from the Rust request schema (src/schema.rs).
export type * from './options.js';

/** Feature input: f32 values, or f16 values (a `Float16Array`, or their bits in a `Uint16Array`). */
export type Features = FloatArray;

/** One pool of a batch call: its features and its options. */
export type BatchItem = PruneOptions & { features: Features };

/** The tokens kept from one pool. */
export interface PruneResult {
  /** Kept token indices in positional (ascending) order: what the model consumes. */
  kept: Uint32Array;
  /** Kept token indices in selection order (first = seed). */
  order: Uint32Array;
  /** Each pick's score when it was picked, aligned with `order`. */
  scores: Float32Array;
  /** `(t, h, w)` of each kept token, flattened `[K * 3]`, aligned with `kept`; only with a grid. */
  coords?: Uint32Array;
  /** The backend that ran. */
  backend: 'webgpu' | 'cpu';
  /** The WebGPU adapter's name (its description, else vendor and architecture), or `null` on the CPU. */
  adapter: string | null;
  method: Method;
  n: number;
  d: number;
  /**
   * Time spent pruning this pool, in milliseconds. In a `pruneBatch` on the CPU each pool is
   * timed on its own; pools that ran together in one GPU submission share its time (a note says so).
   */
  elapsedMs: number;
  /**
   * GPU time of the submission(s) that ran this pool, in milliseconds, from timestamp queries;
   * `null` on the CPU engine or where the adapter offers no `'timestamp-query'` feature.
   */
  gpuMs: number | null;
  /** CPU threads that ran this call: more than 1 when its similarity stage was split across the pruner's threads. */
  threads: number;
  /** Things worth knowing (zero-norm rows, fallbacks). */
  notes: string[];
}

/** How diverse a kept set is and how well it covers what was pruned, in cosine distance `1 - cos`. */
export interface KeptSetFigures {
  /** Smallest distance between two kept tokens (higher = more diverse); `null` with fewer than two kept. */
  minPairwiseDistance: number | null;
  /** Largest distance from a pruned token to its nearest kept one (lower = better coverage); `null` when nothing was pruned. */
  maxUncoveredDistance: number | null;
  /** Mean distance from a pruned token to its nearest kept one; `null` when nothing was pruned. */
  meanUncoveredDistance: number | null;
}

/**
 * Computes the kept-set figures of `result` over the `[n, d]` `features` it was computed from
 * (on the CPU, in wasm). Loads the module when needed.
 */
export function keptSetFigures(features: Features, result: Pick<PruneResult, 'n' | 'd' | 'kept'>): Promise<KeptSetFigures>;

/**
 * Where the `.wasm` comes from: a URL (string or `URL`; in Node.js also a `file:` URL or a
 * path), a fetch `Response`, the bytes, or a compiled `WebAssembly.Module`. Typed
 * structurally so that neither DOM nor a newer `lib` is needed.
 */
export type WasmSource =
  | string
  | { readonly href: string }
  | ArrayBuffer
  | ArrayBufferView
  | { arrayBuffer(): Promise<ArrayBuffer> }
  | object;

/** Options of `Pruner.create`. */
export interface CreateOptions {
  /**
   * Backends in order of preference (default `['webgpu', 'cpu']`); the first available is used.
   * WebGPU is tried only where `navigator.gpu` exists (never in Node.js). A software or fallback
   * adapter (SwiftShader, llvmpipe, WARP) is slower than the CPU engine: it is skipped while
   * `'cpu'` follows in the list, and used when WebGPU is asked for alone (`['webgpu']`).
   */
  backends?: Array<'webgpu' | 'cpu'>;
  /** Run the pruner in a Worker (a worker thread in Node.js), off the calling thread. Default false. */
  worker?: boolean;
  /**
   * CPU threads for the CPU engine: `'auto'` (default: the logical cores,
   * `navigator.hardwareConcurrency`, where the page is cross-origin isolated; Node.js: the
   * available parallelism) or a count from 1 to 256. Large DivPrune / IDPruner calls split
   * their similarity stage across that many threads, the calling one and `threads - 1`
   * Workers (same selections); small ones, and pages that are not cross-origin isolated, run
   * in one thread (`threadsReason` says why).
   */
  threads?: 'auto' | number;
  /** Where to load the `.wasm` from, overriding the default next to this module. */
  wasmUrl?: WasmSource;
}

/** Prunes visual tokens. Create once, reuse for every call, `free()` when done. */
export class Pruner {
  private constructor(token: never, impl: never, worker: never);
  /** Creates a pruner on the first available backend. Rejects when none is. */
  static create(options?: CreateOptions): Promise<Pruner>;
  /** The backend in use. */
  readonly backend: 'webgpu' | 'cpu';
  /** The WebGPU adapter's name, or `null` on the CPU. */
  readonly adapter: string | null;
  /** Why an earlier backend of the list was not used (e.g. no WebGPU in Node.js, a software adapter), or `null`. */
  readonly fallbackReason: string | null;
  /** Whether this pruner runs in a Worker. */
  readonly worker: boolean;
  /** CPU threads the pruner splits large calls across (1: one thread). */
  readonly threads: number;
  /** Why the pruner has fewer threads than asked for (not cross-origin isolated, the WebGPU backend, a thread that failed), or `null`. */
  readonly threadsReason: string | null;
  /** Prunes one pool. Rejects with an `Error` naming the problem on bad input. */
  prune(features: Features, options: PruneOptions): Promise<PruneResult>;
  /** Prunes many independent pools (a batch of images) in one call; results in item order. */
  pruneBatch(items: BatchItem[]): Promise<PruneResult[]>;
  /** The kept rows of `features` in positional order, `[K, d]`, same array type as `features`. Throws on a result that does not fit. */
  gather<T extends Features>(features: T, result: Pick<PruneResult, 'n' | 'd' | 'kept'>): T;
  /** Releases the pruner's memory (and its worker and threads); it is unusable afterwards. */
  free(): void;
}

/** Overrides where the `.wasm` is loaded from; call before the first `Pruner.create()`. */
export function setWasmSource(source: WasmSource): void;

/** Bytes of wasm linear memory in use by the module (diagnostics; 0 before the first create). */
export function wasmMemoryBytes(): number;

export default Pruner;
