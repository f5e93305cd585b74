// The worker entry point of `Pruner.create({ worker: true })`: a module worker (or a Node.js
// worker thread) that hosts the wasm module and its pruners, answering ./rpc.js calls. The
// page's Pruner sends input snapshots (./inputs.js) and gets plain results back.
import { createLocal, ensureInit, setWasmSource, similarityPart, trapForTests } from './host.js';
import { serve, transferable } from './rpc.js';

const pruners = new Map();
let next = 1;

/** What the page's WorkerPruner shows of a pruner. */
function info(p) {
  return { backend: p.backend, adapter: p.adapter, fallbackReason: p.fallbackReason, threads: p.threads, threadsReason: p.threadsReason };
}

function pruner(id) {
  const p = pruners.get(id);
  if (!p) throw new Error('tokenprune: this Pruner was freed');
  return p;
}

/** A result with its typed arrays moved, not copied, to the caller. */
function moved(result) {
  const transfer = [];
  for (const r of Array.isArray(result) ? result : [result]) {
    for (const k of ['kept', 'order', 'scores', 'coords']) if (r[k]) transfer.push(r[k].buffer);
  }
  return transferable(result, transfer);
}

const handlers = {
  async create({ backends, wasmUrl, threads }) {
    if (wasmUrl !== undefined && pruners.size === 0 && next === 1) setWasmSource(wasmUrl);
    const p = await createLocal(backends, undefined, threads);
    const id = next++;
    pruners.set(id, p);
    return { id, ...info(p) };
  },
  info({ id }) {
    return info(pruner(id));
  },
  // A CPU thread of a pruner (./threads.js): loads the module, then computes shares.
  async threadInit({ wasmUrl }) {
    await ensureInit(wasmUrl);
  },
  async similarityPart({ features, share }) {
    if (share.fail === 'trap') await trapForTests();
    if (share.fail === 'crash') {
      // Dies as an uncaught error would (the caller sees the worker's error event).
      setTimeout(() => {
        throw new Error('tokenprune: a thread crash requested by a test');
      });
      return new Promise(() => {});
    }
    // Writes into the caller's shared memory; nothing to send back.
    similarityPart(features, share);
    return null;
  },
  async prune({ id, args }) {
    return moved(await pruner(id).prune(args));
  },
  async pruneBatch({ id, items }) {
    return moved(await pruner(id).pruneBatch(items));
  },
  free({ id }) {
    pruners.get(id)?.free();
    pruners.delete(id);
  },
};

const NODE_WT = 'node:worker_threads';
if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  serve(globalThis, handlers);
} else {
  import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_WT).then(({ parentPort }) => serve(parentPort, handlers));
}
