// End-to-end test of the in-browser demo (web/demo) in headless Chromium: the page loads,
// encodes a bundled photo with the real encoder (onnxruntime-web), prunes on WebGPU, shows the
// expected number of kept patches, and its pictures are neither blank nor identical across
// methods. Needs `bash web/build.sh` and `bash scripts/encoder/setup.sh` first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { startDemoServer, missingPieces } from '../demo/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, '..', '..', 'examples');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const KEPT = [255, 190, 20];

let server, browser, page;
const logs = [];

/** Decodes an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium's screenshots are). */
function decodePng(buf) {
  assert.equal(buf.readUInt32BE(0), 0x89504e47, 'PNG signature');
  let off = 8, width, height, channels;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      assert.equal(body[8], 8, 'bit depth');
      channels = { 2: 3, 6: 4 }[body[9]];
      assert.ok(channels, `colour type ${body[9]}`);
      assert.equal(body[12], 0, 'interlace');
    } else if (type === 'IDAT') idat.push(body);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      out[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}

const rgb = (img, x, y) => {
  const o = (y * img.width + x) * img.channels;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
};

/** Standard deviation of the luminance: ~0 for a blank picture. */
function lumaStd(img) {
  let s = 0, s2 = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const [r, g, b] = rgb(img, i % img.width, Math.floor(i / img.width));
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    s += l;
    s2 += l * l;
  }
  return Math.sqrt(s2 / n - (s / n) ** 2);
}

/**
 * Kept patches read off a screenshot of a panel's canvas: cells whose left edge, probed halfway
 * down the cell, is outlined (pruned cells are dimmed far below the outline colour). Halfway,
 * because an element screenshot may start a fractional pixel above the canvas.
 */
function keptCells(img, [gh, gw] = [24, 24]) {
  const cells = [];
  for (let c = 0; c < gh * gw; c++) {
    const x = Math.floor(((c % gw) * img.width) / gw);
    const y = Math.floor(((Math.floor(c / gw) + 0.5) * img.height) / gh);
    if (rgb(img, x, y).every((v, i) => v === KEPT[i])) cells.push(c);
  }
  return cells;
}

/** [n, d] f16 .npy as Float32Array (the bundled embeddings). */
function readF16Npy(path) {
  const b = readFileSync(path);
  const hlen = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hlen);
  assert.match(header, /'descr': '<f2'/);
  const u16 = new Uint16Array(b.buffer.slice(b.byteOffset + 10 + hlen, b.byteOffset + b.length));
  const f = new Float32Array(u16.length);
  for (let i = 0; i < u16.length; i++) {
    const h = u16[i], s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    f[i] = s * (e === 0 ? m * 2 ** -24 : e === 31 ? Infinity : (1 + m / 1024) * 2 ** (e - 15));
  }
  return f;
}

async function waitReady(what) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('#status').dataset.state), null, { timeout: 240_000 });
  const status = await page.textContent('#status');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'ready', `${what}: ${status}\n${logs.join('\n')}`);
  return status;
}

async function panelShot(id) {
  return decodePng(await page.locator(`#${id} canvas`).screenshot());
}

before(async () => {
  const missing = missingPieces();
  assert.deepEqual(missing, [], missing.join('\n'));
  server = await startDemoServer({ port: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 1000 }, deviceScaleFactor: 1 });
  page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('encodes a bundled photo, prunes it on WebGPU, and draws the kept patches', async () => {
  await page.goto(`${server.url}?photo=chelsea&a=divprune&b=random&backend=webgpu`);
  const status = await waitReady('first load');
  assert.match(status, /^chelsea: kept 144 of 576 tokens \(25%\) on WebGPU \(/);
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true);
  assert.match(await page.textContent('#timings'), /^Encode: \d+ ms \(onnxruntime-web 1\.30\.0 wasm, \d thread\(s\)\) · Prune \(DivPrune\): [\d.]+ ms on WebGPU/);

  // The browser's encoding is the same network as the native bundled embedding (the resize
  // differs: Chromium's against PIL's bilinear, so not bit-equal).
  const tokens = await page.evaluate(() => Array.from(globalThis.demo.tokens.features));
  const bundled = readF16Npy(join(examples, 'embeddings', 'chelsea.npy'));
  assert.equal(tokens.length, bundled.length);
  let cosSum = 0;
  for (let i = 0; i < 576; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < 320; j++) {
      const a = tokens[i * 320 + j], b = bundled[i * 320 + j];
      ab += a * b; aa += a * a; bb += b * b;
    }
    cosSum += ab / Math.sqrt(aa * bb);
  }
  const meanCos = cosSum / 576;
  console.log(`browser vs bundled chelsea tokens: mean cosine ${meanCos.toFixed(4)}`);
  assert.ok(meanCos > 0.9, `mean cosine ${meanCos}`);

  // Every method kept 144; the table and the pictures agree.
  const rows = await page.$$eval('#figures tbody tr', (trs) => trs.map((tr) => [tr.dataset.method, ...[...tr.children].map((td) => td.textContent)]));
  assert.deepEqual(rows.map((r) => r[0]), ['divprune', 'idpruner', 'topk', 'random', 'uniform']);
  for (const r of rows) assert.equal(r[2], '144', r.join(' | '));
  const divMin = Number(rows[0][4]);
  for (const r of rows.slice(1)) assert.ok(divMin > Number(r[4]), `DivPrune is the most diverse: ${rows[0]} vs ${r}`);

  const a = await panelShot('panel-a');
  const b = await panelShot('panel-b');
  const keptA = await page.evaluate(() => Array.from(globalThis.demo.results.divprune.result.kept));
  const keptB = await page.evaluate(() => Array.from(globalThis.demo.results.random.result.kept));
  assert.deepEqual(keptCells(a), keptA, 'DivPrune panel shows exactly its kept patches');
  assert.deepEqual(keptCells(b), keptB, 'Random panel shows exactly its kept patches');
  for (const [name, img] of [['divprune', a], ['random', b]]) {
    const s = lumaStd(img);
    assert.ok(s > 20, `${name} panel is blank (luma std ${s})`);
  }
  let differ = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) differ++;
  assert.ok(differ > a.data.length / 10, `DivPrune and Random pictures differ in only ${differ} bytes`);
});

test('the keep slider changes the budget, the method picker changes the picture', async () => {
  await page.locator('#ratio').fill('10');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('kept 58 of 576'), null, { timeout: 120_000 });
  await waitReady('slider');
  assert.equal(await page.getAttribute('#panel-a', 'data-kept'), '58');
  const before = await panelShot('panel-b');
  await page.selectOption('#method-b', 'idpruner');
  assert.equal(await page.getAttribute('#panel-b', 'data-method'), 'idpruner');
  const after = await panelShot('panel-b');
  const kept = await page.evaluate(() => Array.from(globalThis.demo.results.idpruner.result.kept));
  assert.equal(kept.length, 58);
  assert.deepEqual(keptCells(after), kept);
  assert.notDeepEqual(keptCells(before), keptCells(after));
  assert.match(await page.textContent('#panel-b figcaption'), /IDPruner \(importance proxy: token norm\): 58 \/ 576 kept/);
});

test('your own picture, and the CPU backend', async () => {
  await page.setInputFiles('#file', join(examples, 'photos', 'coffee.png'));
  const status = await waitReady('own picture');
  assert.match(status, /^coffee\.png: kept 58 of 576 tokens \(10%\) on WebGPU/);
  const gpuKept = await page.evaluate(() => Array.from(globalThis.demo.results.divprune.result.kept));
  await page.selectOption('#backend', 'cpu');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('on CPU (wasm)'), null, { timeout: 120_000 });
  await waitReady('cpu backend');
  const cpuKept = await page.evaluate(() => Array.from(globalThis.demo.results.divprune.result.kept));
  assert.equal(cpuKept.length, 58);
  const same = cpuKept.filter((i) => gpuKept.includes(i)).length;
  console.log(`DivPrune on coffee.png: WebGPU and CPU kept sets share ${same} of 58 tokens`);
  assert.ok(same >= 55, `WebGPU and CPU kept sets share only ${same} of 58`);
  assert.ok(!logs.some((l) => l.startsWith('pageerror')), logs.join('\n'));
});

test('encoders are pluggable: a module named by ?encoder= with a 6 x 8 grid', async () => {
  // Any module whose default export resolves to { name, inputSize, encode(canvas) }.
  const encoder = `export default async () => ({
    name: 'test encoder', inputSize: 64,
    async encode(canvas) {
      const px = canvas.getContext('2d').getImageData(0, 0, 64, 64).data;
      const n = 48, d = 5, features = new Float32Array(n * d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) features[i * d + j] = Math.sin(i * 1.7 + j * 0.3) + px[(i * 4 + j) * 4] / 255;
      return { features, n, d, grid: [6, 8] };
    },
  });`;
  await page.route('**/test-encoder.js', (route) => route.fulfill({ body: encoder, contentType: 'text/javascript' }));
  await page.goto(`${server.url}?encoder=/test-encoder.js&photo=astronaut&backend=webgpu`);
  const status = await waitReady('custom encoder');
  assert.match(status, /^astronaut: kept 12 of 48 tokens \(25%\) on WebGPU/);
  assert.match(await page.textContent('#timings'), /^Encode: \d+ ms \(test encoder\)/);
  const kept = await page.evaluate(() => Array.from(globalThis.demo.results.divprune.result.kept));
  assert.equal(kept.length, 12);
  assert.deepEqual(keptCells(await panelShot('panel-a'), [6, 8]), kept);
});

async function askAndRead(what) {
  await page.click('#ask-go');
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('#ask-status').dataset.state), null, { timeout: 240_000 });
  const status = await page.textContent('#ask-status');
  assert.equal(await page.getAttribute('#ask-status', 'data-state'), 'ready', `${what}: ${status}\n${logs.slice(-20).join('\n')}`);
  const rows = await page.$$eval('#ask-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  return { status, rows, result: await page.evaluate(() => globalThis.demoAsk.result) };
}

test('ask the model: the bundled tiny Qwen2-VL (random weights), unpruned and pruned', async () => {
  await page.goto(`${server.url}?photo=chelsea&a=divprune`);
  await waitReady('ask: first load');
  assert.match(await page.textContent('#ask-model'), /RANDOM WEIGHTS/);
  const { status, rows, result: r } = await askAndRead('bundled model');
  // The photo is resized to 128 x 128 by the tiny model's processor: 32 x 32 patches, 16 x 16 = 256 LLM tokens.
  assert.equal(r.imageTokens, 256);
  assert.equal(r.kept, 64, 'keep 25% of 256');
  assert.equal(r.promptLength - r.prunedLength, 256 - 64, 'the prompt shrinks by N - K');
  assert.match(status, /^Image tokens 256 -> 64 \(pruned in [\d.]+ ms\); prefill \d+ -> \d+ ms\.$/);
  assert.equal(rows.length, 2);
  assert.equal(rows[0][1], `256 + ${r.textTokens} text = ${r.promptLength}`);
  assert.equal(rows[1][1], `64 + ${r.textTokens} text = ${r.prunedLength}`);
  for (const run of [r.full, r.pruned]) {
    assert.equal(run.steps, 24, 'prefill + 23 decode steps');
    assert.ok(run.prefillMs > 0 && run.decodeMs > 0);
    assert.ok(run.text.length > 0, 'an answer (gibberish: random weights)');
  }
  assert.match(await page.textContent('#ask-model'), /RANDOM WEIGHTS \(web\/test\/models\/qwen2vl\)/);
  assert.ok(!logs.some((l) => l.startsWith('pageerror')), logs.join('\n'));
});

test('ask the model: ?model= loads another model folder (the tiny LLaVA), keep 10%', async () => {
  await page.goto(`${server.url}?photo=coffee&a=uniform&model=/vlm/llava`);
  await waitReady('ask: llava load');
  await page.locator('#ratio').fill('10');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('kept 58 of 576'), null, { timeout: 120_000 });
  const { rows, result: r } = await askAndRead('llava');
  assert.equal(r.imageTokens, 36);
  assert.equal(r.kept, 4, 'keep 10% of 36 = round_half_even(3.6)');
  assert.match(rows[1][0], /^Uniform 10%$/);
  assert.match(await page.textContent('#ask-model'), /^Model: \/vlm\/llava \(LlavaForConditionalGeneration, transformers\.js on wasm\)\.$/);
});
