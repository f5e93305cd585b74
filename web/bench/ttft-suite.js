// Time to first token of a VLM with and without tokenprune, measured inside transformers.js
// (browser or Node). Used by bench/ttft.mjs; see BENCHMARKS.md "Time to first token in a VLM".

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times each run() of an ONNX session (what transformers.js calls below itself). */
function timeSession(session, into) {
  const run = session.run;
  session.run = async function (...args) {
    const t0 = performance.now();
    const out = await run.apply(this, args);
    into.push(performance.now() - t0);
    return out;
  };
  return () => { session.run = run; };
}

function picture(RawImage, side) {
  const data = new Uint8ClampedArray(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + ((i / 3 / side) | 0) * 11) % 256;
  return new RawImage(data, side, side, 3);
}

/**
 * keeps: keep ratios (1 = no pruning: plain transformers.js). Returns one row per keep ratio with
 * medians over `repeats` timed runs (after one warm-up run of each).
 */
export async function runTtft({ tf, adapter, Pruner, base, model: id, cls, device, dtype, keeps, repeats, backends, method = 'divprune', log = () => {} }) {
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = base;
  const t0 = performance.now();
  const processor = await tf.AutoProcessor.from_pretrained(id);
  const model = await tf[cls].from_pretrained(id, { device, dtype });
  const loadMs = performance.now() - t0;
  const side = processor.image_processor.config.crop_size?.height ?? 384;
  const image = picture(tf.RawImage, side);
  const inputs = cls.startsWith('Qwen')
    ? await processor('<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe the picture in detail.<|im_end|>\n<|im_start|>assistant\n', image)
    : await processor(image, 'USER: <image>\nDescribe the picture in detail. ASSISTANT:');
  const pruner = await Pruner.create({ backends });
  // Rounds over all keep ratios (interleaved, so drift in a shared machine's load hits every
  // ratio alike); round 0 is the warm-up.
  const runs = new Map(keeps.map((k) => [k, []]));
  for (let r = 0; r <= repeats; r++) {
    for (const keep of keeps) {
      const dec = [], vis = [];
      const undo = [timeSession(model.sessions.decoder_model_merged, dec), timeSession(model.sessions.vision_encoder, vis)];
      let info = null;
      if (keep < 1) await adapter.wrapModel(model, { method, keepRatio: keep, pruner, onPrune: (i) => { info = i; } });
      const s = performance.now();
      try {
        await model.generate({ ...inputs, max_new_tokens: 1, do_sample: false });
      } finally {
        if (keep < 1) adapter.unwrapModel(model);
        undo.forEach((u) => u());
      }
      const ttft = performance.now() - s;
      if (r > 0) runs.get(keep).push({ ttft, prefill: dec[0], encode: vis[0], prune: info ? info.pruneMs : 0, promptLength: info ? info.prunedLength : inputs.input_ids.dims[1], k: info ? info.images[0].k : null, n: info ? info.images[0].n : null });
      log(`round ${r} keep ${keep}: ttft ${ttft.toFixed(0)} ms, LLM prefill ${dec[0].toFixed(0)} ms, vision ${vis[0].toFixed(0)} ms${info ? `, prune ${info.pruneMs.toFixed(2)} ms (${info.images[0].n} -> ${info.images[0].k})` : ''}`);
    }
  }
  const n = [...runs.values()].flat().find((x) => x.n)?.n ?? null;
  const rows = keeps.map((keep) => {
    const rs = runs.get(keep);
    return {
      keep,
      promptLength: rs[0].promptLength,
      n,
      k: rs[0].k ?? n,
      ttftMs: median(rs.map((x) => x.ttft)),
      prefillMs: median(rs.map((x) => x.prefill)),
      encodeMs: median(rs.map((x) => x.encode)),
      pruneMs: median(rs.map((x) => x.prune)),
    };
  });
  const pruneBackend = pruner.backend;
  pruner.free();
  await model.dispose?.();
  return { loadMs, promptLength: inputs.input_ids.dims[1], pruneBackend, rows };
}
