// The threaded-CPU benchmark body, the same in Chromium (threads.mjs serves it to a
// cross-origin isolated page) and in Node.js: a one-thread pruner and a threaded one, warm,
// called alternately on the same pools; medians and the same-run ratio, and whether the
// selections are equal.

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

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Runs `cases` ([{ n, d, method, keep }]) on `single` and `threaded` pruners, `repeats` timed
 * calls each after 2 warm-up calls, alternating; returns one row per case.
 */
export async function runThreadsBench({ Pruner, cases, repeats, threads, log = () => {} }) {
  const t0 = performance.now();
  const single = await Pruner.create({ backends: ['cpu'], threads: 1 });
  const t1 = performance.now();
  const multi = await Pruner.create({ backends: ['cpu'], threads });
  const startMs = performance.now() - t1;
  log(`pruners: one thread in ${(t1 - t0).toFixed(0)} ms; ${multi.threads} threads (${multi.threadsReason ?? 'as asked'}) in ${startMs.toFixed(0)} ms`);
  const rows = [];
  for (const c of cases) {
    const x = features(c.n, c.d, c.n + c.d);
    const opts = { n: c.n, d: c.d, method: c.method, keep: c.keep };
    if (c.method === 'idpruner') opts.importance = features(c.n, 1, 7);
    const ts = [], tm = [];
    let a, b;
    for (let w = 0; w < 2; w++) {
      a = await single.prune(x, opts);
      b = await multi.prune(x, opts);
    }
    for (let r = 0; r < repeats; r++) {
      let t = performance.now();
      a = await single.prune(x, opts);
      ts.push(performance.now() - t);
      t = performance.now();
      b = await multi.prune(x, opts);
      tm.push(performance.now() - t);
    }
    const row = { ...c, singleMs: median(ts), threadedMs: median(tm), threadsUsed: b.threads, equal: same(a.kept, b.kept) && same(a.order, b.order) && same(a.scores, b.scores) };
    row.ratio = row.singleMs / row.threadedMs;
    log(`${c.method} ${c.n}x${c.d} K=${c.keep}: one thread ${row.singleMs.toFixed(1)} ms, ${row.threadsUsed} threads ${row.threadedMs.toFixed(1)} ms, x${row.ratio.toFixed(2)}, equal ${row.equal}`);
    rows.push(row);
  }
  const out = { threads: multi.threads, threadsReason: multi.threadsReason, startMs, rows };
  single.free();
  multi.free();
  return out;
}
