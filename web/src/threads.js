// The CPU engine's threads: a pool of Workers (worker_threads in Node.js), made once per
// Pruner and ended by its free(), each running its own single-threaded instance of the wasm
// module (stable Rust builds no wasm std with atomics, so the instances share no memory).
//
// A call whose similarity stage is worth splitting (the Rust side plans it: `prepare()`)
// sends the tokens once, in a SharedArrayBuffer, to every thread; each computes its share
// of the tiles with the CPU engine's own stage (`similarityPart()`), and the calling
// instance joins them and runs the greedy loop (`runPrepared()`). Same selection as one
// thread, bit for bit. Threads are used only where the page is cross-origin isolated
// (SharedArrayBuffer exists); elsewhere the CPU engine runs in one thread.
import { Channel } from './rpc.js';
import { describe, messageOf, paramError } from './inputs.js';

const isNode = () => typeof process !== 'undefined' && process.versions?.node != null && typeof window === 'undefined';
const NODE_WT = 'node:worker_threads';
const NODE_OS = 'node:os';

/** The most threads a pruner may ask for. */
export const MAX_THREADS = 256;

/** `Pruner.create({ threads })`, checked: `'auto'` or an integer in [1, MAX_THREADS]. */
export function threadsOption(v) {
  if (v === undefined || v === 'auto') return 'auto';
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_THREADS) return v;
  const got = typeof v === 'number' || typeof v === 'string' ? JSON.stringify(v) : describe(v);
  throw paramError(`Pruner.create(): options.threads must be 'auto' or an integer from 1 to ${MAX_THREADS}, got ${got}`);
}

/**
 * How many threads a CPU pruner gets for `asked` (`'auto'` or a count): `{ count, reason }`,
 * `reason` saying why it is fewer than asked (null when as asked). Threads need a cross-origin
 * isolated page (SharedArrayBuffer) and Workers; `'auto'` is the number of logical cores.
 */
export async function threadsFor(asked) {
  if (asked === 1) return { count: 1, reason: null };
  if (typeof SharedArrayBuffer !== 'function' || (!isNode() && globalThis.crossOriginIsolated !== true)) {
    return {
      count: 1,
      reason: 'threads: the page is not cross-origin isolated (no SharedArrayBuffer; serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp): the CPU engine runs in one thread',
    };
  }
  if (!isNode() && typeof Worker !== 'function') {
    return { count: 1, reason: 'threads: this global has no Worker: the CPU engine runs in one thread' };
  }
  if (asked !== 'auto') return { count: asked, reason: null };
  let cores = globalThis.navigator?.hardwareConcurrency;
  if (isNode() && !(cores >= 1)) {
    const os = await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_OS);
    cores = os.availableParallelism?.() ?? os.cpus().length;
  }
  cores = Math.min(Number.isInteger(cores) && cores >= 1 ? cores : 1, MAX_THREADS);
  return { count: cores, reason: cores === 1 ? 'threads: auto on one logical core: the CPU engine runs in one thread' : null };
}

/** Test hooks: split every call that can be (not only those that pay), make the next share fail. */
const testing = { splitAll: false, failNext: null };

/** Test hook: `splitAll` splits every DivPrune / IDPruner call of a threaded pruner, however small. */
export function setSplitAllForTests(on) {
  testing.splitAll = !!on;
}

/** Test hook: the next share's thread traps its module (`'trap'`) or dies (`'crash'`) mid-call. */
export function failNextShareForTests(mode) {
  testing.failNext = mode;
}

/** Whether calls split however small they are (a test hook). */
export function splitAll() {
  return testing.splitAll;
}

/** The pool of one pruner: `size` workers, each with its own module instance. */
export class Threads {
  #channels;

  /** Starts `count` workers and loads the module in each (`source`: where the `.wasm` is). */
  static async start(count, source) {
    const spawn = async () => {
      if (isNode()) {
        const { Worker } = await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_WT);
        return new Worker(new URL('./worker.js', import.meta.url));
      }
      return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    };
    const channels = [];
    try {
      for (let i = 0; i < count; i++) channels.push(new Channel(await spawn()));
      await Promise.all(channels.map((c) => c.call('threadInit', { wasmUrl: source })));
      for (const c of channels) c.port.unref?.();
    } catch (e) {
      for (const c of channels) c.close();
      throw e;
    }
    const t = new Threads();
    t.#channels = channels;
    return t;
  }

  /** Number of threads. */
  get size() {
    return this.#channels?.length ?? 0;
  }

  /**
   * The shares of `plan` (from `prepare()`), one per thread, computed from `features` (a
   * Float32Array or Uint16Array snapshot). The features are copied once, now (before the
   * caller's promise returns), into a SharedArrayBuffer every thread reads.
   */
  run(plan, features) {
    const channels = this.#channels;
    if (!channels) return Promise.reject(new Error('tokenprune: the threads were ended'));
    const shared = new features.constructor(new SharedArrayBuffer(features.byteLength));
    shared.set(features);
    const fail = testing.failNext;
    testing.failNext = null;
    // Node.js: the threads keep the process alive only while they work for a call.
    for (const c of channels) c.port.ref?.();
    const unref = () => {
      if (this.#channels === channels) for (const c of channels) c.port.unref?.();
    };
    const all = Promise.all(
      plan.shares.map(([first, count], i) => {
        const { policy, n, d, block, keepTiles } = plan;
        const share = { policy, n, d, block, keepTiles, first, count };
        if (fail && i === plan.shares.length - 1) share.fail = fail;
        return channels[i].call('similarityPart', { features: shared, share });
      }),
    );
    all.then(unref, unref);
    return all;
  }

  /** Ends every worker. */
  close() {
    const channels = this.#channels;
    this.#channels = null;
    for (const c of channels ?? []) c.close();
  }
}

/** The Error a call rejects with when a thread failed: it names the cause. */
export function threadError(e, during) {
  // A thread's own module advice ("create a new Pruner") does not apply to this pruner.
  const why = messageOf(e).replace(/^tokenprune: /, '').replace(/; this pruner is gone: .*$/, '');
  return new Error(`tokenprune: a CPU thread failed during ${during} (${why}); this pruner's threads were ended and it runs in one thread from now on`);
}
