// The CPU engine's threads: a pool of Workers (worker_threads in Node.js), made once per
// Pruner and ended by its free(), each running its own single-threaded instance of the wasm
// module (stable Rust builds no wasm std with atomics, so the instances share no memory).
//
// A call whose similarity stage is worth splitting (the Rust side plans it: `prepare()`)
// writes the tokens once, in a SharedArrayBuffer, for every worker. The calling thread and the
// workers then take row blocks to normalise from one counter in that shared memory (Atomics),
// publishing each there for the others, and tiles of the similarity from another, one at a
// time until none is left: a thread that starts late or runs on a busier core takes fewer. No
// thread waits for another: a block not yet published when a thread needs it is normalised
// there too. Workers compute their tiles with the CPU engine's own kernel (`similarityPart()`)
// and write them into the shared memory; the caller computes its tiles in place in its own
// instance (`computeShare()`), copies in the workers' and runs the greedy loop
// (`runPrepared()`). N threads are the caller and N - 1 workers. Same selection as one
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
const testing = { splitAll: false, failNext: null, workersOnly: false };

/** Test hook: `splitAll` splits every DivPrune / IDPruner call of a threaded pruner, however small. */
export function setSplitAllForTests(on) {
  testing.splitAll = !!on;
}

/** Test hook: the next share's thread traps its module (`'trap'`) or dies (`'crash'`) mid-call. */
export function failNextShareForTests(mode) {
  testing.failNext = mode;
}

/** Test hook: the calling thread takes no tiles, the workers take them all (else who takes what depends on timing). */
export function setWorkersOnlyForTests(on) {
  testing.workersOnly = !!on;
}

/** Whether calls split however small they are (a test hook). */
export function splitAll() {
  return testing.splitAll;
}

/**
 * The most bytes of shared memory a pruner's threads keep between calls (the features, their
 * normalised rows and the workers' results of the largest call so far: 30 MB for 2304 x 1024);
 * a call needing more gets its own buffer.
 */
const KEEP_BYTES = 64 * 2 ** 20;

/** The threads of one pruner: the calling thread and `size - 1` workers, each worker with its own module instance. */
export class Threads {
  #channels;
  /** The SharedArrayBuffer calls reuse, one at a time (fresh memory costs page faults: ~1.5 ms for 576 x 1024). */
  #arena = null;
  /** Whether a call holds the arena (until its `release()`). */
  #arenaHeld = false;
  /** Calls whose workers are at work. */
  #busy = 0;

  /** Starts `count - 1` workers (the caller is the count-th) and loads the module in each (`source`: where the `.wasm` is). */
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
      for (let i = 1; i < count; i++) channels.push(new Channel(await spawn()));
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

  /** Number of threads, the calling one included (0 once ended). */
  get size() {
    return this.#channels ? this.#channels.length + 1 : 0;
  }

  /**
   * Starts the workers on `plan` (from `prepare()`): `{ counter, ready, rows, done, nns,
   * tiles, release }`. `writeFeatures(view)` fills a Float32Array of N x D on shared memory
   * with the pool (`prepared.writeFeatures`), now, before any worker starts. Every thread
   * (workers, and the caller meanwhile: `computeShare({ counter, ready, rows })`) first takes
   * row blocks from `counter[1]`, normalises them and publishes them to `rows` (flagging each
   * in `ready`), copies the blocks others published, then takes tiles from `counter[0]` until
   * none is left; a worker writes each tile to its place in `tiles` and its maxima to its
   * `nns` entry. `done` resolves when every worker has finished; the arrays, views of shared
   * memory, stay valid until `release()` (call it once they are joined, or dropped).
   */
  run(plan, writeFeatures) {
    const channels = this.#channels;
    if (!channels) throw new Error('tokenprune: the threads were ended');
    const { policy, n, d, block, keepTiles, blocks } = plan;
    // One shared buffer: the two counters, the block flags, the features, the normalised
    // rows, the tiles region, each worker's maxima.
    const pad16 = (b) => Math.ceil(b / 16) * 16;
    const values = n * d;
    const flagsAt = 16;
    const featuresAt = flagsAt + pad16(4 * blocks);
    const rowsAt = featuresAt + pad16(4 * values);
    const tilesAt = rowsAt + pad16(4 * values);
    const tileValues = keepTiles ? plan.tiles * plan.tileLen : 0;
    const nnsAt = tilesAt + 4 * tileValues;
    const bytes = nnsAt + 4 * channels.length * n;
    const { arena, release: free } = this.#take(bytes);
    const counter = new Int32Array(arena, 0, 2);
    Atomics.store(counter, 0, 0);
    Atomics.store(counter, 1, 0);
    const ready = new Int32Array(arena, flagsAt, blocks);
    ready.fill(0);
    const features = new Float32Array(arena, featuresAt, values);
    try {
      writeFeatures(features);
    } catch (e) {
      free();
      throw e;
    }
    const rows = new Float32Array(arena, rowsAt, values);
    const tiles = new Float32Array(arena, tilesAt, tileValues);
    const nns = channels.map((_, i) => new Float32Array(arena, nnsAt + 4 * i * n, n));
    const fail = testing.failNext;
    testing.failNext = null;
    // Node.js: the threads keep the process alive only while they work for a call.
    if (this.#busy++ === 0) for (const c of channels) c.port.ref?.();
    const settled = () => {
      if (--this.#busy === 0 && this.#channels === channels) for (const c of channels) c.port.unref?.();
    };
    const done = Promise.all(
      channels.map((c, i) => {
        const share = { policy, n, d, block, keepTiles, counter, ready, rows, nn: nns[i], tiles };
        if (fail && i === channels.length - 1) share.fail = fail;
        return c.call('similarityPart', { features, share });
      }),
    );
    done.then(settled, settled);
    // The memory is free for the next call once the caller released it and no worker writes.
    let callerDone = false;
    let workersDone = false;
    const freeWhenBoth = () => callerDone && workersDone && free();
    const workersSettled = () => {
      workersDone = true;
      freeWhenBoth();
    };
    done.then(workersSettled, workersSettled);
    const release = () => {
      callerDone = true;
      freeWhenBoth();
    };
    // The caller's counters: the shared ones, or (test hook) ones with every tile and row
    // block already taken.
    const mine = testing.workersOnly ? new Int32Array([plan.tiles, blocks]) : counter;
    return { counter: mine, ready, rows, done, nns, tiles, release };
  }

  /** Shared memory for a call of `bytes`: the kept buffer when no call holds it, else (or when too large to keep) a fresh one. */
  #take(bytes) {
    if (this.#arenaHeld || bytes > KEEP_BYTES) return { arena: new SharedArrayBuffer(bytes), release() {} };
    if (!this.#arena || this.#arena.byteLength < bytes) this.#arena = new SharedArrayBuffer(bytes);
    this.#arenaHeld = true;
    let held = true;
    const release = () => {
      if (held) this.#arenaHeld = held = false;
    };
    return { arena: this.#arena, release };
  }

  /** Ends every worker. */
  close() {
    const channels = this.#channels;
    this.#channels = null;
    this.#arena = null;
    for (const c of channels ?? []) c.close();
  }
}

/** The Error a call rejects with when a thread failed: it names the cause. */
export function threadError(e, during) {
  // A thread's own module advice ("create a new Pruner") does not apply to this pruner.
  const why = messageOf(e).replace(/^tokenprune: /, '').replace(/; this pruner is gone: .*$/, '');
  return new Error(`tokenprune: a CPU thread failed during ${during} (${why}); this pruner's threads were ended and it runs in one thread from now on`);
}
