// Time to first token of a realistically sized random-weight VLM at keep 100 / 50 / 25 / 10 %,
// in headless Chromium (transformers.js on the wasm execution provider, and on WebGPU with
// --webgpu) and in Node (onnxruntime-node, native CPU), with the prune time next to the prefill
// time it saves. The model is made by scripts/mllm/setup.sh --preset bench-llava --quantize
// --out .cache/mllm/bench (not committed: 0.9 GB fp32 + 0.25 GB int8).
//
//   node web/bench/ttft.mjs [--model-dir .cache/mllm/bench] [--model bench-llava] [--dtype q8]
//                           [--repeats 3] [--chromium] [--webgpu] [--node] [--json out.json]
import { existsSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const flag = (name) => process.argv.includes(name);
const modelDir = resolve(arg('--model-dir', join(web, '..', '.cache', 'mllm', 'bench')));
const model = arg('--model', 'bench-llava');
const dtype = arg('--dtype', 'q8');
const repeats = Number(arg('--repeats', 3));
const keeps = [1, 0.5, 0.25, 0.1];
const cls = model.includes('qwen') ? 'Qwen2VLForConditionalGeneration' : 'LlavaForConditionalGeneration';
const where = [flag('--node') && 'node', flag('--chromium') && 'wasm', flag('--webgpu') && 'webgpu'].filter(Boolean);
if (!where.length) where.push('node', 'wasm');
if (!existsSync(join(modelDir, model, 'config.json'))) {
  console.error(`${join(modelDir, model)} is missing: run bash scripts/mllm/setup.sh --preset ${model} --quantize --out ${modelDir}`);
  process.exit(1);
}

function table(name, res) {
  const base = res.rows.find((r) => r.keep === 1);
  const lines = [
    `\n${name}: prompt ${res.promptLength} tokens, model load ${(res.loadMs / 1000).toFixed(1)} s, pruner on ${res.pruneBackend}, medians of ${repeats}`,
    '| keep | image tokens | prompt into the LLM | time to first token ms | vision encoder ms | LLM prefill ms | prune ms | prefill saved ms | prune / saved |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of res.rows) {
    const saved = base.prefillMs - r.prefillMs;
    lines.push(`| ${r.keep * 100}% | ${r.k ?? '-'} | ${r.promptLength} | ${r.ttftMs.toFixed(0)} | ${r.encodeMs.toFixed(0)} | ${r.prefillMs.toFixed(0)} | ${r.keep < 1 ? r.pruneMs.toFixed(2) : '-'} | ${r.keep < 1 ? saved.toFixed(0) : '-'} | ${r.keep < 1 ? `${((100 * r.pruneMs) / saved).toFixed(2)} %` : '-'} |`);
  }
  return lines.join('\n');
}

const out = { machine: `${cpus().length} x ${cpus()[0].model}`, node: process.version, model, dtype, repeats, results: {} };
console.log(`machine: ${out.machine}; model ${model} (${dtype})`);

if (where.includes('node')) {
  const tf = await import('@huggingface/transformers');
  const adapter = await import('../src/transformers.js');
  const { Pruner } = await import('../src/index.js');
  const { runTtft } = await import('./ttft-suite.js');
  const res = await runTtft({ tf, adapter, Pruner, base: modelDir + '/', model, cls, device: 'cpu', dtype, keeps, repeats, backends: ['cpu'], log: (s) => console.log(`  node: ${s}`) });
  out.results.node = res;
  console.log(table(`Node ${process.version}, transformers.js on onnxruntime-node (native CPU)`, res));
}

const browsers = where.filter((w) => w !== 'node');
if (browsers.length) {
  const { TRANSFORMERS_DIST, ortWasmDir, serveStatic, launchChromium } = await import('../test/harness.mjs');
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import * as tf from '/tf/transformers.js';
    import * as adapter from '/src/transformers.js';
    import { Pruner } from '/src/index.js';
    import { runTtft } from '/bench/ttft-suite.js';
    tf.env.backends.onnx.wasm.wasmPaths = { mjs: location.origin + '/ortw/ort-wasm-simd-threaded.asyncify.mjs', wasm: location.origin + '/ortw/ort-wasm-simd-threaded.asyncify.wasm' };
    tf.env.useBrowserCache = false;
    window.bench = (o) => runTtft({ tf, adapter, Pruner, base: '/models/', log: (s) => console.log(s), ...o });
    window.ready = true;
  </script>`;
  const server = await serveStatic({
    pages: { '/': { body: page } },
    routes: [['/tf/', TRANSFORMERS_DIST], ['/ortw/', ortWasmDir()], ['/src/', join(web, 'src')], ['/dist/', join(web, 'dist')], ['/bench/', here], ['/models/', modelDir]],
    headers: { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
  });
  const browser = await launchChromium(['--js-flags=--max-old-space-size=8192']);
  out.chromium = browser.version();
  for (const device of browsers) {
    const p = await browser.newPage();
    p.on('console', (m) => console.log(`  chromium ${device}: ${m.text()}`));
    p.on('pageerror', (e) => console.log(`  chromium ${device} pageerror: ${e}`));
    await p.goto(server.url);
    await p.waitForFunction(() => window.ready === true);
    const threads = await p.evaluate(() => navigator.hardwareConcurrency);
    const res = await p.evaluate((o) => window.bench(o), { model, cls, device, dtype, keeps, repeats, backends: device === 'webgpu' ? ['webgpu'] : ['cpu'] });
    out.results[device] = res;
    console.log(table(`Chromium ${browser.version()} headless, transformers.js on ${device === 'wasm' ? `the wasm execution provider (${threads} threads available)` : 'WebGPU (SwiftShader)'}`, res));
    await p.close();
  }
  await browser.close();
  await server.close();
}
if (arg('--json')) writeFileSync(arg('--json'), JSON.stringify(out, null, 2));
