// A transformers.js VLM whose generate() prunes every image with tokenprune (web/README.md,
// "In a transformers.js VLM"). Runs in Node against the bundled tiny random-weight models
// (test/models: the answer is gibberish, the mechanics are real); in a browser or with a hub,
// use a real model id instead (see the README for the ids that fit).
//
//   node web/examples/transformers-vlm.mjs [llava|qwen2vl] [keepRatio]
// From npm: import { wrapModel, keptCount, lastPrune } from 'tokenprune/transformers';
import { AutoProcessor, LlavaForConditionalGeneration, Qwen2VLForConditionalGeneration, RawImage, env } from '@huggingface/transformers';
import { wrapModel, unwrapModel, keptCount, lastPrune } from '../src/transformers.js';

const arch = process.argv[2] ?? 'llava';
const keepRatio = Number(process.argv[3] ?? 0.25);
env.localModelPath = new URL('../test/models/', import.meta.url).pathname;
env.allowRemoteModels = false;

// A 64 x 48 test picture (a real app: await RawImage.read(url)).
const image = new RawImage(new Uint8ClampedArray(64 * 48 * 3).map((_, i) => (i * 37) % 256), 64, 48, 3);

let model, inputs, processor;
if (arch === 'llava') {
  // --- LLaVA (and LlavaQwen2 / Moondream1 / Idefics3 / SmolVLM: the same 1-D path) ---
  processor = await AutoProcessor.from_pretrained('llava');
  model = await LlavaForConditionalGeneration.from_pretrained('llava', { device: 'cpu', dtype: 'fp32' });
  inputs = await processor(image, 'USER: <image>\nWhat is in the picture? ASSISTANT:');
} else {
  // --- Qwen2-VL (and Qwen2.5-VL): multi-axis rotary positions ---
  processor = await AutoProcessor.from_pretrained('qwen2vl');
  model = await Qwen2VLForConditionalGeneration.from_pretrained('qwen2vl', { device: 'cpu', dtype: 'fp32' });
  const prompt = '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is in the picture?<|im_end|>\n<|im_start|>assistant\n';
  inputs = await processor(prompt, image);
}

await wrapModel(model, { method: 'divprune', keepRatio }); // every image, every generate() / forward
const output = await model.generate({ ...inputs, max_new_tokens: 16, do_sample: false });
const info = lastPrune(model);
const answer = processor.tokenizer.batch_decode(output.slice(null, [inputs.input_ids.dims[1], null]), { skip_special_tokens: true })[0];
console.log(
  `${arch}: image tokens ${info.images.map((im) => `${im.n} -> ${im.k}`).join(', ')} ` +
    `(keptCount(${info.images[0].n}, { keepRatio: ${keepRatio} }) = ${keptCount(info.images[0].n, { keepRatio })}), ` +
    `prompt ${info.promptLength} -> ${info.prunedLength} tokens, pruned on ${info.backend} in ${info.pruneMs.toFixed(1)} ms; ` +
    `answer (random weights): ${JSON.stringify(answer)}`,
);
unwrapModel(model); // back to plain transformers.js
