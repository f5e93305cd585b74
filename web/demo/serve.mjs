// Serves the in-browser demo (web/demo) on 127.0.0.1: the page, the npm package's source and
// wasm (web/src, web/dist), onnxruntime-web's runtime, the encoder model (web/demo/model, built
// by scripts/encoder/setup.sh), the bundled photos (examples/photos) and the manifest of the
// bundled embeddings (the video's frames, examples/embeddings).
// Cross-origin isolated (COOP/COEP), so onnxruntime-web may use threads.
//
//   node web/demo/serve.mjs [--port 8080] [--host 127.0.0.1]
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, extname, dirname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const demo = dirname(fileURLToPath(import.meta.url));
const web = join(demo, '..');
const repo = join(web, '..');

/** onnxruntime-web's dist folder that transformers.js uses (its own copy when it nests one). */
function ortWasmDir() {
  const nested = join(web, 'node_modules', '@huggingface', 'transformers', 'node_modules', 'onnxruntime-web', 'dist');
  return existsSync(nested) ? nested : join(web, 'node_modules', 'onnxruntime-web', 'dist');
}

/** URL prefix -> folder. Nothing outside these folders is served. */
const ROUTES = [
  ['/demo/', demo],
  ['/tokenprune/src/', join(web, 'src')],
  ['/tokenprune/dist/', join(web, 'dist')],
  ['/ort/', join(web, 'node_modules', 'onnxruntime-web', 'dist')],
  ['/model/', join(demo, 'model')],
  ['/photos/', join(repo, 'examples', 'photos')],
  // The manifest names the video's photo and window offsets (scripts/encoder/build.py).
  ['/embeddings/', join(repo, 'examples', 'embeddings')],
  // The "ask the model" panel: transformers.js's browser build, its onnxruntime-web wasm, the
  // bundled tiny VLMs.
  ['/tf/', join(web, 'node_modules', '@huggingface', 'transformers', 'dist')],
  ['/ortw/', ortWasmDir()],
  ['/vlm/', join(web, 'test', 'models')],
];
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json',
  '.png': 'image/png', '.onnx': 'application/octet-stream',
};

/** What the demo needs that a build makes; a message naming the command when missing. */
export function missingPieces() {
  const need = [
    [join(web, 'dist', 'tokenprune_bg.wasm'), 'bash web/build.sh'],
    [join(demo, 'model', 'efficientnet-lite0-tokens.onnx'), 'bash scripts/encoder/setup.sh'],
    [join(web, 'node_modules', 'onnxruntime-web', 'dist'), '(cd web && npm ci)'],
    [join(web, 'node_modules', '@huggingface', 'transformers', 'dist'), '(cd web && npm ci)'],
    [join(web, 'test', 'models', 'qwen2vl', 'onnx'), 'bash scripts/mllm/setup.sh (or git checkout web/test/models)'],
  ];
  return need.filter(([path]) => !existsSync(path)).map(([path, cmd]) => `${path} is missing: run ${cmd}`);
}

function resolve(urlPath) {
  if (urlPath === '/' || urlPath === '/index.html') return join(demo, 'index.html');
  for (const [prefix, dir] of ROUTES) {
    if (urlPath.startsWith(prefix)) {
      const file = normalize(join(dir, urlPath.slice(prefix.length)));
      return file.startsWith(dir + sep) ? file : null;
    }
  }
  return null;
}

/** Starts the server; resolves to `{ url, close() }`. `port: 0` picks a free port. */
export async function startDemoServer({ port = 8080, host = '127.0.0.1' } = {}) {
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const file = resolve(path);
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
      'cache-control': 'no-cache',
    });
    res.end(readFileSync(file));
  });
  await new Promise((ok, fail) => server.once('error', fail).listen(port, host, ok));
  const url = `http://${host}:${server.address().port}/`;
  return { url, close: () => new Promise((ok) => server.close(ok)) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const missing = missingPieces();
  if (missing.length) {
    console.error(missing.join('\n'));
    process.exit(1);
  }
  const { url } = await startDemoServer({ port: Number(arg('--port', 8080)), host: arg('--host', '127.0.0.1') });
  console.log(`tokenprune demo: open ${url} in a browser with WebGPU (Ctrl+C stops)`);
}
