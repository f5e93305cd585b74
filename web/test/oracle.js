// The test oracle shared by the Chromium suite (test/suite.js) and the Node suites: SPEC's
// f64 tie-aware replay of a DivPrune / IDPruner selection order.

function normalise(x, n, d, idpruner) {
  const u = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    const norm = Math.sqrt(s);
    const den = idpruner ? norm + 1e-8 : Math.max(norm, 1e-12);
    for (let k = 0; k < d; k++) u[i * d + k] = x[i * d + k] / den;
  }
  return u;
}

function gram(u, n, d) {
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let v = 0;
      for (let k = 0; k < d; k++) v += u[i * d + k] * u[j * d + k];
      s[i * n + j] = v;
      s[j * n + i] = v;
    }
  }
  return s;
}

function bestUnchosen(vals, chosen) {
  let b = -Infinity;
  for (let j = 0; j < vals.length; j++) if (!chosen[j] && vals[j] > b) b = vals[j];
  return b;
}

/** SPEC tie-aware replay in f64: the largest deficit over all steps. */
export function replay(x, n, d, order, method, imp, lambda, parallelK) {
  if (new Set(order).size !== order.length) return Infinity;
  const u = normalise(x, n, d, method === 'idpruner');
  const s = gram(u, n, d);
  const chosen = new Uint8Array(n);
  let deficit = 0;
  if (method === 'divprune') {
    const nn = new Float64Array(n).fill(Infinity);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) nn[i] = Math.min(nn[i], 1 - s[i * n + j]);
    deficit = Math.max(deficit, bestUnchosen(nn, chosen) - nn[order[0]]);
    const m = new Float64Array(n).fill(Infinity);
    for (let t = 1; t < order.length; t++) {
      const p = order[t - 1];
      chosen[p] = 1;
      for (let j = 0; j < n; j++) m[j] = Math.min(m[j], 1 - s[p * n + j]);
      deficit = Math.max(deficit, bestUnchosen(m, chosen) - m[order[t]]);
    }
    return deficit;
  }
  let lo = Infinity, hi = -Infinity;
  for (const w of imp) { lo = Math.min(lo, w); hi = Math.max(hi, w); }
  const im = Float64Array.from(imp, (w) => (w - lo) / (hi - lo + 1e-6));
  const maxSim = new Float64Array(n).fill(-2);
  for (let r = 0; r * parallelK < order.length; r++) {
    const round = order.slice(r * parallelK, (r + 1) * parallelK);
    const score = Float64Array.from(im, (v, j) => (r === 0 ? v : lambda * v - (1 - lambda) * maxSim[j]));
    for (const c of round) {
      deficit = Math.max(deficit, bestUnchosen(score, chosen) - score[c]);
      chosen[c] = 1;
    }
    for (const c of round) for (let j = 0; j < n; j++) maxSim[j] = Math.max(maxSim[j], s[c * n + j]);
  }
  return deficit;
}

/** Element-wise equality of two array-likes. */
export const same = (a, b) => a.length === b.length && Array.prototype.every.call(a, (v, i) => v === b[i]);
