#!/usr/bin/env python3
"""Reference timings for `tokenprune bench`: the upstream selector loops in PyTorch, and the
machine's SGEMM through NumPy, on the exact features the bench times (same run, same machine).

    python scripts/bench/torch_loops.py --features F.f32 --n N --d D --k K \
        [--importance I.f32] [--repeats R] [--threads T]

`tokenprune bench` runs this script itself when Python with torch is importable (see
BENCHMARKS.md). The features file is raw little-endian float32, C order [N, D]; the importance
file is raw float32 [N]. Prints one JSON object per line: first {"name": "env"} with the NumPy
and torch versions, then per entry {"name", "ms" (median), "min_ms", "order" (the selection,
where the entry selects)}.

The loops are written from SPEC.md and follow the upstream code's structure, in float32:
- divprune_authors: vbdi/divprune `DivPrune`: distance matrix 1 - U U^T, seed by the second
  smallest of each column (topk 2), then at every step a gather of all chosen rows and a column
  minimum over them (O(K^2 N) in total).
- divprune_angelslim: Tencent/AngelSlim `divprune`: the same matrix with an infinite diagonal,
  seed by row minima, then a running minimum updated with one column per step.
- idpruner_mmr: Tencent/AngelSlim `idpruner` (parallel_k = 1, lambda = 0.5): cosine matrix of
  x / (|x| + 1e-8), importance scaled to [0, 1], MMR rounds with topk and a running maximum.
- torch_gram: normalise + U U^T alone (the first stage of either DivPrune loop).
- numpy_sgemm: NumPy's A B^T with B a copy of A (a full N x N x D SGEMM; NumPy would route
  A A^T to SYRK), and numpy_syrk: A A^T (NumPy's symmetric rank-k path).
"""
import argparse
import json
import statistics
import time


def timed(fn, repeats):
    out = fn()  # warm-up
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1e3)
    return statistics.median(runs), min(runs), out


def divprune_authors(torch, x, k):
    norm = x / x.norm(dim=1, keepdim=True)
    dist = 1.0 - torch.mm(norm, norm.t())
    s = torch.empty(k, dtype=torch.long)
    for i in range(k):
        if i == 0:
            scores = torch.topk(dist, 2, dim=0, largest=False).values[1, :]
        else:
            m2 = torch.index_select(dist, 0, s[:i])
            scores = torch.min(m2, dim=0).values
        s[i] = torch.argmax(scores)
    return s


def divprune_angelslim(torch, x, k):
    norm = torch.nn.functional.normalize(x, p=2, dim=1)
    dist = 1.0 - torch.mm(norm, norm.t())
    dist.fill_diagonal_(float("inf"))
    kept = torch.empty(k, dtype=torch.long)
    kept[0] = torch.argmax(torch.min(dist, dim=1).values)
    min_d = dist[:, kept[0]].clone()
    for t in range(1, k):
        scores = min_d.clone()
        scores[kept[:t]] = -1.0
        kept[t] = torch.argmax(scores)
        min_d = torch.minimum(min_d, dist[:, kept[t]])
    return kept


def idpruner_mmr(torch, x, w, k, lam=0.5):
    v = x / (x.norm(dim=-1, keepdim=True) + 1e-8)
    sim = torch.matmul(v, v.t())
    imp = (w - w.min()) / (w.max() - w.min() + 1e-6)
    n = x.shape[0]
    selected = []
    candidates = torch.ones(n, dtype=torch.bool)
    max_sim = torch.full((n,), -2.0)
    while len(selected) < k:
        if not selected:
            score = imp.clone()
        else:
            score = lam * imp - (1 - lam) * max_sim
        score[~candidates] = -float("inf")
        _, best = torch.topk(score, k=1)
        selected.extend(best.tolist())
        candidates[best] = False
        max_sim = torch.maximum(max_sim, sim[:, best].max(dim=1).values)
    return torch.tensor(selected)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", required=True)
    ap.add_argument("--importance")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--only", default="", help="comma list of entries to run (default: all)")
    a = ap.parse_args()

    import numpy as np

    x_np = np.fromfile(a.features, dtype="<f4").reshape(a.n, a.d)
    try:
        import torch
    except ImportError:
        torch = None
    env = {"name": "env", "numpy": np.__version__}
    if torch is not None:
        env["torch"] = torch.__version__
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        env["torch_threads"] = torch.get_num_threads()
    print(json.dumps(env), flush=True)
    only = set(filter(None, a.only.split(",")))

    def emit(name, med, mn, order=None):
        rec = {"name": name, "ms": med, "min_ms": mn}
        if order is not None:
            rec["order"] = [int(i) for i in order]
        print(json.dumps(rec), flush=True)

    def want(name):
        return not only or name in only

    if want("numpy_sgemm"):
        y_np = x_np.copy()
        med, mn, _ = timed(lambda: x_np @ y_np.T, a.repeats)
        emit("numpy_sgemm", med, mn)
    if want("numpy_syrk"):
        med, mn, _ = timed(lambda: x_np @ x_np.T, a.repeats)
        emit("numpy_syrk", med, mn)

    if torch is None:
        return
    x = torch.from_numpy(x_np)
    with torch.inference_mode():
        if want("torch_sgemm"):
            med, mn, _ = timed(lambda: torch.mm(x, x.t()), a.repeats)
            emit("torch_sgemm", med, mn)
        if want("torch_gram"):
            med, mn, _ = timed(
                lambda: torch.mm(*(lambda u: (u, u.t()))(x / x.norm(dim=1, keepdim=True))),
                a.repeats,
            )
            emit("torch_gram", med, mn)
        for name, fn in [
            ("divprune_authors", lambda: divprune_authors(torch, x, a.k)),
            ("divprune_angelslim", lambda: divprune_angelslim(torch, x, a.k)),
        ]:
            if want(name):
                med, mn, out = timed(fn, a.repeats)
                emit(name, med, mn, out.tolist())
        if a.importance and want("idpruner_mmr"):
            w = torch.from_numpy(np.fromfile(a.importance, dtype="<f4"))
            med, mn, out = timed(lambda: idpruner_mmr(torch, x, w, a.k), a.repeats)
            emit("idpruner_mmr", med, mn, out.tolist())


if __name__ == "__main__":
    main()
