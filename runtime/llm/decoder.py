"""onnxruntime decoder for models in the Hugging Face Optimum decoder-with-past layout.

Inputs ``input_ids`` [b, s] int64, ``attention_mask`` [b, p+s] int64, optional ``position_ids``
[b, s] int64, and ``past_key_values.N.key/value`` [b, kv_heads, p, head_dim]; outputs ``logits``
[b, s, vocab] and ``present.N.key/value`` [b, kv_heads, p+s, head_dim]. The layer count, head
shape and cache dtype are read from the graph; the context limit and special tokens from the
``config.json`` beside the model (Hugging Face field names), overridable by the caller.

This module (with the runner above it) is the only place Tandem calls onnxruntime.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tandem.errors import InvalidArgument

# NPU execution providers first, CPU last: the edge worker's default preference.
NPU_FIRST_PROVIDERS = (
    "QNNExecutionProvider",
    "CoreMLExecutionProvider",
    "NnapiExecutionProvider",
    "OpenVINOExecutionProvider",
    "VitisAIExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)

_PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)$")
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers on this machine."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(preference: Sequence[str], available: Sequence[str]) -> list[str]:
    """The preferred providers that are available, in preference order, CPU always last.

    Pure function; the first entry is the provider the session will try first.
    """
    chosen = [p for p in preference if p in available and p != "CPUExecutionProvider"]
    return chosen + ["CPUExecutionProvider"]


class ContextOverflow(InvalidArgument):
    """The tokens to process do not fit the model's context."""

    def __init__(self, needed: int, limit: int) -> None:
        super().__init__("context", f"{needed} tokens exceed the model's context of {limit} tokens")
        self.needed, self.limit = needed, limit


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the runtime needs to know about a decoder model."""

    name: str
    path: Path
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    eos_token_id: int | None
    cache_dtype: type
    has_position_ids: bool


class OnnxDecoder:
    """One ONNX decoder model in an onnxruntime session. Thread-safe (``run`` is)."""

    def __init__(
        self,
        model_dir: Path | str,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 1,
        name: str | None = None,
        max_context: int | None = None,
        slowdown: float = 1.0,
    ) -> None:
        """Load ``model.onnx`` (and ``config.json`` if present) from `model_dir`.

        `slowdown` > 1 emulates a slower accelerator: each pass then holds the model for that many
        times its compute time (sleeping, so the CPU stays free) — how one machine stands in for
        pools of different speeds.

        Raises FileNotFoundError when the model is missing, ValueError when its inputs do not follow
        the decoder-with-past layout or no context limit is known.
        """
        import onnxruntime as ort

        if slowdown < 1:
            raise ValueError(f"slowdown must be >= 1, got {slowdown}")
        self.slowdown = slowdown
        model_dir = Path(model_dir)
        path = model_dir / "model.onnx" if model_dir.is_dir() else model_dir
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        config_path = path.parent / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), opts, providers=list(providers))
        self.providers = self._session.get_providers()
        self.execution_provider = self.providers[0]

        inputs = {i.name: i for i in self._session.get_inputs()}
        for required in ("input_ids", "attention_mask"):
            if required not in inputs:
                raise ValueError(f"{path}: missing input {required!r} (not a decoder-with-past model)")
        layers = sorted({int(m.group(1)) for n in inputs if (m := _PAST.match(n))})
        if not layers or layers != list(range(len(layers))):
            raise ValueError(f"{path}: expected inputs past_key_values.N.key/value for N = 0..L-1")
        k0 = inputs["past_key_values.0.key"]
        kv_heads = k0.shape[1] if isinstance(k0.shape[1], int) else config.get("num_key_value_heads")
        head_dim = k0.shape[3] if isinstance(k0.shape[3], int) else config.get("head_dim")
        logits = next(o for o in self._session.get_outputs() if o.name == "logits")
        vocab = logits.shape[2] if isinstance(logits.shape[2], int) else config.get("vocab_size")
        limit = max_context or config.get("max_position_embeddings")
        if not (kv_heads and head_dim and vocab and limit):
            raise ValueError(f"{path}: cannot tell heads/head_dim/vocab/context; add a config.json")
        eos = config.get("eos_token_id")
        if isinstance(eos, list):
            eos = eos[0] if eos else None
        self.spec = ModelSpec(
            name=name or config.get("_name_or_path") or path.parent.name,
            path=path,
            num_layers=len(layers),
            num_kv_heads=int(kv_heads),
            head_dim=int(head_dim),
            vocab_size=int(vocab),
            max_context=int(limit),
            eos_token_id=eos,
            cache_dtype=_ORT_DTYPES.get(k0.type, np.float32),
            has_position_ids="position_ids" in inputs,
        )
        self._past_names = [
            (f"past_key_values.{i}.key", f"past_key_values.{i}.value") for i in range(self.spec.num_layers)
        ]
        self._output_names = [o.name for o in self._session.get_outputs()]

    def empty_past(self, batch: int = 1) -> list[np.ndarray]:
        """A zero-length cache: 2 × layers arrays of shape [batch, kv_heads, 0, head_dim]."""
        s = self.spec
        shape = (batch, s.num_kv_heads, 0, s.head_dim)
        return [np.zeros(shape, dtype=s.cache_dtype) for _ in range(2 * s.num_layers)]

    def forward(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        position_ids: np.ndarray,
        past: list[np.ndarray],
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass.

        input_ids [b, s] int64; attention_mask [b, p+s] int64; position_ids [b, s] int64; past:
        2 × layers arrays [b, kv_heads, p, head_dim] (k0, v0, k1, v1, ...).
        Returns logits [b, s, vocab] float32 and the present cache [b, kv_heads, p+s, head_dim].
        Raises ContextOverflow when p + s exceeds the context limit.
        """
        total = attention_mask.shape[1]
        if total > self.spec.max_context:
            raise ContextOverflow(total, self.spec.max_context)
        feeds: dict[str, np.ndarray] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.spec.has_position_ids:
            feeds["position_ids"] = position_ids
        for (kn, vn), i in zip(self._past_names, range(0, len(past), 2)):
            feeds[kn] = past[i]
            feeds[vn] = past[i + 1]
        t0 = time.perf_counter()
        outs = self._session.run(self._output_names, feeds)
        if self.slowdown > 1:
            time.sleep((self.slowdown - 1) * (time.perf_counter() - t0))
        by_name = dict(zip(self._output_names, outs))
        logits = by_name["logits"]
        if logits.dtype != np.float32:
            logits = logits.astype(np.float32)
        present = []
        for i in range(self.spec.num_layers):
            present += [by_name[f"present.{i}.key"], by_name[f"present.{i}.value"]]
        return logits, present

    def next_logits(self, ids: Sequence[int]) -> np.ndarray:
        """The logits [vocab] after `ids`, from one uncached pass (a reference for checks)."""
        x = np.asarray([list(ids)], dtype=np.int64)
        logits, _ = self.forward(
            x, np.ones_like(x), np.arange(x.shape[1], dtype=np.int64)[None], self.empty_past()
        )
        return logits[0, -1]


# A greedy output may differ from the target's own only where its top two logits are closer than
# this: float rounding of a k-token verify pass and of a single step may order them differently.
NEAR_TIE = 1e-4


def divergence(
    decoder: OnnxDecoder, context: Sequence[int], reference: Sequence[int], other: Sequence[int]
) -> dict | None:
    """Where `other` first differs from `reference` (both generated after `context`) and the gap
    between `decoder`'s top two logits there; None when neither differs from the other within
    their common length. A greedy output may differ from the target's own greedy output only where
    that gap is a float-rounding near-tie."""
    j = next((k for k, (a, b) in enumerate(zip(reference, other)) if a != b), None)
    if j is None:
        return None
    top2 = np.sort(decoder.next_logits([*context, *reference[:j]]))[-2:]
    return {
        "position": j,
        "top2_gap": float(top2[1] - top2[0]),
        "reference_token": int(reference[j]),
        "other_token": int(other[j]),
    }
