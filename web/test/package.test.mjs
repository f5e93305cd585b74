// web/README.md followed as a newcomer would: the packed tarball copied into a fresh folder
// (`npm init -y`, which writes "type": "commonjs"), installed with the README's command, and
// every snippet the README marks `<!-- test: ... -->` written out and run verbatim: the Node.js
// first call (its output against the README's "It prints"), ESM only, the worker, TypeScript
// strict without DOM types, a plain page with an import map and a Vite build in Chromium.
// Needs `bash build.sh` first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveStatic } from './harness.mjs';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(web, 'README.md'), 'utf8');
let dir;

/** The README's tested snippets: `{ kind: 'sh' | 'file', name, lang, body }`. */
const snippets = [...readme.matchAll(/<!-- test: (sh|file=([^ ]+)) -->\n```(\w+)\n([\s\S]*?)```\n/g)].map((m) => ({ kind: m[1] === 'sh' ? 'sh' : 'file', name: m[2], lang: m[3], body: m[4] }));
const file = (name) => {
  const s = snippets.find((x) => x.name === name);
  assert.ok(s, `README has no tested snippet ${name}`);
  return s.body;
};

function run(cmd, args, opts = {}) {
  return new Promise((ok, fail) =>
    execFile(cmd, args, { cwd: dir, timeout: 300_000, ...opts }, (e, stdout, stderr) => (e ? fail(Object.assign(new Error(`${cmd} ${args.join(' ')}: ${e.message}\n${stderr}`), { stdout, stderr, code: e.code })) : ok({ stdout, stderr }))),
  );
}

before(async () => {
  assert.ok(existsSync(join(web, 'dist', 'tokenprune_bg.wasm')), 'web/dist is missing: run `bash web/build.sh` first');
  dir = mkdtempSync(join(tmpdir(), 'tokenprune-newcomer-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: web });
  await run('npm', ['init', '-y']);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('README install: npm install of the packed tarball in a fresh CommonJS project', { timeout: 300_000 }, async () => {
  assert.equal(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type ?? 'commonjs', 'commonjs');
  const sh = snippets.filter((s) => s.kind === 'sh');
  assert.equal(sh.length, 1);
  for (const line of sh[0].body.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'))) {
    await run('sh', ['-c', line]);
  }
  const pkg = join(dir, 'node_modules', 'tokenprune');
  for (const f of ['package.json', 'README.md', 'LICENSE-MIT', 'LICENSE-APACHE', 'src/index.d.ts', 'src/worker.js', 'dist/tokenprune_bg.wasm', 'examples/node-cpu.mjs', 'examples/minimal.html', 'examples/worker.html']) {
    assert.ok(existsSync(join(pkg, f)), `the tarball lacks ${f}`);
  }
  const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.equal(meta.license, 'MIT OR Apache-2.0');
  assert.match(readFileSync(join(pkg, 'LICENSE-APACHE'), 'utf8'), /Apache License\s+Version 2\.0/);
  assert.match(readFileSync(join(pkg, 'LICENSE-MIT'), 'utf8'), /^MIT License/);
});

test('README first call (Node.js): prune.mjs prints what the README says', { timeout: 120_000 }, async () => {
  writeFileSync(join(dir, 'prune.mjs'), file('prune.mjs'));
  const { stdout } = await run(process.execPath, ['prune.mjs']);
  const said = /It prints:\n\n```text\n([\s\S]*?)```/.exec(readme)[1].trim().split('\n');
  const got = stdout.trim().split('\n');
  assert.equal(got.length, said.length, stdout);
  said.forEach((line, i) => {
    const re = new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+\\\.\d+ ms/g, '\\d+\\.\\d ms')}$`);
    assert.match(got[i], re);
  });
});

test('README threads: threads.mjs prints what the README says (Node.js worker threads)', { timeout: 120_000 }, async () => {
  writeFileSync(join(dir, 'threads.mjs'), file('threads.mjs'));
  const { stdout } = await run(process.execPath, ['threads.mjs']);
  const said = /It prints `(\d+ threads;[^`]+)`/.exec(readme)[1];
  assert.equal(stdout.trim(), said);
});

test('README: ESM only (require fails with the documented code; import() from CommonJS works)', { timeout: 60_000 }, async () => {
  const err = await run(process.execPath, ['-e', "require('tokenprune')"]).then(() => null, (e) => e);
  assert.ok(err, 'require() of the package worked');
  assert.match(err.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  assert.match(readme, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  writeFileSync(join(dir, 'cjs.js'), "import('tokenprune').then(async ({ Pruner }) => { const p = await Pruner.create(); console.log(p.backend); p.free(); });\n");
  assert.equal((await run(process.execPath, ['cjs.js'])).stdout.trim(), 'cpu');
});

test('README worker mode (Node.js): worker.mjs, and the examples shipped in the package', { timeout: 120_000 }, async () => {
  writeFileSync(join(dir, 'worker.mjs'), file('worker.mjs'));
  const { stdout } = await run(process.execPath, ['worker.mjs']);
  assert.equal(stdout.trim(), 'kept 230 on cpu in a worker: true; the event loop ran meanwhile: true');
  const ex = await run(process.execPath, ['node_modules/tokenprune/examples/node-cpu.mjs']);
  assert.match(ex.stdout, /divprune: kept 58\/576 on cpu/);
  assert.match(ex.stdout, /batch of 3: 64,64,64/);
});

test('README TypeScript: strict, --lib es2022 --types node, no skipLibCheck; wrong options are type errors; Float16Array with lib esnext', { timeout: 180_000 }, async () => {
  const tsc = join(web, 'node_modules', 'typescript', 'bin', 'tsc');
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(web, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
  writeFileSync(join(dir, 'tsconfig.json'), file('tsconfig.json'));
  writeFileSync(join(dir, 'check.mts'), file('check.mts'));
  const tsconfig = JSON.parse(file('tsconfig.json')).compilerOptions;
  assert.equal(tsconfig.skipLibCheck, undefined);
  assert.deepEqual(tsconfig.lib, ['es2022']);
  await run(process.execPath, [tsc, '-p', 'tsconfig.json']);
  // the checks bite: a misspelt option and a missing importance are errors
  writeFileSync(join(dir, 'bad.mts'), "import { Pruner } from 'tokenprune';\nconst p = await Pruner.create();\nawait p.prune(new Float32Array(4), { n: 2, d: 2, keep: 1, lamda: 0.5 });\nawait p.prune(new Float32Array(4), { n: 2, d: 2, keep: 1, method: 'idpruner' });\n");
  const bad = await run(process.execPath, [tsc, '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'es2022', '--types', 'node', '--noEmit', 'bad.mts']).then(() => null, (e) => e);
  assert.ok(bad, 'misspelt options type-checked');
  assert.match(bad.stdout, /lamda/);
  assert.match(bad.stdout, /importance/);
  // Float16Array where the lib has it, as features and as importance
  writeFileSync(join(dir, 'f16.mts'), "import { Pruner } from 'tokenprune';\nconst p = await Pruner.create();\nconst r = await p.prune(new Float16Array(4), { n: 2, d: 2, keep: 1, method: 'idpruner', importance: new Float16Array(2) });\nconst rows: Float16Array = p.gather(new Float16Array(4), r);\nconsole.log(rows.length);\n");
  await run(process.execPath, [tsc, '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'esnext', '--types', 'node', '--noEmit', 'f16.mts']);
});

test('README in Chromium: the plain page with an import map, and the Vite build (no warnings, worker included)', { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(join(dir, 'node_modules', 'tokenprune')), 'install first');
  writeFileSync(join(dir, 'index.html'), file('index.html'));
  // Vite: the README's main.js, built from this folder's node_modules
  const vdir = join(dir, 'vite');
  mkdirSync(vdir);
  writeFileSync(join(vdir, 'main.js'), file('vite/main.js'));
  writeFileSync(join(vdir, 'index.html'), '<!doctype html>\n<script type="module" src="/main.js"></script>\n');
  const { build, createLogger } = await import(join(web, 'node_modules', 'vite', 'dist', 'node', 'index.js'));
  const logger = createLogger('info', { allowClearScreen: false });
  const warnings = [];
  logger.warn = (msg) => warnings.push(msg);
  logger.warnOnce = (msg) => warnings.push(msg);
  await build({ root: vdir, logLevel: 'warn', customLogger: logger, build: { outDir: 'dist', target: 'es2022' } });
  assert.deepEqual(warnings, [], 'Vite warned');

  const plain = await serveStatic({ routes: [['/', dir]] });
  const bundled = await serveStatic({ routes: [['/', join(vdir, 'dist')]] });
  const browser = await launchChromium();
  try {
    const texts = [];
    for (const [url, sel, want] of [
      [`${plain.url}index.html`, '#out', /^kept 58 of 576 on cpu \(webgpu: the adapter 'google swiftshader' is a fallback adapter \(it reports isFallbackAdapter\), slower than the CPU engine/],
      [`${bundled.url}index.html`, 'body', /^kept 58 on cpu$/],
    ]) {
      const page = await browser.newPage();
      const logs = [];
      page.on('console', (m) => logs.push(m.text()));
      page.on('pageerror', (e) => logs.push(String(e)));
      await page.goto(url);
      await page.waitForFunction(([s]) => /^kept /.test(document.querySelector(s)?.textContent ?? ''), [sel], { timeout: 120_000 }).catch(() => {});
      const text = await page.evaluate((s) => document.querySelector(s)?.textContent ?? '', sel);
      assert.match(text, want, `${url}: '${text}'\n${logs.join('\n')}`);
      texts.push(text);
      await page.close();
    }
    t.diagnostic(texts.join(' | '));
  } finally {
    await browser.close();
    await plain.close();
    await bundled.close();
  }
});
