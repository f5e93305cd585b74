// The demo's third panel, "ask the model": the photo and a question go into a transformers.js VLM
// twice, unpruned and through tokenprune/transformers at the page's keep ratio and method, and
// the panel shows the tokens that entered the LLM, prefill and decode times, and both answers.
//
// ?model=<url of a transformers.js model folder> loads a real VLM the user serves (same origin:
// any path; another origin: it must send CORS and, since the page is cross-origin isolated,
// Cross-Origin-Resource-Policy headers). By default: the bundled tiny random-weight Qwen2-VL
// (web/test/models/qwen2vl): it shows the mechanics, its answers are gibberish.
import * as tf from '/tf/transformers.js';
import { wrapModel, unwrapModel, lastPrune } from '/tokenprune/src/transformers.js';

const DEFAULT_MODEL = '/vlm/qwen2vl';
const CLASSES = {
  LlavaForConditionalGeneration: 'llava',
  LlavaQwen2ForCausalLM: 'llava',
  Idefics3ForConditionalGeneration: 'idefics3',
  SmolVLMForConditionalGeneration: 'idefics3',
  Qwen2VLForConditionalGeneration: 'qwen2vl',
  Qwen2_5_VLForConditionalGeneration: 'qwen2vl',
};

tf.env.backends.onnx.wasm.wasmPaths = {
  mjs: `${location.origin}/ortw/ort-wasm-simd-threaded.asyncify.mjs`,
  wasm: `${location.origin}/ortw/ort-wasm-simd-threaded.asyncify.wasm`,
};
tf.env.useBrowserCache = false;

/** Points transformers.js at a model folder URL; returns the id to load. */
function locate(url) {
  const u = new URL(url.replace(/\/+$/, ''), location.href);
  const cut = u.pathname.lastIndexOf('/');
  const dir = u.pathname.slice(0, cut + 1);
  const name = u.pathname.slice(cut + 1);
  if (u.origin === location.origin) {
    tf.env.allowLocalModels = true;
    tf.env.allowRemoteModels = false;
    tf.env.localModelPath = dir;
  } else {
    tf.env.allowLocalModels = false;
    tf.env.allowRemoteModels = true;
    tf.env.remoteHost = u.origin;
    tf.env.remotePathTemplate = `${dir.slice(1)}{model}/`;
  }
  return name;
}

function prompt(kind, question, processor) {
  if (processor.tokenizer?.chat_template && processor.apply_chat_template) {
    const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: question }] }];
    return processor.apply_chat_template(messages, { add_generation_prompt: true });
  }
  if (kind === 'qwen2vl') return `<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>${question}<|im_end|>\n<|im_start|>assistant\n`;
  if (kind === 'idefics3') return `<|im_start|>User:<image>${question}<end_of_utterance>\nAssistant:`;
  return `USER: <image>\n${question} ASSISTANT:`;
}

/** Loads the model named by ?model= (or the bundled tiny one). */
export async function loadVlm(url = DEFAULT_MODEL, device = 'wasm') {
  const id = locate(url);
  const config = await tf.AutoConfig.from_pretrained(id);
  const arch = config.architectures?.[0];
  const kind = CLASSES[arch];
  if (!kind) throw new Error(`${url}: architecture ${arch} is not one tokenprune/transformers supports (${Object.keys(CLASSES).join(', ')})`);
  const processor = await tf.AutoProcessor.from_pretrained(id);
  const model = await tf[arch].from_pretrained(id, { device, dtype: config['transformers.js_config']?.dtype ?? 'q8' });
  return { id, url, kind, arch, processor, model, bundled: url === DEFAULT_MODEL, device };
}

/** One generate() with per-forward timings: the first call is the prefill, the rest decode steps. */
async function timedGenerate(vlm, inputs, maxNewTokens) {
  const { model } = vlm;
  const inner = model.forward;
  const times = [];
  model.forward = async (x) => {
    const t0 = performance.now();
    const out = await inner.call(model, x);
    times.push(performance.now() - t0);
    return out;
  };
  try {
    const out = await model.generate({ ...inputs, max_new_tokens: maxNewTokens, do_sample: false });
    const text = vlm.processor.tokenizer.batch_decode(out.slice(null, [inputs.input_ids.dims[1], null]), { skip_special_tokens: true })[0];
    const decode = times.slice(1);
    return { text, prefillMs: times[0], decodeMs: decode.reduce((a, b) => a + b, 0) / Math.max(1, decode.length), steps: times.length };
  } finally {
    if (inner === Object.getPrototypeOf(model).forward) delete model.forward;
    else model.forward = inner;
  }
}

/**
 * Asks the model about `canvas`: unpruned, then pruned (method, keepRatio, pruner).
 * Returns { imageTokens, textTokens, kept, full, pruned }.
 */
export async function ask(vlm, canvas, question, { method, keepRatio, pruner, importance, maxNewTokens = 24 }) {
  const image = tf.RawImage.fromCanvas(canvas).rgb();
  const text = prompt(vlm.kind, question, vlm.processor);
  const inputs = vlm.kind === 'qwen2vl' ? await vlm.processor(text, image) : await vlm.processor(image, text);
  const full = await timedGenerate(vlm, inputs, maxNewTokens);
  await wrapModel(vlm.model, { method, keepRatio, pruner, importance });
  let pruned, info;
  try {
    pruned = await timedGenerate(vlm, inputs, maxNewTokens);
    info = lastPrune(vlm.model);
  } finally {
    unwrapModel(vlm.model);
  }
  const imageTokens = info.images.reduce((a, im) => a + im.n, 0);
  const kept = info.images.reduce((a, im) => a + im.k, 0);
  return { imageTokens, kept, textTokens: info.promptLength - imageTokens, promptLength: info.promptLength, prunedLength: info.prunedLength, pruneMs: info.pruneMs, full, pruned };
}
