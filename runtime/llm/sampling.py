"""Token choice from logits: greedy, or temperature / top-k / top-p sampling with a seeded RNG.

Pure numpy. Shapes: `logits` is [vocab]; distributions are float64 [vocab] summing to 1.
"""

from __future__ import annotations

import numpy as np

from runtime.params import SamplingConfig


def make_rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def distribution(logits: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """The distribution `cfg` samples from: softmax(logits / T) restricted by top-k, then top-p.

    Requires cfg.temperature > 0. Ties at the top-k boundary keep the lower token ids, so the
    support is a deterministic function of the logits.
    """
    x = logits.astype(np.float64) / cfg.temperature
    if cfg.top_k and cfg.top_k < x.shape[-1]:
        order = np.argsort(-x, kind="stable")
        x_masked = np.full_like(x, -np.inf)
        keep = order[: cfg.top_k]
        x_masked[keep] = x[keep]
        x = x_masked
    x = x - x.max()
    p = np.exp(x)
    p /= p.sum()
    if cfg.top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        csum = np.cumsum(p[order])
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        n_keep = int(np.searchsorted(csum, cfg.top_p - 1e-9, side="left")) + 1  # float slack
        mask = np.zeros_like(p, dtype=bool)
        mask[order[:n_keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return p


def sample_from(p: np.ndarray, rng: np.random.Generator) -> int:
    """Draw one token id from distribution `p` (inverse CDF; one uniform draw)."""
    c = np.cumsum(p)
    u = rng.random() * c[-1]
    return int(min(np.searchsorted(c, u, side="right"), len(p) - 1))


def pick(logits: np.ndarray, cfg: SamplingConfig, rng: np.random.Generator) -> int:
    """Next token: argmax when greedy (lowest id on ties), else a sample from distribution()."""
    if cfg.greedy:
        return int(np.argmax(logits))
    return sample_from(distribution(logits, cfg), rng)
