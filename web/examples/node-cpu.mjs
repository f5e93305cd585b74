// Prune on the CPU backend from Node (no WebGPU there): node web/examples/node-cpu.mjs
// From npm: import { Pruner } from 'tokenprune';
import { Pruner } from '../src/index.js';

const n = 576, d = 1024;
const features = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.001 + (i % d) * 0.37));
const importance = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.05));

const pruner = await Pruner.create({ backends: ['cpu'] });
for (const method of ['divprune', 'idpruner']) {
  const r = await pruner.prune(features, { n, d, method, importance, pruneRatio: 0.9 });
  console.log(`${method}: kept ${r.kept.length}/${n} on ${r.backend} in ${r.elapsedMs.toFixed(1)} ms; first picks ${[...r.order.slice(0, 5)]}`);
}
const batch = await pruner.pruneBatch([0, 1, 2].map(() => ({ features, n, d, keep: 64 })));
console.log(`batch of ${batch.length}: ${batch.map((r) => r.kept.length)}`);
pruner.free();
