// Time to first token of a realistically sized random-weight VLM at keep 100 / 50 / 25 / 10 %,
// in headless Chromium (transformers.js on the wasm execution provider, and on WebGPU with
// --webgpu) and in Node (onnxruntime-node, native CPU), with the prune time next to the prefill
// time it saves. The model is made by scripts/mllm/setup.sh --preset bench-llava --quantize
// --out .cache/mllm/bench (not committed: 0.9 GB fp32 + 0.25 GB int8).
//
//   node web/bench/ttft.mjs [--model-dir .cache/mllm/bench] [--model bench-llava] [--dtype q8]
//                           [--repeats 3] [--chromium] [--webgpu] [--node] [--json out.json]
import { createServer } from 'node:http';
import { existsSync, statSync, createReadStream, writeFileSync } from 'node:fs';
import { join, dirname, normalize, extname, sep, resolve } from 'node:path';
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
  const { chromium } = await import('playwright-core');
  const tfDist = join(web, 'node_modules', '@huggingface', 'transformers', 'dist');
  const nested = join(web, 'node_modules', '@huggingface', 'transformers', 'node_modules', 'onnxruntime-web', 'dist');
  const routes = [['/tf/', tfDist], ['/ortw/', existsSync(nested) ? nested : join(web, 'node_modules', 'onnxruntime-web', 'dist')], ['/src/', join(web, 'src')], ['/dist/', join(web, 'dist')], ['/bench/', here], ['/models/', modelDir]];
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
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    if (path === '/') return res.writeHead(200, { 'content-type': 'text/html', ...headers }).end(page);
    for (const [prefix, dir] of routes) {
      if (!path.startsWith(prefix)) continue;
      const f = normalize(join(dir, path.slice(prefix.length)));
      if (f.startsWith(dir + sep) && existsSync(f) && statSync(f).isFile()) {
        const type = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' }[extname(f)] ?? 'application/octet-stream';
        res.writeHead(200, { 'content-type': type, 'content-length': statSync(f).size, ...headers });
        return createReadStream(f).pipe(res);
      }
    }
    res.writeHead(404).end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--js-flags=--max-old-space-size=8192'],
  });
  out.chromium = browser.version();
  for (const device of browsers) {
    const p = await browser.newPage();
    p.on('console', (m) => console.log(`  chromium ${device}: ${m.text()}`));
    p.on('pageerror', (e) => console.log(`  chromium ${device} pageerror: ${e}`));
    await p.goto(`http://127.0.0.1:${server.address().port}/`);
    await p.waitForFunction(() => window.ready === true);
    const threads = await p.evaluate(() => navigator.hardwareConcurrency);
    const res = await p.evaluate((o) => window.bench(o), { model, cls, device, dtype, keeps, repeats, backends: device === 'webgpu' ? ['webgpu', 'cpu'] : ['cpu'] });
    out.results[device] = res;
    console.log(table(`Chromium ${browser.version()} headless, transformers.js on ${device === 'wasm' ? `the wasm execution provider (${threads} threads available)` : 'WebGPU (SwiftShader)'}`, res));
    await p.close();
  }
  await browser.close();
  server.close();
}
if (arg('--json')) writeFileSync(arg('--json'), JSON.stringify(out, null, 2));
