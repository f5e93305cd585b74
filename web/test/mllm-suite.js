// The MLLM adapter's checks (tokenprune/transformers), run in Node (test/transformers.test.mjs)
// and in Chromium (test/mllm.test.mjs) against the tiny random-weight models in test/models.
// Each check throws on failure and returns a short detail string.
//
// The oracles: plain transformers.js generate() (K = N), and a reference path that builds the
// pruned inputs_embeds, attention mask and position ids by hand (its own M-RoPE implementation)
// and runs the model's ONNX sessions directly in a greedy loop with its own KV cache (K < N).

const TOL = 1e-5;
const NEW_TOKENS = 16;
export const METHODS = ['divprune', 'idpruner', 'topk', 'random', 'uniform', 'cdpruner', 'cdpruner-openvino'];
/** [model folder, M-RoPE, methods run against the reference path]. Qwen2.5-VL shares Qwen2-VL's
 * code path in transformers.js and the adapter: one method there is enough. */
export const ARCHS = [['llava', false, METHODS], ['qwen2vl', true, METHODS], ['qwen25vl', true, ['divprune']]];

class CheckError extends Error {}
function ok(cond, msg) {
  if (!cond) throw new CheckError(msg);
}
function eqArr(a, b, what) {
  ok(a.length === b.length && a.every((v, i) => v === b[i]), `${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
}
function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function argmax(x) {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

/** JSON from a file path (Node) or a URL path (browser). */
async function readJson(path) {
  if (typeof window === 'undefined') {
    const { readFile } = await import('node:fs/promises');
    return JSON.parse(await readFile(path, 'utf8'));
  }
  return (await fetch(path)).json();
}

/** A deterministic test picture (w x h RGB). */
export function picture(RawImage, w, h, seed) {
  const data = new Uint8ClampedArray(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = (x * 7 + y * 3 + seed * 50) % 256;
      data[o + 1] = ((x ^ y) * 11 + seed * 20) % 256;
      data[o + 2] = ((x * y + seed * 13) * 5) % 256;
    }
  }
  return new RawImage(data, w, h, 3);
}

/**
 * Records what the decoder session gets and gives at every call: position ids, attention mask
 * length, the last row of logits. Wraps the ONNX session's run() (below transformers.js).
 */
function tap(model) {
  const session = model.sessions.decoder_model_merged;
  const calls = [];
  const run = session.run;
  session.run = async function (feeds, ...rest) {
    const out = await run.call(this, feeds, ...rest);
    const lg = out.logits;
    const [b, s, v] = lg.dims;
    const data = lg.data instanceof Float32Array ? lg.data : await lg.getData();
    const last = [];
    for (let r = 0; r < b; r++) last.push(Float32Array.from(data.subarray((r * s + s - 1) * v, (r * s + s) * v)));
    const pos = feeds.position_ids;
    calls.push({
      seq: s,
      mask: Array.from(feeds.attention_mask.data, Number),
      maskDims: feeds.attention_mask.dims.slice(),
      positions: pos ? Array.from(pos.data, Number) : null,
      posDims: pos ? pos.dims.slice() : null,
      logits: last,
    });
    return out;
  };
  return { calls, untap: () => { session.run = run; } };
}

async function generateTapped(model, inputs) {
  const t = tap(model);
  try {
    const out = await model.generate({ ...inputs, max_new_tokens: NEW_TOKENS, do_sample: false, eos_token_id: null });
    return { ids: out.tolist().map((r) => r.map(Number)), calls: t.calls };
  } finally {
    t.untap();
  }
}

function compareRuns(a, b, what, tol = TOL) {
  eqArr(a.ids.flat(), b.ids.flat(), `${what}: token ids`);
  ok(a.calls.length === b.calls.length, `${what}: ${a.calls.length} vs ${b.calls.length} decoder calls`);
  let worst = 0;
  a.calls.forEach((c, i) => c.logits.forEach((row, r) => { worst = Math.max(worst, maxDiff(row, b.calls[i].logits[r])); }));
  ok(worst <= tol, `${what}: logits differ by ${worst} (> ${tol})`);
  return worst;
}

/** Qwen2-VL M-RoPE ids of one unpadded prompt, written independently of transformers.js. */
export function mropeIds(ids, { imageToken, grids, merge = 2 }) {
  const t = [], h = [], w = [];
  let next = 0, img = 0;
  for (let j = 0; j < ids.length;) {
    if (ids[j] !== imageToken) {
      t.push(next); h.push(next); w.push(next); next++; j++;
      continue;
    }
    const [gt, gh, gw] = grids[img++].map(Number);
    const H = gh / merge, W = gw / merge;
    let max = next;
    for (let a = 0; a < gt; a++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          t.push(next + a); h.push(next + y); w.push(next + x); j++;
          max = Math.max(max, next + a, next + y, next + x);
        }
      }
    }
    next = max + 1;
  }
  return [t, h, w];
}

/**
 * The reference path: pruned inputs_embeds / mask / positions built here, the ONNX sessions run
 * directly, greedy, with the KV cache handled here.
 */
async function reference(model, T, { inputIds, pixelValues, gridThw, kept, mrope, imageToken, perImageN, grids }) {
  const s = model.sessions;
  const ort = (type, data, dims) => new T(type, data, dims).ort_tensor;
  const L = inputIds.length;
  const emb = await s.embed_tokens.run({ input_ids: ort('int64', BigInt64Array.from(inputIds, BigInt), [1, L]) });
  const E = emb.inputs_embeds.data;
  const D = emb.inputs_embeds.dims[2];
  const vfeeds = { pixel_values: pixelValues.ort_tensor };
  if (gridThw) vfeeds[s.vision_encoder.inputNames.includes('grid_thw') ? 'grid_thw' : 'image_grid_thw'] = gridThw.ort_tensor;
  const F = (await s.vision_encoder.run(vfeeds)).image_features.data;

  const full = mrope ? mropeIds(inputIds, { imageToken, grids }) : null;
  const keepCol = [];
  const rows = [];
  let img = 0, j0 = 0, base = 0;
  const keptSets = kept.map((k) => new Set(Array.from(k)));
  for (let j = 0; j < L; j++) {
    if (inputIds[j] !== imageToken) {
      keepCol.push(j); rows.push(E.subarray(j * D, (j + 1) * D));
      continue;
    }
    if (j0 === perImageN[img]) { base += perImageN[img]; img++; j0 = 0; }
    if (keptSets[img].has(j0)) { keepCol.push(j); rows.push(F.subarray((base + j0) * D, (base + j0 + 1) * D)); }
    j0++;
  }
  const Lp = keepCol.length;
  const embeds = new Float32Array(Lp * D);
  rows.forEach((r, i) => embeds.set(r, i * D));
  let positions, next;
  if (mrope) {
    positions = [0, 1, 2].flatMap((a) => keepCol.map((j) => full[a][j]));
    next = Math.max(...full.flat()) + 1;
  } else {
    positions = keepCol.map((_, i) => i);
    next = Lp;
  }
  const names = s.decoder_model_merged.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const cfg = model.config.text_config ?? model.config;
  const kvh = cfg.num_key_value_heads, hd = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  let past = Object.fromEntries(names.map((n) => [n, ort('float32', new Float32Array(0), [1, kvh, 0, hd])]));
  const out = { ids: [[...inputIds]], calls: [], prunedLength: Lp, positions };
  let feedEmbeds = embeds, seq = Lp, total = Lp, pos = positions;
  for (let step = 0; step < NEW_TOKENS; step++) {
    const feeds = {
      inputs_embeds: ort('float32', feedEmbeds, [1, seq, D]),
      attention_mask: ort('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: ort('int64', BigInt64Array.from(pos, BigInt), mrope ? [3, 1, seq] : [1, seq]),
      ...past,
    };
    const r = await s.decoder_model_merged.run(feeds);
    const V = r.logits.dims[2];
    const last = Float32Array.from(r.logits.data.subarray((seq - 1) * V, seq * V));
    out.calls.push({ logits: [last], positions: pos.slice(), mask: Array.from({ length: total }, () => 1) });
    const id = argmax(last);
    out.ids[0].push(id);
    past = Object.fromEntries(names.map((n) => [n, r[n.replace('past_key_values', 'present')]]));
    const e = await s.embed_tokens.run({ input_ids: ort('int64', BigInt64Array.from([BigInt(id)]), [1, 1]) });
    feedEmbeds = e.inputs_embeds.data;
    seq = 1;
    total++;
    const p = next + step;
    pos = mrope ? [p, p, p] : [p];
  }
  return out;
}

async function loadModels(tf, base, device) {
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = base;
  const out = {};
  for (const [name, cls] of [['llava', 'LlavaForConditionalGeneration'], ['qwen2vl', 'Qwen2VLForConditionalGeneration'], ['qwen25vl', 'Qwen2_5_VLForConditionalGeneration']]) {
    out[name] = {
      processor: await tf.AutoProcessor.from_pretrained(name),
      model: await tf[cls].from_pretrained(name, { device, dtype: 'fp32' }),
    };
  }
  return out;
}

/** Inputs of one LLaVA prompt with one picture. */
async function llavaInputs(m, tf, seed = 0, text = 'USER: <image>\nWhat is in the picture? ASSISTANT:') {
  return m.processor(picture(tf.RawImage, 64, 48, seed), text);
}

/** Inputs of one Qwen2-VL prompt with pictures of the given sizes (each its own grid). */
async function qwenInputs(m, tf, sizes = [[48, 32]], question = 'Describe the pictures.') {
  const pics = sizes.map(([w, h], i) => picture(tf.RawImage, w, h, i + 1));
  const per = await Promise.all(pics.map((p) => m.processor.image_processor(p)));
  const grids = per.map((p) => p.image_grid_thw.tolist()[0]);
  const mergeLen = m.processor.image_processor.config.merge_size ** 2;
  let text = '<|im_start|>user\n';
  for (const g of grids) text += '<|vision_start|>' + '<|image_pad|>'.repeat(Number(g[0] * g[1] * g[2]) / mergeLen) + '<|vision_end|>';
  text += `${question}<|im_end|>\n<|im_start|>assistant\n`;
  const tok = m.processor.tokenizer(text);
  return {
    ...tok,
    pixel_values: tf.cat(per.map((p) => p.pixel_values), 0),
    image_grid_thw: tf.cat(per.map((p) => p.image_grid_thw), 0),
  };
}

function importanceOf({ features, n, d }) {
  // A stand-in score (the L2 norm of each row); real use: a trained selector's logits.
  const s = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let k = 0; k < d; k++) v += features[i * d + k] ** 2;
    s[i] = Math.sqrt(v);
  }
  return s;
}

function perImage(model, inputs, mrope) {
  const tokenId = model.config.image_token_id ?? model.config.image_token_index;
  if (mrope) {
    const grids = inputs.image_grid_thw.tolist().map((g) => g.map(Number));
    return { tokenId, grids, ns: grids.map(([t, h, w]) => (t * h * w) / 4) };
  }
  const n = inputs.input_ids.tolist()[0].filter((x) => Number(x) === tokenId).length;
  return { tokenId, grids: null, ns: [n] };
}

/** Kept sets straight from the pruner, on the vision encoder's own features. */
async function directKept(model, pruner, adapter, inputs, ns, opts, grids = null, tokenId = null) {
  const feats = await model.encode_image(inputs.image_grid_thw ? { pixel_values: inputs.pixel_values, image_grid_thw: inputs.image_grid_thw } : { pixel_values: inputs.pixel_values });
  const d = feats.dims.at(-1);
  // A text-conditioned method's condition: the prompt's own text embedding, as the adapter
  // computes it (checked against an independent oracle above).
  let text = null;
  if (adapter.TEXT_CONDITIONED_METHODS.has(opts.method)) {
    const emb = await model.encode_text({ input_ids: inputs.input_ids });
    text = adapter.promptTextEmbedding(emb, inputs.input_ids, inputs.attention_mask, tokenId, 0);
  }
  const out = [];
  let start = 0;
  for (let i = 0; i < ns.length; i++) {
    const f = feats.data.slice(start * d, (start + ns[i]) * d);
    const k = adapter.keptCount(ns[i], opts);
    const o = { n: ns[i], d, method: opts.method ?? 'divprune', keep: k, grid: grids ? grids[i] : [6, 6] };
    if (opts.seed !== undefined) o.seed = opts.seed;
    if (opts.importance) o.importance = importanceOf({ features: f, n: ns[i], d });
    if (text) o.textEmbeds = text;
    if (text && opts.method === 'cdpruner') o.imageEmbeds = f;
    out.push(k === ns[i] ? Uint32Array.from({ length: k }, (_, j) => j) : (await pruner.prune(f, o)).kept);
    start += ns[i];
  }
  return out;
}

/** Runs every check; returns [{ name, ok, detail }]. */
export async function runMllmSuite({ tf, adapter, Pruner, base, device, backends, only, exact = false }) {
  const results = [];
  const pruner = await Pruner.create(backends ? { backends } : undefined);
  const models = await loadModels(tf, base, device);
  const T = tf.Tensor;
  const check = async (name, fn) => {
    if (only && !only.some((o) => (exact ? name === o : name.includes(o)))) return;
    const t0 = Date.now();
    try {
      const detail = await fn();
      results.push({ name, ok: true, detail: `${detail ?? ''} (${Date.now() - t0} ms)` });
    } catch (e) {
      results.push({ name, ok: false, detail: `${e?.stack ?? e}` });
    }
  };
  const wrapped = async (m, opts, fn) => {
    await adapter.wrapModel(m.model, { pruner, ...opts });
    try {
      return await fn();
    } finally {
      adapter.unwrapModel(m.model);
    }
  };

  await check('keptCount is the Rust budget rule', async () => {
    const k = adapter.keptCount;
    eqArr([k(4608, { keepRatio: 0.1 }), k(576, { pruneRatio: 0.9 }), k(5, { keepRatio: 0.5 }), k(576, { keepRatio: 0.25 }), k(4, { keepRatio: 0.1 }), k(4, { pruneRatio: 0.99 }), k(4, { pruneRatio: 1 }), k(36, { keep: 36 })], [461, 58, 2, 144, 0, 1, 0, 36], 'keep counts');
    for (const [bad, msg] of [[{ keep: 37 }, 'keep count 37 exceeds N = 36'], [{ keepRatio: 1.5 }, 'keep ratio 1.5 is outside [0, 1]'], [{}, 'give exactly one of']]) {
      let err;
      try { k(36, bad); } catch (e) { err = e; }
      ok(err instanceof Error && err.message.includes(msg), `keptCount(36, ${JSON.stringify(bad)}): ${err?.message}`);
    }
    return '8 counts, 3 errors';
  });

  await check('promptTextEmbedding is the mean of the non-image prompt token embeddings', async () => {
    const m = models.qwen2vl;
    const inputs = await qwenInputs(m, tf);
    const emb = await m.model.encode_text({ input_ids: inputs.input_ids });
    const tokenId = m.model.config.image_token_id;
    const got = adapter.promptTextEmbedding(emb, inputs.input_ids, inputs.attention_mask, tokenId);
    // Oracle: embed each distinct text token on its own, average with multiplicity.
    const ids = inputs.input_ids.tolist()[0].map(Number).filter((x) => x !== tokenId);
    const D = emb.dims[2];
    const want = new Float64Array(D);
    for (const id of ids) {
      const e = await m.model.encode_text({ input_ids: new T('int64', BigInt64Array.from([BigInt(id)]), [1, 1]) });
      for (let k = 0; k < D; k++) want[k] += e.data[k] / ids.length;
    }
    const diff = maxDiff(got, want);
    ok(got.length === D && diff < 1e-6, `length ${got.length} vs ${D}, max diff ${diff}`);
    return `${ids.length} text tokens of ${inputs.input_ids.dims[1]}, D = ${D}, max diff ${diff.toExponential(1)}`;
  });

  await check('a text-conditioned method (cdpruner) gets the prompt text embedding per row, or the caller\'s', async () => {
    // A recording pruner checks what the adapter passes; the selections themselves are
    // checked against the reference path with every method below.
    const m = models.qwen2vl;
    const seen = [];
    const recorder = {
      backend: 'cpu',
      async prune(features, o) {
        seen.push(o);
        return { kept: Uint32Array.from({ length: o.keep }, (_, i) => i) };
      },
    };
    const inputs = await qwenInputs(m, tf, [[48, 32], [32, 32]]);
    await adapter.wrapModel(m.model, { method: 'cdpruner', keepRatio: 0.5, pruner: recorder });
    try {
      await m.model.generate({ ...inputs, max_new_tokens: 2, do_sample: false });
    } finally {
      adapter.unwrapModel(m.model);
    }
    const emb = await m.model.encode_text({ input_ids: inputs.input_ids });
    const want = adapter.promptTextEmbedding(emb, inputs.input_ids, inputs.attention_mask, m.model.config.image_token_id);
    ok(seen.length === 2, `${seen.length} prune calls for 2 images`);
    for (const o of seen) {
      ok(o.method === 'cdpruner' && o.textEmbeds instanceof Float32Array && maxDiff(o.textEmbeds, want) === 0, 'textEmbeds is the prompt embedding');
      ok(o.imageEmbeds instanceof Float32Array && o.imageEmbeds.length === o.n * o.d, 'imageEmbeds are the image\'s own features');
    }
    const mine = Float32Array.from({ length: 64 }, (_, i) => i);
    seen.length = 0;
    await adapter.wrapModel(m.model, { method: 'cdpruner', keepRatio: 0.5, pruner: recorder, textEmbeds: mine });
    try {
      await m.model.generate({ ...inputs, max_new_tokens: 2, do_sample: false });
    } finally {
      adapter.unwrapModel(m.model);
    }
    ok(seen.length === 2 && seen.every((o) => o.textEmbeds === mine), 'the caller\'s textEmbeds is passed as given');
    ok(adapter.TEXT_CONDITIONED_METHODS.has('cdpruner') && adapter.TEXT_CONDITIONED_METHODS.has('cdpruner-openvino'), 'both CDPruners are text-conditioned');
    return `2 images, textEmbeds [${want.length}] = mean of ${inputs.input_ids.dims[1] - 40} text tokens`;
  });

  for (const [arch, mrope, methods] of ARCHS) {
    const m = models[arch];
    const mk = (seed = 0) => (mrope ? qwenInputs(m, tf, arch === 'qwen25vl' ? [[48, 32], [32, 40]] : undefined) : llavaInputs(m, tf, seed));

    await check(`${arch}: K = N gives the ids and logits of plain generate()`, async () => {
      const inputs = await mk();
      const plain = await generateTapped(m.model, inputs);
      const got = await wrapped(m, { keepRatio: 1 }, () => generateTapped(m.model, inputs));
      const diff = compareRuns(got, plain, 'K = N vs plain');
      ok(plain.calls.length === NEW_TOKENS, `${plain.calls.length} decoder calls`);
      return `${NEW_TOKENS} tokens, max logit diff ${diff}`;
    });

    await check(`${arch}: plain and pruned generation equal PyTorch transformers on the same inputs`, async () => {
      // reference.json: what the generator's PyTorch model computed (plain generate(), and a hand
      // loop over pruned inputs) for fixed inputs; the pruned run keeps the top K of a fixed score.
      const ref = await readJson(`${base}${arch}/reference.json`);
      const L = ref.input_ids.length;
      const inputs = {
        input_ids: new T('int64', BigInt64Array.from(ref.input_ids, BigInt), [1, L]),
        attention_mask: new T('int64', new BigInt64Array(L).fill(1n), [1, L]),
        pixel_values: new T('float32', Float32Array.from(ref.pixel_values.data), ref.pixel_values.dims),
      };
      if (ref.image_grid_thw) inputs.image_grid_thw = new T('int64', BigInt64Array.from(ref.image_grid_thw, BigInt), [1, 3]);
      const worst = (run, want) => {
        eqArr(run.ids[0].slice(L), want.ids, 'token ids vs PyTorch');
        return Math.max(...run.calls.map((c, i) => maxDiff(c.logits[0], want.logits[i])));
      };
      const plain = await generateTapped(m.model, inputs);
      const dPlain = worst(plain, ref.plain);
      const score = Float32Array.from(ref.pruned.score);
      let info;
      const pruned = await wrapped(m, { method: 'topk', keep: ref.pruned.keep, importance: () => score }, async () => {
        const r = await generateTapped(m.model, inputs);
        info = adapter.lastPrune(m.model);
        return r;
      });
      eqArr(Array.from(info.images[0].kept), ref.pruned.kept, 'kept set');
      ok(pruned.calls[0].seq === ref.pruned.prompt_length, `pruned prompt ${pruned.calls[0].seq} vs ${ref.pruned.prompt_length}`);
      const dPruned = worst(pruned, ref.pruned);
      // Two runtimes (onnxruntime vs PyTorch): measured ~2e-7 on CPUs, ~1e-6 on WebGPU (SwiftShader).
      ok(dPlain <= TOL && dPruned <= TOL, `logits differ from PyTorch by ${dPlain} (plain), ${dPruned} (pruned), > ${TOL}`);
      return `${NEW_TOKENS} ids equal; max logit diff ${dPlain.toExponential(1)} plain, ${dPruned.toExponential(1)} pruned (prompt ${L} -> ${ref.pruned.prompt_length})`;
    });

    for (const method of methods) {
      await check(`${arch}: ${method} K < N equals the hand-built reference path`, async () => {
        const inputs = await mk();
        const { tokenId, grids, ns } = perImage(m.model, inputs, mrope);
        const opts = { method, keepRatio: 0.25, ...(method === 'idpruner' || method === 'topk' ? { importance: importanceOf } : {}), ...(method === 'random' ? { seed: 7 } : {}) };
        const want = await directKept(m.model, pruner, adapter, inputs, ns, opts, grids && grids.map(([t, h, w]) => [t, h / 2, w / 2]), tokenId);
        let info;
        const got = await wrapped(m, opts, async () => {
          const r = await generateTapped(m.model, inputs);
          info = adapter.lastPrune(m.model);
          return r;
        });
        info.images.forEach((im, i) => eqArr(Array.from(im.kept), Array.from(want[i]), `image ${i} kept set vs a direct prune`));
        const ref = await reference(m.model, T, { inputIds: inputs.input_ids.tolist()[0].map(Number), pixelValues: inputs.pixel_values, gridThw: inputs.image_grid_thw, kept: want, mrope, imageToken: tokenId, perImageN: ns, grids });
        const diff = compareRuns(got, ref, `${method} vs reference`);
        const L = inputs.input_ids.dims[1];
        const removed = ns.reduce((a, n) => a + n - adapter.keptCount(n, opts), 0);
        ok(got.calls[0].seq === L - removed && info.prunedLength === L - removed, `prefill length ${got.calls[0].seq}, expected ${L} - ${removed}`);
        // Positions fed to the decoder at prefill and at every decode step.
        got.calls.forEach((c, i) => eqArr(c.positions, ref.calls[i].positions, `step ${i} position ids`));
        got.calls.forEach((c, i) => ok(c.mask.length === L - removed + i && c.mask.every((v) => v === 1), `step ${i} attention mask length ${c.mask.length}`));
        return `N ${ns.join('+')} -> K ${info.images.map((x) => x.k).join('+')}, prompt ${L} -> ${L - removed}, ${NEW_TOKENS} tokens, max logit diff ${diff}`;
      });
    }
  }

  await check('qwen2vl: position ids are the unpruned M-RoPE ids with the pruned entries removed, decode continues at max + 1', async () => {
    const m = models.qwen2vl;
    const inputs = await qwenInputs(m, tf, [[48, 32], [32, 32]]);
    const ids = inputs.input_ids.tolist()[0].map(Number);
    const tokenId = m.model.config.image_token_id;
    const grids = inputs.image_grid_thw.tolist();
    const [tfPos] = m.model.get_rope_index(inputs.input_ids, inputs.image_grid_thw, null, inputs.attention_mask);
    const mine = mropeIds(ids, { imageToken: tokenId, grids });
    eqArr(Array.from(tfPos.data, Number), mine.flat(), 'transformers.js get_rope_index vs this test');
    const got = await wrapped(m, { keepRatio: 0.5 }, async () => ({ run: await generateTapped(m.model, inputs), info: adapter.lastPrune(m.model) }));
    const keepCol = [];
    let img = 0, j0 = 0;
    const ns = grids.map(([t, h, w]) => Number(t * h * w) / 4);
    for (let j = 0; j < ids.length; j++) {
      if (ids[j] !== tokenId) { keepCol.push(j); continue; }
      if (j0 === ns[img]) { img++; j0 = 0; }
      if (got.info.images[img].kept.includes(j0)) keepCol.push(j);
      j0++;
    }
    const want = [0, 1, 2].flatMap((a) => keepCol.map((j) => mine[a][j]));
    eqArr(got.run.calls[0].positions, want, 'prefill positions');
    const next = Math.max(...mine.flat()) + 1;
    got.run.calls.slice(1).forEach((c, s) => eqArr(c.positions, [next + s, next + s, next + s], `decode step ${s} positions`));
    return `grids ${JSON.stringify(grids.map((g) => g.map(Number)))}, N ${ns.join('+')} -> K ${got.info.images.map((x) => x.k).join('+')}, decode positions ${next}..${next + NEW_TOKENS - 2}`;
  });

  await check('qwen2vl: two images with different grids in one prompt equal the reference path', async () => {
    const m = models.qwen2vl;
    const inputs = await qwenInputs(m, tf, [[48, 32], [32, 40]]);
    const { tokenId, grids, ns } = perImage(m.model, inputs, true);
    ok(ns[0] !== ns[1], `grids should differ: ${ns}`);
    const opts = { method: 'divprune', keep: 5 };
    const want = await directKept(m.model, pruner, adapter, inputs, ns, opts, grids.map(([t, h, w]) => [t, h / 2, w / 2]));
    const got = await wrapped(m, opts, () => generateTapped(m.model, inputs));
    const ref = await reference(m.model, T, { inputIds: inputs.input_ids.tolist()[0].map(Number), pixelValues: inputs.pixel_values, gridThw: inputs.image_grid_thw, kept: want, mrope: true, imageToken: tokenId, perImageN: ns, grids });
    const diff = compareRuns(got, ref, 'two images vs reference');
    ok(got.calls[0].seq === inputs.input_ids.dims[1] - (ns[0] - 5) - (ns[1] - 5), 'prompt shrinks by N - K per image');
    return `N ${ns.join(' + ')} -> 5 + 5, max logit diff ${diff}`;
  });

  await check('llava: a batch of two prompts (left-padded) equals each prompt alone', async () => {
    const m = models.llava;
    const texts = ['USER: <image>\nWhat? ASSISTANT:', 'USER: <image>\nWhat is in this picture, in detail? ASSISTANT:'];
    const pics = [picture(tf.RawImage, 64, 48, 1), picture(tf.RawImage, 40, 56, 2)];
    const batch = await m.processor(pics, texts, { padding: true });
    ok(batch.input_ids.dims[0] === 2 && batch.attention_mask.data.some((v) => Number(v) === 0), 'the batch should be padded');
    const opts = { method: 'divprune', keepRatio: 0.5 };
    const both = await wrapped(m, opts, () => generateTapped(m.model, batch));
    let worst = 0;
    for (let r = 0; r < 2; r++) {
      const one = await m.processor(pics[r], texts[r]);
      const alone = await wrapped(m, opts, () => generateTapped(m.model, one));
      const strip = (ids) => ids.slice(-NEW_TOKENS);
      eqArr(strip(both.ids[r]), strip(alone.ids[0]), `row ${r} ids`);
      both.calls.forEach((c, i) => { worst = Math.max(worst, maxDiff(c.logits[r], alone.calls[i].logits[0])); });
    }
    ok(worst < 1e-4, `batch vs alone logits differ by ${worst}`);
    return `2 rows, max logit diff ${worst.toExponential(1)}`;
  });

  await check('bad input rejects with an Error naming the problem; the model still works unwrapped', async () => {
    const m = models.llava;
    const inputs = await llavaInputs(m, tf);
    const plain = await generateTapped(m.model, inputs);
    const expectReject = async (p, text) => {
      let err;
      try { await p(); } catch (e) { err = e; }
      ok(err instanceof Error && err.message.includes(text), `expected an Error with "${text}", got ${err?.message ?? 'no error'}`);
      return err.message;
    };
    const msgs = [];
    msgs.push(await wrapped(m, { keep: 40 }, () => expectReject(() => m.model.generate({ ...inputs, max_new_tokens: 2 }), 'keep count 40 exceeds N = 36')));
    msgs.push(await expectReject(() => adapter.wrapModel({ forward() {}, config: {} }, { keep: 4 }), 'unsupported model class Object'));
    class GPT2LMHeadModel { forward() {} }
    msgs.push(await expectReject(() => adapter.wrapModel(new GPT2LMHeadModel(), { keep: 4 }), 'unsupported model class GPT2LMHeadModel'));
    msgs.push(await expectReject(() => adapter.wrapModel(m.model, { method: 'idpruner', keep: 4 }), "method 'idpruner' needs an importance callback"));
    const ids = inputs.input_ids.tolist()[0];
    const cut = ids.findIndex((x) => Number(x) === m.model.config.image_token_index);
    const fewer = { ...inputs, input_ids: new T('int64', BigInt64Array.from(ids.filter((_, j) => j !== cut)), [1, ids.length - 1]), attention_mask: new T('int64', new BigInt64Array(ids.length - 1).fill(1n), [1, ids.length - 1]) };
    msgs.push(await wrapped(m, { keep: 4 }, () => expectReject(() => m.model.generate({ ...fewer, max_new_tokens: 2 }), 'features disagree with the placeholders: the prompt has 35 image tokens')));
    ok(!Object.prototype.hasOwnProperty.call(m.model, 'forward'), 'unwrapModel left an own forward behind');
    const after = await generateTapped(m.model, inputs);
    compareRuns(after, plain, 'plain generate after the errors');
    return msgs.join(' | ');
  });

  pruner.free();
  return results;
}
