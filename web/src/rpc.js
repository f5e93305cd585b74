// A small request/response channel over postMessage, the same in browsers (Worker, the
// worker's `self`) and Node.js (worker_threads). Each call has an id; errors cross as
// { name, message } and are rethrown as Error. Reusable for any worker the package runs.

/** Calls `fn(data)` for every message on `port`. */
function listen(port, fn) {
  if (typeof port.addEventListener === 'function') {
    port.addEventListener('message', (ev) => fn(ev.data));
    port.start?.();
  } else {
    port.on('message', fn);
  }
}

/** The caller's end: `call(method, args, transfer)` resolves to the handler's result. */
export class Channel {
  #port;
  #next = 1;
  #pending = new Map();
  #closed = null;

  /** `port`: a Worker (browser or worker_threads). */
  constructor(port) {
    this.#port = port;
    listen(port, (m) => {
      const p = this.#pending.get(m?.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.error?.message ?? 'tokenprune: the worker failed'), { name: m.error?.name ?? 'Error' }));
    });
    const stop = (why) => this.#fail(`tokenprune: the worker stopped (${why})`);
    if (typeof port.addEventListener === 'function') {
      port.addEventListener('error', (ev) => {
        ev.preventDefault?.();
        stop(ev.message || 'an uncaught error');
      });
      port.addEventListener('messageerror', () => stop('a message could not be read'));
    } else {
      port.on('error', (e) => stop(e?.message ?? String(e)));
      port.on('exit', (code) => stop(`exit code ${code}`));
    }
  }

  #fail(why) {
    this.#closed ??= why;
    for (const p of this.#pending.values()) p.reject(new Error(this.#closed));
    this.#pending.clear();
  }

  /** The Worker. */
  get port() {
    return this.#port;
  }

  /** Sends one call; `transfer`: buffers moved to the worker (the caller must not reuse them). */
  call(method, args, transfer = []) {
    if (this.#closed) return Promise.reject(new Error(this.#closed));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#port.postMessage({ id, method, args }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        reject(e);
      }
    });
  }

  /** Stops the worker; pending calls reject. */
  close() {
    this.#fail('terminated');
    this.#port.terminate();
  }
}

/**
 * The worker's end: answers each call with `handlers[method](args)`; a handler may return
 * `{ value, transfer }` through `transferable()` to move buffers back.
 */
export function serve(port, handlers) {
  listen(port, async (m) => {
    const { id, method, args } = m ?? {};
    try {
      const h = handlers[method];
      if (typeof h !== 'function') throw new Error(`tokenprune: the worker has no method ${String(method)}`);
      const out = await h(args);
      const t = out instanceof Transferable ? out : new Transferable(out, []);
      port.postMessage({ id, ok: true, value: t.value }, t.transfer);
    } catch (e) {
      port.postMessage({ id, ok: false, error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } });
    }
  });
}

class Transferable {
  constructor(value, transfer) {
    this.value = value;
    this.transfer = transfer;
  }
}

/** A handler's result whose `transfer` buffers move to the caller. */
export function transferable(value, transfer) {
  return new Transferable(value, transfer);
}
