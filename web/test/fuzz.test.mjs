// Property / fuzz suite of the npm package's API (fast-check), in Node on the wasm CPU engine.
//
// Each run builds a random pool (shape, values with occasional NaN / inf / zero rows, method,
// budget, grid, per-frame, the methods' options, importance) and expresses it twice: plainly
// (a Float32Array and a plain options object, run on a reference pruner that never sees
// anything hostile) and in a random container: typed-array kinds (f16 bits, a subclass,
// another realm, a SharedArrayBuffer; and invalid ones: Float64Array, a plain Array, a Proxy,
// a detached buffer), option objects (frozen, null-prototype, getters, a benign Proxy; and
// invalid ones: an extra key, a throwing getter, a throwing Proxy), sometimes in a batch,
// sometimes on a worker, several calls at once.
//
// The property: a benign container gives exactly the plain call's outcome (the same result, or
// the same error); an invalid one rejects with an Error naming the problem; every resolved
// result is well formed (kept ascending and unique, order a permutation of kept, K from the
// budget, coordinates from the grid, finite scores) and, for DivPrune and IDPruner, passes
// SPEC's f64 tie-aware replay; no message leaks a trap or a binding detail; and the same
// pruners work afterwards. TOKENPRUNE_FUZZ_RUNS sets the runs (default 1000, about 5,000 calls).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import fc from 'fast-check';
import { Pruner } from '../src/index.js';
import { keptCount } from '../src/transformers.js';
import { replay } from './oracle.js';

const RUNS = Number(process.env.TOKENPRUNE_FUZZ_RUNS ?? 1000);
const BAD_MESSAGE = /unreachable|RuntimeError|JsValue\(|null pointer|borrowed|undefined is not|Cannot read|is not a function/;
const METHODS = ['divprune', 'idpruner', 'topk', 'random', 'uniform'];
const realm = vm.createContext({});
const stats = { runs: 0, calls: 0, resolved: 0, rejected: 0, failures: [] };

const reference = await Pruner.create({ backends: ['cpu'] });
const local = await Pruner.create({ backends: ['cpu'] });
const worker = await Pruner.create({ worker: true });
after(() => {
  worker.free();
  local.free();
  reference.free();
});

/** f32 -> nearest f16 bits (round half to even), and back. */
const f16 = (() => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return (v) => {
    f[0] = v;
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const e = (x >>> 23) & 0xff;
    let m = x & 0x7fffff;
    if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
    let exp = e - 127 + 15;
    if (exp >= 0x1f) return sign | 0x7c00;
    if (exp <= 0) {
      if (exp < -10) return sign;
      m |= 0x800000;
      const shift = 14 - exp;
      let h = m >> shift;
      const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      return sign | h;
    }
    let h = (exp << 10) | (m >> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    return sign | h;
  };
})();
function fromF16(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const rare = (valid, invalid, w = 8) => fc.oneof({ weight: w, arbitrary: valid }, { weight: 1, arbitrary: invalid });
const pool = fc
  .record({
    n: fc.integer({ min: 1, max: 24 }),
    d: fc.integer({ min: 1, max: 6 }),
    seed: fc.integer({ min: 0, max: 1e6 }),
    special: rare(fc.constant(null), fc.constantFrom(NaN, Infinity, -Infinity, 0, 1e30, 70000), 6),
    zeroRow: rare(fc.constant(false), fc.constant(true), 4),
    method: rare(fc.constantFrom(...METHODS), fc.constantFrom('DivPrune', '', 'cdpruner-x'), 12),
    budget: rare(fc.record({ kind: fc.constantFrom('keep', 'keepRatio', 'pruneRatio'), frac: fc.double({ min: 0, max: 1, noNaN: true }) }), fc.constantFrom({}, { keep: 2, keepRatio: 0.5 }, { keep: '3' }, { keep: 2.5 }, { keep: 0 }, { keep: 99 }, { keepRatio: NaN }, { pruneRatio: -0.1 }, { keepRatio: 1.01 })),
    grid: rare(fc.constantFrom('none', 'valid'), fc.constantFrom('junk-length', 'junk-strings', 'junk-wrong', 'junk-object', 'junk-huge')),
    frames: fc.integer({ min: 1, max: 3 }),
    perFrame: rare(fc.constantFrom(undefined, true, false), fc.constant('yes')),
    importance: rare(fc.constant('right'), fc.constantFrom('short', 'none', 'nan', 'extra')),
    lambda: rare(fc.oneof(fc.constant(undefined), fc.double({ min: 0, max: 1, noNaN: true })), fc.constantFrom(-0.5, 1.5, NaN)),
    parallelK: rare(fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 5 })), fc.constant(0)),
    rseed: rare(fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 2 ** 31 })), fc.constant(-1)),
  })
  .map((p) => {
    const { n, d, seed } = p;
    const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin((i + 1) * 12.9898 + seed) * 43758.5453 % 1);
    if (p.zeroRow) x.fill(0, 0, d);
    if (p.special !== null) x[(seed % n) * d] = p.special;
    const b = p.budget;
    const budget = b.kind === undefined ? b : b.kind === 'keep' ? { keep: Math.max(1, Math.round(b.frac * n)) } : { [b.kind]: b.frac };
    const opts = { n, d, method: p.method, ...budget };
    if (p.grid === 'valid') {
      const t = n % p.frames === 0 ? p.frames : 1;
      const per = n / t;
      let h = Math.floor(Math.sqrt(per));
      while (per % h) h--;
      opts.grid = t > 1 ? [t, h, per / h] : [h, per / h];
    } else if (p.grid !== 'none') {
      opts.grid = { 'junk-length': { length: 9e6 }, 'junk-strings': ['1', String(n)], 'junk-wrong': [n + 1, 1], 'junk-object': { 0: 1, 1: n, length: 2 }, 'junk-huge': [2 ** 31, 2 ** 31, 2] }[p.grid];
    }
    if (p.perFrame !== undefined) opts.perFrame = p.perFrame;
    // importance where the method takes it; elsewhere only as the 'extra' mistake
    if ((['idpruner', 'topk'].includes(p.method) && p.importance !== 'none') || p.importance === 'extra') {
      const len = p.importance === 'short' ? n - 1 : n;
      opts.importance = Float32Array.from({ length: len }, (_, i) => Math.cos(i * 3.7 + seed));
      if (p.importance === 'nan' && len > 0) opts.importance[0] = NaN;
    }
    if (p.method === 'idpruner') {
      if (p.lambda !== undefined) opts.lambda = p.lambda;
      if (p.parallelK !== undefined) opts.parallelK = p.parallelK;
    }
    if (p.method === 'random' && p.rseed !== undefined) opts.seed = p.rseed;
    return { x, opts };
  });

const featureKinds = ['f32', 'f32', 'f16bits', 'subclass', 'realm', 'shared', 'lengthGetter', 'float64', 'array', 'proxy', 'detached'];
const optionKinds = ['plain', 'plain', 'frozen', 'nullProto', 'getters', 'benignProxy', 'classInstance', 'extraKey', 'throwingGetter', 'throwingProxy'];
const INVALID_FEATURES = { float64: /features must be a Float32Array.*got Float64Array/, array: /features must be a Float32Array.*got Array/, proxy: /features must be a Float32Array.*look-alike/, detached: /features: the Float32Array's buffer is detached/ };
const INVALID_OPTIONS = { extraKey: /options\.lamdba is not an option \(did you mean lambda\?\)/, throwingGetter: /options\.n: reading it threw: fuzz getter/, throwingProxy: /options: listing its keys threw: fuzz trap/ };

/** The features in a container of `kind`, and the plain f32 values it stands for. */
function features(x, kind) {
  switch (kind) {
    case 'f16bits': {
      const bits = Uint16Array.from(x, f16);
      return { arg: bits, plain: Float32Array.from(bits, fromF16) };
    }
    case 'subclass': return { arg: new (class Tokens extends Float32Array {})(x), plain: x };
    case 'realm': {
      const a = vm.runInContext(`new Float32Array(${x.length})`, realm);
      a.set(x);
      return { arg: a, plain: x };
    }
    case 'shared': {
      const a = new Float32Array(new SharedArrayBuffer(x.byteLength + 4), 4, x.length);
      a.set(x);
      return { arg: a, plain: x };
    }
    case 'lengthGetter': {
      const a = x.slice();
      Object.defineProperty(a, 'length', { get() { throw new Error('fuzz length'); } });
      return { arg: a, plain: x };
    }
    case 'float64': return { arg: Float64Array.from(x) };
    case 'array': return { arg: Array.from(x) };
    case 'proxy': return { arg: new Proxy(x.slice(), {}) };
    case 'detached': {
      const a = x.slice();
      structuredClone(a, { transfer: [a.buffer] });
      return { arg: a };
    }
    default: return { arg: x.slice(), plain: x };
  }
}

/** The options in a wrapper of `kind` (the importance array possibly from another realm). */
function options(o, kind) {
  switch (kind) {
    case 'frozen': return Object.freeze({ ...o });
    case 'nullProto': return Object.assign(Object.create(null), o);
    case 'getters': {
      const g = {};
      for (const [k, v] of Object.entries(o)) Object.defineProperty(g, k, { get: () => v, enumerable: true });
      return g;
    }
    case 'benignProxy': return new Proxy({ ...o }, {});
    case 'classInstance': return Object.assign(new (class Opts {})(), o);
    case 'extraKey': return { ...o, lamdba: 0.3 };
    case 'throwingGetter': {
      const g = { ...o };
      Object.defineProperty(g, 'n', { get() { throw new Error('fuzz getter'); }, enumerable: true });
      return g;
    }
    case 'throwingProxy': return new Proxy({ ...o }, { ownKeys() { throw new Error('fuzz trap'); } });
    default: return { ...o };
  }
}

async function outcome(promise) {
  stats.calls++;
  try {
    const r = await promise;
    stats.resolved++;
    return { ok: true, r };
  } catch (e) {
    stats.rejected++;
    assert.ok(e instanceof Error, `rejected with a non-Error: ${String(e)}`);
    assert.ok(e.message.length > 0, 'empty message');
    assert.doesNotMatch(e.message, BAD_MESSAGE);
    return { ok: false, message: e.message };
  }
}

const pick = (r) => ({ kept: [...r.kept], order: [...r.order], scores: [...r.scores], coords: r.coords && [...r.coords], notes: r.notes, method: r.method, n: r.n, d: r.d, backend: r.backend });

/** Checks a resolved result against the request (shape, budget, grid, the replay). */
function wellFormed(r, x, o) {
  const { n, d } = o;
  const kept = [...r.kept], order = [...r.order];
  assert.equal(r.n, n);
  assert.equal(r.d, d);
  for (let i = 1; i < kept.length; i++) assert.ok(kept[i - 1] < kept[i], 'kept ascending and unique');
  assert.ok(kept.every((i) => i < n), 'kept in range');
  assert.deepEqual([...order].sort((a, b) => a - b), kept, 'order is a permutation of kept');
  assert.equal(r.scores.length, order.length);
  assert.ok([...r.scores].every(Number.isFinite), 'finite scores');
  if (o.grid) {
    assert.equal(r.coords.length, 3 * kept.length);
    const [t, h, w] = o.grid.length === 3 ? o.grid : [1, ...o.grid];
    kept.forEach((i, k) => assert.deepEqual([...r.coords.subarray(3 * k, 3 * k + 3)], [Math.floor(i / (h * w)), Math.floor(i / w) % h, i % w]));
    if (o.perFrame === true && t > 1) {
      const k = keptCount(n / t, o);
      for (let f = 0; f < t; f++) assert.equal(kept.filter((i) => Math.floor(i / (h * w)) === f).length, k, `frame ${f}`);
    }
  }
  if (!(o.perFrame === true && o.grid?.length === 3)) assert.equal(kept.length, keptCount(n, o), 'K from the budget');
  if ((o.method === 'divprune' || o.method === 'idpruner') && kept.length > 0 && kept.length < n && !(o.perFrame === true && o.grid?.length === 3)) {
    const def = replay(x, n, d, order, o.method, o.importance, o.lambda ?? 0.5, o.parallelK ?? 1);
    assert.ok(def <= 1e-5, `${o.method} deficit ${def}`);
  }
}

test(`fuzz: ${RUNS} random and hostile calls agree with the plain call, or reject with an Error naming the problem`, { timeout: 600_000 }, async (t) => {
  const run = fc.check(
    fc.asyncProperty(
      fc.array(fc.record({ pool, fk: fc.constantFrom(...featureKinds), ok: fc.constantFrom(...optionKinds), via: fc.constantFrom('prune', 'prune', 'batch', 'worker', 'workerBatch') }), { minLength: 1, maxLength: 4 }),
      async (calls) => {
        stats.runs++;
        // the plain calls first, on the reference pruner
        const plain = [];
        for (const c of calls) {
          const f = features(c.pool.x, c.fk);
          c.plainX = f.plain ?? c.pool.x;
          plain.push(await outcome(reference.prune(c.plainX, c.pool.opts)));
          c.arg = f.arg;
        }
        // then the containers, all at once; a batch item is the options object plus `features`
        const got = await Promise.all(
          calls.map((c) => {
            const p = c.via.startsWith('worker') ? worker : local;
            if (c.via.endsWith('atch')) return outcome(p.pruneBatch([options({ ...c.pool.opts, features: c.arg }, c.ok)]).then((rs) => rs[0]));
            return outcome(p.prune(c.arg, options(c.pool.opts, c.ok)));
          }),
        );
        calls.forEach((c, i) => {
          const g = got[i], p = plain[i];
          const why = `${c.fk} features, ${c.ok} options, via ${c.via}: ${JSON.stringify(c.pool.opts, (k, v) => (ArrayBuffer.isView(v) ? `[${v.length}]` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`;
          try {
            const expect = [INVALID_FEATURES[c.fk], INVALID_OPTIONS[c.ok]].filter(Boolean);
            if (expect.length) {
              assert.ok(!g.ok, 'invalid input resolved');
              // the request itself is valid: the error must name the container's problem
              if (p.ok) assert.ok(expect.some((re) => re.test(g.message)), `message '${g.message}' does not name the problem`);
            } else {
              assert.equal(g.ok, p.ok, g.ok ? 'resolved where the plain call rejected' : `rejected (${g.message}) where the plain call resolved`);
              if (g.ok) {
                const a = pick(g.r), b = pick(p.r);
                a.notes = a.notes.filter((s) => !s.startsWith('ran in one GPU submission'));
                assert.deepEqual(a, b);
                wellFormed(g.r, c.plainX, c.pool.opts);
              } else {
                assert.equal(g.message.replace(/^batch item 0: /, ''), p.message);
              }
            }
          } catch (e) {
            stats.failures.push(`${e.message} [${why}]`);
            throw new Error(`${e.message}\n  case: ${why}`);
          }
        });
        // the same pruners work afterwards
        for (const p of [local, worker]) {
          const r = await p.prune(new Float32Array([1, 0, 0, 1, 1, 1]), { n: 3, d: 2, keep: 2 });
          assert.deepEqual([...r.kept], [0, 1]);
        }
      },
    ),
    { numRuns: RUNS, seed: Number(process.env.TOKENPRUNE_FUZZ_SEED ?? 20261206), endOnFailure: true },
  );
  const res = await run;
  assert.ok(!res.failed, `${stats.failures[0] ?? res.errorInstance?.message ?? 'failed'} (fast-check seed ${res.seed}, path ${res.counterexamplePath})`);
  t.diagnostic(`${stats.runs} runs, ${stats.calls} calls (${stats.resolved} resolved, ${stats.rejected} rejected), ${stats.failures.length} failures`);
});
