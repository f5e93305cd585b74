"""Tiny random-weight VLMs in transformers.js's on-disk layout, from configs alone (no hub).

    python scripts/mllm/make_tiny_models.py --out web/test/models [--only llava,qwen2vl]
    python scripts/mllm/make_tiny_models.py --out .cache/mllm/bench --preset bench-qwen2vl

Each model folder gets config.json, generation_config.json, tokenizer.json,
tokenizer_config.json, preprocessor_config.json, processor_config.json (LLaVA) and
onnx/{embed_tokens,vision_encoder,decoder_model_merged}.onnx, the three sessions transformers.js
runs for an image-text-to-text model:

  embed_tokens          input_ids [b, s]                          -> inputs_embeds [b, s, D]
  vision_encoder        LLaVA:    pixel_values [n, 3, H, W]        -> image_features [n, N, D]
                        Qwen2-VL: pixel_values [P, 3*2*p*p], grid_thw [I, 3] -> image_features [sum N, D]
  decoder_model_merged  inputs_embeds, attention_mask, position_ids ([b, s], Qwen2-VL [3, b, s]),
                        past_key_values.{i}.key/value [b, kv_heads, past, head_dim]
                        -> logits [b, s, V], present.{i}.key/value

Weights come from a fixed seed, so the files are reproducible with the pinned versions in
requirements.txt. Every export is checked against the PyTorch module it came from (onnxruntime,
max abs difference) before it is written. Pitfalls handled here (see the notes in the repo's
web/README.md): the KV head count and head size are fixed numbers in the decoder graph
(transformers.js builds the empty first-step cache from them); the Qwen2-VL vision forward is
re-expressed so that grid_thw is a real graph input (HF's forward bakes the grid in when traced);
the text model's keys are copied to the config's top level (transformers v5 nests them in
text_config, transformers.js reads some at the top level for qwen2_vl); the tokenizer is a byte-level
BPE (transformers.js has no WordLevel model).
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

import transformers
from transformers import (
    CLIPVisionConfig,
    DynamicCache,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb_vision

OPSET = 17
SPECIALS_LLAVA = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
SPECIALS_QWEN = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (what ByteLevel pre-tokenization emits)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def write_tokenizer(folder, specials, extra_config):
    """Byte-level BPE: the specials first (ids 0..), then the 256 byte symbols, no merges."""
    vocab = {s: i for i, s in enumerate(specials)}
    for ch in bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tok.save(os.path.join(folder, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096, "clean_up_tokenization_spaces": False}
    cfg.update(extra_config)
    dump(folder, "tokenizer_config.json", cfg)
    return len(vocab)


def dump(folder, name, obj):
    with open(os.path.join(folder, name), "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


class EmbedTokens(nn.Module):
    def __init__(self, emb):
        super().__init__()
        self.emb = emb

    def forward(self, input_ids):
        return self.emb(input_ids)


class Decoder(nn.Module):
    """The language model + head with flat past key/value tensors in and present ones out."""

    def __init__(self, lm, head, text_config, layers):
        super().__init__()
        self.lm, self.head, self.cfg, self.layers = lm, head, text_config, layers

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache(config=self.cfg)
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids, cache=cache, use_cache=True)
        logits = self.head(out.last_hidden_state)
        present = []
        for layer in out.cache.layers:
            present += [layer.keys, layer.values]
        return (logits, *present)


class LlavaVision(nn.Module):
    """CLIP vision tower -> the feature layer without CLS ("default" strategy) -> projector."""

    def __init__(self, model, layer):
        super().__init__()
        self.tower = model.model.vision_tower
        self.proj = model.model.multi_modal_projector
        self.layer = layer

    def forward(self, pixel_values):
        hs = self.tower(pixel_values, output_hidden_states=True, return_dict=True).hidden_states[self.layer]
        return self.proj(hs[:, 1:])


class Qwen2VLVision(nn.Module):
    """Qwen2-VL's vision forward with grid_thw as a real input: the (h, w) rotary positions and the
    per-frame attention blocks are computed from grid_thw with tensor ops (HF's version calls
    .tolist() and splits by Python lengths, which tracing bakes in)."""

    def __init__(self, visual, merge):
        super().__init__()
        self.v = visual
        self.m = merge

    def positions(self, grid_thw, count):
        m = self.m
        t, h, w = grid_thw[:, 0], grid_thw[:, 1], grid_thw[:, 2]
        sizes = t * h * w
        ends = torch.cumsum(sizes, 0)
        starts = ends - sizes
        i = torch.arange(count, dtype=torch.int64)
        img = (i.unsqueeze(1) >= ends.unsqueeze(0)).to(torch.int64).sum(1)
        j = i - starts[img]
        hh, ww = h[img], w[img]
        per = hh * ww
        frame = torch.div(j, per, rounding_mode="floor")
        jj = j - frame * per
        bw = torch.div(ww, m, rounding_mode="floor")
        block = torch.div(jj, m * m, rounding_mode="floor")
        inner = jj - block * (m * m)
        hpos = torch.div(block, bw, rounding_mode="floor") * m + torch.div(inner, m, rounding_mode="floor")
        wpos = (block - torch.div(block, bw, rounding_mode="floor") * bw) * m + (inner - torch.div(inner, m, rounding_mode="floor") * m)
        key = img * 1_000_000 + frame
        return torch.stack([hpos, wpos], dim=-1), key

    def forward(self, pixel_values, grid_thw):
        v = self.v
        x = v.patch_embed(pixel_values)
        pos, key = self.positions(grid_thw, x.shape[0])
        cos, sin = v.rotary_pos_emb(x, pos)
        same = key.unsqueeze(1) == key.unsqueeze(0)
        mask = torch.where(same, torch.zeros((), dtype=x.dtype), torch.full((), torch.finfo(x.dtype).min, dtype=x.dtype))
        for blk in v.blocks:
            a = blk.attn
            hs = blk.norm1(x)
            n = hs.shape[0]
            q, k, vv = a.qkv(hs).reshape(n, 3, a.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
            q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
            q, k, vv = q.transpose(0, 1), k.transpose(0, 1), vv.transpose(0, 1)
            w_ = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * a.scaling + mask, dim=-1)
            o = torch.matmul(w_, vv).transpose(0, 1).reshape(n, -1)
            x = x + a.proj(o)
            x = x + blk.mlp(blk.norm2(x))
        return v.merger(x)


def export(module, args, path, inputs, outputs, dynamic):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def check(module, args, path, names, tol=1e-4):
    """Runs the ONNX file and the module on the same inputs; asserts every output agrees."""
    with torch.no_grad():
        ref = module(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
    for r, g in zip(ref, got):
        diff = float(np.abs(r.numpy() - g).max()) if r.numel() else 0.0
        assert r.shape == g.shape and diff < tol, f"{path}: {tuple(r.shape)} vs {g.shape}, max diff {diff}"
    return got


def kv_names(layers):
    ins, outs, dyn = [], [], {}
    for i in range(layers):
        for kv in ("key", "value"):
            ins.append(f"past_key_values.{i}.{kv}")
            outs.append(f"present.{i}.{kv}")
            dyn[ins[-1]] = {0: "batch", 2: "past"}
            dyn[outs[-1]] = {0: "batch", 2: "total"}
    return ins, outs, dyn


def export_text(folder, model, text_cfg, mrope):
    lm = model.model.language_model
    layers = text_cfg.num_hidden_layers
    kvh = text_cfg.num_key_value_heads
    hd = getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // text_cfg.num_attention_heads
    emb = EmbedTokens(lm.embed_tokens).eval()
    ids = torch.tensor([[5, 6, 7, 8]], dtype=torch.int64)
    p = os.path.join(folder, "onnx", "embed_tokens.onnx")
    export(emb, (ids,), p, ["input_ids"], ["inputs_embeds"], {"input_ids": {0: "batch", 1: "seq"}, "inputs_embeds": {0: "batch", 1: "seq"}})
    check(emb, (ids,), p, ["input_ids"])

    dec = Decoder(lm, model.lm_head, text_cfg, layers).eval()
    b, s, past = 1, 5, 3
    embeds = torch.randn(b, s, text_cfg.hidden_size)
    mask = torch.ones(b, past + s, dtype=torch.int64)
    pos = torch.arange(past, past + s, dtype=torch.int64).unsqueeze(0)
    if mrope:
        pos = pos.unsqueeze(0).expand(3, b, s).contiguous()
    kv = [torch.randn(b, kvh, past, hd) for _ in range(2 * layers)]
    kin, kout, kdyn = kv_names(layers)
    dyn = {"inputs_embeds": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch", 1: "seq"}, **kdyn}
    dyn["position_ids"] = {1: "batch", 2: "seq"} if mrope else {0: "batch", 1: "seq"}
    p = os.path.join(folder, "onnx", "decoder_model_merged.onnx")
    names = ["inputs_embeds", "attention_mask", "position_ids", *kin]
    export(dec, (embeds, mask, pos, *kv), p, names, ["logits", *kout], dyn)
    check(dec, (embeds, mask, pos, *kv), p, names)
    # The first step (empty cache) and a padded batch through the same file.
    e2 = torch.randn(2, 6, text_cfg.hidden_size)
    m2 = torch.tensor([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.int64)
    p2 = (m2.cumsum(-1) - 1).clamp(min=0)
    if mrope:
        p2 = p2.unsqueeze(0).expand(3, 2, 6).contiguous()
    check(dec, (e2, m2, p2, *[torch.zeros(2, kvh, 0, hd) for _ in range(2 * layers)]), p, names)
    return {"layers": layers, "kv_heads": kvh, "head_dim": hd}


def text_config_dict(text_cfg):
    """The text model's keys, for the config's top level (transformers.js reads them there)."""
    d = text_cfg.to_dict()
    return {k: d[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "intermediate_size", "rms_norm_eps", "max_position_embeddings") if k in d and d[k] is not None}


def llava(folder, size):
    torch.manual_seed(0)
    os.makedirs(folder, exist_ok=True)
    vocab = write_tokenizer(folder, SPECIALS_LLAVA, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "padding_side": "left"})
    image_token = SPECIALS_LLAVA.index("<image>")
    s = size
    vision = CLIPVisionConfig(hidden_size=s["v_hidden"], intermediate_size=2 * s["v_hidden"], num_hidden_layers=s["v_layers"], num_attention_heads=s["v_heads"], image_size=s["image"], patch_size=s["patch"], projection_dim=s["v_hidden"])
    text = LlamaConfig(vocab_size=s.get("vocab", vocab), hidden_size=s["hidden"], intermediate_size=s["inter"], num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"], head_dim=s["hidden"] // s["heads"], max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, vision_feature_select_strategy="default", vision_feature_layer=-2, projector_hidden_act="gelu")
    cfg._attn_implementation = "eager"
    model = LlavaForConditionalGeneration(cfg).eval()
    for m in (model, model.model.vision_tower, model.model.language_model):
        m.config._attn_implementation = "eager"
    shape = export_text(folder, model, model.config.text_config, mrope=False)
    python_reference(folder, model, "llava")

    vis = LlavaVision(model, -2).eval()
    px = torch.randn(1, 3, s["image"], s["image"])
    p = os.path.join(folder, "onnx", "vision_encoder.onnx")
    export(vis, (px,), p, ["pixel_values"], ["image_features"], {"pixel_values": {0: "images"}, "image_features": {0: "images"}})
    check(vis, (px,), p, ["pixel_values"])
    check(vis, (torch.randn(2, 3, s["image"], s["image"]),), p, ["pixel_values"])

    c = model.config.to_dict()
    c.update(text_config_dict(model.config.text_config))
    c.update({"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "image_token_index": image_token, "image_token_id": image_token, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3})
    c.pop("_attn_implementation", None)
    c["transformers.js_config"] = {"dtype": "fp32"}
    dump(folder, "config.json", c)
    dump(folder, "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3})
    grid = s["image"] // s["patch"]
    dump(folder, "preprocessor_config.json", {
        "image_processor_type": "CLIPImageProcessor", "processor_class": "LlavaProcessor", "do_resize": True, "size": {"shortest_edge": s["image"]},
        "do_center_crop": True, "crop_size": {"height": s["image"], "width": s["image"]}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "do_convert_rgb": True, "resample": 3,
    })
    dump(folder, "processor_config.json", {"processor_class": "LlavaProcessor", "image_token": "<image>", "patch_size": s["patch"], "num_additional_image_tokens": 0, "vision_feature_select_strategy": "default"})
    return {"image_token_id": image_token, "tokens_per_image": grid * grid, "grid": [grid, grid], **shape}


def qwen2vl(folder, size, v25=False):
    """Qwen2-VL, or with v25 Qwen2.5-VL: its vision tower (RMSNorm, SwiGLU, window attention)
    with a window that holds a whole image and full attention in every block, so the window
    permutation is the identity and the same grid_thw-driven export applies (checked below
    against HF's forward)."""
    torch.manual_seed(2 if v25 else 1)
    os.makedirs(folder, exist_ok=True)
    vocab = write_tokenizer(folder, SPECIALS_QWEN, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None, "padding_side": "left"})
    ids = {t: i for i, t in enumerate(SPECIALS_QWEN)}
    s = size
    hd = s["hidden"] // s["heads"]
    quarter = hd // 2
    section = [quarter - 2 * (quarter // 3), quarter // 3, quarter // 3]
    vision = {"depth": s["v_layers"], "embed_dim": s["v_hidden"], "hidden_size": s["hidden"], "num_heads": s["v_heads"], "mlp_ratio": 2, "patch_size": s["patch"], "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3}
    if v25:
        vision = {"depth": s["v_layers"], "hidden_size": s["v_hidden"], "out_hidden_size": s["hidden"], "intermediate_size": 2 * s["v_hidden"], "num_heads": s["v_heads"], "patch_size": s["patch"], "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3, "window_size": 1 << 16, "fullatt_block_indexes": list(range(s["v_layers"]))}
    cfg = (Qwen2_5_VLConfig if v25 else Qwen2VLConfig)(
        text_config={"vocab_size": s.get("vocab", vocab), "hidden_size": s["hidden"], "intermediate_size": s["inter"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"], "num_key_value_heads": s["kv_heads"], "max_position_embeddings": 4096, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section}, "tie_word_embeddings": False, "bos_token_id": None, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    cfg._attn_implementation = "eager"
    model = (Qwen2_5_VLForConditionalGeneration if v25 else Qwen2VLForConditionalGeneration)(cfg).eval()
    for m in (model, model.model.visual, model.model.language_model):
        m.config._attn_implementation = "eager"
    shape = export_text(folder, model, model.config.text_config, mrope=True)
    python_reference(folder, model, "qwen")

    vis = Qwen2VLVision(model.model.visual, 2).eval()
    patch_dim = 3 * 2 * s["patch"] ** 2
    grid = torch.tensor([[1, 4, 6], [1, 8, 4]], dtype=torch.int64)
    px = torch.randn(int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum()), patch_dim)
    with torch.no_grad():
        ref = model.model.visual(px, grid_thw=grid).pooler_output
        mine = vis(px, grid)
    assert torch.allclose(ref, mine, atol=1e-5), f"re-expressed vision forward differs from HF's: {(ref - mine).abs().max()}"
    p = os.path.join(folder, "onnx", "vision_encoder.onnx")
    gname = "image_grid_thw" if v25 else "grid_thw"  # what transformers.js feeds each class
    export(vis, (px, grid), p, ["pixel_values", gname], ["image_features"], {"pixel_values": {0: "patches"}, gname: {0: "images"}, "image_features": {0: "tokens"}})
    check(vis, (px, grid), p, ["pixel_values", gname])
    g1 = torch.tensor([[1, 6, 6]], dtype=torch.int64)
    check(vis, (torch.randn(36, patch_dim), g1), p, ["pixel_values", gname])
    with torch.no_grad():
        ref1 = model.model.visual(px[:24], grid_thw=grid[:1]).pooler_output
    got1 = ort.InferenceSession(p).run(None, {"pixel_values": px[:24].numpy(), gname: grid[:1].numpy()})[0]
    assert np.abs(ref1.numpy() - got1).max() < 1e-4, "ONNX vision encoder differs from HF's on a single image"

    c = model.config.to_dict()
    c.update(text_config_dict(model.config.text_config))
    c["head_dim"] = hd
    c["text_config"]["head_dim"] = hd
    c.update({"architectures": ["Qwen2_5_VLForConditionalGeneration" if v25 else "Qwen2VLForConditionalGeneration"], "model_type": "qwen2_5_vl" if v25 else "qwen2_vl", "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"], "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]})
    c["rope_scaling"] = {"type": "mrope", "mrope_section": section}
    c.pop("_attn_implementation", None)
    c["transformers.js_config"] = {"dtype": "fp32"}
    dump(folder, "config.json", c)
    dump(folder, "generation_config.json", {"eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]})
    factor = s["patch"] * 2
    dump(folder, "preprocessor_config.json", {
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor" if v25 else "Qwen2VLProcessor", "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": True, "resample": 3, "min_pixels": factor * factor * 4, "max_pixels": factor * factor * 256,
        "patch_size": s["patch"], "temporal_patch_size": 2, "merge_size": 2,
    })
    return {"image_token_id": ids["<|image_pad|>"], "vision_start_token_id": ids["<|vision_start|>"], "patch": s["patch"], **shape}


def quantize(folder):
    """int8 dynamic quantisation of the MatMuls (what transformers.js loads for dtype 'q8')."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in ("embed_tokens", "vision_encoder", "decoder_model_merged"):
        src = os.path.join(folder, "onnx", f"{name}.onnx")
        quantize_dynamic(src, os.path.join(folder, "onnx", f"{name}_quantized.onnx"), weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"])


def python_reference(folder, model, kind, steps=16):
    """reference.json: fixed inputs and what PyTorch transformers computes from them, greedy, for
    the JS tests' cross-runtime check: plain generate() (input_ids + pixel_values), and a pruned run
    (kept = the top K of a fixed score vector, TopK's rule) through a hand-written loop over the
    language model: pruned inputs_embeds, 1-D positions renumbered (LLaVA) or the unpruned M-RoPE
    ids with the pruned columns removed and decoding at max + 1 + s (Qwen2-VL)."""
    torch.manual_seed(7)
    cfg = model.config
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    image_token = cfg.image_token_id
    if kind == "llava":
        grid = None
        side = cfg.vision_config.image_size
        n = (side // cfg.vision_config.patch_size) ** 2
        pixel_values = torch.randn(1, 3, side, side)
        text = "USER: " + "<image>" * n + "\nWhat is in the picture? ASSISTANT:"
        extra = {}
    else:
        grid = torch.tensor([[1, 8, 12]], dtype=torch.int64)
        n = 8 * 12 // 4
        pixel_values = torch.randn(96, 3 * 2 * cfg.vision_config.patch_size ** 2)
        text = "<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>Describe it.<|im_end|>\n<|im_start|>assistant\n"
        extra = {"image_grid_thw": grid}
    ids = torch.tensor([tok.encode(text).ids], dtype=torch.int64)
    assert int((ids == image_token).sum()) == n
    mask = torch.ones_like(ids)
    mm = (ids == image_token).to(torch.int32)
    gen_kwargs = {"mm_token_type_ids": mm} if kind != "llava" else {}
    out = model.generate(input_ids=ids, attention_mask=mask, pixel_values=pixel_values, **extra, **gen_kwargs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False, output_logits=True, return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
    plain_ids = out.sequences[0, ids.shape[1]:].tolist()
    plain_logits = [l[0].tolist() for l in out.logits]

    # Pruned: the features from the (HF-verified) vision wrapper, the kept set by a fixed score.
    vis = LlavaVision(model, -2) if kind == "llava" else Qwen2VLVision(model.model.visual, 2)
    feats = (vis(pixel_values)[0] if kind == "llava" else vis(pixel_values, grid))
    score = torch.tensor([float((i * 7) % n) for i in range(n)])
    k = n // 4
    kept = sorted(torch.argsort(-score, stable=True)[:k].tolist())
    lm, head = model.model.language_model, model.lm_head
    emb = lm.embed_tokens(ids)[0]
    img_cols = torch.nonzero(ids[0] == image_token).flatten().tolist()
    emb[img_cols] = feats
    keep_cols = sorted([j for j in range(ids.shape[1]) if ids[0, j] != image_token] + [img_cols[i] for i in kept])
    x = emb[keep_cols][None]
    if kind == "llava":
        pos = torch.arange(len(keep_cols))[None]
        nxt = len(keep_cols)
    else:
        full, _ = model.model.get_rope_index(ids, mm, image_grid_thw=grid, attention_mask=mask)
        pos = full[:, :, keep_cols]
        nxt = int(full.max()) + 1
    cache = DynamicCache(config=lm.config)
    pruned_ids, pruned_logits = [], []
    total = len(keep_cols)
    for s in range(steps):
        o = lm(inputs_embeds=x, attention_mask=torch.ones(1, total, dtype=torch.int64), position_ids=pos, cache=cache, use_cache=True)
        cache = o.cache
        logits = head(o.last_hidden_state)[0, -1]
        t = int(logits.argmax())
        pruned_ids.append(t)
        pruned_logits.append(logits.tolist())
        x = lm.embed_tokens(torch.tensor([[t]]))
        total += 1
        p = nxt + s
        pos = torch.tensor([[p]]) if kind == "llava" else torch.tensor([[[p]], [[p]], [[p]]])
    r6 = lambda xs: [float(f"{v:.7g}") for v in xs]
    dump(folder, "reference.json", {
        "about": "PyTorch transformers on fixed inputs (scripts/mllm/make_tiny_models.py python_reference): plain generate() and a pruned hand loop, greedy",
        "input_ids": ids[0].tolist(),
        "pixel_values": {"dims": list(pixel_values.shape), "data": r6(pixel_values.flatten().tolist())},
        "image_grid_thw": grid[0].tolist() if grid is not None else None,
        "plain": {"ids": plain_ids, "logits": [r6(l) for l in plain_logits]},
        "pruned": {"score": score.tolist(), "keep": k, "kept": kept, "prompt_length": len(keep_cols), "ids": pruned_ids, "logits": [r6(l) for l in pruned_logits]},
    })


TINY = {
    "llava": (llava, dict(v_hidden=32, v_layers=2, v_heads=2, image=48, patch=8, hidden=64, inter=128, layers=2, heads=4, kv_heads=2)),
    "qwen2vl": (qwen2vl, dict(v_hidden=32, v_layers=2, v_heads=2, patch=4, hidden=64, inter=128, layers=2, heads=4, kv_heads=2)),
    "qwen25vl": (lambda folder, size: qwen2vl(folder, size, v25=True), dict(v_hidden=32, v_layers=2, v_heads=2, patch=4, hidden=64, inter=128, layers=2, heads=4, kv_heads=2)),
}
# Realistically sized (random weights) for latency: Qwen2-VL-2B's language model and vision tower shapes.
BENCH = {
    # SmolVLM-256M-sized as a LLaVA: a ViT-B/16 at 384 px (576 tokens) and SmolLM2-135M's language model.
    "bench-llava": (llava, dict(v_hidden=768, v_layers=12, v_heads=12, image=384, patch=16, hidden=576, inter=1536, layers=30, heads=9, kv_heads=3, vocab=49152)),
    "bench-qwen2vl": (qwen2vl, dict(v_hidden=1280, v_layers=32, v_heads=16, patch=14, hidden=1536, inter=8960, layers=28, heads=12, kv_heads=2, vocab=151936)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="llava,qwen2vl,qwen25vl")
    ap.add_argument("--quantize", action="store_true", help="also write onnx/*_quantized.onnx (int8 weights, transformers.js dtype 'q8')")
    ap.add_argument("--preset", default=None, help="a benchmark-sized model instead: " + ", ".join(BENCH))
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    todo = {a.preset: BENCH[a.preset]} if a.preset else {k: TINY[k] for k in a.only.split(",")}
    meta = {"generator": "scripts/mllm/make_tiny_models.py", "torch": torch.__version__, "transformers": transformers.__version__, "onnxruntime": ort.__version__, "models": {}}
    for name, (fn, size) in todo.items():
        folder = os.path.join(a.out, name)
        shutil.rmtree(folder, ignore_errors=True)
        meta["models"][name] = {"size": size, **fn(folder, size)}
        total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs)
        print(f"{folder}: {total / 1e6:.2f} MB", file=sys.stderr)
        if a.quantize:
            quantize(folder)
    if not a.preset:
        dump(a.out, "models.json", meta)


if __name__ == "__main__":
    main()
