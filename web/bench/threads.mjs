// Threaded wasm CPU engine against one thread, same run, in headless Chromium (a cross-origin
// isolated page, as web/demo/serve.mjs serves) and in Node.js (worker_threads):
//
//   node web/bench/threads.mjs [--repeats 9] [--threads auto|N] [--node] [--chromium] [--quick]
//                              [--wait-quiet SECONDS] [--json out.json]
//
// --wait-quiet: first wait (at most that long) for the 1-minute load average to drop below 0.7;
// on a shared machine two threads only help while the other cores are idle.
//
// Needs web/dist (bash web/build.sh). Prints a markdown table (BENCHMARKS.md, "Threaded wasm
// CPU engine") with the machine, the load average before and after, and the same-run ratio.
import { createServer } from 'node:http';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const flag = (name) => process.argv.includes(name);
const repeats = Number(arg('--repeats', 9));
const threadsArg = arg('--threads', 'auto');
const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
const where = [flag('--chromium') && 'chromium', flag('--node') && 'node'].filter(Boolean);
if (!where.length) where.push('chromium');
const cases = flag('--quick')
  ? [{ n: 576, d: 1024, method: 'divprune', keep: 58 }]
  : [
      { n: 576, d: 256, method: 'divprune', keep: 58 },
      { n: 576, d: 1024, method: 'divprune', keep: 58 },
      { n: 576, d: 1024, method: 'idpruner', keep: 58 },
      { n: 2304, d: 1024, method: 'divprune', keep: 230 },
      { n: 4608, d: 1024, method: 'divprune', keep: 461 },
    ];
if (!existsSync(join(web, 'dist', 'tokenprune_bg.wasm'))) {
  console.error('web/dist is missing: run bash web/build.sh');
  process.exit(1);
}
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const quiet = Number(arg('--wait-quiet', 0));
for (const until = Date.now() + quiet * 1000; Date.now() < until && loadavg()[0] >= 0.7; ) {
  await new Promise((ok) => setTimeout(ok, 5000));
}
const cpuName = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)[1];
  } catch {
    return cpus()[0]?.model;
  }
})();
const out = { machine: `${cpus().length} x ${cpuName}`, loadBefore: load(), repeats, results: {} };
console.log(`machine: ${out.machine}; load average ${out.loadBefore}; medians of ${repeats} warm calls`);

function table(name, res) {
  const lines = [
    `\n${name}: ${res.threads} threads (${res.threadsReason ?? 'as asked'}), pool start ${res.startMs.toFixed(0)} ms`,
    '| case | one thread ms | threaded ms | threads used | one / threaded | same selection |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const r of res.rows) {
    lines.push(`| ${r.method} ${r.n} x ${r.d}, K = ${r.keep} | ${r.singleMs.toFixed(1)} | ${r.threadedMs.toFixed(1)} | ${r.threadsUsed} | ${r.ratio.toFixed(2)}x | ${r.equal ? 'yes' : 'NO'} |`);
  }
  return lines.join('\n');
}

if (where.includes('chromium')) {
  const { chromium } = await import('playwright-core');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path === '/' ? null : join(web, normalize(path));
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    if (path === '/') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>threads bench</title>');
      return;
    }
    if (!file.startsWith(web) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.log(`  chromium: ${m.text()}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const version = browser.version();
    const res = await page.evaluate(
      async ({ cases, repeats, threads }) => {
        const { Pruner } = await import('/src/index.js');
        const { runThreadsBench } = await import('/bench/threads-suite.js');
        return runThreadsBench({ Pruner, cases, repeats, threads, log: (s) => console.log(s) });
      },
      { cases, repeats, threads },
    );
    out.results.chromium = { version, isolated: true, ...res };
    console.log(table(`Chromium ${version} (headless, cross-origin isolated page)`, res));
  } finally {
    await browser.close();
    server.close();
  }
}

if (where.includes('node')) {
  const { Pruner } = await import('../src/index.js');
  const { runThreadsBench } = await import('./threads-suite.js');
  const res = await runThreadsBench({ Pruner, cases, repeats, threads, log: (s) => console.log(`  node: ${s}`) });
  out.results.node = { version: process.version, ...res };
  console.log(table(`Node.js ${process.version} (worker_threads)`, res));
}

out.loadAfter = load();
console.log(`\nload average before ${out.loadBefore}, after ${out.loadAfter}`);
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify(out, null, 2));
