// The threaded-CPU benchmark body, the same in Chromium (threads.mjs serves it to a
// cross-origin isolated page) and in Node.js: a one-thread pruner and a threaded one, warm,
// called alternately on the same pools (one "pair" = one call on each); the driver times
// pairs and keeps the medians.

/** Deterministic features in [-0.5, 0.5). */
export function features(n, d, seed = 1) {
  const x = new Float32Array(n * d);
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return x;
}

const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Creates the two pruners and the pools of `cases` ([{ n, d, method, keep }]); returns
 * `{ info, pair(i), free() }`: `pair(i)` runs case i once on each pruner and resolves to
 * `{ singleMs, threadedMs, threadsUsed, equal, ceiling }`. `ceiling`: what this machine gives
 * N threads right now, measured beside them: N one-thread pruners in Workers (`worker: true`)
 * run case i one after another, then all at once; the ratio of the two times (N on N idle
 * cores, less on a loaded or shared machine) bounds the threaded pruner's speed-up.
 */
export async function threadsBench({ Pruner, cases, threads }) {
  const t0 = performance.now();
  const single = await Pruner.create({ backends: ['cpu'], threads: 1 });
  const t1 = performance.now();
  const multi = await Pruner.create({ backends: ['cpu'], threads });
  const info = { threads: multi.threads, threadsReason: multi.threadsReason, singleStartMs: t1 - t0, startMs: performance.now() - t1 };
  const engines = await Promise.all(Array.from({ length: multi.threads }, () => Pruner.create({ backends: ['cpu'], threads: 1, worker: true })));
  const pools = cases.map((c) => {
    const opts = { n: c.n, d: c.d, method: c.method, keep: c.keep };
    if (c.method === 'idpruner') opts.importance = features(c.n, 1, 7);
    return { x: features(c.n, c.d, c.n + c.d), opts };
  });
  return {
    info,
    async pair(i) {
      const { x, opts } = pools[i];
      let t = performance.now();
      const a = await single.prune(x, opts);
      const singleMs = performance.now() - t;
      t = performance.now();
      const b = await multi.prune(x, opts);
      const threadedMs = performance.now() - t;
      t = performance.now();
      for (const e of engines) await e.prune(x, opts);
      const oneByOne = performance.now() - t;
      t = performance.now();
      await Promise.all(engines.map((e) => e.prune(x, opts)));
      const ceiling = oneByOne / (performance.now() - t);
      return { singleMs, threadedMs, ceiling, threadsUsed: b.threads, equal: same(a.kept, b.kept) && same(a.order, b.order) && same(a.scores, b.scores) };
    },
    free() {
      single.free();
      multi.free();
      for (const e of engines) e.free();
    },
  };
}
