// The demo page: photo -> encoder (onnxruntime-web) -> tokenprune (WebGPU or CPU) -> pictures
// of what each method kept, and figures of the kept sets.
import { Pruner, keptSetFigures } from '/tokenprune/src/index.js';

const PHOTOS = ['astronaut', 'chelsea', 'coffee'];
const METHODS = {
  divprune: 'DivPrune',
  idpruner: 'IDPruner (importance proxy: token norm)',
  topk: 'TopK (importance proxy: token norm)',
  random: 'Random',
  uniform: 'Uniform',
};
const KEPT = [255, 190, 20];
const $ = (s) => document.querySelector(s);

const state = {
  encoder: null,
  pruner: null,
  photo: null, // canvas: the square crop at its own resolution
  photoName: null,
  tokens: null, // { features, n, d, grid }
  norms: null,
  results: {}, // method -> { result, figures }
  timings: {},
  generation: 0, // bumps on every new request; stale work is dropped
};
// For tests and the console.
globalThis.demo = state;

function setStatus(kind, text) {
  const s = $('#status');
  s.dataset.state = kind;
  s.textContent = text;
}

function backendLabel(p) {
  return p.backend === 'webgpu' ? `WebGPU (${p.adapter ?? 'adapter name hidden'})` : 'CPU (wasm)';
}

async function makePruner(choice) {
  // 'auto': the package's default (a software adapter such as SwiftShader is slower than the
  // CPU engine and is skipped); 'webgpu': WebGPU asked for alone, whatever the adapter.
  const next = await Pruner.create(choice === 'auto' ? {} : { backends: [choice] });
  const old = state.pruner;
  state.pruner = next;
  old?.free();
}

/** Centre square crop of an image or bitmap, at its own resolution. */
function squareCrop(img) {
  const w = img.naturalWidth ?? img.width;
  const h = img.naturalHeight ?? img.height;
  const s = Math.min(w, h);
  const c = document.createElement('canvas');
  c.width = c.height = s;
  c.getContext('2d').drawImage(img, (w - s) / 2, (h - s) / 2, s, s, 0, 0, s, s);
  return c;
}

function resized(src, side) {
  const c = document.createElement('canvas');
  c.width = c.height = side;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, 0, 0, side, side);
  return c;
}

async function loadPhoto(source, name) {
  const gen = ++state.generation;
  try {
    setStatus('encoding', `Encoding ${name} with ${state.encoder.name}…`);
    let img;
    if (typeof source === 'string') {
      img = new Image();
      img.src = source;
      await img.decode();
    } else {
      img = await createImageBitmap(source);
    }
    const photo = squareCrop(img);
    const t0 = performance.now();
    const tokens = await state.encoder.encode(resized(photo, state.encoder.inputSize));
    const encodeMs = performance.now() - t0;
    if (gen !== state.generation) return;
    state.photo = photo;
    state.photoName = name;
    state.tokens = tokens;
    state.timings.encodeMs = encodeMs;
    state.norms = new Float32Array(tokens.n);
    for (let i = 0; i < tokens.n; i++) {
      let s = 0;
      for (let j = 0; j < tokens.d; j++) s += tokens.features[i * tokens.d + j] ** 2;
      state.norms[i] = Math.sqrt(s);
    }
    document.querySelectorAll('#photos button').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.name === name)));
    await pruneAll();
  } catch (e) {
    if (gen === state.generation) fail(e);
  }
}

function keepRatio() {
  return Number($('#ratio').value) / 100;
}

async function pruneAll() {
  const gen = ++state.generation;
  try {
    await pruneAllFor(gen);
  } catch (e) {
    // A newer request (or a replaced pruner) makes this one's failure irrelevant.
    if (gen === state.generation) throw e;
  }
}

async function pruneAllFor(gen) {
  const { features, n, d, grid } = state.tokens;
  setStatus('pruning', `Pruning on ${backendLabel(state.pruner)}…`);
  const results = {};
  for (const method of Object.keys(METHODS)) {
    const options = { n, d, grid, method, keepRatio: keepRatio() };
    if (method === 'idpruner' || method === 'topk') options.importance = state.norms;
    const t0 = performance.now();
    const result = await state.pruner.prune(features, options);
    const wallMs = performance.now() - t0;
    const figures = await keptSetFigures(features, result);
    results[method] = { result, figures, wallMs };
  }
  if (gen !== state.generation) return;
  state.results = results;
  render();
  const k = results.divprune.result.kept.length;
  setStatus('ready', `${state.photoName}: kept ${k} of ${n} tokens (${(100 * k / n).toFixed(0)}%) on ${backendLabel(state.pruner)}.`);
}

function drawPanel(panel, method) {
  const { result, figures, wallMs } = state.results[method];
  const canvas = panel.querySelector('canvas');
  const side = canvas.width;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(resized(state.photo, side), 0, 0);
  const img = ctx.getImageData(0, 0, side, side);
  const px = img.data;
  const [gh, gw] = state.tokens.grid;
  const kept = new Uint8Array(gh * gw);
  result.kept.forEach((i) => { kept[i] = 1; });
  const cell = (v, cells) => Math.min(cells - 1, Math.floor((v * cells) / side));
  // Same marking as the native demo (src/cli/picture.rs): outline kept, dim and desaturate pruned.
  for (let y = 0; y < side; y++) {
    const gy = cell(y, gh);
    const edgeY = y === 0 || y === side - 1 || cell(y - 1, gh) !== gy || cell(y + 1, gh) !== gy;
    for (let x = 0; x < side; x++) {
      const gx = cell(x, gw);
      const o = (y * side + x) * 4;
      if (kept[gy * gw + gx]) {
        const edgeX = x === 0 || x === side - 1 || cell(x - 1, gw) !== gx || cell(x + 1, gw) !== gx;
        if (edgeX || edgeY) [px[o], px[o + 1], px[o + 2]] = KEPT;
      } else {
        const grey = 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
        for (let c = 0; c < 3; c++) px[o + c] = Math.round((0.35 * px[o + c] + 0.65 * grey) * 0.28);
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  panel.dataset.method = method;
  panel.dataset.kept = String(result.kept.length);
  const f = (v) => (v == null ? '–' : v.toFixed(4));
  panel.querySelector('figcaption').textContent =
    `${METHODS[method]}: ${result.kept.length} / ${result.n} kept in ${wallMs.toFixed(1)} ms · ` +
    `min kept–kept ${f(figures.minPairwiseDistance)} · max pruned→kept ${f(figures.maxUncoveredDistance)}`;
}

function render() {
  drawPanel($('#panel-a'), $('#method-a').value);
  drawPanel($('#panel-b'), $('#method-b').value);
  const f = (v) => (v == null ? '–' : v.toFixed(4));
  $('#figures tbody').replaceChildren(...Object.entries(state.results).map(([m, { result, figures, wallMs }]) => {
    const tr = document.createElement('tr');
    tr.dataset.method = m;
    for (const v of [METHODS[m], result.kept.length, wallMs.toFixed(1), f(figures.minPairwiseDistance), f(figures.maxUncoveredDistance), f(figures.meanUncoveredDistance)]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
  const prune = state.results.divprune;
  $('#timings').textContent =
    `Encode: ${state.timings.encodeMs.toFixed(0)} ms (${state.encoder.runtime ?? state.encoder.name}) · ` +
    `Prune (DivPrune): ${prune.wallMs.toFixed(1)} ms on ${backendLabel(state.pruner)} · ` +
    `${state.tokens.n} tokens × ${state.tokens.d}`;
}

/** The "ask the model" panel: loads transformers.js and the VLM on first use. */
const askState = { vlm: null, loading: null, result: null };
globalThis.demoAsk = askState;

function setAskStatus(kind, text) {
  const s = $('#ask-status');
  s.dataset.state = kind;
  s.textContent = text;
}

async function askModel() {
  const params = new URLSearchParams(location.search);
  try {
    if (!state.photo) throw new Error('no photo yet');
    const mod = await import('/demo/ask.js');
    if (!askState.vlm) {
      const url = params.get('model') ?? undefined;
      setAskStatus('loading', `Loading ${url ?? 'the bundled tiny Qwen2-VL'}…`);
      askState.loading ??= mod.loadVlm(url, params.get('device') ?? 'wasm');
      askState.vlm = await askState.loading;
      $('#ask-model').textContent = askState.vlm.bundled
        ? `Model: the bundled tiny Qwen2-VL with RANDOM WEIGHTS (web/test/models/qwen2vl): the token counts and timings are real, the answers are gibberish. Load a real one with ?model=<url>.`
        : `Model: ${askState.vlm.url} (${askState.vlm.arch}, transformers.js on ${askState.vlm.device}).`;
    }
    const method = $('#method-a').value;
    setAskStatus('running', `Asking (unpruned, then ${METHODS[method]} at ${Math.round(keepRatio() * 100)}%)…`);
    const importance = ({ features, n, d }) => {
      const s = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        let v = 0;
        for (let j = 0; j < d; j++) v += features[i * d + j] ** 2;
        s[i] = Math.sqrt(v);
      }
      return s;
    };
    const r = await mod.ask(askState.vlm, state.photo, $('#question').value, { method, keepRatio: keepRatio(), pruner: state.pruner, importance });
    askState.result = r;
    const row = (name, tokens, run) => {
      const tr = document.createElement('tr');
      tr.dataset.run = name;
      for (const v of [name, tokens, run.prefillMs.toFixed(0), run.decodeMs.toFixed(1), run.text]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    };
    $('#ask-table tbody').replaceChildren(
      row('unpruned', `${r.imageTokens} + ${r.textTokens} text = ${r.promptLength}`, r.full),
      row(`${METHODS[method]} ${Math.round(keepRatio() * 100)}%`, `${r.kept} + ${r.textTokens} text = ${r.prunedLength}`, r.pruned),
    );
    setAskStatus('ready', `Image tokens ${r.imageTokens} -> ${r.kept} (pruned in ${r.pruneMs.toFixed(1)} ms); prefill ${r.full.prefillMs.toFixed(0)} -> ${r.pruned.prefillMs.toFixed(0)} ms.`);
  } catch (e) {
    console.error(e);
    setAskStatus('error', `Error: ${e.message ?? e}`);
  }
}

function fail(e) {
  console.error(e);
  setStatus('error', `Error: ${e.message ?? e}`);
}

async function main() {
  for (const sel of [$('#method-a'), $('#method-b')]) {
    for (const [value, label] of Object.entries(METHODS)) sel.append(new Option(label, value));
  }
  const params = new URLSearchParams(location.search);
  $('#method-a').value = params.get('a') ?? 'divprune';
  $('#method-b').value = params.get('b') ?? 'uniform';
  $('#backend').value = ['cpu', 'webgpu'].includes(params.get('backend')) ? params.get('backend') : 'auto';
  for (const name of PHOTOS) {
    const b = document.createElement('button');
    b.dataset.name = name;
    b.title = name;
    b.innerHTML = `<img alt="${name}" src="/photos/${name}.png">`;
    b.onclick = () => loadPhoto(`/photos/${name}.png`, name);
    $('#photos').append(b);
  }
  const ratio = $('#ratio');
  ratio.oninput = () => {
    $('#ratio-out').textContent = `${ratio.value}%`;
    if (state.tokens) pruneAll().catch(fail);
  };
  for (const sel of [$('#method-a'), $('#method-b')]) sel.onchange = () => state.tokens && render();
  $('#backend').onchange = async () => {
    state.generation++; // drop results of the pruner being replaced
    try {
      await makePruner($('#backend').value);
      if (state.tokens) await pruneAll();
    } catch (e) { fail(e); }
  };
  const drop = $('#drop');
  $('#file').onchange = (e) => e.target.files[0] && loadPhoto(e.target.files[0], e.target.files[0].name);
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) loadPhoto(file, file.name);
  };

  $('#ask-go').onclick = () => askModel();
  $('#ask-model').textContent = params.get('model')
    ? `Model: ${params.get('model')} (loads on the first question).`
    : 'Model: the bundled tiny Qwen2-VL with RANDOM WEIGHTS (loads on the first question): real token counts and timings, gibberish answers.';

  setStatus('loading', 'Loading the encoder and the pruner…');
  // Any module whose default export resolves to an encoder (see encoder.js) can replace it.
  const encoderModule = await import(params.get('encoder') ?? '/demo/encoder.js');
  [state.encoder] = await Promise.all([encoderModule.default(), makePruner($('#backend').value)]);
  const first = params.get('photo') ?? 'astronaut';
  await loadPhoto(`/photos/${first}.png`, first);
}

main().catch(fail);
