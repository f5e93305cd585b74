// tokenprune/transformers in headless Chromium: the MLLM adapter's checks (test/mllm-suite.js)
// on the tiny models in test/models, with transformers.js's browser build on its WebGPU device
// (SwiftShader here) with the pruner on WebGPU, and on its wasm device with the pruner's CPU
// backend. Packs the npm package first, as test/browser.test.mjs does. Needs `bash build.sh`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, existsSync, rmSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, dirname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ARCHS } from './mllm-suite.js';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..');
const tfDir = join(web, 'node_modules', '@huggingface', 'transformers');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

let server, browser, base, scratch;
const runs = {};

before(async () => {
  assert.ok(existsSync(join(web, 'dist', 'tokenprune_bg.wasm')), 'web/dist is missing: run `bash web/build.sh` first');
  scratch = mkdtempSync(join(tmpdir(), 'tokenprune-mllm-'));
  const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: web }).toString().trim().split('\n').pop();
  execFileSync('tar', ['-xzf', join(scratch, tgz), '-C', scratch]);
  mkdirSync(join(scratch, 'node_modules'));
  renameSync(join(scratch, 'package'), join(scratch, 'node_modules', 'tokenprune'));
  const ortDir = [join(tfDir, 'node_modules', 'onnxruntime-web', 'dist'), join(web, 'node_modules', 'onnxruntime-web', 'dist')].find((d) => existsSync(join(d, 'ort-wasm-simd-threaded.asyncify.wasm')));
  const routes = [
    ['/node_modules/', join(scratch, 'node_modules')],
    ['/tf/', join(tfDir, 'dist')],
    ['/ortw/', ortDir],
    ['/models/', join(here, 'models')],
  ];
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (process.env.MLLM_DEBUG) console.error('GET', path);
    let file = null;
    if (path === '/' || path === '/index.html') file = join(here, 'mllm-page.html');
    else if (path === '/mllm-suite.js') file = join(here, 'mllm-suite.js');
    else {
      for (const [prefix, dir] of routes) {
        if (path.startsWith(prefix)) {
          const f = normalize(join(dir, path.slice(prefix.length)));
          if (f.startsWith(dir + sep)) file = f;
          break;
        }
      }
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      if (process.env.MLLM_DEBUG) console.error('404', path);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
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

function run(device, names) {
  runs[device] ??= (async () => {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(base);
    await page.waitForFunction(() => window.mllmReady === true);
    const backends = device === 'webgpu' ? ['webgpu'] : ['cpu'];
    const picked = process.env.MLLM_ONLY ? process.env.MLLM_ONLY.split(',') : null;
    const only = picked ? names.filter((n) => picked.some((p) => n.includes(p))) : names;
    const results = await page.evaluate(([d, b, o]) => window.runMllm(d, b, o, true), [device, backends, only]);
    await page.close();
    return { results: Object.fromEntries(results.map((r) => [r.name, r])), logs };
  })();
  return runs[device];
}

const CHECKS = [
  'keptCount is the Rust budget rule',
  'promptTextEmbedding is the mean of the non-image prompt token embeddings',
  "a text-conditioned method (cdpruner) gets the prompt text embedding per row, or the caller's",
  ...ARCHS.flatMap(([a, , methods]) => [
    `${a}: K = N gives the ids and logits of plain generate()`,
    ...methods.map((m) => `${a}: ${m} K < N equals the hand-built reference path`),
  ]),
  'qwen2vl: position ids are the unpruned M-RoPE ids with the pruned entries removed, decode continues at max + 1',
  'qwen2vl: two images with different grids in one prompt equal the reference path',
  'llava: a batch of two prompts (left-padded) equals each prompt alone',
  'bad input rejects with an Error naming the problem; the model still works unwrapped',
];

// WebGPU (SwiftShader: every new shape compiles shaders, seconds each) runs every check once per
// architecture but DivPrune only against the reference path; the other methods differ only in
// the kept set, which the wasm run checks for every method.
const onWebGpu = (name) => !/: (idpruner|topk|random|uniform) K < N/.test(name);

for (const device of ['webgpu', 'wasm']) {
  const names = device === 'webgpu' ? CHECKS.filter(onWebGpu) : CHECKS;
  for (const name of names) {
    test(`chromium ${device}: ${name}`, { timeout: 600_000 }, async (t) => {
      const { results, logs } = await run(device, names);
      const r = results[name];
      if (!r && process.env.MLLM_ONLY) return t.skip('not selected by MLLM_ONLY');
      assert.ok(r, `check '${name}' did not run; page log:\n${logs.slice(-30).join('\n')}`);
      assert.ok(r.ok, `${r.detail}\npage log:\n${logs.slice(-20).join('\n')}`);
      t.diagnostic(r.detail);
    });
  }
}
