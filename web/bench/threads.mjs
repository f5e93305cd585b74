// Threaded wasm CPU engine against one thread, same run, in headless Chromium (a cross-origin
// isolated page, as web/demo/serve.mjs serves) and in Node.js (worker_threads):
//
//   node web/bench/threads.mjs [--repeats 9] [--threads auto|N] [--node] [--chromium] [--quick]
//                              [--max-others 0.1] [--case-seconds 120] [--json out.json]
//
// Each case: 2 warm-up pairs, then pairs (one call on a one-thread pruner, one on the threaded
// pruner) until `repeats` pairs ran while the rest of the machine was quiet, or the case ran
// `case-seconds` (then all its pairs count, and the table says so). "Quiet": the processes other than this benchmark (its node and chromium) used at most
// `max-others` of one core during the pair, read from /proc (Linux). On a shared machine two
// threads only help while the other cores are idle (and with the scheduler's autogroups, a
// busy neighbour session takes a whole core however many threads we run; on a virtual machine
// the host's other guests are not in /proc at all). So each pair also measures the ceiling:
// N one-thread pruners in Workers, one after another, then all at once (N on N idle cores).
// Prints a markdown table (BENCHMARKS.md, "Threaded wasm CPU engine") with the machine, the
// load average, the pairs kept, the same-run ratio and the ceiling beside it. Needs web/dist
// (bash web/build.sh).
import { createServer } from 'node:http';
import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
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
const maxOthers = Number(arg('--max-others', 0.1));
const caseSeconds = Number(arg('--case-seconds', 120));
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
const cpuName = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)[1];
  } catch {
    return cpus()[0]?.model;
  }
})();

// --- CPU time of everything else, from /proc (Linux) -------------------------------------------
const HZ = 100;
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}
/** CPU ticks of this process and its descendants (the browser), and of the whole machine. */
function ticks() {
  const procs = new Map();
  for (const e of readdirSync('/proc')) if (/^\d+$/.test(e)) {
    const s = procStat(e);
    if (s) procs.set(Number(e), s);
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, s] of procs) if (!mine.has(pid) && mine.has(s.ppid)) {
      mine.add(pid);
      grew = true;
    }
  }
  let own = 0;
  for (const pid of mine) own += procs.get(pid)?.ticks ?? 0;
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
  return { own, busy, at: performance.now() };
}
/** Cores used by other processes between two `ticks()` samples. */
const others = (a, b) => (b.busy - b.own - (a.busy - a.own)) / HZ / ((b.at - a.at) / 1000);

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const out = { machine: `${cpus().length} x ${cpuName}`, loadBefore: load(), repeats, maxOthers, results: {} };
console.log(`machine: ${out.machine}; load average ${out.loadBefore}; medians of ${repeats} pairs run while other processes used <= ${maxOthers} of a core`);

/** Runs every case through `pair(i)`, keeping the quiet pairs. */
async function measure(pair, log) {
  const rows = [];
  for (const [i, c] of cases.entries()) {
    for (let w = 0; w < 2; w++) await pair(i);
    const quiet = [], all = [];
    let equal = true, threadsUsed = 0;
    const until = performance.now() + caseSeconds * 1000;
    while (quiet.length < repeats && (performance.now() < until || all.length < repeats)) {
      const t0 = ticks();
      const r = await pair(i);
      const o = others(t0, ticks());
      equal &&= r.equal;
      threadsUsed = r.threadsUsed;
      all.push({ ...r, others: o });
      if (o <= maxOthers) quiet.push(r);
    }
    const use = quiet.length ? quiet : all;
    const row = {
      ...c,
      pairs: all.length,
      quietPairs: quiet.length,
      singleMs: median(use.map((r) => r.singleMs)),
      threadedMs: median(use.map((r) => r.threadedMs)),
      othersMedian: median(all.map((r) => r.others)),
      allRatio: median(all.map((r) => r.singleMs)) / median(all.map((r) => r.threadedMs)),
      pairRatio: median(use.map((r) => r.singleMs / r.threadedMs)),
      ceiling: median(use.map((r) => r.ceiling)),
      threadsUsed,
      equal,
    };
    row.ratio = row.singleMs / row.threadedMs;
    log(`${c.method} ${c.n}x${c.d} K=${c.keep}: ${row.quietPairs}/${row.pairs} quiet pairs; one thread ${row.singleMs.toFixed(1)} ms, ${threadsUsed} threads ${row.threadedMs.toFixed(1)} ms, x${row.ratio.toFixed(2)} (median pair x${row.pairRatio.toFixed(2)}, ceiling x${row.ceiling.toFixed(2)}; all pairs x${row.allRatio.toFixed(2)}, others median ${row.othersMedian.toFixed(2)} cores), equal ${equal}`);
    rows.push(row);
  }
  return rows;
}

function table(name, res) {
  const lines = [
    `\n${name}: ${res.info.threads} threads (${res.info.threadsReason ?? 'as asked'}), pool start ${res.info.startMs.toFixed(0)} ms`,
    '| case | one thread ms | threaded ms | threads used | one / threaded | median of pair ratios | ceiling: N one-thread engines at once | quiet pairs / pairs | all pairs: one / threaded | same selection |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of res.rows) {
    lines.push(`| ${r.method} ${r.n} x ${r.d}, K = ${r.keep} | ${r.singleMs.toFixed(1)} | ${r.threadedMs.toFixed(1)} | ${r.threadsUsed} | **${r.ratio.toFixed(2)}x** | ${r.pairRatio.toFixed(2)}x | ${r.ceiling.toFixed(2)}x | ${r.quietPairs} / ${r.pairs} | ${r.allRatio.toFixed(2)}x | ${r.equal ? 'yes' : 'NO'} |`);
  }
  return lines.join('\n');
}

if (where.includes('chromium')) {
  const { chromium } = await import('playwright-core');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    if (path === '/') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>threads bench</title>');
      return;
    }
    const file = join(web, normalize(path));
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
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const info = await page.evaluate(
      async ({ cases, threads }) => {
        const { Pruner } = await import('/src/index.js');
        const { threadsBench } = await import('/bench/threads-suite.js');
        window.bench = await threadsBench({ Pruner, cases, threads });
        return { ...window.bench.info, isolated: crossOriginIsolated };
      },
      { cases, threads },
    );
    const rows = await measure((i) => page.evaluate((i) => window.bench.pair(i), i), (s) => console.log(`  chromium: ${s}`));
    const res = { version: browser.version(), info, rows };
    out.results.chromium = res;
    console.log(table(`Chromium ${res.version} (headless, cross-origin isolated page: ${info.isolated})`, res));
  } finally {
    await browser.close();
    server.close();
  }
}

if (where.includes('node')) {
  const { Pruner } = await import('../src/index.js');
  const { threadsBench } = await import('./threads-suite.js');
  const b = await threadsBench({ Pruner, cases, threads });
  const rows = await measure((i) => b.pair(i), (s) => console.log(`  node: ${s}`));
  b.free();
  const res = { version: process.version, info: b.info, rows };
  out.results.node = res;
  console.log(table(`Node.js ${process.version} (worker_threads)`, res));
}

out.loadAfter = load();
console.log(`\nload average before ${out.loadBefore}, after ${out.loadAfter}`);
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify(out, null, 2));
