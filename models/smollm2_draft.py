"""Distil the smollm2 profile's draft from the SmolLM2-135M-Instruct target.

    .venv/bin/python models/smollm2_draft.py train [--cache DIR]    # ≈1 h on 2 cores; writes the weights
    .venv/bin/python models/smollm2_draft.py export [--cache DIR]   # the draft ONNX from the weights

The draft shares the target's tokenizer, its 576-wide token embedding (tied with the output head)
and its final norm's shape; only its few transformer layers are its own. Those layers' weights are
small and committed (`models/smollm2_draft/layers.npz`, fp16); `export` (run by `tandem models build
smollm2`) combines them with the target's embedding from the models cache and writes
<cache>/smollm2/draft/{model.onnx, config.json}, so nothing large is committed or downloaded.

`train` is sequence-level distillation, which trains exactly what speculative decoding's acceptance
rests on — the draft predicting the target's next token on the target's own text:
1. the target answers every training prompt of models/instruct_prompts.py greedily (up to 96 new
   tokens), keeping its top-k logits at each answer position; the same for the held-out prompts;
2. the target's top-k on windows of the documentation text that ships with Python (pydoc topics);
3. the draft's layers are initialised from target layers and trained on the KL divergence to the
   target's top-k distribution at those positions (embedding and head frozen);
4. held-out greedy agreement (draft argmax = target argmax at each answer position of the held-out
   prompts, teacher-forced) goes into report.json and the model card.
Every stage caches its output under <cache>/smollm2/distill/ and resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instruct_prompts import split  # noqa: E402
from smollm2 import GGUF, cache_dir, log  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent / "smollm2_draft" / "layers.npz"
TOP_K = 16
MAX_NEW = 96
GEN_BATCH = 32
DOC_WINDOW = 256
DOC_TOKENS = 120_000


def load_target(root: Path):
    import torch
    from transformers import AutoModelForCausalLM

    gguf = root / "gguf" / GGUF
    if not gguf.exists():
        raise SystemExit(f"{gguf} not found: run `tandem models build smollm2` first")
    return AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                dtype=torch.float32).eval()


def runtime_tokenizer(root: Path):
    from tandem.llm.tokenizer import Tokenizer

    return Tokenizer(root / "tokenizer.json")


def chat_ids(tok, prompt: str) -> list[int]:
    """The prompt as the serving path renders and encodes it (the model's own chat template)."""
    return tok.encode(tok.render_chat([("user", prompt)]))


def generate(root: Path, which: str, hf, tok, eos: int, limit: int | None) -> Path:
    """Greedy answers of the target to the `which` prompts, with top-k logits: distill/gen_<which>.jsonl."""
    import torch

    out = root / "distill" / f"gen_{which}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    prompts = split(which)[:limit]
    done = sum(1 for _ in open(out)) if out.exists() else 0
    if done >= len(prompts):
        return out
    log(f"target answers {len(prompts) - done} {which} prompts (batches of {GEN_BATCH}, ≤{MAX_NEW} tokens)")
    t0 = time.perf_counter()
    n_tok = 0
    with open(out, "a") as f, torch.inference_mode():
        for b in range(done, len(prompts), GEN_BATCH):
            batch = prompts[b:b + GEN_BATCH]
            ids = [chat_ids(tok, p) for p in batch]
            width = max(map(len, ids))
            x = torch.full((len(ids), width), eos, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for i, row in enumerate(ids):
                x[i, width - len(row):] = torch.tensor(row)
                mask[i, width - len(row):] = 1
            res = hf.generate(input_ids=x, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                              eos_token_id=eos, pad_token_id=eos, output_logits=True,
                              return_dict_in_generate=True)
            new = res.sequences[:, width:]
            logits = torch.stack(res.logits, dim=1)  # [b, new, vocab]
            top = torch.topk(logits, TOP_K, dim=-1)
            for i, p in enumerate(batch):
                resp = new[i].tolist()
                n = resp.index(eos) + 1 if eos in resp else len(resp)
                n_tok += n
                f.write(json.dumps({"prompt": p, "prompt_ids": ids[i], "response_ids": resp[:n],
                                    "top_ids": top.indices[i, :n].tolist(),
                                    "top_logits": np.round(top.values[i, :n].numpy(), 3).tolist()}) + "\n")
            f.flush()
            el = time.perf_counter() - t0
            log(f"  {which}: {min(b + GEN_BATCH, len(prompts))}/{len(prompts)} prompts, {n_tok} tokens, "
                f"{n_tok / el:.0f} tokens/s")
    return out


def doc_windows(root: Path, hf, tok, max_tokens: int) -> Path:
    """The target's top-k at every position of DOC_WINDOW-token windows of pydoc's topics text."""
    import torch
    from pydoc_data.topics import topics

    out = root / "distill" / "docs.npz"
    if out.exists():
        return out
    text = "\n\n".join(topics[k] for k in sorted(topics))
    ids = np.asarray(tok.encode(text), dtype=np.int32)
    n = min(len(ids) // DOC_WINDOW, max_tokens // DOC_WINDOW)
    windows = ids[: n * DOC_WINDOW].reshape(n, DOC_WINDOW)
    log(f"target top-{TOP_K} on {n} windows of pydoc topics ({n * DOC_WINDOW} tokens)")
    top_ids = np.zeros((n, DOC_WINDOW, TOP_K), np.int32)
    top_logits = np.zeros((n, DOC_WINDOW, TOP_K), np.float16)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, n, 8):
            logits = hf(torch.from_numpy(windows[b:b + 8].astype(np.int64))).logits
            top = torch.topk(logits, TOP_K, dim=-1)
            top_ids[b:b + 8], top_logits[b:b + 8] = top.indices.numpy(), top.values.numpy()
            if (b // 8) % 10 == 0:
                log(f"  docs: {min(b + 8, n)}/{n} windows, {time.perf_counter() - t0:.0f} s")
    np.savez(out, ids=windows, top_ids=top_ids, top_logits=top_logits)
    return out


def chat_examples(path: Path) -> list[dict]:
    """Rows of gen_*.jsonl as (ids, first loss position, teacher top-k per answer token)."""
    rows = []
    for line in open(path):
        r = json.loads(line)
        ids = r["prompt_ids"] + r["response_ids"]
        rows.append({"ids": np.asarray(ids, np.int64), "start": len(r["prompt_ids"]) - 1,
                     "top_ids": np.asarray(r["top_ids"], np.int64),
                     "top_logits": np.asarray(r["top_logits"], np.float32)})
    return rows


def chat_batch(rows: list[dict]):
    """Right-padded ids [b, s], loss positions (flat indices into [b*s]), teacher top-k at them."""
    import torch

    width = max(len(r["ids"]) for r in rows)
    x = np.zeros((len(rows), width), np.int64)
    flat, tids, tlog = [], [], []
    for i, r in enumerate(rows):
        x[i, : len(r["ids"])] = r["ids"]
        n = len(r["top_ids"])
        flat.append(i * width + r["start"] + np.arange(n))
        tids.append(r["top_ids"])
        tlog.append(r["top_logits"])
    return (torch.from_numpy(x), torch.from_numpy(np.concatenate(flat)),
            torch.from_numpy(np.concatenate(tids)), torch.from_numpy(np.concatenate(tlog)))


def make_draft(hf, n_layer: int, layer_map: list[int]):
    """The draft: the target's embedding/head (frozen) and final norm, layers initialised from layer_map."""
    from smollm2 import dims_of, hf_key, make_llama

    dims = dict(dims_of(hf), n_layer=n_layer)
    model = make_llama(dims)
    src = hf.state_dict()
    model.load_state_dict({name: src[hf_key(name, layer_map)] for name in model.state_dict()})
    model.embed_tokens.weight.requires_grad_(False)
    return model, dims


def draft_logits_at(model, x, flat, vocab=None):
    """Draft logits at the flat positions of x (right-padded; causal attention ignores the padding),
    over the token ids `vocab` (all when None)."""
    import torch

    b, s = x.shape
    empty = [torch.zeros(b, model.dims["n_kv"], 0, model.dims["head_dim"])] * (2 * len(model.layers))
    h, _ = model.hidden(x, torch.ones_like(x), torch.arange(s).expand(b, s), empty)
    head = model.embed_tokens.weight if vocab is None else model.embed_tokens.weight[vocab]
    return h.reshape(b * s, -1)[flat] @ head.T


def candidates(frequent, top_ids, vocab_size: int):
    """The training step's softmax vocabulary: the frequent tokens and every teacher top-k id of the
    batch, and top_ids re-indexed into it. Normalising over ≈10% of the 49,152 ids costs the head
    a tenth; the ids left out are ones the target gives no weight anywhere in the batch."""
    import torch

    vocab = torch.unique(torch.cat([frequent, top_ids.reshape(-1)]))
    where = torch.full((vocab_size,), -1, dtype=torch.long)
    where[vocab] = torch.arange(len(vocab))
    return vocab, where[top_ids]


def kd_loss(logits, top_ids, top_logits):
    """Cross-entropy of the draft against the target's top-k distribution (renormalised)."""
    import torch

    p = torch.softmax(top_logits.float(), dim=-1)
    logq = torch.log_softmax(logits, dim=-1).gather(1, top_ids)
    return -(p * logq).sum(-1).mean()


def agreement(model, rows: list[dict], batch: int = 16) -> float:
    """Teacher-forced greedy agreement: draft argmax = target argmax at each answer position."""
    import torch

    hit = n = 0
    with torch.inference_mode():
        for b in range(0, len(rows), batch):
            x, flat, tids, _ = chat_batch(rows[b:b + batch])
            pred = draft_logits_at(model, x, flat).argmax(-1)
            hit += int((pred == tids[:, 0]).sum())
            n += len(tids)
    return hit / max(n, 1)


def quantize(model) -> dict:
    """The draft's own weights for committing: linear weights int8 per output row, the rest fp16."""
    out = {}
    for name, t in model.state_dict().items():
        if name.startswith("embed_tokens"):
            continue
        w = t.float().numpy()
        if w.ndim == 2:
            scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-8) / 127.0
            out[name + ".q"] = np.round(w / scale).astype(np.int8)
            out[name + ".scale"] = scale.astype(np.float16)
        else:
            out[name] = w.astype(np.float16)
    return out


def load_quantized(model, blob) -> None:
    """Load quantize()'s weights (dequantized) into a draft whose embedding is already the target's."""
    import torch

    state = model.state_dict()
    for name in state:
        if name.startswith("embed_tokens"):
            continue
        if name + ".q" in blob:
            w = blob[name + ".q"].astype(np.float32) * blob[name + ".scale"].astype(np.float32)
        else:
            w = blob[name].astype(np.float32)
        state[name] = torch.from_numpy(w)
    model.load_state_dict(state)


def train(root: Path, hf, args) -> dict:
    """Distil the draft; checkpoints in distill/ckpt.pt (resumed); returns the report."""
    import torch

    layer_map = [int(i) for i in args.init_layers.split(",")]
    model, dims = make_draft(hf, len(layer_map), layer_map)
    train_rows = chat_examples(root / "distill" / "gen_train.jsonl")
    held_rows = chat_examples(root / "distill" / "gen_held_out.jsonl")
    docs = np.load(root / "distill" / "docs.npz")
    params = [p for p in model.parameters() if p.requires_grad]
    n_own = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    ckpt = root / "distill" / "ckpt.pt"
    step, history = 0, []
    if ckpt.exists():
        saved = torch.load(ckpt)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        step, history = saved["step"], saved["history"]
        log(f"resuming at step {step}")
    else:
        history.append({"step": 0, "held_out_agreement": agreement(model, held_rows)})
        log(f"init from target layers {layer_map}: held-out agreement {history[-1]['held_out_agreement']:.3f}")
    counts = np.bincount(np.concatenate([r["top_ids"][:, 0] for r in train_rows]), minlength=dims["vocab_size"])
    frequent = torch.from_numpy(np.argsort(-counts)[:args.frequent].copy())
    rng = np.random.default_rng(1234 + step)
    t0 = time.perf_counter()
    start_step = step
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        if rng.random() < args.doc_share:
            pick = rng.integers(0, len(docs["ids"]), 8)
            x = torch.from_numpy(docs["ids"][pick].astype(np.int64))
            flat = torch.arange(x.numel())
            tids = torch.from_numpy(docs["top_ids"][pick].reshape(-1, TOP_K).astype(np.int64))
            tlog = torch.from_numpy(docs["top_logits"][pick].reshape(-1, TOP_K).astype(np.float32))
        else:
            x, flat, tids, tlog = chat_batch([train_rows[i] for i in rng.integers(0, len(train_rows), args.batch)])
        vocab, tids = candidates(frequent, tids, dims["vocab_size"])
        loss = kd_loss(draft_logits_at(model, x, flat, vocab), tids, tlog)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            rate = (time.perf_counter() - t0) / (step - start_step)
            log(f"  step {step}/{args.steps} loss {loss.item():.3f} lr {lr:.2e} "
                f"({rate:.1f} s/step, {rate * (args.steps - step) / 60:.0f} min left)")
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            history.append({"step": step, "loss": round(loss.item(), 4),
                            "held_out_agreement": agreement(model, held_rows)})
            log(f"  step {step}: held-out agreement {history[-1]['held_out_agreement']:.3f}")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "history": history}, ckpt)
    model.eval()
    blob = quantize(model)
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(WEIGHTS, layer_map=np.asarray(layer_map), **blob)
    load_quantized(model, blob)
    report = {
        "layers": len(layer_map), "init_from_target_layers": layer_map, "own_parameters": n_own,
        "steps": args.steps, "batch": args.batch, "lr": args.lr, "doc_share": args.doc_share,
        "train_prompts": len(train_rows), "train_answer_tokens": int(sum(len(r["top_ids"]) for r in train_rows)),
        "doc_tokens": int(docs["ids"].size), "held_out_prompts": len(held_rows),
        "held_out_answer_tokens": int(sum(len(r["top_ids"]) for r in held_rows)),
        "held_out_agreement_int8": agreement(model, held_rows), "history": history,
        "weights_bytes": WEIGHTS.stat().st_size,
    }
    (WEIGHTS.parent / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"draft: held-out agreement {report['held_out_agreement_int8']:.3f} (int8 weights), "
        f"{WEIGHTS} {report['weights_bytes'] / 1e6:.1f} MB")
    return report


def draft_built(root: Path) -> bool:
    return (root / "draft" / "model.onnx").exists() and (root / "draft" / "report.json").exists()


def export_draft(root: Path, hf, sample: list[int]) -> dict:
    """The draft ONNX from the committed layer weights and the target's embedding: <root>/draft/."""
    from smollm2 import check, export, write_config

    if not WEIGHTS.exists():
        raise SystemExit(f"{WEIGHTS} is missing: train the draft with `python models/smollm2_draft.py train`")
    blob = np.load(WEIGHTS)
    layer_map = [int(i) for i in blob["layer_map"]]
    model, dims = make_draft(hf, len(layer_map), layer_map)
    load_quantized(model, blob)
    model.eval()
    out = root / "draft"
    out.mkdir(parents=True, exist_ok=True)
    log(f"exporting the draft to ONNX ({len(layer_map)} layers on the target's embedding)")
    export(model, dims, out / "model.onnx")
    report = check(model, dims, out / "model.onnx", sample)
    log(f"draft checks: {report}")
    write_config(dims, out / "config.json")
    trained = json.loads((WEIGHTS.parent / "report.json").read_text())
    report.update({k: trained[k] for k in ("layers", "own_parameters", "held_out_agreement_int8")})
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["generate", "train", "export"])
    ap.add_argument("--cache", help="models cache folder (default: $TANDEM_MODELS or ~/.cache/tandem/models)")
    ap.add_argument("--limit", type=int, help="at most this many prompts per split (a quick look)")
    ap.add_argument("--init-layers", default="0,1,2,3", help="target layers the draft's layers start from")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16, help="chat examples per step")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--doc-share", type=float, default=0.15, help="share of steps on pydoc text")
    ap.add_argument("--doc-tokens", type=int, default=DOC_TOKENS, help="pydoc tokens the target labels")
    ap.add_argument("--frequent", type=int, default=4096, help="frequent answer tokens always in the softmax")
    ap.add_argument("--eval-every", type=int, default=100)
    args = ap.parse_args(argv)
    root = cache_dir(args.cache) / "smollm2"
    import torch

    torch.manual_seed(0)
    if args.stage in ("generate", "train"):
        tok = runtime_tokenizer(root)
        eos = json.loads((root / "target" / "config.json").read_text())["eos_token_id"]
        hf = load_target(root)
        generate(root, "held_out", hf, tok, eos, args.limit)
        generate(root, "train", hf, tok, eos, args.limit)
        doc_windows(root, hf, tok, args.doc_tokens)
    if args.stage == "train":
        train(root, hf, args)
    if args.stage == "export":
        tok = runtime_tokenizer(root)
        export_draft(root, load_target(root), chat_ids(tok, "Name three uses of a paperclip.") + list(range(1000, 1016)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
