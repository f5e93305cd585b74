"""Time to first token of the benchmark VLM natively: onnxruntime (PyPI) on the CPU, the same
ONNX sessions transformers.js runs, with tokenprune's native CPU engine (the `tokenprune select`
binary) pruning the image tokens in between. See BENCHMARKS.md "Time to first token in a VLM".

    bash scripts/mllm/setup.sh --preset bench-llava --quantize --out .cache/mllm/bench
    cargo build --release
    .cache/mllm-venv/bin/python scripts/mllm/bench_native.py [--model .cache/mllm/bench/bench-llava] [--dtype q8|fp32]

TTFT = vision encoder + prune + embed_tokens + LLM prefill (the first token's logits), with the
pruned prompt built as the adapter builds it (image placeholders dropped, kept rows scattered,
1-D positions renumbered). Medians of --repeats runs after one warm-up.
"""

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=".cache/mllm/bench/bench-llava")
    ap.add_argument("--dtype", default="q8", choices=["q8", "fp32"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--text-tokens", type=int, default=40, help="text tokens around the image")
    ap.add_argument("--tokenprune", default="target/release/tokenprune")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    cfg = json.load(open(os.path.join(a.model, "config.json")))
    suffix = "_quantized" if a.dtype == "q8" else ""
    so = ort.SessionOptions()
    sess = {n: ort.InferenceSession(os.path.join(a.model, "onnx", f"{n}{suffix}.onnx"), so, providers=["CPUExecutionProvider"]) for n in ("embed_tokens", "vision_encoder", "decoder_model_merged")}
    text = cfg.get("text_config", cfg)
    layers, kvh = text["num_hidden_layers"], text["num_key_value_heads"]
    hd = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    side = cfg["vision_config"]["image_size"]
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((1, 3, side, side), dtype=np.float32)
    image_token = cfg["image_token_index"]
    T = a.text_tokens
    past = {f"past_key_values.{i}.{kv}": np.zeros((1, kvh, 0, hd), np.float32) for i in range(layers) for kv in ("key", "value")}

    def ttft(keep):
        t0 = time.perf_counter()
        feats = sess["vision_encoder"].run(None, {"pixel_values": pixels})[0][0]  # [N, D]
        t1 = time.perf_counter()
        n, d = feats.shape
        prune_ms = 0.0
        kept = np.arange(n)
        if keep < 1:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "f.npy")
                np.save(path, feats)
                out = subprocess.run([a.tokenprune, "select", "--input", path, "--method", "divprune", "--keep-ratio", str(keep), "--backend", "cpu"], check=True, capture_output=True, text=True)
                r = json.loads(out.stdout)
                prune_ms = r["elapsed_ms"]
                kept = np.array(r["kept"])
        t2 = time.perf_counter()
        ids = np.array([[1] + [image_token] * n + list(range(10, 10 + T - 1))], dtype=np.int64)
        emb = sess["embed_tokens"].run(None, {"input_ids": ids})[0]
        img = np.nonzero(ids[0] == image_token)[0]
        keep_cols = np.concatenate([np.nonzero(ids[0] != image_token)[0], img[kept]])
        keep_cols.sort()
        emb[0, img] = feats
        pruned = emb[:, keep_cols]
        L = pruned.shape[1]
        t3 = time.perf_counter()
        feeds = {"inputs_embeds": pruned, "attention_mask": np.ones((1, L), np.int64), "position_ids": np.arange(L, dtype=np.int64)[None], **past}
        sess["decoder_model_merged"].run(["logits"], feeds)
        t4 = time.perf_counter()
        return {"keep": keep, "n": n, "k": len(kept), "prompt": L, "vision_ms": (t1 - t0) * 1e3, "prune_ms": prune_ms, "prune_wall_ms": (t2 - t1) * 1e3, "prefill_ms": (t4 - t3) * 1e3, "ttft_ms": (t4 - t0) * 1e3 - (t2 - t1) * 1e3 + prune_ms}

    rows = []
    for keep in (1.0, 0.5, 0.25, 0.1):
        runs = [ttft(keep) for _ in range(a.repeats + 1)][1:]
        med = {k: float(np.median([r[k] for r in runs])) for k in ("vision_ms", "prune_ms", "prefill_ms", "ttft_ms")}
        rows.append({**runs[0], **med})
    base = rows[0]["prefill_ms"]
    print(f"machine: {os.cpu_count()} x {cpu_name()}; onnxruntime {ort.__version__} CPU ({a.dtype}), {a.model}, medians of {a.repeats}")
    print("| keep | image tokens | prompt into the LLM | time to first token ms | vision encoder ms | LLM prefill ms | prune ms | prefill saved ms | prune / saved |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        saved = base - r["prefill_ms"]
        tail = f"{r['prune_ms']:.2f} | {saved:.0f} | {100 * r['prune_ms'] / saved:.2f} %" if r["keep"] < 1 else "- | - | -"
        print(f"| {r['keep'] * 100:.0f}% | {r['k']} | {r['prompt']} | {r['ttft_ms']:.0f} | {r['vision_ms']:.0f} | {r['prefill_ms']:.0f} | {tail} |")
    if a.json:
        json.dump({"machine": cpu_name(), "onnxruntime": ort.__version__, "dtype": a.dtype, "rows": rows}, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
