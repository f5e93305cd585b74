// End-to-end test of the in-browser demo (web/demo) in headless Chromium: the page loads,
// encodes a bundled photo with the real encoder (onnxruntime-web), prunes on WebGPU, shows the
// expected number of kept patches, and its pictures are neither blank nor identical across
// methods; CDPruner's relevance proxy follows a click; the video mode encodes the panning
// frames and draws each frame's kept patches. Needs `bash web/build.sh` and
// `bash scripts/encoder/setup.sh` first.
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
  assert.deepEqual(rows.map((r) => r[0]), ['divprune', 'idpruner', 'topk', 'random', 'uniform', 'cdpruner', 'cdpruner-openvino']);
  assert.deepEqual(await page.$$eval('#figures thead th', (ths) => ths.map((th) => th.textContent)), ['method', 'kept', 'prune ms', 'min kept–kept', 'max pruned→kept', 'mean pruned→kept']);
  assert.match(rows[5][1], /^CDPruner \(relevance proxy: similarity to the clicked region\)$/);
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

test('CDPruner: the relevance proxy follows a click on the picture', async () => {
  // Still chelsea at 10 % (58 of 576).
  await page.selectOption('#method-b', 'cdpruner');
  const centre = await page.evaluate(() => Array.from(globalThis.demo.results.cdpruner.result.kept));
  assert.equal(centre.length, 58);
  assert.deepEqual(keptCells(await panelShot('panel-b')), centre, 'the CDPruner panel shows its kept patches (the focus cross clears the probes)');
  assert.match(await page.textContent('#panel-b figcaption'), /^CDPruner \(relevance proxy: similarity to the clicked region\): 58 \/ 576 kept .* focus row 12, col 12 \(click a picture to move it\)$/);
  // Click the patch at row 4, column 19 (20 px cells on the 480 px canvas).
  await page.locator('#panel-b canvas').click({ position: { x: 19 * 20 + 10, y: 4 * 20 + 10 } });
  await page.waitForFunction(() => globalThis.demo.focus.join() === '4,19' && document.querySelector('#panel-b figcaption').textContent.includes('row 4, col 19'), null, { timeout: 120_000 });
  await waitReady('focus click');
  const moved = await page.evaluate(() => Array.from(globalThis.demo.results.cdpruner.result.kept));
  assert.equal(moved.length, 58);
  assert.notDeepEqual(moved, centre, 'the kept set follows the focus');
  assert.deepEqual(keptCells(await panelShot('panel-b')), moved);
  // The proxy is each token's cosine to the focus region's mean unit token: recomputed here.
  const { features, relevance, query } = await page.evaluate(() => ({
    features: Array.from(globalThis.demo.tokens.features), relevance: Array.from(globalThis.demo.relevance), query: Array.from(globalThis.demo.query),
  }));
  const q = new Float64Array(320);
  for (const r of [3, 4, 5]) for (const c of [18, 19, 20]) {
    const o = (r * 24 + c) * 320;
    const norm = Math.hypot(...features.slice(o, o + 320));
    for (let j = 0; j < 320; j++) q[j] += features[o + j] / norm / 9;
  }
  for (let j = 0; j < 320; j++) assert.ok(Math.abs(q[j] - query[j]) < 1e-6, `query[${j}]`);
  const qn = Math.hypot(...q);
  for (const i of [0, 4 * 24 + 19, 300, 575]) {
    const x = features.slice(i * 320, (i + 1) * 320);
    const cos = x.reduce((a, v, j) => a + v * q[j], 0) / (Math.hypot(...x) * qn);
    assert.ok(Math.abs(cos - relevance[i]) < 1e-5, `relevance[${i}] ${relevance[i]} vs ${cos}`);
  }
  // The other methods' results were kept, not recomputed.
  const rows = await page.$$eval('#figures tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent));
  assert.deepEqual(rows, Array(7).fill('58'));
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

test('the video: 8 panning frames encoded in the browser, EVS and VidCom2 draw each frame', async () => {
  // From the previous test's page (coffee.png on the CPU backend, keep 10 %): the video button.
  await page.locator('#ratio').fill('25');
  await page.click('#photos #video');
  await page.waitForFunction(() => globalThis.demo.mode === 'video', null, { timeout: 120_000 });
  const status = await waitReady('video');
  assert.match(status, /^astronaut-pan \(8 frames\): EVS kept 288 of 1152 tokens \(25%\) on CPU \(wasm\)\.$/);
  const timings = await page.textContent('#timings');
  console.log(`video: ${timings}; prune ${await page.$$eval('#figures tbody tr', (trs) => trs.map((tr) => `${tr.dataset.method} ${tr.children[3].textContent} ms`).join(', '))}`);
  assert.match(timings, /^Encode: \d+ ms for 8 frames of 384 px \(onnxruntime-web/);
  assert.deepEqual(await page.$$eval('#method-a option', (os) => os.map((o) => o.value)), ['evs', 'vidcom2', 'divprune-per-frame']);
  assert.equal(await page.inputValue('#method-a'), 'evs');
  assert.equal(await page.inputValue('#method-b'), 'vidcom2');
  assert.equal(await page.isDisabled('#ask-go'), true, 'the ask panel takes a photo');

  // The frames are windows of the photo at their own size (no resize), as build.py encoded them:
  // compared in the page with the bundled f16 embedding (the page fetches it: nothing big
  // crosses the page boundary).
  const cos = await page.evaluate(async () => {
    const buf = await (await fetch('/embeddings/astronaut-pan.npy')).arrayBuffer();
    const hlen = new DataView(buf).getUint16(8, true);
    const h = new Uint16Array(buf.slice(10 + hlen));
    const b = Float32Array.from(h, (v) => {
      const e = (v >> 10) & 0x1f, m = v & 0x3ff, s = v & 0x8000 ? -1 : 1;
      return s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    });
    const t = globalThis.demo.tokens.features;
    if (t.length !== b.length) return [NaN, `length ${t.length} vs ${b.length}`];
    let sum = 0, min = 1;
    for (let i = 0; i < 1152; i++) {
      let ab = 0, aa = 0, bb = 0;
      for (let j = 0; j < 320; j++) {
        const x = t[i * 320 + j], y = b[i * 320 + j];
        ab += x * y; aa += x * x; bb += y * y;
      }
      const c = ab / Math.sqrt(aa * bb);
      sum += c;
      min = Math.min(min, c);
    }
    return [sum / 1152, min];
  });
  console.log(`browser vs bundled astronaut-pan tokens: mean cosine ${cos[0]}, lowest ${cos[1]}`);
  assert.ok(cos[0] > 0.999, `mean cosine ${cos}`);

  const rows = await page.$$eval('#figures tbody tr', (trs) => trs.map((tr) => [tr.dataset.method, ...[...tr.children].map((td) => td.textContent)]));
  assert.deepEqual(rows.map((r) => r.slice(0, 3)), [['evs', 'EVS', '288'], ['vidcom2', 'VidCom2 (exact count)', '288'], ['divprune-per-frame', 'DivPrune per frame', '288']]);
  assert.equal(rows[2][3], '36 36 36 36 36 36 36 36');
  assert.match(rows[0][3], /^144 /, 'EVS keeps frame 0 whole');
  // Each frame of each panel shows exactly that frame's kept patches (4 x 2 frames of 120 px, 10 px cells).
  for (const [id, key] of [['panel-a', 'evs'], ['panel-b', 'vidcom2']]) {
    assert.deepEqual(await page.$eval(`#${id} canvas`, (c) => [c.width, c.height]), [480, 240], id);
    const img = await panelShot(id);
    const kept = await page.evaluate((k) => Array.from(globalThis.demo.results[k].result.kept), key);
    const perFrame = [];
    for (let f = 0; f < 8; f++) {
      const x0 = (f % 4) * 120, y0 = Math.floor(f / 4) * 120;
      const drawn = [];
      for (let c = 0; c < 144; c++) {
        const px = rgb(img, x0 + (c % 12) * 10, y0 + Math.floor(c / 12) * 10 + 5);
        if (px.every((v, i) => v === KEPT[i])) drawn.push(f * 144 + c);
      }
      assert.deepEqual(drawn, kept.filter((i) => Math.floor(i / 144) === f), `${key} frame ${f}`);
      perFrame.push(drawn.length);
    }
    assert.equal(rows.find((r) => r[0] === key)[3], perFrame.join(' '));
  }
  assert.match(await page.textContent('#panel-a figcaption'), /^EVS: 288 \/ 1152 kept in [\d.]+ ms · .* · per frame 144 /);
  // Back to a photo: the pickers return to the image methods.
  await page.click('#photos button[data-name="coffee"]');
  await page.waitForFunction(() => globalThis.demo.mode === 'photo', null, { timeout: 120_000 });
  await waitReady('back to a photo');
  assert.equal(await page.inputValue('#method-a'), 'divprune');
  assert.equal(await page.isDisabled('#ask-go'), false);
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

test('ask the model: ?model= loads another model folder (the tiny LLaVA), CDPruner with the prompt\'s embedding, keep 10%', async () => {
  await page.goto(`${server.url}?photo=coffee&a=cdpruner&model=/vlm/llava`);
  await waitReady('ask: llava load');
  await page.locator('#ratio').fill('10');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('kept 58 of 576'), null, { timeout: 120_000 });
  const { rows, result: r } = await askAndRead('llava');
  assert.equal(r.imageTokens, 36);
  assert.equal(r.kept, 4, 'keep 10% of 36 = round_half_even(3.6)');
  assert.match(rows[1][0], /^CDPruner \(relevance: the prompt's own mean token embedding\) 10%$/);
  assert.match(await page.textContent('#ask-model'), /^Model: \/vlm\/llava \(LlavaForConditionalGeneration, transformers\.js on wasm\)\.$/);
});
