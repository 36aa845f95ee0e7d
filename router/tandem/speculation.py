"""The speculation cost model: what a TANDEM round commits, takes, drafts and costs. Pure.

One model for the two places that reason about rounds: the policy's predictions for a whole
request (router.policy.predict) and the session's draft-length controller (router.tandem.control).
They differ only in where the inputs come from: the policy's online estimates, or what the session
has measured so far.

Vocabulary (runtime.llm.speculative): a *round* drafts γ tokens on the device and verifies them
in one target pass; it commits the accepted prefix plus one token of the target's own (the
*correction* after a rejection, the *bonus* after none). With *overlap* the device drafts ahead
on a stream: after a *hit* (every drafted token accepted and the bonus equal to the device's guess)
the next block is already drafted.

Inputs (:class:`RoundModel`):

- ``betas`` — the acceptance profile: β_i is the probability that the i-th drafted token is
  accepted given the ones before it were; positions past the profile take its last entry. A
  constant per-token acceptance α is the profile ``(α,)``. Real drafts are not constant: early
  positions, or whole blocks of repetitive text, are accepted more often.
- ``draft_ms`` (a) — device time per drafted token;
- ``link_ms`` (D) — the part of a round spent reaching the device: a draft call's round trip;
- ``verify_ms`` (V) — a verify call: round trip to the replica, queueing, one forward pass;
- ``ahead_extra_ms`` — what a hit round waits beyond the modelled overlap (measured by a session;
  0 for the policy).

The quantities, for draft length γ (reach(j) = Π_{i≤j} β_i):

- tokens committed per round, E(γ) = Σ_{j=0..γ} reach(j)  (constant α: (1 − α^(γ+1)) / (1 − α));
- hit probability h(γ) = reach(γ + 1)  (the bonus guess is the device's (γ+1)-th token);
- round time: γ·a + D + V without overlap; with it (1 − h)·(γ·a + D + V) + h·(V + W), where a hit
  round waits W = max(0, γ·a − V) + ahead_extra_ms for the rest of the block drafted during the
  previous verify;
- blocks a run-ahead device keeps in flight: ⌈D / max(V, γ·a)⌉ + 1 (at most 8), so that a run of
  hits is not held up by its link;
- tokens drafted per round: γ, plus with overlap those drafted ahead past a block that misses and
  dropped, (1 − h)·min((γ + 1)·blocks ahead, (D + V) / a);
- over R rounds, the time per committed token varies with the tokens each round commits and, with
  overlap, with hits and misses: its squared coefficient of variation is about
  (Var(tokens)/E² + Var(round time)/round time²)/R (renewal theory; the policy's SLO margins);
- the best γ minimises a round's price per committed token, price(γ) / E(γ), where
  :class:`RoundPrices` prices a round's time, its target pass and its drafted tokens (the policy's
  score units; time alone is the fastest γ).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

MAX_BLOCKS_AHEAD = 8
MAX_PROFILE = 64  # positions an acceptance profile may describe (the longest draft)


@dataclasses.dataclass(frozen=True)
class RoundPrices:
    """What a TANDEM round costs in the policy's score units: per ms of its time, per target pass
    (cloud money) and per drafted token (device energy). The default (time only) is the fastest γ."""

    per_ms: float = 1.0
    per_pass: float = 0.0
    per_draft: float = 0.0

    def of(self, drafted: float, round_time_ms: float) -> float:
        """The price of a round that takes `round_time_ms` and drafts `drafted` tokens (used or not)."""
        return self.per_ms * round_time_ms + self.per_pass + self.per_draft * drafted


FASTEST = RoundPrices()


def constant(alpha: float) -> tuple[float, ...]:
    """The acceptance profile of a constant per-token acceptance α."""
    return (alpha,)


@dataclasses.dataclass(frozen=True)
class RoundModel:
    """A TANDEM round's inputs (see the module docstring). Times in ms; `betas` non-empty, in (0, 1)."""

    betas: tuple[float, ...]
    draft_ms: float
    link_ms: float
    verify_ms: float
    overlap: bool = False
    ahead_extra_ms: float = 0.0

    def beta(self, i: int) -> float:
        """β_i for i = 1, 2, … (the profile's last entry past its end)."""
        return self.betas[min(i, len(self.betas)) - 1]

    @functools.cached_property
    def _tables(self) -> tuple[list[float], list[float], list[float]]:
        """reach(j), Σ_{i≤j} reach(i) and Σ_{i≤j} (2i−1)·reach(i) for j = 0, 1, …, grown on demand
        (the best γ reads them for every candidate length)."""
        return [1.0], [0.0], [0.0]

    def _upto(self, n: int) -> tuple[list[float], list[float], list[float]]:
        reach, total, square = self._tables
        betas, last = self.betas, len(self.betas)
        for j in range(len(reach), n + 1):
            reach.append(reach[-1] * betas[min(j, last) - 1])
            total.append(total[-1] + reach[-1])
            square.append(square[-1] + (2 * j - 1) * reach[-1])
        return reach, total, square

    def reach(self, n: int) -> float:
        """The probability that the first `n` drafted tokens are all accepted (1 for n = 0)."""
        return self._upto(n)[0][n]

    def expected_tokens(self, gamma: int) -> float:
        """E(γ): tokens a round drafting γ commits on average (the last one is the target's)."""
        return 1.0 + self._upto(gamma)[1][gamma]

    def tokens_variance(self, gamma: int) -> float:
        """The variance of the tokens a round commits (1 + K, K the accepted prefix: P(K ≥ j) = reach(j))."""
        _, total, square = self._upto(gamma)
        return max(square[gamma] - total[gamma] ** 2, 0.0)

    def round_ms_variance(self, gamma: int) -> float:
        """The variance of a round's time: with overlap, a hit round is short and a miss long."""
        if not self.overlap or gamma <= 0:
            return 0.0
        h = self.hit(gamma)
        full = gamma * self.draft_ms + self.link_ms + self.verify_ms
        hit_round = self.verify_ms + max(
            0.0, max(0.0, gamma * self.draft_ms - self.verify_ms) + self.ahead_extra_ms
        )
        return h * (1 - h) * (full - hit_round) ** 2

    def hit(self, gamma: int) -> float:
        """The probability that a block of γ is wholly accepted and its bonus token guessed."""
        return self.reach(gamma + 1) if gamma > 0 else 0.0

    def round_ms(self, gamma: int) -> float:
        return self._round(gamma, self.hit(gamma))[0]

    def blocks_ahead(self, gamma: int) -> int:
        """Blocks a run-ahead device keeps in flight: the link over a hit round's time, plus one."""
        return blocks_ahead(gamma, self.draft_ms, self.link_ms, self.verify_ms)

    def dropped_ahead(self, gamma: int) -> float:
        """Overlap's energy price: tokens drafted ahead past a block that misses, and dropped."""
        return self._round(gamma, self.hit(gamma))[1] - gamma if gamma > 0 else 0.0

    def drafted_per_round(self, gamma: int) -> float:
        return self._round(gamma, self.hit(gamma))[1] if gamma > 0 else float(max(gamma, 0))

    def _round(self, gamma: int, h: float) -> tuple[float, float]:
        """(round time, tokens drafted) of a round drafting γ ≥ 0 whose hit probability is `h` —
        the one place the formulas of the module docstring are written."""
        a, d, v = max(self.draft_ms, 0.0), self.link_ms, self.verify_ms
        full = gamma * a + d + v
        if not self.overlap or gamma <= 0:
            return full, float(gamma)
        wait = max(0.0, max(0.0, gamma * a - v) + self.ahead_extra_ms)
        ahead = min(
            (gamma + 1) * blocks_ahead(gamma, self.draft_ms, d, v), (d + v) / max(self.draft_ms, 1e-3)
        )
        return (1 - h) * full + h * (v + wait), gamma + (1 - h) * ahead

    def price_per_token(self, gamma: int, prices: RoundPrices = FASTEST) -> float:
        round_time, drafted = self._round(gamma, self.hit(gamma))
        return prices.of(drafted, round_time) / self.expected_tokens(gamma)

    def prices_per_token(self, max_gamma: int, prices: RoundPrices = FASTEST) -> list[float]:
        """The price per committed token of γ = 1 … max_gamma, in one pass over the tables."""
        reach, total, _ = self._upto(max_gamma + 1)
        out = []
        for g in range(1, max_gamma + 1):
            round_time, drafted = self._round(g, reach[g + 1])
            out.append(prices.of(drafted, round_time) / (1.0 + total[g]))
        return out

    def best_gamma(self, max_gamma: int, prices: RoundPrices = FASTEST, slack: float = 0.0) -> int:
        """The γ in [1, max_gamma] with the lowest price per committed token — or, with `slack` > 0,
        the longest γ up to twice that one whose price is within `slack` of the lowest (fewer target
        passes per token for little: the price is flat near its optimum)."""
        per_token = self.prices_per_token(max_gamma, prices)
        low = min(per_token)
        best = per_token.index(low) + 1
        if slack <= 0:
            return best
        ok = [g for g, p in enumerate(per_token, start=1) if p * (1 - slack) <= low and g <= 2 * best]
        return max(ok)


def blocks_ahead(gamma: int, draft_ms: float, link_ms: float, verify_ms: float) -> int:
    """Blocks a run-ahead device keeps in flight: ⌈D / max(V, γ·a)⌉ + 1, at most MAX_BLOCKS_AHEAD."""
    hit_round = max(verify_ms, gamma * draft_ms, 0.5)
    return max(1, min(MAX_BLOCKS_AHEAD, math.ceil(link_ms / hit_round) + 1))


def check_profile(betas: Sequence[float]) -> tuple[float, ...]:
    """`betas` as a profile, each clamped into [0.001, 0.999] (so that products stay meaningful)."""
    if not betas:
        raise ValueError("an acceptance profile needs at least one position")
    return tuple(min(max(float(b), 0.001), 0.999) for b in betas[:MAX_PROFILE])
