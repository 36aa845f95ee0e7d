"""Reproduce Tandem's shipped draft/target pair from the Python standard library.

Usage (needs the ``train`` extra: ``pip install -e '.[train]'``)::

    python models/train.py                 # full build, ≈30 minutes on 2 cores
    python models/train.py --quick --out /tmp/pair   # smoke build in about a minute

Steps, all with fixed seeds:

1. corpus: every ``.py`` file of this interpreter's standard library (tests, ``site-packages``
   and caches excluded), split *by file* into train and held-out sets by a hash of the path;
2. a 4,096-entry byte-level BPE tokenizer trained with ``tokenizers`` on the train files,
   saved as one ``tokenizer.json`` that both models share;
3. the target (≈6M parameters) and the draft (≈1M) trained on next-token prediction, then the
   draft distilled from the target's logits;
4. both exported to ONNX in the Hugging Face Optimum decoder-with-past layout
   (``input_ids``, ``attention_mask``, ``position_ids``, ``past_key_values.N.key/value`` →
   ``logits``, ``present.N.key/value``), fp32, single file, and checked: ONNX against torch,
   and cached against uncached logits;
5. measured: held-out loss of both, greedy agreement draft/target; written to ``report.json``
   beside the models (``MODEL_CARD.md`` quotes it).

The model is a pre-LayerNorm GPT with learned absolute positions. Attention is an explicit
matmul plus an additive mask whenever a cache or a mask is given (the exporter handles that
reliably); plain causal SDPA is used only during training, where it is the same function.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EOS = "<|endoftext|>"
VOCAB_SIZE = 4096
HELD_OUT_PERCENT = 5


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    n_layer: int
    n_head: int
    d_model: int
    n_ctx: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


TARGET = GPTConfig(vocab_size=VOCAB_SIZE, n_layer=6, n_head=8, d_model=256, n_ctx=512)
DRAFT = GPTConfig(vocab_size=VOCAB_SIZE, n_layer=2, n_head=4, d_model=128, n_ctx=512)

MASK_VALUE = -1e9  # finite, so a fully masked (padding) query row gives a uniform row, not NaN


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.head_dim
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.fc2 = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x, mask_bias, past_k, past_v):
        # x: [b, s, d]; mask_bias: [b, 1, s, p+s] or None; past_k/v: [b, h, p, hd] or None
        b, s, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, s, 3, self.n_head, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # [3, b, h, s, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)  # [b, h, p+s, hd]
            v = torch.cat([past_v, v], dim=2)
        if mask_bias is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
            att = torch.softmax(att + mask_bias, dim=-1)
            y = torch.matmul(att, v)  # [b, h, s, hd]
        y = y.transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)
        for blk in self.blocks:  # GPT-2 scaled init of residual projections
            for lin in (blk.proj, blk.fc2):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_train(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [b, s] → logits [b, s, vocab] (no cache, causal)."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)[None]
        for blk in self.blocks:
            x, _, _ = blk(x, None, None, None)
        return self.ln_f(x) @ self.wte.weight.T  # tied output embedding

    def forward(self, input_ids, attention_mask, position_ids, past_key_values):
        """Optimum decoder-with-past contract.

        input_ids [b, s] int64; attention_mask [b, p+s] int64 (1 = attend); position_ids [b, s]
        int64; past_key_values: flat tuple (k0, v0, k1, v1, ...) each [b, h, p, hd].
        Returns (logits [b, s, vocab], k0', v0', ...) with presents [b, h, p+s, hd].
        """
        s = input_ids.shape[1]
        p = past_key_values[0].shape[2]
        q_pos = torch.arange(s, device=input_ids.device) + p  # absolute slot of each query
        k_pos = torch.arange(attention_mask.shape[1], device=input_ids.device)
        allowed = (k_pos[None, :] <= q_pos[:, None])[None, None]  # [1, 1, s, p+s]
        allowed = allowed & (attention_mask[:, None, None, :] > 0)  # [b, 1, s, p+s]
        mask_bias = torch.where(allowed, 0.0, MASK_VALUE)
        x = self.wte(input_ids) + self.wpe(position_ids)
        presents = []
        for i, blk in enumerate(self.blocks):
            x, k, v = blk(x, mask_bias, past_key_values[2 * i], past_key_values[2 * i + 1])
            presents += [k, v]
        logits = self.ln_f(x) @ self.wte.weight.T
        return (logits, *presents)


# ---------------------------------------------------------------- corpus and tokenizer


def stdlib_files() -> list[Path]:
    """Every .py file of the running interpreter's standard library, tests excluded, sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "__pycache__", "test", "tests", "idle_test"}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        if any(p in skip or p.startswith("test") for p in rel):
            dirnames[:] = []
            continue
        out += [Path(dirpath) / f for f in filenames if f.endswith(".py") and not f.startswith("test_")]
    return sorted(out)


def is_held_out(path: Path, root: Path) -> bool:
    digest = hashlib.sha256(str(path.relative_to(root)).encode()).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def train_tokenizer(texts: list[str], out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(out))
    return tok


def encode_stream(tok, texts: list[str]) -> np.ndarray:
    eos = tok.token_to_id(EOS)
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids += enc.ids
        ids.append(eos)
    return np.asarray(ids, dtype=np.int64)


# ---------------------------------------------------------------- training


def batches(data: np.ndarray, n_ctx: int, batch: int, gen: torch.Generator):
    while True:
        starts = torch.randint(0, len(data) - n_ctx - 1, (batch,), generator=gen).numpy()
        chunk = np.stack([data[s : s + n_ctx + 1] for s in starts])
        t = torch.from_numpy(chunk)
        yield t[:, :-1], t[:, 1:]


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train(
    model: GPT,
    data: np.ndarray,
    steps: int,
    batch: int,
    peak_lr: float,
    seed: int,
    label: str,
    teacher: GPT | None = None,
) -> None:
    """Next-token training, or distillation (KL to the teacher's distribution) when a teacher is given."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    t0 = time.time()
    it = batches(data, model.cfg.n_ctx, batch, gen)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak_lr, warmup=max(1, steps // 20))
        x, y = next(it)
        logits = model.forward_train(x)
        if teacher is None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        else:
            with torch.no_grad():
                t_logp = F.log_softmax(teacher.forward_train(x), dim=-1)
            logp = F.log_softmax(logits, dim=-1)
            loss = F.kl_div(
                logp.reshape(-1, logp.shape[-1]),
                t_logp.reshape(-1, logp.shape[-1]),
                log_target=True,
                reduction="batchmean",
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            el = time.time() - t0
            eta = el / (step + 1) * (steps - step - 1)
            print(
                f"[{label}] step {step + 1}/{steps} loss {loss.item():.3f} "
                f"elapsed {el / 60:.1f} min eta {eta / 60:.1f} min",
                flush=True,
            )
    model.eval()


def eval_windows(data: np.ndarray, n_ctx: int, max_windows: int) -> torch.Tensor:
    n = min(max_windows, (len(data) - 1) // (n_ctx + 1))
    return torch.from_numpy(np.stack([data[i * (n_ctx + 1) : (i + 1) * (n_ctx + 1)] for i in range(n)]))


@torch.no_grad()
def held_out_loss(model: GPT, windows: torch.Tensor) -> float:
    losses = []
    for w in windows.split(8):
        logits = model.forward_train(w[:, :-1])
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1)).item())
    return float(np.mean(losses))


@torch.no_grad()
def greedy_agreement(draft: GPT, target: GPT, windows: torch.Tensor) -> float:
    same = total = 0
    for w in windows.split(8):
        a = draft.forward_train(w[:, :-1]).argmax(-1)
        b = target.forward_train(w[:, :-1]).argmax(-1)
        same += (a == b).sum().item()
        total += a.numel()
    return same / total


# ---------------------------------------------------------------- export and checks


def export_onnx(model: GPT, path: Path) -> None:
    """Export in the Optimum decoder-with-past layout, dynamic in batch, new tokens and past."""
    cfg = model.cfg
    b, s, p = 2, 3, 5  # sizes other than 0/1 so the exporter keeps them symbolic
    ids = torch.randint(0, cfg.vocab_size, (b, s))
    mask = torch.ones(b, p + s, dtype=torch.int64)
    pos = torch.arange(p, p + s).expand(b, s).contiguous()
    past = tuple(torch.randn(b, cfg.n_head, p, cfg.head_dim) for _ in range(2 * cfg.n_layer))
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    for i in range(cfg.n_layer):
        in_names += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        out_names += [f"present.{i}.key", f"present.{i}.value"]
    batch = torch.export.Dim("batch", max=1024)
    seq = torch.export.Dim("sequence_length", max=cfg.n_ctx)
    past_len = torch.export.Dim("past_sequence_length", max=cfg.n_ctx)
    total = torch.export.Dim("total_sequence_length", max=2 * cfg.n_ctx)
    dyn = {
        "input_ids": {0: batch, 1: seq},
        "attention_mask": {0: batch, 1: total},
        "position_ids": {0: batch, 1: seq},
        "past_key_values": tuple({0: batch, 2: past_len} for _ in range(2 * cfg.n_layer)),
    }
    model.eval()
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


def check_onnx(model: GPT, path: Path, seed: int) -> dict:
    """ONNX vs torch, and cached vs uncached, on a random sequence; returns max abs differences."""
    import onnxruntime as ort

    cfg = model.cfg
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (1, 40), generator=gen)

    def run(new_ids: np.ndarray, past: list[np.ndarray], p: int):
        s = new_ids.shape[1]
        feeds = {
            "input_ids": new_ids,
            "attention_mask": np.ones((1, p + s), dtype=np.int64),
            "position_ids": np.arange(p, p + s, dtype=np.int64)[None],
        }
        for i in range(cfg.n_layer):
            feeds[f"past_key_values.{i}.key"] = past[2 * i]
            feeds[f"past_key_values.{i}.value"] = past[2 * i + 1]
        out = sess.run(None, feeds)
        return out[0], out[1:]

    empty = [np.zeros((1, cfg.n_head, 0, cfg.head_dim), np.float32) for _ in range(2 * cfg.n_layer)]
    full, _ = run(ids.numpy(), empty, 0)
    with torch.no_grad():
        ref = model.forward_train(ids).numpy()
    # prefill 30, then 4 single steps, then a 6-token "verify" pass
    a, past = run(ids[:, :30].numpy(), empty, 0)
    pieces = [a]
    for t in range(30, 34):
        a, past = run(ids[:, t : t + 1].numpy(), past, t)
        pieces.append(a)
    a, past = run(ids[:, 34:40].numpy(), past, 34)
    pieces.append(a)
    cached = np.concatenate(pieces, axis=1)
    return {
        "onnx_vs_torch_max_abs": float(np.abs(full - ref).max()),
        "cached_vs_uncached_max_abs": float(np.abs(cached - full).max()),
        "cached_argmax_equal": bool((cached.argmax(-1) == full.argmax(-1)).all()),
    }


def write_config(cfg: GPTConfig, tok, path: Path) -> None:
    eos = tok.token_to_id(EOS)
    path.write_text(
        json.dumps(
            {
                "architectures": ["TandemGPT"],
                "model_type": "tandem-gpt",
                "vocab_size": cfg.vocab_size,
                "num_hidden_layers": cfg.n_layer,
                "num_attention_heads": cfg.n_head,
                "num_key_value_heads": cfg.n_head,
                "hidden_size": cfg.d_model,
                "head_dim": cfg.head_dim,
                "max_position_embeddings": cfg.n_ctx,
                "bos_token_id": eos,
                "eos_token_id": eos,
                "torch_dtype": "float32",
            },
            indent=2,
        )
        + "\n"
    )


def write_model_card(report: dict, out: Path) -> Path:
    """Write MODEL_CARD.md beside the model folder from the measured report."""
    t, d = report["target"], report["draft"]
    before = report["draft_before_distill"]
    tm = report["timings"]
    rel = out.name
    lines = [
        "# Model card: the shipped `stdlib` draft/target pair",
        "",
        "Two small GPT-style decoders that share one tokenizer, trained from scratch on the Python",
        "standard library's own source files so that every machine can rebuild them without a download.",
        "They exist to exercise Tandem end to end — device drafting, cloud verification, exactness — on",
        "real models in CI. Their text is code-like and often repetitive; they are not assistants.",
        "",
        "| | target | draft |",
        "| --- | --- | --- |",
        f"| parameters | {t['parameters']:,} | {d['parameters']:,} |",
        f"| layers × width (heads) | {t['layers']} × {t['width']} ({t['heads']}) "
        f"| {d['layers']} × {d['width']} ({d['heads']}) |",
        f"| context | {t['context']} tokens | {d['context']} tokens |",
        f"| held-out loss (nats/token) | {t['held_out_loss']:.3f} | {d['held_out_loss']:.3f} "
        f"(before distillation {before['held_out_loss']:.3f}) |",
        f"| ONNX file | `{rel}/target/model.onnx`, fp32, {t['onnx_bytes'] / 1e6:.1f} MB | "
        f"`{rel}/draft/model.onnx`, fp32, {d['onnx_bytes'] / 1e6:.1f} MB |",
        f"| ONNX vs torch, max abs logit diff | {t['onnx_vs_torch_max_abs']:.1e} "
        f"| {d['onnx_vs_torch_max_abs']:.1e} |",
        f"| cached vs uncached, max abs logit diff | {t['cached_vs_uncached_max_abs']:.1e} | "
        f"{d['cached_vs_uncached_max_abs']:.1e} |",
        f"| training | {report['steps']['target']} steps, {tm['target_train_s'] / 60:.0f} min | "
        f"{report['steps']['draft']} steps ({tm['draft_train_s'] / 60:.0f} min) "
        f"+ {report['steps']['distill']} distillation steps ({tm['distill_s'] / 60:.0f} min) |",
        "",
        "**Greedy agreement** (draft argmax = target argmax, per position, on "
        f"{report['held_out_eval_tokens']:,} held-out tokens): **{report['greedy_agreement']:.3f}** "
        "after distillation, "
        f"{before['greedy_agreement']:.3f} before.",
        "",
        "## Data",
        "",
        f"- Corpus: the {report['corpus_files']} `.py` files of the Python {report['python']} standard "
        "library (tests, `site-packages` and caches excluded), split *by file* into "
        f"{report['train_files']} training and {report['held_out_files']} held-out files "
        "(a hash of each path).",
        f"- Tokenizer: byte-level BPE, {report['vocab_size']:,} entries, trained with the `tokenizers` "
        f"library on the training files ({report['chars_per_token']:.2f} characters per token); "
        f"`{rel}/tokenizer.json`. `<|endoftext|>` (id 0) separates files and is the end-of-sequence token.",
        f"- {report['train_tokens']:,} training tokens, {report['held_out_tokens']:,} held-out tokens.",
        "",
        "## Training",
        "",
        f"Pre-LayerNorm GPT, learned absolute positions, GELU MLP (4× width), tied input/output embeddings. "
        f"AdamW (β = 0.9/0.95, weight decay 0.1), warm-up then cosine decay, batches of "
        f"{report['steps']['batch']} × {report['steps']['context']} tokens, gradient clipping at 1.0, seed "
        f"{report['seed']}. The draft is first trained on the data, then distilled from the target "
        "(KL divergence to the target's next-token distribution), which raises greedy agreement — what "
        "speculative decoding's acceptance rate rests on.",
        "",
        "## Format",
        "",
        "Hugging Face Optimum decoder-with-past layout: inputs `input_ids` [batch, seq], `attention_mask` "
        "[batch, past + seq], `position_ids` [batch, seq], `past_key_values.N.key/value` "
        "[batch, heads, past, head_dim]; outputs `logits` [batch, seq, vocab] and `present.N.key/value`. "
        "All of batch, seq and past are dynamic; `config.json` beside each model gives the context limit "
        "and special tokens. Attention is an explicit matmul plus an additive mask (left padding works via "
        "`attention_mask` and `position_ids`).",
        "",
        "Both models are fp32. The target must stay fp32 (or fp16): dynamic int8 quantization computes its "
        "scales from every token in a call, so a k-token verify pass no longer matches k single steps and "
        "greedy speculative output would differ from the target's own.",
        "",
        "## Rebuild",
        "",
        "```bash",
        ".venv/bin/pip install -e '.[train]'",
        ".venv/bin/python models/train.py          "
        "# writes runtime/shipped/stdlib/, models/stdlib/report.json and this card",
        "```",
        "",
        f"Measured here: {tm['total_s'] / 60:.0f} minutes of wall time on 2 CPU cores shared with other work "
        f"(torch {report['torch']}). Seeds are fixed; "
        "the result depends on the interpreter's standard library (a different Python version gives a "
        "different corpus).",
        "",
        "The `smollm2` profile (SmolLM2-135M-Instruct and the draft distilled for it) has its own card: "
        "[`smollm2_draft/MODEL_CARD.md`](smollm2_draft/MODEL_CARD.md).",
        "",
    ]
    path = out.parent / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    ap.add_argument(
        "--out",
        type=Path,
        default=here.parent / "runtime" / "shipped" / "stdlib",
        help="where the tokenizer and the two models go (default: the package data the profile ships)",
    )
    ap.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where report.json goes, MODEL_CARD.md beside this folder (default: models/stdlib "
        "for the shipped pair, else --out)",
    )
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target-steps", type=int, default=1000)
    ap.add_argument("--draft-steps", type=int, default=1000)
    ap.add_argument("--distill-steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="tiny step counts, for a smoke test of the pipeline")
    ap.add_argument(
        "--card-only", action="store_true", help="rewrite MODEL_CARD.md from an existing report.json"
    )
    args = ap.parse_args(argv)
    if args.report_dir is None:
        args.report_dir = here / "stdlib" if args.out == ap.get_default("out") else args.out
    if args.card_only:
        print(write_model_card(json.loads((args.report_dir / "report.json").read_text()), args.report_dir))
        return 0
    if args.quick:
        args.target_steps, args.draft_steps, args.distill_steps = 3, 3, 2

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    files = stdlib_files()
    root = Path(sysconfig.get_paths()["stdlib"])
    train_txt, held_txt = [], []
    for f in files:
        (held_txt if is_held_out(f, root) else train_txt).append(
            f.read_text(encoding="utf-8", errors="replace")
        )
    print(
        f"corpus: {len(files)} files ({len(train_txt)} train, {len(held_txt)} held out) from {root}",
        flush=True,
    )

    t0 = time.time()
    tok = train_tokenizer(train_txt, args.out / "tokenizer.json")
    train_ids = encode_stream(tok, train_txt)
    held_ids = encode_stream(tok, held_txt)
    chars = sum(len(t) for t in train_txt)
    print(
        f"tokenizer: {tok.get_vocab_size()} entries in {time.time() - t0:.1f}s; "
        f"{len(train_ids):,} train tokens, {len(held_ids):,} held out, "
        f"{chars / len(train_ids):.2f} chars/token",
        flush=True,
    )
    windows = eval_windows(held_ids, TARGET.n_ctx, 64)

    report: dict = {
        "seed": args.seed,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "corpus_files": len(files),
        "train_files": len(train_txt),
        "held_out_files": len(held_txt),
        "train_tokens": len(train_ids),
        "held_out_tokens": len(held_ids),
        "chars_per_token": round(chars / len(train_ids), 3),
        "vocab_size": tok.get_vocab_size(),
    }

    timings = {}
    target = GPT(TARGET)
    t0 = time.time()
    train(target, train_ids, args.target_steps, args.batch, 2e-3, args.seed + 1, "target")
    timings["target_train_s"] = round(time.time() - t0, 1)

    draft = GPT(DRAFT)
    t0 = time.time()
    train(draft, train_ids, args.draft_steps, args.batch, 3e-3, args.seed + 2, "draft")
    timings["draft_train_s"] = round(time.time() - t0, 1)
    report["draft_before_distill"] = {
        "held_out_loss": round(held_out_loss(draft, windows), 4),
        "greedy_agreement": round(greedy_agreement(draft, target, windows), 4),
    }
    print(f"draft before distillation: {report['draft_before_distill']}", flush=True)

    t0 = time.time()
    train(draft, train_ids, args.distill_steps, args.batch, 1e-3, args.seed + 3, "distill", teacher=target)
    timings["distill_s"] = round(time.time() - t0, 1)

    for name, m in (("target", target), ("draft", draft)):
        d = args.out / name
        d.mkdir(exist_ok=True)
        print(f"exporting {name} ...", flush=True)
        export_onnx(m, d / "model.onnx")
        write_config(m.cfg, tok, d / "config.json")
        checks = check_onnx(m, d / "model.onnx", args.seed)
        print(f"{name} export checks: {checks}", flush=True)
        if checks["cached_vs_uncached_max_abs"] > 1e-3 or not checks["cached_argmax_equal"]:
            raise SystemExit(f"{name}: cached and uncached logits disagree: {checks}")
        report[name] = {
            "parameters": m.n_params(),
            "layers": m.cfg.n_layer,
            "width": m.cfg.d_model,
            "heads": m.cfg.n_head,
            "context": m.cfg.n_ctx,
            "held_out_loss": round(held_out_loss(m, windows), 4),
            "onnx_bytes": (d / "model.onnx").stat().st_size,
            **checks,
        }
    report["greedy_agreement"] = round(greedy_agreement(draft, target, windows), 4)
    report["held_out_eval_tokens"] = int(windows[:, 1:].numel())
    report["steps"] = {
        "target": args.target_steps,
        "draft": args.draft_steps,
        "distill": args.distill_steps,
        "batch": args.batch,
        "context": TARGET.n_ctx,
    }
    report["timings"] = timings | {"total_s": round(time.time() - t_start, 1)}
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if not args.quick:
        print(f"model card: {write_model_card(report, args.report_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
