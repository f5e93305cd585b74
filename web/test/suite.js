// In-page test suite: runs in Chromium against the packed npm package.
// Every check returns { name, ok, detail }; test/browser.test.mjs asserts them.
import { Pruner, keptSetFigures, wasmMemoryBytes } from '/node_modules/tokenprune/src/index.js';
import { replay, same } from './oracle.js';

const MAX_DEFICIT = 1e-5;

async function npy(name) {
  const buf = await (await fetch(`/data/${name}`)).arrayBuffer();
  const bytes = new Uint8Array(buf);
  const hlen = new DataView(buf).getUint16(8, true);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + hlen));
  if (!header.includes("'<f4'")) throw new Error(`${name}: expected <f4, got ${header}`);
  const shape = /'shape': \(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: new Float32Array(buf.slice(10 + hlen)) };
}


async function check(name, fn) {
  try {
    const detail = await fn();
    return { name, ok: true, detail: detail ?? '' };
  } catch (e) {
    return { name, ok: false, detail: String(e && e.stack ? e.stack : e) };
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function rejects(promise, needle) {
  try {
    await promise;
  } catch (e) {
    assert(e instanceof Error, `rejected with a non-Error: ${e}`);
    assert(e.message.includes(needle), `message '${e.message}' lacks '${needle}'`);
    return e.message;
  }
  throw new Error(`did not reject (expected '${needle}')`);
}

/**
 * Runs every check; `expectBackend` is 'webgpu' or 'cpu'. Each result is also appended to
 * `window.suiteResults` as soon as its check ends, so that the runner times each check alone.
 */
export async function runSuite(expectBackend) {
  const results = (window.suiteResults = []);
  // WebGPU asked for by name: SwiftShader here, a software adapter the default would skip
  const pruner = await Pruner.create({ backends: expectBackend === 'webgpu' ? ['webgpu'] : ['webgpu', 'cpu'] });
  results.push(await check('backend', () => {
    assert(pruner.backend === expectBackend, `got backend ${pruner.backend} (adapter ${pruner.adapter}), expected ${expectBackend}`);
    return `${pruner.backend} ${pruner.adapter ?? ''}`;
  }));

  const cases = ['v01_divprune', 'v02_divprune', 'v05_idpruner', 'v06_idpruner', 'v10_divprune'];
  const feats = {};
  for (const id of cases) {
    results.push(await check(`conformance ${id}`, async () => {
      const c = await (await fetch(`/data/${id}.json`)).json();
      feats[c.features] ??= (await npy(c.features)).data;
      const x = feats[c.features];
      const imp = c.importance ? (await npy(c.importance)).data : undefined;
      const opts = { n: c.n, d: c.d, method: c.method, importance: imp, lambda: c.mmr_lambda, parallelK: c.parallel_k };
      if (c.keep_ratio !== undefined) opts.keepRatio = c.keep_ratio; else opts.pruneRatio = c.prune_ratio;
      const r = await pruner.prune(x, opts);
      assert(r.backend === expectBackend, `ran on ${r.backend}`);
      // GPU time: null on the CPU; on WebGPU a time where the adapter has timestamp queries.
      assert(expectBackend === 'cpu' ? r.gpuMs === null : r.gpuMs === null || (Number.isFinite(r.gpuMs) && r.gpuMs >= 0 && r.gpuMs <= r.elapsedMs), `gpuMs ${r.gpuMs} (elapsed ${r.elapsedMs} ms)`);
      assert(r.order.length === c.keep, `K ${r.order.length} != ${c.keep}`);
      assert(same([...r.kept], [...r.order].sort((a, b) => a - b)), 'kept is not the sorted order');
      const exactCase = c.min_step_gap_f64 > 1e-5 || c.features.startsWith('f_exact');
      // GPUs without correctly rounded sqrt/division compare even v10 the tie-aware way (SPEC).
      const exact = exactCase && (expectBackend === 'cpu' || c.min_step_gap_f64 > 1e-5);
      if (exact) assert(same([...r.order], c.expected.selection_order), `order differs: ${[...r.order].slice(0, 8)}...`);
      const def = replay(x, c.n, c.d, [...r.order], c.method, imp, c.mmr_lambda ?? 0.5, c.parallel_k ?? 1);
      assert(def <= MAX_DEFICIT, `max deficit ${def}`);
      return `${exact ? 'exact' : 'tie-aware'}, deficit ${def.toExponential(2)}, ${r.elapsedMs.toFixed(1)} ms${r.gpuMs === null ? '' : ` (GPU ${r.gpuMs.toFixed(2)} ms)`}`;
    }));
  }

  // The instruction-aware and video methods through the JS options (v11-v18, all but the
  // tie-aware v13): the official kept sets on this backend.
  for (const id of ['v11_cdpruner', 'v12_cdpruner', 'v14_evs', 'v15_evs', 'v16_vidcom2', 'v17_vidcom2', 'v18_vidcom2_vllm']) {
    results.push(await check(`conformance ${id}`, async () => {
      const c = await (await fetch(`/data/${id}.json`)).json();
      feats[c.features] ??= (await npy(c.features)).data;
      const opts = { n: c.n, d: c.d };
      if (c.method === 'cdpruner') {
        Object.assign(opts, { method: 'cdpruner', keep: c.keep, imageEmbeds: (await npy(c.image_embeds)).data, textEmbeds: (await npy(c.text_embeds)).data });
      } else {
        Object.assign(opts, { method: c.method === 'evs' ? 'evs' : 'vidcom2', grid: c.grid_thw_merged });
        if (c.q !== undefined) opts.pruneRatio = c.q; else opts.keepRatio = c.base_scale;
        if (c.method !== 'evs') opts.count = c.method === 'vidcom2_vllm' ? 'exact' : 'official';
      }
      const r = await pruner.prune(feats[c.features], opts);
      assert(r.backend === expectBackend, `ran on ${r.backend}`);
      assert(same([...r.kept], c.expected.sorted), `kept set differs (${r.kept.length} kept, expected ${c.expected.sorted.length})`);
      if (c.expected.selection_order) assert(same([...r.order], c.expected.selection_order), 'selection order differs');
      return `${r.kept.length} kept as upstream, ${r.elapsedMs.toFixed(1)} ms`;
    }));
  }

  const n = 64, d = 24;
  const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
  const imp = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 3.7));

  results.push(await check('f16 input (Uint16Array bits) equals f32 of the same values', async () => {
    const { f32, bits } = toF16(x);
    const a = await pruner.prune(bits, { n, d, method: 'divprune', keep: 10 });
    const b = await pruner.prune(f32, { n, d, method: 'divprune', keep: 10 });
    assert(same([...a.order], [...b.order]), `${[...a.order]} vs ${[...b.order]}`);
    if (typeof Float16Array !== 'undefined') {
      const c = await pruner.prune(new Float16Array(f32), { n, d, method: 'divprune', keep: 10 });
      assert(same([...c.order], [...b.order]), 'Float16Array differs');
      return 'Uint16Array and Float16Array';
    }
    return 'Uint16Array (no Float16Array in this browser)';
  }));

  results.push(await check('grid coords and gather', async () => {
    const r = await pruner.prune(x, { n, d, method: 'uniform', keep: 16, grid: [8, 8] });
    assert(same([...r.kept], [9, 11, 13, 15, 25, 27, 29, 31, 41, 43, 45, 47, 57, 59, 61, 63].map((v) => v - 0)) || r.kept.length === 16, 'uniform kept');
    assert(r.coords.length === 48, 'coords length');
    for (let k = 0; k < 16; k++) {
      const i = r.kept[k];
      assert(r.coords[3 * k] === 0 && r.coords[3 * k + 1] === Math.floor(i / 8) && r.coords[3 * k + 2] === i % 8, `coord of ${i}`);
    }
    const rows = pruner.gather(x, r);
    assert(rows.length === 16 * d && rows[d] === x[r.kept[1] * d], 'gather rows');
  }));

  results.push(await check('keptSetFigures equals a brute force, and rejects bad indices', async () => {
    const r = await pruner.prune(x, { n, d, method: 'divprune', keep: 9 });
    const f = await keptSetFigures(x, r);
    const cos = (i, j) => {
      let ab = 0, aa = 0, bb = 0;
      for (let c = 0; c < d; c++) { ab += x[i * d + c] * x[j * d + c]; aa += x[i * d + c] ** 2; bb += x[j * d + c] ** 2; }
      return ab / Math.sqrt(aa * bb);
    };
    const kept = [...r.kept];
    let minPair = Infinity;
    for (const i of kept) for (const j of kept) if (i !== j) minPair = Math.min(minPair, 1 - cos(i, j));
    const nearest = [];
    for (let j = 0; j < n; j++) if (!kept.includes(j)) nearest.push(Math.min(...kept.map((i) => 1 - cos(i, j))));
    const close = (a, b) => Math.abs(a - b) <= 1e-5;
    assert(close(f.minPairwiseDistance, minPair), `min pairwise ${f.minPairwiseDistance} vs ${minPair}`);
    assert(close(f.maxUncoveredDistance, Math.max(...nearest)), `max uncovered ${f.maxUncoveredDistance}`);
    assert(close(f.meanUncoveredDistance, nearest.reduce((a, b) => a + b) / nearest.length), 'mean uncovered');
    assert(f.maxUncoveredDistance <= f.minPairwiseDistance + 1e-6, 'greedy max-min: coverage within the kept spacing');
    await rejects(keptSetFigures(x, { n, d, kept: new Uint32Array([1, 1]) }), 'kept index 1 is given twice');
    await rejects(keptSetFigures(x, { n, d, kept: new Uint32Array([n]) }), `kept index ${n} is out of range for ${n} tokens`);
  }));

  results.push(await check('every method and budget', async () => {
    const out = [];
    for (const method of ['divprune', 'idpruner', 'topk', 'random', 'uniform']) {
      for (const budget of [{ keep: 7 }, { keepRatio: 0.25 }, { pruneRatio: 0.9 }]) {
        const r = await pruner.prune(x, { n, d, method, importance: imp, ...budget });
        const want = budget.keep ?? (budget.keepRatio ? 16 : 6);
        assert(r.kept.length === want, `${method} ${JSON.stringify(budget)}: ${r.kept.length}`);
        if (method === 'divprune' || method === 'idpruner') {
          const def = replay(x, n, d, [...r.order], method, imp, 0.5, 1);
          assert(def <= MAX_DEFICIT, `${method} deficit ${def}`);
        }
        out.push(r.kept.length);
      }
    }
    return out.join(',');
  }));

  results.push(await check('batch equals single calls', async () => {
    const items = [0, 1, 2, 3].map((s) => ({
      features: x.map((v, i) => v * ((i + s) % 5 + 1)),
      n, d, method: ['divprune', 'idpruner', 'topk', 'random'][s], importance: imp, keep: 5 + s,
    }));
    const batch = await pruner.pruneBatch(items);
    assert(batch.length === 4, 'batch length');
    for (let i = 0; i < 4; i++) {
      const { features, ...opts } = items[i];
      const one = await pruner.prune(features, opts);
      assert(same([...batch[i].order], [...one.order]), `item ${i}`);
    }
  }));

  results.push(await check('bad input rejects with the native message', async () => {
    const msgs = [];
    msgs.push(await rejects(pruner.prune(x, { n: 65, d, keep: 3 }), 'features hold 1536 values but N x D = 65 x 24 = 1560'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 0 }), 'keep count 0'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 65 }), 'keep count 65 exceeds N = 64'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keepRatio: 1.5 }), 'keep ratio 1.5 is outside [0, 1]'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 2, keepRatio: 0.5 }), 'exactly one of'));
    const bad = x.slice(); bad[30] = NaN;
    msgs.push(await rejects(pruner.prune(bad, { n, d, keep: 3 }), 'features has a non-finite value (NaN) at row 1, column 6'));
    // f16 infinities / NaN (e.g. a pipeline's f16 overflow: 70000 -> +inf) as Uint16Array bits
    const h = new Uint16Array(6).fill(0x3c00); // 1.0
    for (const [bits, what] of [[0x7c00, 'inf'], [0xfc00, '-inf'], [0x7e00, 'NaN']]) {
      h[4] = bits;
      msgs.push(await rejects(pruner.prune(h, { n: 2, d: 3, keep: 1 }), `features has a non-finite value (${what}) at row 1, column 1`));
    }
    if (typeof Float16Array !== 'undefined') {
      msgs.push(await rejects(pruner.prune(new Float16Array([1, 2, 70000, 4]), { n: 2, d: 2, keep: 1 }), 'features has a non-finite value (inf) at row 1, column 0'));
    }
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, method: 'idpruner' }), 'needs options.importance'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, method: 'idpruner', importance: imp.subarray(1) }), 'importance has 63 values but there are N = 64 tokens'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, method: 'idpruner', importance: imp, lambda: 2 }), 'lambda 2 is outside [0, 1]'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, method: 'nope' }), "method 'nope' is not one of"));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, grid: [5, 5] }), 'grid 1x5x5 does not multiply to N = 64'));
    msgs.push(await rejects(pruner.prune([1, 2, 3], { n: 1, d: 3, keep: 1 }), 'features must be a Float32Array'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, grid: [2, 'x', 32] }), 'options.grid must be'));
    msgs.push(await rejects(pruner.prune(x, { n, d, keep: 3, method: 'random', seed: -1 }), 'options.seed must be a non-negative integer, got -1'));
    msgs.push(await rejects(pruner.prune(x, { n: 64.5, d, keep: 3 }), 'options.n must be a non-negative integer'));
    msgs.push(await rejects(pruner.prune(new Float32Array(0), { n: 0, d: 3, keepRatio: 0.5 }), 'N = 0'));
    msgs.push(await rejects(pruner.pruneBatch([{ features: x, n, d, keep: 3 }, { features: x, n, d, keep: 99 }]), 'batch item 1: budget: keep count 99 exceeds N = 64'));
    msgs.push(await rejects(Pruner.create({ backends: ['metal'] }), "backend 'metal' is not one of webgpu, cpu"));
    // still usable afterwards
    const r = await pruner.prune(x, { n, d, keep: 3 });
    assert(r.kept.length === 3, 'usable after errors');
    return `${msgs.length} messages`;
  }));

  results.push(await check('500 repeated calls: no growth in GPU buffers or wasm memory', async () => {
    // Leaks grow with the number of calls, not the pool's size: a small pool keeps 500 calls on
    // SwiftShader (a software rasteriser) within minutes on a loaded machine.
    const big = Float32Array.from({ length: 192 * 64 }, (_, i) => Math.sin(i * 0.37));
    const run = () => pruner.prune(big, { n: 192, d: 64, method: 'divprune', keepRatio: 0.1 });
    for (let i = 0; i < 20; i++) await run();
    const before = { ...globalThis.__gpuLedger, wasm: wasmBytes() };
    for (let i = 0; i < 500; i++) await run();
    const after = { ...globalThis.__gpuLedger, wasm: wasmBytes() };
    assert(after.liveBytes <= before.liveBytes, `live GPU buffer bytes grew ${before.liveBytes} -> ${after.liveBytes}`);
    assert(after.wasm <= before.wasm, `wasm memory grew ${before.wasm} -> ${after.wasm}`);
    return `GPU buffers live ${before.liveBytes} -> ${after.liveBytes} bytes (${after.created - before.created} created), wasm memory ${before.wasm} -> ${after.wasm} bytes`;
  }));

  await packageChecks(results, pruner, expectBackend, x, n, d, imp);

  pruner.free();
  results.push(await check('free() makes the pruner unusable with a clear error', async () => {
    await rejects(pruner.prune(x, { n, d, keep: 3 }), 'this Pruner was freed');
  }));
  return results;
}

/** Longest gap between timer ticks on this thread while `fn` runs, and how long it ran. */
async function responsiveness(fn) {
  let last = performance.now(), gap = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    gap = Math.max(gap, t - last);
    last = t;
  }, 4);
  const t0 = performance.now();
  const out = await fn();
  const took = performance.now() - t0;
  clearInterval(timer);
  gap = Math.max(gap, performance.now() - last);
  return { out, took, gap };
}

/** Issue 15 / 14.3 checks: the default backend, inputs from other realms, the worker, traps. */
async function packageChecks(results, pruner, expectBackend, x, n, d, imp) {
  results.push(await check('default backend: never a software adapter unless WebGPU is asked for alone', async () => {
    const out = [];
    for (const opts of [undefined, { backends: ['webgpu', 'cpu'] }]) {
      const p = await Pruner.create(opts);
      assert(p.backend === 'cpu', `${JSON.stringify(opts)}: got ${p.backend} (${p.adapter})`);
      const want = expectBackend === 'webgpu' ? /adapter 'google swiftshader' is a fallback adapter \(it reports isFallbackAdapter\), slower than the CPU engine/ : /no navigator\.gpu\)/;
      assert(want.test(p.fallbackReason ?? ''), `fallbackReason: ${p.fallbackReason}`);
      out.push(p.fallbackReason);
      p.free();
    }
    if (expectBackend === 'webgpu') {
      const p = await Pruner.create({ backends: ['webgpu'] });
      assert(p.backend === 'webgpu' && p.fallbackReason === null, `webgpu alone: ${p.backend}`);
      assert(p.adapter === 'google swiftshader', `adapter name '${p.adapter}'`);
      const r = await p.prune(x, { n, d, keep: 3 });
      assert(r.backend === 'webgpu' && r.adapter === p.adapter, `result on ${r.backend} (${r.adapter})`);
      p.free();
    } else {
      await rejects(Pruner.create({ backends: ['webgpu'] }), 'WebGPU does not exist here (no navigator.gpu)');
    }
    return out.join(' | ');
  }));

  results.push(await check('Float16Array (also on a SharedArrayBuffer), subclasses and arrays from another realm', async () => {
    assert(crossOriginIsolated && typeof SharedArrayBuffer === 'function', 'the test page is not cross-origin isolated');
    const ref = await pruner.prune(x, { n, d, keep: 9, method: 'idpruner', importance: imp });
    const frame = document.createElement('iframe');
    document.body.append(frame);
    const W = frame.contentWindow;
    const other = new W.Float32Array(x);
    const otherImp = new W.Float32Array(imp);
    const r = await pruner.prune(other, { n, d, keep: 9, method: 'idpruner', importance: otherImp });
    assert(same(r.order, ref.order), 'another realm differs');
    class Sub extends Float32Array {}
    assert(same((await pruner.prune(new Sub(x), { n, d, keep: 9, method: 'idpruner', importance: new Sub(imp) })).order, ref.order), 'subclass differs');
    const shared = new Float32Array(new SharedArrayBuffer(x.byteLength));
    shared.set(x);
    assert(same((await pruner.prune(shared, { n, d, keep: 9, method: 'idpruner', importance: imp })).order, ref.order), 'SharedArrayBuffer differs');
    if (typeof Float16Array === 'undefined') return 'no Float16Array in this browser';
    const h = new Float16Array(x);
    const h32 = Float32Array.from(h);
    const want = await pruner.prune(h32, { n, d, keep: 9, method: 'idpruner', importance: Float32Array.from(new Float16Array(imp)) });
    const hs = new Float16Array(new SharedArrayBuffer(h.byteLength + 6), 6, h.length);
    hs.set(h);
    const hw = new W.Float16Array(h);
    const his = new Float16Array(new SharedArrayBuffer(n * 2));
    his.set(imp);
    for (const [what, f, i] of [['Float16Array', h, new Float16Array(imp)], ['shared Float16Array', hs, his], ['other-realm Float16Array', hw, new W.Float16Array(imp)]]) {
      const got = await pruner.prune(f, { n, d, keep: 9, method: 'idpruner', importance: i });
      assert(same(got.order, want.order), `${what} differs`);
    }
    const rows = pruner.gather(hs, want);
    assert(Object.getPrototypeOf(rows) === Float16Array.prototype && rows.length === 9 * d && rows[0] === hs[want.kept[0] * d], 'gather of a shared Float16Array');
    frame.remove();
    return 'Float16Array, shared Float16Array, other realm, subclass, SharedArrayBuffer';
  }));

  results.push(await check('worker: true gives the same results and keeps the page responsive', async () => {
    const w = await Pruner.create({ worker: true, backends: expectBackend === 'webgpu' ? ['webgpu'] : ['cpu'] });
    assert(w.worker === true && w.backend === expectBackend, `worker backend ${w.backend}`);
    for (const opts of [{ n, d, keep: 7 }, { n, d, method: 'idpruner', importance: imp, keepRatio: 0.25, grid: [8, 8] }]) {
      const [a, b] = [await pruner.prune(x, opts), await w.prune(x, opts)];
      assert(same(a.order, b.order) && same(a.scores, b.scores) && (!a.coords || same(a.coords, b.coords)), `worker differs for ${JSON.stringify(opts)}`);
    }
    const items = [0, 1, 2].map((s) => ({ features: x.map((v, i) => v * ((i + s) % 5 + 1)), n, d, keep: 4 + s }));
    const [la, wa] = [await pruner.pruneBatch(items), await w.pruneBatch(items)];
    assert(la.every((r, i) => same(r.order, wa[i].order)), 'worker batch differs');
    await rejects(w.prune(x, { n, d, keep: 65 }), 'keep count 65 exceeds N = 64');
    w.free();
    // the CPU engine on a worker vs on this thread, 2304 x 128, DivPrune keep 10 %
    const bn = 2304, bd = 128;
    const big = Float32Array.from({ length: bn * bd }, (_, i) => Math.sin(i * 0.37));
    const cw = await Pruner.create({ worker: true, backends: ['cpu'] });
    const cl = await Pruner.create({ backends: ['cpu'] });
    const opts = { n: bn, d: bd, keepRatio: 0.1 };
    await cw.prune(big, opts);
    await cl.prune(big, opts);
    const off = await responsiveness(() => cw.prune(big, opts));
    const on = await responsiveness(() => cl.prune(big, opts));
    assert(same(off.out.order, on.out.order), 'worker CPU result differs');
    assert(off.gap < off.took / 3, `the page stalled ${off.gap.toFixed(0)} ms during a ${off.took.toFixed(0)} ms worker call`);
    cw.free();
    cl.free();
    return `2304 x 128: on a worker ${off.took.toFixed(0)} ms, longest page stall ${off.gap.toFixed(0)} ms; on the page ${on.took.toFixed(0)} ms, stall ${on.gap.toFixed(0)} ms`;
  }));

  results.push(await check('a trapped module is replaced: old pruners reject with an Error, new ones work', async () => {
    const { trapForTests } = await import('/node_modules/tokenprune/src/host.js');
    const before = await Pruner.create({ backends: [expectBackend] });
    await rejects(trapForTests(), 'the wasm module trapped (RuntimeError: unreachable)');
    await rejects(before.prune(x, { n, d, keep: 3 }), "this pruner's wasm module trapped during an earlier call");
    await rejects(pruner.prune(x, { n, d, keep: 3 }), 'trapped');
    before.free();
    const after = await Pruner.create({ backends: [expectBackend] });
    const r = await after.prune(x, { n, d, keep: 9 });
    const def = replay(x, n, d, [...r.order], 'divprune');
    assert(r.backend === expectBackend && def <= MAX_DEFICIT, `after the trap: ${r.backend}, deficit ${def}`);
    after.free();
  }));
  return results;
}

function wasmBytes() {
  return wasmMemoryBytes();
}

/** On a page whose WebGPU adapter says nothing about itself, or that has none. */
export async function runAdapterChecks(kind) {
  const results = [];
  if (kind === 'silent') {
    results.push(await check('an adapter that reports nothing is timed against the CPU engine', async () => {
      const t0 = performance.now();
      const p = await Pruner.create();
      const took = performance.now() - t0;
      const why = p.fallbackReason;
      assert(p.backend === 'cpu', `default on a silent SwiftShader: ${p.backend}`);
      assert(/reports no vendor, architecture or description, and ran a DivPrune probe \(576 x 256\) in [0-9.]+ ms against [0-9.]+ ms on the CPU engine/.test(why ?? ''), `fallbackReason: ${why}`);
      p.free();
      const g = await Pruner.create({ backends: ['webgpu'] });
      assert(g.backend === 'webgpu', 'webgpu alone');
      g.free();
      return `create() took ${took.toFixed(0)} ms: ${why}`;
    }));
  } else {
    results.push(await check('no adapter: a clear error without driver advice, and the default falls back', async () => {
      const msg = await rejects(Pruner.create({ backends: ['webgpu'] }), 'the browser offers no WebGPU adapter (WebGPU is disabled, blocklisted or unsupported here)');
      assert(!/vulkan|driver|mesa/i.test(msg), `driver advice in '${msg}'`);
      const p = await Pruner.create();
      assert(p.backend === 'cpu' && /offers no WebGPU adapter/.test(p.fallbackReason), `default: ${p.backend} (${p.fallbackReason})`);
      p.free();
      return msg;
    }));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The CPU engine's threads (issue 14.4), on a cross-origin isolated page.

/** `x` (values in (-1, 1)) rounded to f16 by hand: `{ bits }` (Uint16Array) and `{ f32 }` of the same values. */
function toF16(x) {
  const f32 = new Float32Array(x.length);
  const bits = new Uint16Array(x.length);
  const view = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < x.length; i++) {
    // keep 10 mantissa bits (normal range; below it, zero)
    view.setFloat32(0, x[i]);
    const b = view.getUint32(0);
    const sign = b >>> 31, exp = ((b >>> 23) & 0xff) - 127, mant = b & 0x7fffff;
    if (exp < -14) { bits[i] = sign << 15; f32[i] = sign ? -0 : 0; continue; }
    let m = Math.round(mant / 8192), e = exp + 15;
    if (m === 1024) { m = 0; e += 1; }
    bits[i] = (sign << 15) | (e << 10) | m;
    f32[i] = (sign ? -1 : 1) * 2 ** (e - 15) * (1 + m / 1024);
  }
  return { f32, bits };
}

/** Pools for the threads: sizes around the tile and thread counts, zero rows, duplicates. */
function threadPools() {
  const pool = (n, d, seed) => Float32Array.from({ length: n * d }, (_, i) => Math.sin((i + seed) * 12.9898) * 43758.5453 % 1);
  const out = [];
  for (const [n, d, k] of [[2, 3, 1], [3, 8, 2], [5, 7, 2], [130, 17, 13], [300, 37, 30], [1030, 9, 103]]) {
    const x = pool(n, d, n);
    if (n > 4) {
      x.fill(0, 2 * d, 3 * d); // a zero row
      x.copyWithin(4 * d, d, 2 * d); // row 4 duplicates row 1
    }
    out.push({ x, n, d, k });
  }
  // all rows equal: every similarity ties
  out.push({ x: new Float32Array(40 * 6).fill(0.5), n: 40, d: 6, k: 5 });
  return out;
}

const sameResult = (a, b) => same(a.kept, b.kept) && same(a.order, b.order) && same(a.scores, b.scores) && JSON.stringify(a.notes) === JSON.stringify(b.notes);

export async function runThreadChecks() {
  const results = [];
  const threadsJs = await import('/node_modules/tokenprune/src/threads.js');
  results.push(await check('threads: split calls equal one thread (DivPrune dense and streaming, IDPruner Gram; N below, not divisible by, the thread count; zero rows, duplicates, ties)', async () => {
    assert(crossOriginIsolated, 'the page is not cross-origin isolated');
    const one = await Pruner.create({ backends: ['cpu'], threads: 1 });
    assert(one.threads === 1 && one.threadsReason === null, `threads: 1 -> ${one.threads} (${one.threadsReason})`);
    threadsJs.setSplitAllForTests(true);
    let calls = 0;
    try {
      // Who takes which tile depends on timing; also run with the workers taking them all.
      for (const [t, workersOnly] of [[2, false], [3, false], [4, false], [2, true], [3, true]]) {
        threadsJs.setWorkersOnlyForTests(workersOnly);
        const p = await Pruner.create({ backends: ['cpu'], threads: t });
        assert(p.threads === t && p.threadsReason === null, `threads: ${t} -> ${p.threads} (${p.threadsReason})`);
        for (const { x, n, d, k } of threadPools()) {
          const imp = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 3.7));
          for (const opts of [
            { n, d, keep: k },
            { n, d, method: 'idpruner', importance: imp, keep: k },
            { n, d, method: 'idpruner', importance: imp, keep: k, parallelK: 4 },
            { n, d, keep: n }, // K = N: nothing to split
            { n, d, keepRatio: 0 }, // K = 0: nothing to split
          ]) {
            const [a, b] = [await one.prune(x, opts), await p.prune(x, opts)];
            const what = `threads ${t}${workersOnly ? ' (workers only)' : ''}, ${JSON.stringify({ ...opts, importance: undefined })}`;
            assert(sameResult(a, b), `${what}: ${[...b.order]} vs ${[...a.order]}`);
            assert(a.threads === 1, `${what}: one thread ran ${a.threads}`);
            const split = opts.keep !== undefined && opts.keep < n && n >= 2;
            assert(split ? b.threads >= 1 && b.threads <= t : b.threads === 1, `${what}: ran on ${b.threads} threads`);
            if (n >= 300 && split) assert(b.threads === t, `${what}: ran on ${b.threads} threads`);
            calls++;
          }
          if (n >= 300) {
            // f16 input (Uint16Array bits): the threads read the pool as the caller converted it.
            const { bits } = toF16(x);
            const [a, b] = [await one.prune(bits, { n, d, keep: k }), await p.prune(bits, { n, d, keep: k })];
            assert(sameResult(a, b) && b.threads === t, `f16 ${n} x ${d} on ${t} threads differs (${b.threads})`);
            calls++;
          }
        }
        // DivPrune's streaming path (tiles over the wasm engine's 128 MB): only the seed is split.
        const n = 6000, d = 8;
        const big = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.7) + (i % 13) * 0.01);
        const [a, b] = [await one.prune(big, { n, d, keep: 12 }), await p.prune(big, { n, d, keep: 12 })];
        assert(sameResult(a, b) && b.threads === t, `streaming 6000 x 8 on ${t} threads differs (${b.threads})`);
        p.free();
      }
    } finally {
      threadsJs.setSplitAllForTests(false);
      threadsJs.setWorkersOnlyForTests(false);
    }
    one.free();
    return `${calls} calls on 2, 3 and 4 threads (and on 2 and 3 with the workers taking every tile) equal one thread`;
  }));

  results.push(await check("threads: 'auto' splits 576 x 1024 across the cores, small pools run in one thread, worker: true too", async () => {
    const cores = navigator.hardwareConcurrency;
    const p = await Pruner.create({ backends: ['cpu'] });
    assert(p.threads === Math.min(cores, 256), `auto: ${p.threads} threads on ${cores} cores (${p.threadsReason})`);
    const n = 576, d = 1024;
    const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.001 + (i % d) * 0.37));
    const one = await Pruner.create({ backends: ['cpu'], threads: 1 });
    const [a, b] = [await one.prune(x, { n, d, keepRatio: 0.1 }), await p.prune(x, { n, d, keepRatio: 0.1 })];
    assert(sameResult(a, b), '576 x 1024 differs');
    assert(b.threads === (cores > 1 ? p.threads : 1), `576 x 1024 ran on ${b.threads} threads`);
    const small = await p.prune(x.subarray(0, 64 * 16), { n: 64, d: 16, keep: 6 });
    assert(small.threads === 1, `64 x 16 ran on ${small.threads} threads`);
    const w = await Pruner.create({ backends: ['cpu'], worker: true, threads: 2 });
    assert(w.threads === 2, `worker: true, threads: 2 -> ${w.threads} (${w.threadsReason})`);
    const c = await w.prune(x, { n, d, keepRatio: 0.1 });
    assert(sameResult(a, c) && c.threads === 2, `worker: true differs or ran on ${c.threads} threads`);
    const g = await Pruner.create({ backends: ['cpu'], threads: 2 });
    await rejects(g.prune(x, { n, d, keep: 577 }), 'keep count 577 exceeds N = 576');
    assert(sameResult(a, await g.prune(x, { n, d, keepRatio: 0.1 })), 'after a bad call');
    const auto = p.threads;
    for (const q of [p, one, w, g]) q.free();
    return `${cores} cores: auto = ${auto} threads; 576 x 1024 on ${b.threads}, 64 x 16 on ${small.threads}`;
  }));

  results.push(await check('threads: bad values are a clear Error', async () => {
    const out = [];
    for (const bad of [0, -1, 1.5, 257, NaN, '2', 'all', null, {}, true]) {
      out.push(await rejects(Pruner.create({ backends: ['cpu'], threads: bad }), "options.threads must be 'auto' or an integer from 1 to 256"));
    }
    await rejects(Pruner.create({ thread: 2 }), 'options.thread is not an option (did you mean threads?)');
    return out[0];
  }));

  results.push(await check('threads: a thread that traps or dies mid-call rejects with an Error; the pruner goes on in one thread', async () => {
    const n = 300, d = 37;
    const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.37));
    const one = await Pruner.create({ backends: ['cpu'], threads: 1 });
    const want = await one.prune(x, { n, d, keep: 30 });
    const out = [];
    threadsJs.setSplitAllForTests(true);
    try {
      for (const [mode, cause] of [['trap', 'the wasm module trapped'], ['crash', 'the worker stopped']]) {
        const p = await Pruner.create({ backends: ['cpu'], threads: 2 });
        threadsJs.failNextShareForTests(mode);
        const msg = await rejects(p.prune(x, { n, d, keep: 30 }), 'a CPU thread failed during prune()');
        assert(msg.includes(cause), `${mode}: '${msg}' lacks '${cause}'`);
        assert(p.threads === 1 && /a CPU thread failed/.test(p.threadsReason ?? ''), `${mode}: after: ${p.threads} threads (${p.threadsReason})`);
        const r = await p.prune(x, { n, d, keep: 30 });
        assert(sameResult(r, want) && r.threads === 1, `${mode}: after the failure the pruner differs`);
        p.free();
        out.push(msg);
      }
    } finally {
      threadsJs.setSplitAllForTests(false);
      threadsJs.failNextShareForTests(null);
    }
    one.free();
    return out.join(' | ');
  }));
  return results;
}

/** On a page that is not cross-origin isolated. */
export async function runPlainThreadCheck() {
  return [await check('threads: a page that is not cross-origin isolated runs in one thread, and says why', async () => {
    assert(!crossOriginIsolated, 'this page is cross-origin isolated');
    const p = await Pruner.create({ backends: ['cpu'], threads: 4 });
    assert(p.threads === 1 && /not cross-origin isolated/.test(p.threadsReason ?? ''), `${p.threads} threads (${p.threadsReason})`);
    const n = 576, d = 256;
    const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.37));
    const r = await p.prune(x, { n, d, keep: 58 });
    assert(r.threads === 1 && r.kept.length === 58, `ran on ${r.threads} threads`);
    const why = p.threadsReason;
    p.free();
    return why;
  })];
}
