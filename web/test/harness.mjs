// Shared by the tokenprune/transformers Chromium test (test/mllm.test.mjs) and the TTFT benchmark
// (bench/ttft.mjs): a static file server over URL-prefix routes, where transformers.js's
// onnxruntime-web wasm lives, the npm package as published, and headless Chromium.
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, extname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** transformers.js's browser build. */
export const TRANSFORMERS_DIST = join(web, 'node_modules', '@huggingface', 'transformers', 'dist');

/** The onnxruntime-web dist folder transformers.js loads its wasm from (its nested copy if any). */
export function ortWasmDir() {
  const nested = join(web, 'node_modules', '@huggingface', 'transformers', 'node_modules', 'onnxruntime-web', 'dist');
  return existsSync(join(nested, 'ort-wasm-simd-threaded.asyncify.wasm')) ? nested : join(web, 'node_modules', 'onnxruntime-web', 'dist');
}

/** `npm pack`s web/ into a fresh folder; returns `{ dir, nodeModules }` (tokenprune installed in it). */
export function packPackage() {
  const dir = mkdtempSync(join(tmpdir(), 'tokenprune-pack-'));
  const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: web }).toString().trim().split('\n').pop();
  execFileSync('tar', ['-xzf', join(dir, tgz), '-C', dir]);
  mkdirSync(join(dir, 'node_modules'));
  renameSync(join(dir, 'package'), join(dir, 'node_modules', 'tokenprune'));
  return { dir, nodeModules: join(dir, 'node_modules') };
}

/**
 * Serves `pages` (URL path -> { body } or { file }) and `routes` ([prefix, folder], nothing
 * outside the folders) on 127.0.0.1. Resolves to `{ url, close() }`.
 */
export async function serveStatic({ pages = {}, routes = [], headers = {} }) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const page = pages[path];
    if (page?.body !== undefined) return res.writeHead(200, { 'content-type': 'text/html', ...headers }).end(page.body);
    let file = page?.file ?? null;
    for (const [prefix, dir] of file ? [] : routes) {
      if (!path.startsWith(prefix)) continue;
      const f = normalize(join(dir, path.slice(prefix.length)));
      if (f.startsWith(dir + sep)) file = f;
      break;
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, ...headers });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((ok) => server.close(ok)) };
}

/** Headless Chromium with WebGPU enabled (SwiftShader here); extra flags appended. */
export function launchChromium(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', ...extra],
  });
}
