"""Speculative decoding maths: which drafted tokens the target accepts, and what it commits next.

Vocabulary (one *round*):

- **drafted** tokens d_1..d_γ are proposed by the draft model (on the device) continuing the
  committed context; γ is the *draft length*;
- the target scores them in one forward pass, giving its distributions p_1..p_{γ+1}
  (p_i predicts position i, after d_1..d_{i-1});
- **accepted** tokens are the longest prefix d_1..d_k that passes verification;
- then the target commits one token of its own: the **correction** (drawn from the target's
  residual distribution at the first rejected position) when k < γ, or the **bonus** token
  (drawn from p_{γ+1}) when every drafted token was accepted.

So every round commits k + 1 tokens for one target forward pass.

Greedy (temperature 0): accept d_i while it equals argmax p_i; the correction/bonus is
argmax p_{k+1}. The output is token for token the target's greedy output.

Sampling (Leviathan et al. 2023, Chen et al. 2023): with q_i the draft's distribution, accept d_i
with probability min(1, p_i(d_i) / q_i(d_i)); on the first rejection draw the correction from
norm(max(0, p_i − q_i)). The committed tokens then follow the target distribution p exactly,
whatever q is — as long as q is known exactly where the draft sampled from it. The draft samples
from a distribution restricted to a small support (its top-k), and sends that support and its
probabilities; q is zero elsewhere. Probabilities travel as float32; both sides use the same
float32 values renormalised in float64 (:func:`wire_distribution`), so the q used to sample and
the q used to verify are identical.

Pure numpy; shapes are annotated. No gRPC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from runtime.llm.sampling import distribution, sample_from
from runtime.params import SamplingConfig


@dataclasses.dataclass(frozen=True)
class SparseDist:
    """A distribution on a support: probability probs[i] for token ids[i], zero elsewhere.

    ids: [k] int; probs: [k] float32 (as sent on the wire; normalise with :meth:`dense`).
    """

    ids: np.ndarray
    probs: np.ndarray

    def dense(self, vocab: int) -> np.ndarray:
        """[vocab] float64, normalised."""
        out = np.zeros(vocab, np.float64)
        out[self.ids] = self.probs.astype(np.float64)
        return out / out.sum()


def wire_distribution(p: np.ndarray, support_size: int) -> SparseDist:
    """Restrict dense distribution `p` ([vocab]) to its top `support_size` tokens, in float32.

    Both the sampler and the verifier must use ``result.dense(vocab)``: that is q.
    """
    k = min(support_size, int((p > 0).sum()))
    ids = np.argsort(-p, kind="stable")[:k]
    probs = p[ids].astype(np.float32)
    keep = probs > 0
    return SparseDist(ids[keep].astype(np.int64), probs[keep])


def draft_distribution(logits: np.ndarray, cfg: SamplingConfig, support_size: int) -> SparseDist:
    """The draft's q for one position: the request's sampling transform, then its top support."""
    return wire_distribution(distribution(logits, cfg), support_size)


@dataclasses.dataclass(frozen=True)
class RoundResult:
    accepted: int  # k: drafted tokens accepted (a prefix)
    next_token: int  # the correction (k < γ) or the bonus token (k == γ)

    def all_accepted(self, drafted: int) -> bool:
        return self.accepted == drafted


def greedy_round(drafted: Sequence[int], target_logits: np.ndarray) -> RoundResult:
    """Greedy verification. target_logits: [γ+1, vocab], row i predicts drafted position i."""
    argmax = np.argmax(target_logits, axis=-1)  # [γ+1]; lowest id on ties, as in greedy decoding
    k = 0
    while k < len(drafted) and int(argmax[k]) == drafted[k]:
        k += 1
    return RoundResult(k, int(argmax[k]))


def greedy_tree_round(
    paths: Sequence[Sequence[int]], target_logits: Sequence[np.ndarray]
) -> tuple[int, RoundResult]:
    """Greedy verification of a draft tree given as its root-to-leaf paths (path 0 is the draft's
    own greedy chain): each path verified like a chain (`target_logits[i]`: [len(path)+1, vocab]),
    the one accepted furthest wins, the lowest index on ties. The committed tokens are the winner's
    accepted prefix and the target's next token there: exactly what greedy decoding of the target
    writes, whichever path wins. Returns (winning path, its round)."""
    if len(paths) != len(target_logits) or not paths:
        raise ValueError("one logits block per path, and at least one path")
    best = 0, greedy_round(paths[0], target_logits[0])
    for i in range(1, len(paths)):
        rnd = greedy_round(paths[i], target_logits[i])
        if rnd.accepted > best[1].accepted:
            best = i, rnd
    return best


def sampling_round(
    drafted: Sequence[int],
    draft_dists: Sequence[SparseDist],
    target_probs: np.ndarray,
    rng: np.random.Generator,
) -> RoundResult:
    """Speculative sampling. target_probs: [γ+1, vocab] rows of p (each sums to 1).

    Uses one uniform draw per drafted token examined plus one for the committed target token.
    """
    vocab = target_probs.shape[-1]
    for i, d in enumerate(drafted):
        p = target_probs[i]  # [vocab]
        q = draft_dists[i].dense(vocab)  # [vocab]
        if q[d] <= 0:
            raise ValueError(f"drafted token {d} at position {i} has zero draft probability")
        if rng.random() < min(1.0, p[d] / q[d]):
            continue
        residual = np.maximum(p - q, 0.0)  # [vocab]
        total = residual.sum()
        # total == 0 only when p == q, where rejection has probability 0; guard float dust anyway
        return RoundResult(i, sample_from(residual / total if total > 0 else p, rng))
    return RoundResult(len(drafted), sample_from(target_probs[len(drafted)], rng))


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    """E = (1 − α^(γ+1)) / (1 − α): expected tokens committed per round at acceptance rate α."""
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)
