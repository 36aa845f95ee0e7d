"""Sampling parameters as plain data, and their validation (pure: no grpc, no numpy).

Validation errors are :class:`~tandem.errors.InvalidArgument` naming the field by its dotted path
in the request (``sampling.top_p``), so servers can return them as they are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from tandem.errors import InvalidArgument

MAX_STOP_STRINGS = 8
MAX_STOP_LENGTH = 64
MAX_TREE_DEPTH = 4  # branching entries of a draft tree
MAX_BRANCHING = 8  # tokens a draft tree path branches into at one depth
MAX_PATHS = 16  # paths of a draft tree (rows of its verify pass)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to pick tokens. temperature 0 is greedy; top_k 0 and top_p 1 disable those filters."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def validate_sampling(cfg: SamplingConfig, prefix: str = "sampling") -> SamplingConfig:
    """Return `cfg` when valid; raise InvalidArgument naming the first bad field otherwise."""
    f = (lambda name: f"{prefix}.{name}") if prefix else (lambda name: name)
    if not math.isfinite(cfg.temperature) or cfg.temperature < 0:
        raise InvalidArgument(f("temperature"), f"must be a finite number >= 0, got {cfg.temperature}")
    if cfg.top_k < 0:
        raise InvalidArgument(f("top_k"), f"must be >= 0 (0 disables top-k), got {cfg.top_k}")
    if not math.isfinite(cfg.top_p) or not 0.0 < cfg.top_p <= 1.0:
        raise InvalidArgument(f("top_p"), f"must be in (0, 1], got {cfg.top_p}")
    if cfg.max_new_tokens <= 0:
        raise InvalidArgument(f("max_new_tokens"), f"must be > 0, got {cfg.max_new_tokens}")
    if len(cfg.stop) > MAX_STOP_STRINGS:
        raise InvalidArgument(f("stop"), f"at most {MAX_STOP_STRINGS} stop strings, got {len(cfg.stop)}")
    for s in cfg.stop:
        if not s or len(s) > MAX_STOP_LENGTH:
            raise InvalidArgument(f("stop"), f"stop strings must have 1 to {MAX_STOP_LENGTH} characters")
    return cfg


def check_context(
    prompt_tokens: int, max_new_tokens: int, max_context: int, prefix: str = "sampling"
) -> None:
    """Raise InvalidArgument when prompt plus new tokens cannot fit the model's context."""
    if prompt_tokens >= max_context:
        raise InvalidArgument(
            "prompt",
            f"the prompt has {prompt_tokens} tokens; the model's context "
            f"holds {max_context} including at least one new token",
        )
    if prompt_tokens + max_new_tokens > max_context:
        name = f"{prefix}.max_new_tokens" if prefix else "max_new_tokens"
        raise InvalidArgument(
            name,
            f"{max_new_tokens} new tokens after a {prompt_tokens}-token prompt exceed "
            f"the model's context of {max_context} tokens (at most "
            f"{max_context - prompt_tokens} fit)",
        )


def tree_problem(branching: Sequence[int], greedy: bool = True) -> str | None:
    """What is wrong with a draft tree's shape (branching widths per depth), or None."""
    widths = list(branching)
    if len(widths) > MAX_TREE_DEPTH or any(not 1 <= k <= MAX_BRANCHING for k in widths):
        return f"at most {MAX_TREE_DEPTH} entries, each in [1, {MAX_BRANCHING}]: got {widths}"
    if math.prod(widths) > MAX_PATHS:
        return f"{widths} makes {math.prod(widths)} paths; at most {MAX_PATHS}"
    if not greedy and any(k > 1 for k in widths):
        return "tree drafts are greedy only (sampling drafts one chain)"
    return None
