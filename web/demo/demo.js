// The demo page: photo -> encoder (onnxruntime-web) -> tokenprune (WebGPU or CPU) -> pictures
// of what each method kept, and figures of the kept sets. A video mode encodes the bundled
// video (frames of a window panning across a photo, examples/embeddings/manifest.json) frame by
// frame and prunes it with the video methods.
import { Pruner, keptSetFigures } from '/tokenprune/src/index.js';

const PHOTOS = ['astronaut', 'chelsea', 'coffee'];
/** Methods on a photo: key -> label. The labels name every proxy the demo stands in with. */
const PHOTO_METHODS = {
  divprune: 'DivPrune',
  idpruner: 'IDPruner (importance proxy: token norm)',
  topk: 'TopK (importance proxy: token norm)',
  random: 'Random',
  uniform: 'Uniform',
  cdpruner: 'CDPruner (relevance proxy: similarity to the clicked region)',
  'cdpruner-openvino': 'cdpruner-openvino (relevance proxy: the clicked region as the text vector)',
};
/** Methods on the video: key -> label. */
const VIDEO_METHODS = {
  evs: 'EVS',
  vidcom2: 'VidCom2 (exact count)',
  'divprune-per-frame': 'DivPrune per frame',
};
/** In the "ask the model" panel CDPruner's relevance is real: the prompt's own embedding. */
const ASK_LABELS = {
  cdpruner: 'CDPruner (relevance: the prompt\'s own mean token embedding)',
  'cdpruner-openvino': 'cdpruner-openvino (text vector: the prompt\'s own mean token embedding)',
};
const IMPORTANCE_METHODS = new Set(['idpruner', 'topk']);
const FOCUS_METHODS = new Set(['cdpruner', 'cdpruner-openvino']);
/** Half the side of the focus region: the query is the mean direction of the 3 x 3 patches around the click. */
const FOCUS_RADIUS = 1;
const VIDEO_NAME = 'astronaut-pan';
/** Video panels: frames per row and their side on the canvas. */
const VIDEO_COLUMNS = 4;
const VIDEO_FRAME = 120;
const KEPT = [255, 190, 20];
const FOCUS = [0, 220, 255];
const $ = (s) => document.querySelector(s);

const state = {
  encoder: null,
  pruner: null,
  mode: 'photo', // or 'video'
  photo: null, // canvas: the square crop at its own resolution
  photoName: null,
  video: null, // { name, frames: [canvas], offsets, window, photoName }
  tokens: null, // { features, n, d, grid } ([h, w] for a photo, [t, h, w] for the video)
  norms: null,
  focus: null, // [row, col] of the photo grid: CDPruner's relevance proxy
  query: null, // the focus region's mean unit token [d]
  relevance: null, // each token's cosine to the query [n]
  results: {}, // method -> { result, figures, wallMs }
  timings: {},
  generation: 0, // bumps on every new request; stale work is dropped
};
// For tests and the console.
globalThis.demo = state;

const methods = () => (state.mode === 'video' ? VIDEO_METHODS : PHOTO_METHODS);

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

/** The `side` x `side` window of `src` at (sx, sy), drawn at `out` x `out` pixels. */
function cut(src, sx, sy, side, out) {
  const c = document.createElement('canvas');
  c.width = c.height = out;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, sx, sy, side, side, 0, 0, out, out);
  return c;
}

function resized(src, side) {
  return cut(src, 0, 0, src.width, side);
}

async function loadImage(source) {
  if (typeof source !== 'string') return createImageBitmap(source);
  const img = new Image();
  img.src = source;
  await img.decode();
  return img;
}

function tokenNorms({ features, n, d }) {
  const s = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let j = 0; j < d; j++) v += features[i * d + j] ** 2;
    s[i] = Math.sqrt(v);
  }
  return s;
}

function pressed(name) {
  document.querySelectorAll('#photos button').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.name === name)));
}

/** Fills both method pickers with the mode's methods, keeping a choice that still exists. */
function fillPickers(prefer = {}) {
  const ms = methods();
  const keys = Object.keys(ms);
  for (const [sel, fallback] of [[$('#method-a'), keys[0]], [$('#method-b'), keys[1]]]) {
    const want = prefer[sel.id] ?? sel.value;
    sel.replaceChildren(...Object.entries(ms).map(([value, label]) => new Option(label, value)));
    sel.value = keys.includes(want) ? want : fallback;
  }
  document.body.dataset.mode = state.mode;
  $('#ask-go').disabled = state.mode === 'video';
}

async function loadPhoto(source, name) {
  const gen = ++state.generation;
  try {
    setStatus('encoding', `Encoding ${name} with ${state.encoder.name}…`);
    const photo = squareCrop(await loadImage(source));
    const t0 = performance.now();
    const tokens = await state.encoder.encode(resized(photo, state.encoder.inputSize));
    const encodeMs = performance.now() - t0;
    if (gen !== state.generation) return;
    state.mode = 'photo';
    state.photo = photo;
    state.photoName = name;
    state.tokens = tokens;
    state.timings.encodeMs = encodeMs;
    state.norms = tokenNorms(tokens);
    const [gh, gw] = tokens.grid;
    state.focus = [Math.floor(gh / 2), Math.floor(gw / 2)];
    updateRelevance();
    pressed(name);
    fillPickers();
    await pruneAll();
  } catch (e) {
    if (gen === state.generation) fail(e);
  }
}

/**
 * The bundled video: the manifest's windows of its photo, each encoded on its own (at the
 * window's own size when the encoder takes it, as the bundled embedding was made; otherwise
 * resized to the encoder's input size).
 */
async function loadVideo() {
  const gen = ++state.generation;
  try {
    setStatus('encoding', `Encoding the video ${VIDEO_NAME} with ${state.encoder.name}…`);
    const manifest = await (await fetch('/embeddings/manifest.json')).json();
    const v = manifest.video;
    if (!v) throw new Error('/embeddings/manifest.json has no video: run bash scripts/encoder/setup.sh --write');
    const img = await loadImage(`/${v.photo}`);
    const side = state.encoder.acceptsSize?.(v.window) ? v.window : state.encoder.inputSize;
    const frames = v.offsets.map(([x, y]) => cut(img, x, y, v.window, side));
    const t0 = performance.now();
    const encoded = [];
    for (const f of frames) encoded.push(await state.encoder.encode(f));
    const encodeMs = performance.now() - t0;
    if (gen !== state.generation) return;
    const { n, d, grid: [gh, gw] } = encoded[0];
    const features = new Float32Array(n * d * frames.length);
    encoded.forEach((e, t) => features.set(e.features, t * n * d));
    state.mode = 'video';
    state.video = { name: v.name, frames, offsets: v.offsets, window: v.window, frameSide: side, photoName: v.photo.split('/').pop() };
    state.tokens = { features, n: n * frames.length, d, grid: [frames.length, gh, gw] };
    state.timings.encodeMs = encodeMs;
    pressed(VIDEO_NAME);
    fillPickers();
    await pruneAll();
  } catch (e) {
    if (gen === state.generation) fail(e);
  }
}

/** CDPruner's relevance proxy at the current focus: each token's cosine to the mean unit token of the focus region. */
function updateRelevance() {
  const { features, n, d, grid: [gh, gw] } = state.tokens;
  const [fr, fc] = state.focus;
  const q = new Float64Array(d);
  const rows = [Math.max(0, fr - FOCUS_RADIUS), Math.min(gh, fr + FOCUS_RADIUS + 1)];
  const cols = [Math.max(0, fc - FOCUS_RADIUS), Math.min(gw, fc + FOCUS_RADIUS + 1)];
  const count = (rows[1] - rows[0]) * (cols[1] - cols[0]);
  for (let r = rows[0]; r < rows[1]; r++) {
    for (let c = cols[0]; c < cols[1]; c++) {
      const o = (r * gw + c) * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += features[o + j] ** 2;
      const norm = Math.sqrt(s);
      if (norm > 0) for (let j = 0; j < d; j++) q[j] += features[o + j] / norm / count;
    }
  }
  state.query = Float32Array.from(q);
  let qq = 0;
  for (let j = 0; j < d; j++) qq += state.query[j] ** 2;
  const qn = Math.sqrt(qq);
  state.relevance = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0, xx = 0;
    for (let j = 0; j < d; j++) {
      const x = features[i * d + j];
      dot += x * state.query[j];
      xx += x * x;
    }
    state.relevance[i] = xx > 0 && qn > 0 ? dot / (Math.sqrt(xx) * qn) : 0;
  }
}

function keepRatio() {
  return Number($('#ratio').value) / 100;
}

/** Prune options of a method key for the current tokens. */
function pruneOptions(key) {
  const { n, d, grid } = state.tokens;
  const options = { n, d, grid, method: key, keepRatio: keepRatio() };
  if (key === 'divprune-per-frame') Object.assign(options, { method: 'divprune', perFrame: true });
  if (IMPORTANCE_METHODS.has(key)) options.importance = state.norms;
  if (key === 'cdpruner') options.relevance = state.relevance;
  if (key === 'cdpruner-openvino') options.textEmbeds = state.query;
  return options;
}

/** Prunes with every method of the mode (or only those in `only`, keeping the other results). */
async function pruneAll(only = null) {
  const gen = ++state.generation;
  try {
    await pruneAllFor(gen, only);
  } catch (e) {
    // A newer request (or a replaced pruner) makes this one's failure irrelevant.
    if (gen === state.generation) throw e;
  }
}

async function pruneAllFor(gen, only) {
  const { features, n } = state.tokens;
  setStatus('pruning', `Pruning on ${backendLabel(state.pruner)}…`);
  const results = only ? { ...state.results } : {};
  for (const key of Object.keys(methods())) {
    if (only && !only.includes(key)) continue;
    const t0 = performance.now();
    const result = await state.pruner.prune(features, pruneOptions(key));
    const wallMs = performance.now() - t0;
    const figures = await keptSetFigures(features, result);
    results[key] = { result, figures, wallMs };
  }
  if (gen !== state.generation) return;
  state.results = results;
  render();
  if (state.mode === 'video') {
    const k = results.evs.result.kept.length;
    setStatus('ready', `${state.video.name} (${state.tokens.grid[0]} frames): EVS kept ${k} of ${n} tokens (${(100 * k / n).toFixed(0)}%) on ${backendLabel(state.pruner)}.`);
  } else {
    const k = results.divprune.result.kept.length;
    setStatus('ready', `${state.photoName}: kept ${k} of ${n} tokens (${(100 * k / n).toFixed(0)}%) on ${backendLabel(state.pruner)}.`);
  }
}

/**
 * Marks a grid over the `w` x `h` pixels at (x0, y0) of `img` (an ImageData): kept cells
 * outlined, pruned ones dimmed and desaturated, as the native demo does (src/cli/picture.rs).
 */
function markCells(img, x0, y0, w, h, [gh, gw], kept) {
  const px = img.data;
  const cellX = (v) => Math.min(gw - 1, Math.floor((v * gw) / w));
  const cellY = (v) => Math.min(gh - 1, Math.floor((v * gh) / h));
  for (let y = 0; y < h; y++) {
    const gy = cellY(y);
    const edgeY = y === 0 || y === h - 1 || cellY(y - 1) !== gy || cellY(y + 1) !== gy;
    for (let x = 0; x < w; x++) {
      const gx = cellX(x);
      const o = ((y0 + y) * img.width + x0 + x) * 4;
      if (kept[gy * gw + gx]) {
        const edgeX = x === 0 || x === w - 1 || cellX(x - 1) !== gx || cellX(x + 1) !== gx;
        if (edgeX || edgeY) [px[o], px[o + 1], px[o + 2]] = KEPT;
      } else {
        const grey = 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
        for (let c = 0; c < 3; c++) px[o + c] = Math.round((0.35 * px[o + c] + 0.65 * grey) * 0.28);
      }
    }
  }
}

/** Kept tokens per frame. */
function perFrame(kept, [t, h, w]) {
  const counts = new Array(t).fill(0);
  for (const i of kept) counts[Math.floor(i / (h * w))]++;
  return counts;
}

const fmt = (v) => (v == null ? '–' : v.toFixed(4));

function drawPanel(panel, key) {
  const { result, figures, wallMs } = state.results[key];
  const canvas = panel.querySelector('canvas');
  const kept = new Uint8Array(state.tokens.n);
  result.kept.forEach((i) => { kept[i] = 1; });
  let extra = '';
  if (state.mode === 'video') {
    const [t, gh, gw] = state.tokens.grid;
    const s = VIDEO_FRAME;
    canvas.width = VIDEO_COLUMNS * s;
    canvas.height = Math.ceil(t / VIDEO_COLUMNS) * s;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    state.video.frames.forEach((f, i) => ctx.drawImage(f, (i % VIDEO_COLUMNS) * s, Math.floor(i / VIDEO_COLUMNS) * s, s, s));
    const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < t; i++) {
      markCells(img, (i % VIDEO_COLUMNS) * s, Math.floor(i / VIDEO_COLUMNS) * s, s, s, [gh, gw], kept.subarray(i * gh * gw, (i + 1) * gh * gw));
    }
    ctx.putImageData(img, 0, 0);
    extra = ` · per frame ${perFrame(result.kept, state.tokens.grid).join(' ')}`;
  } else {
    const side = 480;
    canvas.width = canvas.height = side;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(resized(state.photo, side), 0, 0);
    const img = ctx.getImageData(0, 0, side, side);
    markCells(img, 0, 0, side, side, state.tokens.grid, kept);
    ctx.putImageData(img, 0, 0);
    if (FOCUS_METHODS.has(key)) {
      // A cross in the middle of the focus patch (clear of the cell edges that carry the outline).
      const [gh, gw] = state.tokens.grid;
      const [fr, fc] = state.focus;
      const cx = ((fc + 0.5) * side) / gw, cy = ((fr + 0.5) * side) / gh;
      const arm = Math.max(2, Math.floor((0.3 * side) / gw));
      ctx.fillStyle = `rgb(${FOCUS.join(',')})`;
      ctx.fillRect(Math.round(cx - arm), Math.round(cy - 1), 2 * arm, 2);
      ctx.fillRect(Math.round(cx - 1), Math.round(cy - arm), 2, 2 * arm);
      extra = ` · focus row ${fr}, col ${fc} (click a picture to move it)`;
    }
  }
  panel.dataset.method = key;
  panel.dataset.kept = String(result.kept.length);
  panel.querySelector('figcaption').textContent =
    `${methods()[key]}: ${result.kept.length} / ${result.n} kept in ${wallMs.toFixed(1)} ms · ` +
    `min kept–kept ${fmt(figures.minPairwiseDistance)} · max pruned→kept ${fmt(figures.maxUncoveredDistance)}${extra}`;
}

function render() {
  drawPanel($('#panel-a'), $('#method-a').value);
  drawPanel($('#panel-b'), $('#method-b').value);
  const video = state.mode === 'video';
  const heads = ['method', 'kept', ...(video ? ['kept per frame'] : []), 'prune ms', 'min kept–kept', 'max pruned→kept', 'mean pruned→kept'];
  const titles = {
    'min kept–kept': 'smallest cosine distance between two kept tokens: higher = more diverse',
    'max pruned→kept': 'largest cosine distance from a pruned token to its nearest kept one: lower = better coverage',
    'mean pruned→kept': 'mean cosine distance from a pruned token to its nearest kept one',
  };
  const head = document.createElement('tr');
  head.append(...heads.map((h) => Object.assign(document.createElement('th'), { textContent: h, title: titles[h] ?? '' })));
  $('#figures thead').replaceChildren(head);
  $('#figures tbody').replaceChildren(...Object.entries(state.results).map(([m, { result, figures, wallMs }]) => {
    const tr = document.createElement('tr');
    tr.dataset.method = m;
    const cells = [methods()[m], result.kept.length];
    if (video) cells.push(perFrame(result.kept, state.tokens.grid).join(' '));
    cells.push(wallMs.toFixed(1), fmt(figures.minPairwiseDistance), fmt(figures.maxUncoveredDistance), fmt(figures.meanUncoveredDistance));
    for (const v of cells) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
  const first = video ? ['evs', 'EVS'] : ['divprune', 'DivPrune'];
  const prune = state.results[first[0]];
  const what = video ? ` for ${state.tokens.grid[0]} frames of ${state.video.frameSide} px` : '';
  $('#timings').textContent =
    `Encode: ${state.timings.encodeMs.toFixed(0)} ms${what} (${state.encoder.runtime ?? state.encoder.name}) · ` +
    `Prune (${first[1]}): ${prune.wallMs.toFixed(1)} ms on ${backendLabel(state.pruner)} · ` +
    `${state.tokens.n} tokens × ${state.tokens.d}`;
}

/** A click on a photo panel moves CDPruner's focus to the patch under it. */
async function focusAt(event) {
  if (state.mode !== 'photo' || !state.tokens) return;
  const rect = event.currentTarget.getBoundingClientRect();
  const [gh, gw] = state.tokens.grid;
  const col = Math.min(gw - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * gw)));
  const row = Math.min(gh - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * gh)));
  state.focus = [row, col];
  updateRelevance();
  try {
    await pruneAll([...FOCUS_METHODS]);
  } catch (e) {
    fail(e);
  }
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
    if (state.mode !== 'photo' || !state.photo) throw new Error('the model is asked about a photo: pick one first');
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
    const label = ASK_LABELS[method] ?? PHOTO_METHODS[method];
    setAskStatus('running', `Asking (unpruned, then ${label} at ${Math.round(keepRatio() * 100)}%)…`);
    // IDPruner and TopK rank by the token-norm proxy; CDPruner gets the prompt's own embedding
    // from the adapter (no relevance proxy here).
    const importance = IMPORTANCE_METHODS.has(method) ? tokenNorms : undefined;
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
      row(`${label} ${Math.round(keepRatio() * 100)}%`, `${r.kept} + ${r.textTokens} text = ${r.prunedLength}`, r.pruned),
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
  const params = new URLSearchParams(location.search);
  const video = params.get('video') === '1' || params.get('photo') === VIDEO_NAME;
  state.mode = video ? 'video' : 'photo';
  fillPickers({ 'method-a': params.get('a') ?? (video ? 'evs' : 'divprune'), 'method-b': params.get('b') ?? (video ? 'vidcom2' : 'uniform') });
  $('#backend').value = ['cpu', 'webgpu'].includes(params.get('backend')) ? params.get('backend') : 'auto';
  for (const name of PHOTOS) {
    const b = document.createElement('button');
    b.dataset.name = name;
    b.title = name;
    b.innerHTML = `<img alt="${name}" src="/photos/${name}.png">`;
    b.onclick = () => loadPhoto(`/photos/${name}.png`, name);
    $('#photos').append(b);
  }
  const vb = document.createElement('button');
  vb.dataset.name = VIDEO_NAME;
  vb.id = 'video';
  vb.title = 'video: 8 frames panning across astronaut (EVS, VidCom2)';
  vb.innerHTML = '<img alt="video" src="/photos/astronaut.png"><span>video</span>';
  vb.onclick = () => loadVideo();
  $('#photos').append(vb);
  const ratio = $('#ratio');
  ratio.oninput = () => {
    $('#ratio-out').textContent = `${ratio.value}%`;
    if (state.tokens) pruneAll().catch(fail);
  };
  for (const sel of [$('#method-a'), $('#method-b')]) sel.onchange = () => state.tokens && render();
  for (const c of document.querySelectorAll('.panel canvas')) c.onclick = focusAt;
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
  if (video) await loadVideo();
  else {
    const first = params.get('photo') ?? 'astronaut';
    await loadPhoto(`/photos/${first}.png`, first);
  }
}

main().catch(fail);
