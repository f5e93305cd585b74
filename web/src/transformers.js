// tokenprune/transformers: prune every image's tokens inside a transformers.js VLM's own
// generate() / forward, before they reach the language model.
//
// The adapter replaces the model instance's `forward` (the prototype is untouched). At prefill it
// runs the model's own embed_tokens and vision encoder, prunes each image's feature rows with a
// tokenprune Pruner, drops the pruned image placeholders from the prompt, scatters the kept rows
// into the remaining ones, and calls the model's original forward with `inputs_embeds`, the
// shortened attention mask and (M-RoPE models) the kept tokens' original position ids. At every
// decode step it keeps the attention mask and the decode positions consistent with the shorter
// KV cache. It imports nothing from @huggingface/transformers: tensors are built with the
// constructor of the model's own input tensors, so it works with whichever copy loaded the model.
import { Pruner } from './index.js';

const TAG = 'tokenprune/transformers';
const STATE = Symbol('tokenprune.pruneState');
const WRAP = Symbol('tokenprune.wrap');

/** Model classes with LLaVA's merge (1-D positions, renumbered after pruning). */
const LLAVA_CLASSES = [
  'LlavaForConditionalGeneration',
  'Moondream1ForConditionalGeneration',
  'LlavaQwen2ForCausalLM',
  'Idefics3ForConditionalGeneration',
  'SmolVLMForConditionalGeneration',
];
/** Model classes with Qwen2-VL's merge and multi-axis rotary positions (M-RoPE). */
const MROPE_CLASSES = ['Qwen2VLForConditionalGeneration', 'Qwen2_5_VLForConditionalGeneration'];

/** Methods that take a text condition; the adapter supplies the prompt's embedding when none is given. */
export const TEXT_CONDITIONED_METHODS = new Set(['cdpruner', 'cdpruner-openvino']);

/** Methods that rank by a score per token: the caller's `importance` callback gives it. */
const IMPORTANCE_METHODS = new Set(['idpruner', 'topk']);

const BUDGET_KEYS = ['keep', 'keepRatio', 'pruneRatio'];

function roundHalfEven(x) {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The number of tokens a budget keeps out of `n`, known before anything is encoded: the same
 * function of (N, budget) as the Rust crate's `Budget::keep_count` (ratios in f64, rounded half
 * to even). Throws an Error naming the problem for a bad budget.
 */
export function keptCount(n, budget) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${TAG}: N must be a non-negative integer, got ${n}`);
  const given = BUDGET_KEYS.filter((k) => budget?.[k] !== undefined);
  if (given.length !== 1) {
    throw new Error(`${TAG}: give exactly one of keep, keepRatio, pruneRatio (got ${given.length ? given.join(', ') : 'none'})`);
  }
  const [key] = given;
  const v = budget[key];
  if (key === 'keep') {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${TAG}: budget: keep count ${v} must be a positive integer`);
    if (v > n) throw new Error(`${TAG}: budget: keep count ${v} exceeds N = ${n}`);
    return v;
  }
  const what = key === 'keepRatio' ? 'keep ratio' : 'prune ratio';
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
    throw new Error(`${TAG}: budget: ${what} ${v} is outside [0, 1]`);
  }
  if (key === 'keepRatio') return Math.min(roundHalfEven(v * n), n);
  const k = Math.min(roundHalfEven(n * (1 - v)), n);
  return k === 0 && v < 1 && n > 0 ? 1 : k;
}

/** `'llava'`, `'mrope'`, or null, from the model's class chain. */
function modelKind(model) {
  for (let p = Object.getPrototypeOf(model); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const name = p.constructor?.name;
    if (LLAVA_CLASSES.includes(name)) return 'llava';
    if (MROPE_CLASSES.includes(name)) return 'mrope';
  }
  return null;
}

function imageTokenId(model) {
  const c = model.config ?? {};
  const id = c.image_token_id ?? c.image_token_index;
  if (id === undefined || id === null) throw new Error(`${TAG}: the model config has no image_token_id / image_token_index`);
  return BigInt(id);
}

/** Tokens into the LLM per image for a Qwen2-VL grid `[t, h, w]` (patches): t * h * w / merge^2. */
export function imageTokensFromGrid(config, [t, h, w]) {
  const m = config?.vision_config?.spatial_merge_size ?? 2;
  return Number(t) * Math.floor(Number(h) / m) * Math.floor(Number(w) / m);
}

/**
 * The mean of the embeddings of a prompt row's non-image tokens (attention mask 1): the text
 * condition the adapter gives methods that take one when the caller gives none.
 * `inputsEmbeds` is `[b, L, D]` (a transformers.js Tensor or `{ data, dims }`), `inputIds` and
 * `attentionMask` `[b, L]`. Returns a Float32Array `[D]`.
 */
export function promptTextEmbedding(inputsEmbeds, inputIds, attentionMask, imageToken, row = 0) {
  const [, L, D] = inputsEmbeds.dims;
  const ids = inputIds.data;
  const mask = attentionMask?.data;
  const img = BigInt(imageToken);
  const out = new Float64Array(D);
  let count = 0;
  for (let j = 0; j < L; j++) {
    const at = row * L + j;
    if (BigInt(ids[at]) === img) continue;
    if (mask && Number(mask[at]) === 0) continue;
    const base = at * D;
    for (let k = 0; k < D; k++) out[k] += Number(inputsEmbeds.data[base + k]);
    count++;
  }
  if (count === 0) throw new Error(`${TAG}: prompt row ${row} has no text tokens to build a text condition from`);
  return Float32Array.from(out, (v) => v / count);
}

function optionsWithoutBudget(o) {
  const out = { ...o };
  for (const k of [...BUDGET_KEYS, 'pruner', 'importance', 'onPrune', 'textEmbeds', 'pruneOptions', 'backends']) delete out[k];
  return out;
}

/** Checks the wrap options; returns the budget object. */
function checkOptions(options) {
  const budget = Object.fromEntries(BUDGET_KEYS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
  keptCount(1_000_000, budget.keep !== undefined ? { keep: 1 } : budget); // validates the form and the ratios
  if (options.importance !== undefined && typeof options.importance !== 'function') {
    throw new Error(`${TAG}: importance must be a function ({ image, features, n, d, grid }) => Float32Array`);
  }
  const method = options.method ?? 'divprune';
  if (IMPORTANCE_METHODS.has(method) && typeof options.importance !== 'function') {
    throw new Error(`${TAG}: method '${method}' needs an importance callback ({ image, features, n, d, grid }) => Float32Array of n scores`);
  }
  return budget;
}

/**
 * Wraps a loaded transformers.js VLM so that its `generate()` and forward prune every image's
 * tokens before the language model. Resolves to the same model object; `unwrapModel(model)`
 * restores it. Rejects with an Error naming the problem for an unsupported model class or a bad
 * budget (the model is left untouched then).
 */
export async function wrapModel(model, options = {}) {
  if (!model || typeof model.forward !== 'function') throw new Error(`${TAG}: wrapModel() needs a loaded transformers.js model`);
  const kind = modelKind(model);
  if (!kind) {
    const name = model.constructor?.name ?? typeof model;
    throw new Error(
      `${TAG}: unsupported model class ${name}: supported are ${[...LLAVA_CLASSES, ...MROPE_CLASSES].join(', ')} and their subclasses`,
    );
  }
  if (model[WRAP]) throw new Error(`${TAG}: this model is already wrapped; call unwrapModel(model) first`);
  const budget = checkOptions(options);
  imageTokenId(model);
  const pruner = options.pruner ?? (await Pruner.create(options.backends ? { backends: options.backends } : {}));
  const original = Object.prototype.hasOwnProperty.call(model, 'forward') ? model.forward : undefined;
  const base = model.forward;
  const ctx = { model, kind, budget, options, pruner, ownsPruner: !options.pruner, base, last: null };
  model[WRAP] = { original, ctx };
  model.forward = (modelInputs) => prunedForward(ctx, modelInputs);
  return model;
}

/** Restores a wrapped model's own forward (frees the pruner the wrap created). */
export function unwrapModel(model) {
  const w = model?.[WRAP];
  if (!w) return model;
  if (w.original) model.forward = w.original;
  else delete model.forward;
  if (w.ctx.ownsPruner) w.ctx.pruner.free();
  delete model[WRAP];
  return model;
}

/** What the last pruned prefill of a wrapped model did (per image N, K, kept), or null. */
export function lastPrune(model) {
  return model?.[WRAP]?.ctx.last ?? null;
}

function newTensor(like, type, data, dims) {
  return new like.constructor(type, data, dims);
}

/** Splits the encoder's feature rows into images: [{ start, n, grid }] in placeholder order. */
function splitImages(ctx, features, modelInputs) {
  const dims = features.dims;
  const d = dims.at(-1);
  const rows = features.data.length / d;
  if (ctx.kind === 'mrope') {
    const grids = modelInputs.image_grid_thw?.tolist();
    if (!grids) throw new Error(`${TAG}: the prompt has pixel_values but no image_grid_thw`);
    const m = ctx.model.config?.vision_config?.spatial_merge_size ?? 2;
    let start = 0;
    const images = grids.map((g) => {
      const [t, h, w] = g.map(Number);
      const grid = [t, Math.floor(h / m), Math.floor(w / m)];
      const n = grid[0] * grid[1] * grid[2];
      const img = { start, n, grid };
      start += n;
      return img;
    });
    if (start !== rows) {
      throw new Error(`${TAG}: image_grid_thw gives ${start} image tokens but the vision encoder gave ${rows} feature rows`);
    }
    return { images, d };
  }
  const count = dims.length === 3 ? dims[0] : 1;
  const n = rows / count;
  const side = Math.round(Math.sqrt(n));
  const grid = side * side === n ? [side, side] : undefined;
  return { images: Array.from({ length: count }, (_, i) => ({ start: i * n, n, grid })), d };
}

function toFloat32(tensor) {
  if (tensor.type === 'float32') return tensor.data;
  if (typeof tensor.to === 'function') return tensor.to('float32').data;
  return Float32Array.from(tensor.data, Number);
}

async function prefill(ctx, modelInputs) {
  const { model, kind, options } = ctx;
  const { input_ids, attention_mask } = modelInputs;
  const tokenId = imageTokenId(model);
  const [b, L] = input_ids.dims;
  const ids = input_ids.data;

  const inputsEmbeds = await model.encode_text({ input_ids });
  const visionInputs = {};
  for (const k of ['pixel_values', 'image_grid_thw', 'pixel_attention_mask']) {
    if (modelInputs[k] !== undefined && modelInputs[k] !== null) visionInputs[k] = modelInputs[k];
  }
  const t0 = performance.now();
  const features = await model.encode_image(visionInputs);
  const encodeMs = performance.now() - t0;
  const { images, d } = splitImages(ctx, features, modelInputs);
  const D = inputsEmbeds.dims[2];
  if (d !== D) throw new Error(`${TAG}: image features have width ${d} but the text embeddings ${D}`);

  // Placeholders per row, in reading order; image i takes the next images[i].n of them.
  const slots = [];
  for (let r = 0; r < b; r++) for (let j = 0; j < L; j++) if (BigInt(ids[r * L + j]) === tokenId) slots.push([r, j]);
  const totalRows = images.reduce((a, im) => a + im.n, 0);
  if (slots.length !== totalRows) {
    throw new Error(
      `${TAG}: features disagree with the placeholders: the prompt has ${slots.length} image tokens (id ${tokenId}) but the vision encoder gave ${totalRows} feature rows`,
    );
  }

  // Budget per image, known before pruning.
  const ks = images.map((im, i) => {
    try {
      return keptCount(im.n, ctx.budget);
    } catch (e) {
      throw new Error(`${e.message} (image ${i} has N = ${im.n} tokens)`);
    }
  });

  const featData = toFloat32(features);
  const method = options.method ?? 'divprune';
  const extra = optionsWithoutBudget(options);
  // A text-conditioned method the caller gave no condition gets the prompt's own: the mean
  // embedding of its text tokens, in the LLM's input space. cdpruner then takes the image's
  // own features (also in that space) as its image embeddings, so relevance is the cosine
  // between each visual token and the prompt, as cdpruner-openvino computes it.
  const needsText = TEXT_CONDITIONED_METHODS.has(method) && options.textEmbeds === undefined && options.relevance === undefined && options.imageEmbeds === undefined;
  const textByRow = new Map();
  let cursor = 0;
  const items = [];
  for (let i = 0; i < images.length; i++) {
    const im = images[i];
    const row = slots[cursor][0];
    cursor += im.n;
    const feats = featData.slice(im.start * d, (im.start + im.n) * d);
    const item = { ...extra, features: feats, n: im.n, d, method, keep: ks[i] };
    if (im.grid) item.grid = im.grid;
    if (options.importance) {
      const imp = await options.importance({ image: i, row, features: feats, n: im.n, d, grid: im.grid });
      if (!imp || imp.length !== im.n) {
        throw new Error(`${TAG}: importance callback for image ${i} returned ${imp?.length ?? 'nothing'} scores, expected N = ${im.n}`);
      }
      item.importance = imp instanceof Float32Array ? imp : Float32Array.from(imp);
    }
    if (options.textEmbeds !== undefined) item.textEmbeds = options.textEmbeds;
    else if (needsText) {
      if (!textByRow.has(row)) textByRow.set(row, promptTextEmbedding(inputsEmbeds, input_ids, attention_mask, tokenId, row));
      item.textEmbeds = textByRow.get(row);
      if (method === 'cdpruner') item.imageEmbeds = feats;
    }
    items.push(item);
  }
  const t1 = performance.now();
  const results = [];
  for (let i = 0; i < items.length; i++) {
    if (ks[i] === images[i].n) {
      results.push({ kept: Uint32Array.from({ length: images[i].n }, (_, j) => j), elapsedMs: 0, skipped: true });
    } else if (ks[i] === 0) {
      results.push({ kept: new Uint32Array(0), elapsedMs: 0, skipped: true });
    } else {
      const { features: f, ...opts } = items[i];
      const r = await ctx.pruner.prune(f, opts);
      if (r.kept.length !== ks[i]) throw new Error(`${TAG}: the pruner kept ${r.kept.length} of image ${i}'s tokens, expected ${ks[i]}`);
      results.push(r);
    }
  }
  const pruneMs = performance.now() - t1;

  // Keep flags over the prompt and the kept feature row of each kept placeholder.
  const keepTok = new Uint8Array(b * L).fill(1);
  const rowOf = new Int32Array(b * L).fill(-1);
  cursor = 0;
  for (let i = 0; i < images.length; i++) {
    const kept = new Uint8Array(images[i].n);
    for (const k of results[i].kept) kept[k] = 1;
    for (let j = 0; j < images[i].n; j++) {
      const [r, c] = slots[cursor + j];
      if (kept[j]) rowOf[r * L + c] = images[i].start + j;
      else keepTok[r * L + c] = 0;
    }
    cursor += images[i].n;
  }
  const lens = Array.from({ length: b }, (_, r) => keepTok.subarray(r * L, (r + 1) * L).reduce((a, v) => a + v, 0));
  const Lp = Math.max(...lens);

  // Pruned inputs_embeds / attention mask, left-padded to the longest row. The feature rows are
  // copied in the embeddings' own type (fp16 models: both are float16).
  const embIn = inputsEmbeds.data;
  const featRows = features.type === inputsEmbeds.type ? features.data : features.to(inputsEmbeds.type).data;
  const emb = new embIn.constructor(b * Lp * D);
  const maskIn = attention_mask?.data;
  const mask = new BigInt64Array(b * Lp);
  const colMap = new Int32Array(b * Lp).fill(-1); // pruned column -> original column
  for (let r = 0; r < b; r++) {
    let c = Lp - lens[r];
    for (let j = 0; j < L; j++) {
      const at = r * L + j;
      if (!keepTok[at]) continue;
      const dst = (r * Lp + c) * D;
      if (rowOf[at] >= 0) {
        const src = rowOf[at] * d;
        emb.set(featRows.subarray(src, src + d), dst);
      } else emb.set(embIn.subarray(at * D, (at + 1) * D), dst);
      mask[r * Lp + c] = maskIn ? BigInt(maskIn[at]) : 1n;
      colMap[r * Lp + c] = j;
      c++;
    }
  }
  const embeds = newTensor(inputsEmbeds, inputsEmbeds.type, emb, [b, Lp, D]);
  const maskT = newTensor(input_ids, 'int64', mask, [b, Lp]);

  const call = { ...modelInputs, inputs_embeds: embeds, attention_mask: maskT };
  delete call.pixel_values;
  const info = { images: images.map((im, i) => ({ n: im.n, k: ks[i], grid: im.grid, kept: results[i].kept })), promptLength: L, prunedLength: Lp, rowLengths: lens, encodeMs, pruneMs, backend: ctx.pruner.backend };

  if (kind === 'mrope') {
    let pos = modelInputs.position_ids;
    if (!pos || pos.dims.at(-1) !== L) {
      [pos] = model.get_rope_index(input_ids, modelInputs.image_grid_thw, modelInputs.video_grid_thw, attention_mask);
    }
    const P = pos.data;
    const outPos = new BigInt64Array(3 * b * Lp).fill(1n);
    const deltas = new BigInt64Array(b);
    for (let r = 0; r < b; r++) {
      let max = -1n;
      for (let j = 0; j < L; j++) {
        if (maskIn && Number(maskIn[r * L + j]) === 0) continue;
        for (let a = 0; a < 3; a++) if (BigInt(P[(a * b + r) * L + j]) > max) max = BigInt(P[(a * b + r) * L + j]);
      }
      for (let c = 0; c < Lp; c++) {
        const j = colMap[r * Lp + c];
        if (j < 0 || mask[r * Lp + c] === 0n) continue;
        for (let a = 0; a < 3; a++) outPos[(a * b + r) * Lp + c] = BigInt(P[(a * b + r) * L + j]);
      }
      // Decode step s feeds cache_length + delta = Lp + s + delta: continue at max(P) + 1 + s.
      deltas[r] = max + 1n - BigInt(Lp);
    }
    call.position_ids = newTensor(input_ids, 'int64', outPos, [3, b, Lp]);
    modelInputs.rope_deltas = newTensor(input_ids, 'int64', deltas, [b, 1]);
    info.positionIds = call.position_ids;
    info.ropeDeltas = modelInputs.rope_deltas;
  } else {
    delete call.position_ids;
  }
  modelInputs[STATE] = { mask: maskT, b, Lp };
  ctx.last = info;
  options.onPrune?.(info);
  return ctx.base.call(model, call);
}

async function decodeStep(ctx, modelInputs, state) {
  const { model } = ctx;
  const { input_ids, past_key_values } = modelInputs;
  const past = past_key_values.get_seq_length();
  const [b, s] = input_ids.dims;
  const total = past + s;
  const mask = new BigInt64Array(b * total).fill(1n);
  const prev = state.mask.data;
  for (let r = 0; r < b; r++) mask.set(prev.subarray(r * state.Lp, (r + 1) * state.Lp), r * total);
  const inputs_embeds = await model.encode_text({ input_ids });
  const call = { ...modelInputs, inputs_embeds, attention_mask: newTensor(input_ids, 'int64', mask, [b, total]) };
  delete call.pixel_values;
  if (ctx.kind !== 'mrope') delete call.position_ids;
  return ctx.base.call(model, call);
}

async function prunedForward(ctx, modelInputs) {
  const { input_ids, pixel_values, inputs_embeds, past_key_values } = modelInputs ?? {};
  const pastLength = past_key_values?.get_seq_length?.() ?? 0;
  if (!inputs_embeds && input_ids && pixel_values && pastLength === 0 && input_ids.dims[1] > 1) {
    return prefill(ctx, modelInputs);
  }
  const state = modelInputs?.[STATE];
  if (state && !inputs_embeds && input_ids && pastLength > 0) return decodeStep(ctx, modelInputs, state);
  return ctx.base.call(ctx.model, modelInputs);
}
