// The npm package in Node.js (no browser): backends, hostile and edge inputs, traps, the
// worker mode, the wasm source. Each test names the issue item it holds. Needs `bash build.sh`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { Pruner, keptSetFigures, setWasmSource } from '../src/index.js';
import { trapForTests } from '../src/host.js';
import { replay, same } from './oracle.js';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, '..', 'dist', 'tokenprune_bg.wasm');
assert.ok(existsSync(wasmPath), 'web/dist is missing: run `bash web/build.sh` first');

const n = 64, d = 24;
const x = Float32Array.from({ length: n * d }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1);
const imp = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 3.7));
const BAD_MESSAGE = /unreachable|RuntimeError|JsValue\(|null pointer|borrowed|undefined is not|Cannot read/;

async function rejects(promise, pattern, { trap = false } = {}) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `did not reject (expected ${pattern})`);
  assert.ok(err instanceof Error, `rejected with a non-Error: ${err}`);
  assert.match(err.message, pattern);
  if (!trap) assert.doesNotMatch(err.message, BAD_MESSAGE);
  return err.message;
}

const baseline = await (await Pruner.create({ backends: ['cpu'] })).prune(x, { n, d, keep: 7 });

async function stillWorks(p) {
  const r = await p.prune(x, { n, d, keep: 7 });
  assert.deepEqual([...r.order], [...baseline.order], 'the pruner gives other results after the errors');
}

test('issue 15.1: Pruner.create() in Node resolves to the CPU engine with a reason; WebGPU alone rejects', async () => {
  for (const opts of [undefined, {}, { backends: ['webgpu', 'cpu'] }]) {
    const p = await Pruner.create(opts);
    assert.equal(p.backend, 'cpu');
    assert.equal(p.adapter, null);
    assert.match(p.fallbackReason, /WebGPU does not exist here \(no navigator\.gpu: Node\.js has none\)/);
    await stillWorks(p);
    p.free();
  }
  const cpu = await Pruner.create({ backends: ['cpu'] });
  assert.equal(cpu.fallbackReason, null);
  await rejects(Pruner.create({ backends: ['webgpu'] }), /no backend available \(webgpu: WebGPU does not exist here/);
  await rejects(Pruner.create({ backends: ['metal'] }), /backend 'metal' is not one of webgpu, cpu/);
  await rejects(Pruner.create({ backends: [] }), /backends must be a non-empty array/);
  await rejects(Pruner.create({ workers: true }), /options\.workers is not an option \(did you mean worker\?\)/);
  await stillWorks(cpu);
});

test('issue 15.2: hostile options reject with an Error naming the problem, and never poison the module', async (t) => {
  const p = await Pruner.create({ backends: ['cpu'] });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const cases = [
    [{ n, d, keep: 3, grid: { length: 9e6 } }, /options\.grid must be \[frames, height, width\]/],
    [{ n, d, keep: 3, grid: new Array(9e6) }, /options\.grid must be/],
    [{ n, d, keep: 3, grid: [2, 2, 4, 4] }, /options\.grid must be/],
    [{ n, d, keep: 3, grid: ['4', 4, 4] }, /options\.grid must be/],
    [{ n, d, keep: 3, grid: [2 ** 40, 1, 1] }, /options\.grid must be/],
    [{ n, d, keep: 3, grid: revoked.proxy }, /options\.grid: reading it threw/],
    [{ n, d, keep: 3, grid: new Proxy([4, 4, 4], { get() { throw new Error('grid trap'); } }) }, /options\.grid: reading it threw: grid trap/],
    [{ n: 2 ** 53, d, keep: 3 }, /options\.n must be a non-negative integer/],
    [{ n: -1, d, keep: 3 }, /options\.n must be a non-negative integer/],
    [{ n: NaN, d, keep: 3 }, /options\.n must be a non-negative integer/],
    [{ n, d: Infinity, keep: 3 }, /options\.d must be a non-negative integer/],
    [{ n, d, keep: 1e300 }, /keep/],
    [{ n, d, keepRatio: NaN }, /keep ratio/],
    [{ n, d, keep: 3, method: 'random', seed: 2 ** 60 }, /options\.seed must be a non-negative integer/],
    [{ n, d, keep: 3, method: { toString() { throw new Error('x'); } } }, /options\.method must be one of/],
    [{ n, d, keep: 3, method: Symbol('m') }, /options\.method must be one of/],
    [{ n, d, get keep() { throw new Error('boom'); } }, /options\.keep: reading it threw: boom/],
    [{ n, d, keep: 3, lamda: 0.05 }, /options\.lamda is not an option \(did you mean lambda\?\)/],
    [{ n, d, keep: 3, [Symbol('s')]: 1, extra: 1 }, /options\.extra is not an option/],
    [new Proxy({ n, d, keep: 3 }, { ownKeys() { throw new Error('keys trap'); } }), /options: listing its keys threw: keys trap/],
    [new Proxy({ n, d, keep: 3 }, { get(t, k) { if (k === 'keep') throw new Error('get trap'); return t[k]; } }), /options\.keep: reading it threw: get trap/],
    [revoked.proxy, /options: listing its keys threw/],
    [null, /options must be an object/],
    ['keep 3', /options must be an object/],
    [() => 3, /options must be an object/],
    [[n, d, 3], /options must be an object/],
    [{ n, d, keep: 3, method: 'idpruner', importance: new Proxy(imp, {}) }, /options\.importance must be a Float32Array.*look-alike/],
    [{ n, d, keep: 3, method: 'idpruner', importance: [1, 2] }, /options\.importance must be a Float32Array.*got Array/],
    [{ n, d, keep: 3, method: 'idpruner', importance: new Float64Array(n) }, /options\.importance must be a Float32Array.*got Float64Array/],
  ];
  for (const [opts, pattern] of cases) await rejects(p.prune(x, opts), pattern);
  // the same with a hostile batch item, and hostile items arrays
  await rejects(p.pruneBatch([{ features: x, n, d, keep: 3 }, { features: x, n, d, keep: 3, grid: { length: 9e6 } }]), /batch item 1: parameter: options\.grid must be/);
  await rejects(p.pruneBatch([{ get features() { throw new Error('f'); } }]), /batch item 0: features: reading it threw: f/);
  await rejects(p.pruneBatch(new Proxy([], { get() { throw new Error('items trap'); } })), /pruneBatch\(\) takes an array/);
  await rejects(p.pruneBatch({ length: 9e6 }), /pruneBatch\(\) takes an array/);
  await rejects(p.pruneBatch([7]), /batch item 0: must be an object/);
  await stillWorks(p);
  const fresh = await Pruner.create({ backends: ['cpu'] });
  await stillWorks(fresh);
  t.diagnostic(`${cases.length} hostile option objects`);
});

test('issue 15.3: detached inputs, throwing length getters and detached batch items leave the pruner whole', async () => {
  const p = await Pruner.create({ backends: ['cpu'] });
  const detached = x.slice();
  structuredClone(detached, { transfer: [detached.buffer] });
  await rejects(p.prune(detached, { n, d, keep: 3 }), /features: the Float32Array's buffer is detached/);
  const bits = new Uint16Array(4);
  structuredClone(bits, { transfer: [bits.buffer] });
  await rejects(p.prune(bits, { n: 2, d: 2, keep: 1 }), /features: the Uint16Array's buffer is detached/);
  const dImp = imp.slice();
  structuredClone(dImp, { transfer: [dImp.buffer] });
  await rejects(p.prune(x, { n, d, keep: 3, method: 'idpruner', importance: dImp }), /options\.importance: the Float32Array's buffer is detached/);
  await rejects(p.pruneBatch([{ features: x, n, d, keep: 7 }, { features: detached, n, d, keep: 3 }]), /batch item 1: features: the Float32Array's buffer is detached/);
  // a throwing `length` (own property or subclass) is never read: the intrinsic length is
  const own = x.slice();
  Object.defineProperty(own, 'length', { get() { throw new Error('length getter'); } });
  class Evil extends Float32Array {
    get length() { throw new Error('subclass length'); }
    get buffer() { throw new Error('subclass buffer'); }
  }
  for (const f of [own, new Evil(x)]) {
    const r = await p.prune(f, { n, d, keep: 7 });
    assert.deepEqual([...r.order], [...baseline.order]);
    const [b] = await p.pruneBatch([{ features: f, n, d, keep: 7 }]);
    assert.deepEqual([...b.order], [...baseline.order]);
  }
  await rejects(p.prune(new Proxy(x, {}), { n, d, keep: 3 }), /features must be a Float32Array, Float16Array or Uint16Array \(f16 bits\), got Float32Array look-alike/);
  await stillWorks(p);
  p.free(); // no "taken while borrowed": nothing was left borrowed
  p.free();
  await rejects(p.prune(x, { n, d, keep: 3 }), /this Pruner was freed/);
});

test('issue 15.4: pruneBatch honours perFrame like prune', async () => {
  const p = await Pruner.create({ backends: ['cpu'] });
  const opts = { n, d, keep: 2, grid: [4, 4, 4], perFrame: true };
  const one = await p.prune(x, opts);
  assert.equal(one.kept.length, 8, '2 per frame, 4 frames');
  const [a, b, c] = await p.pruneBatch([{ features: x, ...opts }, { features: x, n, d, keep: 2, grid: [4, 4, 4] }, { features: x, ...opts }]);
  assert.deepEqual([...a.kept], [...one.kept]);
  assert.deepEqual([...c.kept], [...one.kept]);
  assert.equal(b.kept.length, 2);
  for (let f = 0; f < 4; f++) assert.equal([...a.kept].filter((i) => Math.floor(i / 16) === f).length, 2, `frame ${f}`);
});

test('issue 15.6: gather checks kept; keptSetFigures checks n and d; batch items carry their own time', async (t) => {
  const p = await Pruner.create({ backends: ['cpu'] });
  const r = await p.prune(x, { n, d, keep: 5 });
  const rows = p.gather(x, r);
  assert.equal(rows.length, 5 * d);
  for (let k = 0; k < 5; k++) assert.deepEqual([...rows.subarray(k * d, (k + 1) * d)], [...x.subarray(r.kept[k] * d, (r.kept[k] + 1) * d)]);
  assert.throws(() => p.gather(x, { ...r, kept: new Uint32Array([99]) }), /kept index 99 is out of range for 64 tokens/);
  assert.throws(() => p.gather(x, { ...r, kept: [1.5] }), /result\.kept\[0\] = 1\.5 is not a token index/);
  assert.throws(() => p.gather(x, { ...r, kept: [-1] }), /result\.kept\[0\] = -1 is not a token index/);
  assert.throws(() => p.gather(x, { ...r, n: 2 ** 32 + 16 }), /result\.n must be a non-negative integer below 2\^32/);
  assert.throws(() => p.gather(x.subarray(1), r), /features hold 1535 values, the result is for 64 x 24/);
  await rejects(keptSetFigures(x.subarray(0, 16 * d), { n: 2 ** 32 + 16, d, kept: new Uint32Array([0, 1]) }), /result\.n must be a non-negative integer below 2\^32, got 4294967312/);
  await rejects(keptSetFigures(x, { n, d, kept: [0.5] }), /result\.kept\[0\] = 0\.5 is not a token index/);
  const f = await keptSetFigures(x, r);
  assert.ok(f.minPairwiseDistance > 0);

  // Each batch item's elapsedMs is its own (CPU): a 2304 x 64 pool and a 16 x 4 one.
  const bigN = 2304, bigD = 64;
  const big = Float32Array.from({ length: bigN * bigD }, (_, i) => Math.sin(i * 0.37));
  const tiny = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i));
  const [rb, rt] = await p.pruneBatch([{ features: big, n: bigN, d: bigD, keepRatio: 0.1 }, { features: tiny, n: 16, d: 4, keep: 2 }]);
  assert.ok(rt.elapsedMs < rb.elapsedMs / 4, `tiny item ${rt.elapsedMs} ms vs big item ${rb.elapsedMs} ms: not each item's own time`);
  assert.ok(rb.gpuMs === null && rt.gpuMs === null && r.gpuMs === null, 'the CPU engine reports no GPU time');
  t.diagnostic(`batch: big ${rb.elapsedMs.toFixed(1)} ms, tiny ${rt.elapsedMs.toFixed(2)} ms`);
});

test('issue 15.7: typed arrays from another realm, subclasses, shared memory, f16 bits', async () => {
  const p = await Pruner.create({ backends: ['cpu'] });
  const realm = vm.createContext({});
  const other = vm.runInContext(`new Float32Array(${x.length})`, realm);
  other.set(x);
  const otherImp = vm.runInContext(`new Float32Array(${n})`, realm);
  otherImp.set(imp);
  class Sub extends Float32Array {}
  const sab = new Float32Array(new SharedArrayBuffer(x.byteLength + 8), 8, x.length);
  sab.set(x);
  for (const [what, f] of [['other realm', other], ['subclass', new Sub(x)], ['SharedArrayBuffer', sab]]) {
    const r = await p.prune(f, { n, d, keep: 7 });
    assert.deepEqual([...r.order], [...baseline.order], what);
  }
  const ref = await p.prune(x, { n, d, keep: 7, method: 'idpruner', importance: imp });
  const viaOther = await p.prune(other, { n, d, keep: 7, method: 'idpruner', importance: otherImp });
  assert.deepEqual([...viaOther.order], [...ref.order]);
  const figures = await keptSetFigures(other, ref);
  assert.deepEqual(figures, await keptSetFigures(x, ref));
  // f16 bits, on a SharedArrayBuffer and from another realm: equal to the same values in f32
  const h = new Uint16Array(new SharedArrayBuffer(8));
  h.set([0x3c00, 0x4000, 0x4200, 0x3c00]); // 1, 2, 3, 1
  const h2 = vm.runInContext('new Uint16Array([0x3c00, 0x4000, 0x4200, 0x3c00])', realm);
  const f32 = new Float32Array([1, 2, 3, 1]);
  const want = await p.prune(f32, { n: 2, d: 2, keep: 1 });
  for (const bits of [h, h2]) assert.deepEqual([...(await p.prune(bits, { n: 2, d: 2, keep: 1 })).order], [...want.order]);
  // gather returns this realm's array of the input's kind
  const rows = p.gather(other, ref);
  assert.equal(Object.getPrototypeOf(rows), Float32Array.prototype);
  assert.deepEqual([...rows], [...p.gather(x, ref)]);
});

function node(script) {
  return new Promise((ok, fail) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: here }, (e, so, se) => (e ? fail(new Error(`${e.message}\n${se}`)) : ok(so.trim()))),
  );
}

test('issue 15.8: wasmUrl and setWasmSource take file: URLs and paths in Node', async () => {
  const index = pathToFileURL(join(here, '..', 'src', 'index.js')).href;
  const fileUrl = pathToFileURL(wasmPath).href;
  const rel = relative(here, wasmPath);
  const sources = {
    'a file: URL object': `new URL(${JSON.stringify(fileUrl)})`,
    'a file: URL string': JSON.stringify(fileUrl),
    'an absolute path': JSON.stringify(wasmPath),
    'a relative path': JSON.stringify(rel),
    'the bytes': `(await import('node:fs')).readFileSync(${JSON.stringify(wasmPath)})`,
  };
  for (const [what, src] of Object.entries(sources)) {
    for (const how of ['wasmUrl', 'setWasmSource']) {
      const create = how === 'wasmUrl' ? `Pruner.create({ backends: ['cpu'], wasmUrl: ${src} })` : `(setWasmSource(${src}), Pruner.create({ backends: ['cpu'] }))`;
      const out = await node(`
        import { Pruner, setWasmSource } from ${JSON.stringify(index)};
        const p = await ${create};
        const r = await p.prune(new Float32Array([1, 0, 0, 1, 1, 1]), { n: 3, d: 2, keep: 2 });
        console.log(p.backend, [...r.kept].join(','));`);
      assert.equal(out, 'cpu 0,1', `${how} with ${what}`);
    }
  }
  // setWasmSource after the module is loaded is an Error, not a silent no-op
  assert.throws(() => setWasmSource(wasmPath), /setWasmSource\(\) must be called before Pruner\.create\(\)/);
});

test('issue 15 (no panic reaches JavaScript): a trapped module is replaced; its pruners reject with an Error saying so', async () => {
  const before = await Pruner.create({ backends: ['cpu'] });
  await stillWorks(before);
  await rejects(trapForTests(), /tokenprune: the wasm module trapped \(RuntimeError: unreachable\)/, { trap: true });
  await rejects(before.prune(x, { n, d, keep: 7 }), /this pruner's wasm module trapped during an earlier call \(the wasm module trapped \(RuntimeError: unreachable\)/, { trap: true });
  await rejects(before.pruneBatch([{ features: x, n, d, keep: 7 }]), /trapped/, { trap: true });
  before.free(); // never frees a stale pointer into the new instance
  const after = await Pruner.create({ backends: ['cpu'] });
  await stillWorks(after);
  const r = await after.prune(x, { n, d, keep: 9, method: 'idpruner', importance: imp });
  assert.ok(replay(x, n, d, [...r.order], 'idpruner', imp, 0.5, 1) <= 1e-5);
  assert.deepEqual(await keptSetFigures(x, r), await keptSetFigures(x, r));
});

test('issue 15.5: worker: true runs in a worker thread with the same results, and the event loop keeps turning', async (t) => {
  const local = await Pruner.create({ backends: ['cpu'] });
  const w = await Pruner.create({ worker: true });
  assert.equal(w.worker, true);
  assert.equal(w.backend, 'cpu');
  assert.match(w.fallbackReason, /navigator\.gpu/);
  for (const opts of [{ n, d, keep: 7 }, { n, d, method: 'idpruner', importance: imp, keepRatio: 0.25 }, { n, d, keep: 2, grid: [4, 4, 4], perFrame: true }]) {
    const [a, b] = [await local.prune(x, opts), await w.prune(x, opts)];
    for (const k of ['kept', 'order', 'scores', 'coords']) assert.ok(a[k] === undefined ? b[k] === undefined : same(a[k], b[k]), k);
    assert.deepEqual(b.notes, a.notes);
  }
  const items = [0, 1, 2].map((s) => ({ features: x.map((v, i) => v * ((i + s) % 5 + 1)), n, d, keep: 4 + s }));
  const [lb, wb] = [await local.pruneBatch(items), await w.pruneBatch(items)];
  assert.deepEqual(wb.map((r) => [...r.order]), lb.map((r) => [...r.order]));
  // the same errors, and the caller's arrays stay usable (copied, not moved)
  const msgs = await Promise.all([local, w].map((p) => rejects(p.prune(x, { n, d, keep: 65 }), /keep count 65 exceeds N = 64/)));
  assert.equal(msgs[0], msgs[1]);
  assert.equal(x.length, n * d);
  // concurrent calls resolve in their own order
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => w.prune(x, { n, d, keep: 1 + i })));
  many.forEach((r, i) => assert.equal(r.kept.length, 1 + i));
  // a long call (DivPrune 3000 x 128) leaves the event loop free
  const bn = 3000, bd = 128;
  const big = Float32Array.from({ length: bn * bd }, (_, i) => Math.sin(i * 0.37));
  let last = performance.now(), maxGap = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    maxGap = Math.max(maxGap, t - last);
    last = t;
  }, 2);
  const t0 = performance.now();
  const r = await w.prune(big, { n: bn, d: bd, keepRatio: 0.1 });
  const took = performance.now() - t0;
  clearInterval(timer);
  const ref = await local.prune(big, { n: bn, d: bd, keepRatio: 0.1 });
  assert.deepEqual([...r.order], [...ref.order]);
  assert.ok(maxGap < took / 3, `the event loop stalled ${maxGap.toFixed(0)} ms during a ${took.toFixed(0)} ms worker call`);
  w.free();
  await rejects(w.prune(x, { n, d, keep: 3 }), /this Pruner was freed/);
  t.diagnostic(`DivPrune 3000 x 128 on a worker thread: ${took.toFixed(0)} ms, longest event-loop gap ${maxGap.toFixed(1)} ms`);
});

test('issue 14.4: threads in Node.js (worker_threads): split calls equal one thread; a dying thread rejects, the pruner goes on; bad values', async (t) => {
  const { setSplitAllForTests, failNextShareForTests, setWorkersOnlyForTests } = await import('../src/threads.js');
  const one = await Pruner.create({ backends: ['cpu'], threads: 1 });
  const auto = await Pruner.create({ backends: ['cpu'] });
  const { availableParallelism } = await import('node:os');
  assert.equal(auto.threads, Math.min(availableParallelism(), 256));
  auto.free();
  const p = await Pruner.create({ backends: ['cpu'], threads: 3 });
  assert.equal(p.threads, 3);
  assert.equal(p.threadsReason, null);
  setSplitAllForTests(true);
  try {
    const big = Float32Array.from({ length: 300 * 37 }, (_, i) => Math.sin(i * 0.37));
    big.fill(0, 37, 74); // a zero row
    // Who takes which tile depends on timing; also with the workers taking them all.
    for (const [f, bn, bd, workersOnly] of [[x, n, d], [big, 300, 37], [x.subarray(0, 2 * d), 2, d], [x, n, d, true], [big, 300, 37, true]]) {
      setWorkersOnlyForTests(workersOnly);
      const bimp = imp.length >= bn ? imp.subarray(0, bn) : Float32Array.from({ length: bn }, (_, i) => Math.cos(i));
      for (const opts of [{ n: bn, d: bd, keep: 1 }, { n: bn, d: bd, keepRatio: 0.3 }, { n: bn, d: bd, method: 'idpruner', importance: bimp, keepRatio: 0.3, parallelK: 2 }]) {
        const [a, b] = [await one.prune(f, opts), await p.prune(f, opts)];
        for (const k of ['kept', 'order', 'scores']) assert.ok(same(a[k], b[k]), `${bn} x ${bd}${workersOnly ? ' (workers only)' : ''} ${JSON.stringify({ ...opts, importance: undefined })}: ${k}`);
        assert.deepEqual(b.notes, a.notes);
        assert.ok(b.threads >= 1 && b.threads <= 3 && (bn < 300 || b.threads === 3), `ran on ${b.threads} threads`);
      }
    }
    setWorkersOnlyForTests(false);
    // concurrent calls on one threaded pruner
    const many = await Promise.all(Array.from({ length: 6 }, (_, i) => p.prune(x, { n, d, keep: 1 + i })));
    for (const [i, r] of many.entries()) assert.ok(same(r.order, (await one.prune(x, { n, d, keep: 1 + i })).order));
    failNextShareForTests('crash');
    await rejects(p.prune(x, { n, d, keep: 7 }), /a CPU thread failed during prune\(\) \(the worker stopped/);
    assert.equal(p.threads, 1);
    assert.match(p.threadsReason, /a CPU thread failed/);
    await stillWorks(p);
  } finally {
    setSplitAllForTests(false);
    setWorkersOnlyForTests(false);
    failNextShareForTests(null);
  }
  p.free();
  one.free();
  for (const bad of [0, 2.5, 'four', -3, 1000]) {
    await rejects(Pruner.create({ threads: bad }), /options\.threads must be 'auto' or an integer from 1 to 256/);
  }
  const w = await Pruner.create({ worker: true, threads: 2 });
  assert.equal(w.threads, 2);
  w.free();
  t.diagnostic(`auto = ${availableParallelism()} threads here`);
});
