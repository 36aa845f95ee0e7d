"""Adaptive draft length (γ) for a TANDEM session — pure, over measured figures.

Each round drafts γ tokens on the device (a ms each) and pays a fixed round cost C (link round
trip + cloud queue + one verify pass). With per-token acceptance α, a round commits on average
E(γ) = (1 − α^(γ+1)) / (1 − α) tokens, so the session commits tokens at E(γ) / (γ·a + C) per ms.
The controller estimates α, a and C online (discounted, with priors for a new session) and picks the
γ in [1, max_gamma] that maximises that rate. For large κ = C/a the optimum grows like
ln(κ·ln(1/α))/ln(1/α) − 1: slow links and fast drafts want long drafts.

Device energy caps γ: each drafted token costs the device `energy_per_token` joules, and a session
with an energy budget never drafts past what is left of it (γ = 0 then: the cloud decodes alone).
A fixed γ (benchmarks) bypasses the optimisation but not the budget.

Estimating α: a round that drafted γ and accepted k observed k successes and, if k < γ, one
failure (the truncated geometric), so α̂ = Σk / (Σk + Σ[k < γ]) with pseudo-counts for the prior.
"""

from __future__ import annotations

import dataclasses
import math

from tandem.llm.speculative import expected_tokens_per_round


@dataclasses.dataclass(frozen=True)
class DraftControlConfig:
    fixed_gamma: int = 0  # > 0: always this γ (still capped by room and energy)
    max_gamma: int = 16
    prior_alpha: float = 0.6
    prior_weight: float = 4.0  # pseudo-observations behind the prior
    prior_draft_ms: float = 1.0  # a: device time per drafted token
    prior_round_ms: float = 5.0  # C: round trip + queue + verify
    decay: float = 0.9  # weight kept by older observations per round


class DraftLengthController:
    """One per TANDEM session. Not thread-safe (one loop drives it)."""

    def __init__(self, config: DraftControlConfig, energy_per_token_j: float = 0.0,
                 energy_budget_j: float = 0.0) -> None:
        self.config = config
        w = config.prior_weight
        self._accepts = config.prior_alpha * w
        self._fails = (1.0 - config.prior_alpha) * w
        self.draft_ms = config.prior_draft_ms
        self.round_ms = config.prior_round_ms
        self.energy_per_token_j = energy_per_token_j
        self.energy_left_j = energy_budget_j if energy_budget_j > 0 else math.inf
        self.last_gamma = 0

    @property
    def alpha(self) -> float:
        return self._accepts / (self._accepts + self._fails)

    def best_gamma(self) -> int:
        """argmax over γ of E(α, γ) / (γ·a + C) (ties: the shorter draft)."""
        a, c, alpha = max(self.draft_ms, 1e-3), max(self.round_ms, 1e-3), min(self.alpha, 0.999)
        best, best_rate = 1, -1.0
        for g in range(1, self.config.max_gamma + 1):
            rate = expected_tokens_per_round(alpha, g) / (g * a + c)
            if rate > best_rate * (1 + 1e-9):
                best, best_rate = g, rate
        return best

    def next_gamma(self, room: int) -> int:
        """γ for the next round, given that at most `room` tokens may still be committed
        (a round commits up to γ + 1). 0 means: do not draft (a plain verify step)."""
        g = self.config.fixed_gamma or self.best_gamma()
        g = min(g, max(room - 1, 0))
        if self.energy_per_token_j > 0 and math.isfinite(self.energy_left_j):
            g = min(g, int(self.energy_left_j // self.energy_per_token_j))
        self.last_gamma = max(g, 0)
        return self.last_gamma

    def observe(self, drafted: int, accepted: int, draft_ms: float, round_ms: float,
                energy_j: float = 0.0) -> None:
        """Record a round: `round_ms` is the non-drafting part (round trip, queue, verify)."""
        self.energy_left_j -= energy_j
        if drafted <= 0:
            self.round_ms = self._ewma(self.round_ms, round_ms)
            return
        d = self.config.decay
        self._accepts = d * self._accepts + accepted
        self._fails = d * self._fails + (1 if accepted < drafted else 0)
        self.draft_ms = self._ewma(self.draft_ms, draft_ms / drafted)
        self.round_ms = self._ewma(self.round_ms, round_ms)

    def _ewma(self, old: float, new: float) -> float:
        w = 1.0 - self.config.decay
        return (1 - w) * old + w * new
