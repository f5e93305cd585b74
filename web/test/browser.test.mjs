// Browser tests: packs the npm package, serves it on 127.0.0.1, and runs test/suite.js in
// headless Chromium (playwright-core) twice: on WebGPU, and on a page without navigator.gpu
// (the CPU fallback). Run with `node --test test/` after `bash build.sh`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, existsSync, rmSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, dirname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..');
const data = join(web, '..', 'tests', 'data');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.npy': 'application/octet-stream' };

let server, browser, base, scratch;
const suites = {};

/** Counts live GPU buffer bytes: wraps createBuffer / destroy before any page script runs. */
const gpuLedger = () => {
  globalThis.__gpuLedger = { created: 0, destroyed: 0, liveBytes: 0 };
  if (typeof GPUDevice === 'undefined') return;
  const create = GPUDevice.prototype.createBuffer;
  const destroy = GPUBuffer.prototype.destroy;
  const sizes = new WeakMap();
  GPUDevice.prototype.createBuffer = function (desc) {
    const b = create.call(this, desc);
    sizes.set(b, desc.size);
    globalThis.__gpuLedger.created++;
    globalThis.__gpuLedger.liveBytes += desc.size;
    return b;
  };
  GPUBuffer.prototype.destroy = function () {
    if (sizes.has(this)) {
      globalThis.__gpuLedger.destroyed++;
      globalThis.__gpuLedger.liveBytes -= sizes.get(this);
      sizes.delete(this);
    }
    return destroy.call(this);
  };
};

const noWebGpu = () => {
  Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
};

before(async () => {
  assert.ok(existsSync(join(web, 'dist', 'tokenprune_bg.wasm')), 'web/dist is missing: run `bash web/build.sh` first');
  // Pack exactly what npm would publish, and install the tarball's contents.
  scratch = mkdtempSync(join(tmpdir(), 'tokenprune-web-'));
  const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: web }).toString().trim().split('\n').pop();
  execFileSync('tar', ['-xzf', join(scratch, tgz), '-C', scratch]);
  mkdirSync(join(scratch, 'node_modules'));
  renameSync(join(scratch, 'package'), join(scratch, 'node_modules', 'tokenprune'));

  server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    // /plain/...: the same files without COOP/COEP (a page that is not cross-origin isolated)
    const plain = path.startsWith('/plain/');
    if (plain) path = path.slice(6);
    let file;
    if (path === '/' || path === '/index.html') file = join(here, 'page.html');
    else if (path === '/suite.js' || path === '/oracle.js') file = join(here, path.slice(1));
    else if (path.startsWith('/node_modules/')) file = join(scratch, normalize(path));
    else if (path.startsWith('/data/')) file = join(data, normalize(path.slice(6)));
    if (!file || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    // cross-origin isolated, so that the page has SharedArrayBuffer
    const isolation = plain ? {} : { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', ...isolation });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Opens the suite page for `backend` once and starts it; `{ page, logs }`. */
function suite(backend) {
  suites[backend] ??= (async () => {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.addInitScript(gpuLedger);
    if (backend === 'cpu') await page.addInitScript(noWebGpu);
    await page.goto(base);
    await page.waitForFunction(() => window.suiteReady === true);
    const done = page
      .evaluate((b) => window.runSuite(b), backend)
      .catch((e) => logs.push(`suite: ${e}`))
      .finally(() => page.evaluate(() => (window.suiteDone = true)).catch(() => {}));
    return { page, logs, done };
  })();
  return suites[backend];
}

/** Waits for one check's result: each test's timeout covers its own check, not the whole suite. */
async function result(backend, name) {
  const { page, logs } = await suite(backend);
  await page.waitForFunction((n) => window.suiteResults?.some((r) => r.name === n) || window.suiteDone, name, { timeout: 0, polling: 250 });
  return { r: await page.evaluate((n) => window.suiteResults?.find((r) => r.name === n), name), logs };
}

const CHECKS = [
  'backend',
  'conformance v01_divprune', 'conformance v02_divprune', 'conformance v05_idpruner', 'conformance v06_idpruner', 'conformance v10_divprune',
  'conformance v11_cdpruner', 'conformance v12_cdpruner', 'conformance v14_evs', 'conformance v15_evs', 'conformance v16_vidcom2', 'conformance v17_vidcom2', 'conformance v18_vidcom2_vllm',
  'f16 input (Uint16Array bits) equals f32 of the same values',
  'grid coords and gather',
  'keptSetFigures equals a brute force, and rejects bad indices',
  'every method and budget',
  'batch equals single calls',
  'bad input rejects with the native message',
  '500 repeated calls: no growth in GPU buffers or wasm memory',
  'default backend: never a software adapter unless WebGPU is asked for alone',
  'Float16Array (also on a SharedArrayBuffer), subclasses and arrays from another realm',
  'worker: true gives the same results and keeps the page responsive',
  'a trapped module is replaced: old pruners reject with an Error, new ones work',
  'free() makes the pruner unusable with a clear error',
];

/** The adapter reports nothing about itself (as some browsers do), or there is none. */
const silentAdapter = () => {
  Object.defineProperty(GPUAdapter.prototype, 'info', { get: () => ({ vendor: '', architecture: '', device: '', description: '' }), configurable: true });
};
const noAdapter = () => {
  GPU.prototype.requestAdapter = async () => null;
};

for (const [kind, init, name] of [
  ['silent', silentAdapter, 'an adapter that reports nothing is timed against the CPU engine'],
  ['none', noAdapter, 'no adapter: a clear error without driver advice, and the default falls back'],
]) {
  test(`webgpu: ${name}`, { timeout: 300_000 }, async (t) => {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.addInitScript(init);
    await page.goto(base);
    await page.waitForFunction(() => window.suiteReady === true);
    const [r] = await page.evaluate((k) => window.runAdapterChecks(k), kind);
    await page.close();
    assert.ok(r.ok, `${r.detail}\npage log:\n${logs.slice(-20).join('\n')}`);
    t.diagnostic(r.detail);
  });
}

/** A fresh page (`path`), with its log; `{ page, logs }`. */
async function freshPage(path, init) {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  if (init) await page.addInitScript(init);
  await page.goto(base + path);
  await page.waitForFunction(() => window.suiteReady === true);
  return { page, logs };
}

test('threads (issue 14.4): the CPU engine on several Workers, same selections', { timeout: 600_000 }, async (t) => {
  const { page, logs } = await freshPage('', noWebGpu);
  const results = await page.evaluate(() => window.runThreadChecks());
  await page.close();
  for (const r of results) {
    assert.ok(r.ok, `${r.name}: ${r.detail}\npage log:\n${logs.slice(-20).join('\n')}`);
    t.diagnostic(`${r.name}: ${r.detail}`);
  }
  assert.equal(results.length, 4);
});

test('threads: free() ends the Workers; a page that is not cross-origin isolated starts none', { timeout: 300_000 }, async (t) => {
  const { page } = await freshPage('', noWebGpu);
  const before = page.workers().length;
  await page.evaluate(async () => {
    const { Pruner } = await import('/node_modules/tokenprune/src/index.js');
    window.threaded = await Pruner.create({ backends: ['cpu'], threads: 3 });
  });
  const workers = page.workers().slice(before);
  // Three threads: the calling one and two Workers.
  assert.equal(workers.length, 2, `${workers.length} workers after create({ threads: 3 })`);
  const closed = Promise.all(workers.map((w) => new Promise((ok) => w.once('close', ok))));
  await page.evaluate(() => window.threaded.free());
  await Promise.race([closed, new Promise((_, no) => setTimeout(() => no(new Error('the workers still run 10 s after free()')), 10_000))]);
  assert.equal(page.workers().length, before);
  await page.close();

  const plain = await freshPage('plain/', noWebGpu);
  const [r] = await plain.page.evaluate(() => window.runPlainThreadCheck());
  assert.ok(r.ok, `${r.detail}\npage log:\n${plain.logs.slice(-20).join('\n')}`);
  assert.equal(plain.page.workers().length, 0, 'workers started on a page that is not cross-origin isolated');
  await plain.page.close();
  t.diagnostic(r.detail);
});

for (const backend of ['webgpu', 'cpu']) {
  for (const name of CHECKS) {
    test(`${backend}: ${name}`, { timeout: 600_000 }, async (t) => {
      const { r, logs } = await result(backend, name);
      assert.ok(r, `check '${name}' did not run; page log:\n${logs.join('\n')}`);
      assert.ok(r.ok, `${r.detail}\npage log:\n${logs.slice(-20).join('\n')}`);
      if (r.detail) t.diagnostic(r.detail);
    });
  }
  test(`${backend}: the suite page closes`, async () => {
    const { page, done } = await suite(backend);
    await done;
    await page.close();
  });
}
