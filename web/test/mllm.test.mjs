// tokenprune/transformers in headless Chromium: the MLLM adapter's checks (test/mllm-suite.js)
// on the tiny models in test/models, with transformers.js's browser build on its WebGPU device
// (SwiftShader here) with the pruner on WebGPU, and on its wasm device with the pruner's CPU
// backend. Packs the npm package first, as test/browser.test.mjs does. Needs `bash build.sh`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHS } from './mllm-suite.js';
import { TRANSFORMERS_DIST, ortWasmDir, packPackage, serveStatic, launchChromium } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..');

let server, browser, base, pack;
const runs = {};

before(async () => {
  assert.ok(existsSync(join(web, 'dist', 'tokenprune_bg.wasm')), 'web/dist is missing: run `bash web/build.sh` first');
  pack = packPackage();
  server = await serveStatic({
    pages: { '/': { file: join(here, 'mllm-page.html') }, '/mllm-suite.js': { file: join(here, 'mllm-suite.js') } },
    routes: [['/node_modules/', pack.nodeModules], ['/tf/', TRANSFORMERS_DIST], ['/ortw/', ortWasmDir()], ['/models/', join(here, 'models')]],
  });
  base = server.url;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (pack) rmSync(pack.dir, { recursive: true, force: true });
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
    `${a}: plain and pruned generation equal PyTorch transformers on the same inputs`,
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
