// tokenprune/transformers in Node: the MLLM adapter's checks (test/mllm-suite.js) on the tiny
// random-weight LLaVA and Qwen2-VL in test/models, transformers.js on its CPU device
// (onnxruntime-node) and the pruner's wasm CPU backend. Needs `bash build.sh` first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@huggingface/transformers';
import * as adapter from '../src/transformers.js';
import { Pruner } from '../src/index.js';
import { runMllmSuite } from './mllm-suite.js';

const here = dirname(fileURLToPath(import.meta.url));
assert.ok(existsSync(join(here, '..', 'dist', 'tokenprune_bg.wasm')), 'web/dist is missing: run `bash web/build.sh` first');

const only = process.env.MLLM_ONLY ? process.env.MLLM_ONLY.split(',') : undefined;
const results = await runMllmSuite({ tf, adapter, Pruner, base: join(here, 'models') + '/', device: 'cpu', backends: ['cpu'], only });
for (const r of results) {
  test(`node: ${r.name}`, (t) => {
    assert.ok(r.ok, r.detail);
    t.diagnostic(r.detail);
  });
}

// The README's copy-paste code (examples/transformers-vlm.mjs) runs as written.
for (const [arch, ratio, want] of [['llava', '0.25', /image tokens 36 -> 9 .*prompt 77 -> 50 tokens/], ['qwen2vl', '0.5', /image tokens 48 -> 24 .*prompt 92 -> 68 tokens/]]) {
  test(`node: examples/transformers-vlm.mjs ${arch} ${ratio} (the README's code)`, async (t) => {
    const { execFile } = await import('node:child_process');
    const out = await new Promise((ok, fail) =>
      execFile(process.execPath, [join(here, '..', 'examples', 'transformers-vlm.mjs'), arch, ratio], (e, so, se) => (e ? fail(new Error(`${e.message}\n${se}`)) : ok(so))),
    );
    assert.match(out, want);
    t.diagnostic(out.trim());
  });
}
