"""Adaptive draft length (γ) for a TANDEM session — pure, over measured figures.

Each round drafts γ tokens on the device (a ms each, plus D ms of call overhead: the link round
trip to the device) and verifies them in the cloud (V ms: round trip, queue, one forward pass); the
round cost is C = D + V. With per-token acceptance α, a round commits on average
E(γ) = (1 − α^(γ+1)) / (1 − α) tokens, so the session commits tokens at E(γ) / (γ·a + C) per ms.
The controller estimates α, a, D and V online (discounted, with priors for a new session) and picks
the γ in [1, max_gamma] that maximises that rate. For large κ = C/a the optimum grows like
ln(κ·ln(1/α))/ln(1/α) − 1: slow links and fast drafts want long drafts.

With overlap (the device drafts ahead while earlier blocks are verified), a round whose drafts were
all accepted and whose bonus token the device guessed — probability h ≈ α^(γ+1) — means the next
block is already drafted: that round waits only W (measured: often nothing, sometimes the tail of
the device's drafting) instead of γ·a + D, so a round costs (1 − h)·(γ·a + D) + h·W + V on
average. That favours shorter drafts than without overlap (they are more often wholly accepted),
and the controller takes it into account.

Device energy caps γ: each drafted token costs the device `energy_per_token` joules, and a session
with an energy budget never drafts past what is left of it (γ = 0 then: the cloud decodes alone).
A fixed γ (benchmarks) bypasses the optimisation but not the budget.

Cost and energy: each round is one target pass, which the pool bills, and γ drafted tokens, which
the battery pays. The routing policy prices all three in its score's units (`prices`: per ms, per
pass, per drafted token — router.policy.predict.RoundPrices) and the controller minimises a round's
price per committed token, price(γ) / E(γ): the policy's own objective, so the session keeps to
the trade-off it was placed for. Time alone (the default) is the fastest γ; a dear cloud drafts
longer for fewer passes per token, a draining battery shorter.

Estimating acceptance: a round that drafted γ and accepted k observed k successes and, if k < γ,
one failure (the truncated geometric), so α̂ = Σk / (Σk + Σ[k < γ]) with pseudo-counts for the
prior. Real acceptance is not one constant per token: early drafted tokens are accepted more often
than late ones, or, in repetitive text, whole blocks are. So the controller also keeps β_i, the
acceptance rate of the i-th drafted token given the earlier ones were accepted (shrunk towards α̂
where positions have few observations), and uses E(γ) = Σ_{j=0..γ} Π_{i≤j} β_i and
h(γ) = Π_{i≤γ+1} β_i instead of the constant-α formulas.
"""

from __future__ import annotations

import dataclasses
import math

from router.policy.predict import FASTEST, RoundPrices


@dataclasses.dataclass(frozen=True)
class DraftControlConfig:
    fixed_gamma: int = 0  # > 0: always this γ (still capped by room and energy)
    max_gamma: int = 16
    prior_alpha: float = 0.6
    prior_weight: float = 4.0  # pseudo-observations behind the prior
    prior_draft_ms: float = 1.0  # a: device time per drafted token
    prior_draft_overhead_ms: float = 2.0  # D: a draft call's time beyond drafting (the device link)
    prior_verify_ms: float = 3.0  # V: a verify call (round trip to the replica, queue, one pass)
    decay: float = 0.9  # weight kept by older observations per round
    overlap: bool = False  # the loop pre-drafts during verification
    prior_positions: tuple[float, ...] = ()  # β_i from an earlier session (empty: all α)
    # Give up at most this share of the estimated speed for a longer draft (at most twice the fastest
    # one): fewer target passes per token, i.e. less cloud compute — the rate is flat near its optimum.
    speed_slack: float = 0.0
    prices: RoundPrices = FASTEST  # what a round's time, pass and drafts cost (router.policy.decide sets them per request)


class DraftLengthController:
    """One per TANDEM session. Not thread-safe (one loop drives it)."""

    def __init__(self, config: DraftControlConfig, energy_per_token_j: float = 0.0,
                 energy_budget_j: float = 0.0) -> None:
        self.config = config
        w = config.prior_weight
        self._accepts = config.prior_alpha * w
        self._fails = (1.0 - config.prior_alpha) * w
        self.draft_ms = config.prior_draft_ms
        self.draft_overhead_ms = config.prior_draft_overhead_ms
        self.verify_ms = config.prior_verify_ms
        self.ahead_wait_ms = 1.0  # W: what a round waits for a block drafted ahead
        self.energy_per_token_j = energy_per_token_j
        self.energy_left_j = energy_budget_j if energy_budget_j > 0 else math.inf
        self.last_gamma = 0
        n = config.max_gamma + 1
        self._reach = [0.0] * n  # discounted counts: rounds that drafted position i with i − 1 accepted
        self._acc = [0.0] * n  # ... and accepted it
        for i, beta in enumerate(config.prior_positions[:n]):
            self._reach[i], self._acc[i] = 2.0, 2.0 * beta

    @property
    def alpha(self) -> float:
        return self._accepts / (self._accepts + self._fails)

    @property
    def round_ms(self) -> float:
        """C = D + V: the part of a round that does not grow with γ."""
        return self.draft_overhead_ms + self.verify_ms

    def position_acceptance(self) -> list[float]:
        """β_i for i = 1..max_gamma + 1 (the last one stands for the bonus-token guess)."""
        alpha, w = min(self.alpha, 0.999), self.config.prior_weight / 2
        return [min((acc + w * alpha) / (reach + w), 0.999) for acc, reach in zip(self._acc, self._reach)]

    def expected_tokens(self, gamma: int, betas: list[float] | None = None) -> float:
        """E(γ): expected tokens committed by a round drafting γ."""
        betas = betas or self.position_acceptance()
        total, run = 1.0, 1.0
        for i in range(gamma):
            run *= betas[i]
            total += run
        return total

    def round_time_ms(self, gamma: int, betas: list[float] | None = None) -> float:
        a, d, v = self.draft_ms, self.draft_overhead_ms, self.verify_ms
        if self.config.overlap:
            betas = betas or self.position_acceptance()
            hit = math.prod(betas[: gamma + 1])
            return (1 - hit) * (gamma * a + d) + hit * self.ahead_wait_ms + v
        return gamma * a + d + v

    def drafted_per_round(self, gamma: int, betas: list[float] | None = None) -> float:
        """Tokens a round drafts: γ, plus — with overlap — those drafted ahead past a block that
        misses and then dropped (router.policy.predict.dropped_ahead)."""
        if not self.config.overlap:
            return float(gamma)
        betas = betas or self.position_acceptance()
        miss = 1 - math.prod(betas[: gamma + 1])
        ahead = min((gamma + 1) * self.blocks_ahead(gamma), self.round_ms / max(self.draft_ms, 1e-3))
        return gamma + miss * ahead

    def best_gamma(self) -> int:
        """The γ maximising E(γ) / price(γ) (the rate, with the default prices) — or, with `speed_slack`, the longest γ
        up to twice that one whose rate is within the slack of the best."""
        betas = self.position_acceptance()
        prices = self.config.prices
        # committed tokens per unit of price (with the default prices: per ms, the rate)
        rates = [self.expected_tokens(g, betas) / max(prices.of(self.drafted_per_round(g, betas),
                                                                self.round_time_ms(g, betas)), 1e-9)
                 for g in range(1, self.config.max_gamma + 1)]
        top = max(rates)
        fastest = rates.index(top) + 1
        ok = [g for g, r in enumerate(rates, start=1) if r >= top * (1 - self.config.speed_slack) and g <= 2 * fastest]
        return max(ok) if self.config.speed_slack > 0 else fastest

    def blocks_ahead(self, gamma: int, limit: int = 8) -> int:
        """How many blocks a run-ahead device should keep in flight so that a run of hits is not
        held up by its link: the draft call's overhead over a hit round's time, plus one."""
        hit_round = max(self.verify_ms, gamma * self.draft_ms, 0.5)
        return max(1, min(limit, math.ceil(self.draft_overhead_ms / hit_round) + 1))

    def next_gamma(self, room: int) -> int:
        """γ for the next round, given that at most `room` tokens may still be committed
        (a round commits up to γ + 1). 0 means: do not draft (a plain verify step)."""
        g = self.config.fixed_gamma or self.best_gamma()
        g = min(g, max(room - 1, 0))
        if self.energy_per_token_j > 0 and math.isfinite(self.energy_left_j):
            g = min(g, int(self.energy_left_j // self.energy_per_token_j))
        self.last_gamma = max(g, 0)
        return self.last_gamma

    def spend(self, energy_j: float) -> None:
        """Device energy spent outside a round (a head-start block that was dropped)."""
        self.energy_left_j -= energy_j

    def observe(self, drafted: int, accepted: int, draft_ms: float, draft_overhead_ms: float, verify_ms: float,
                energy_j: float = 0.0, predrafted: bool = False, timed: bool = True) -> None:
        """Record a round: device drafting time, the draft call's overhead (not observed when the
        block was drafted ahead: then the wait for it is recorded instead) and the verify call's time.
        `timed=False`: the block's drafting time is not representative (it was drafted with the
        prompt's prefill); only acceptance and the verify time are recorded."""
        self.energy_left_j -= energy_j
        self.verify_ms = self._ewma(self.verify_ms, verify_ms)
        if drafted <= 0:
            return
        d = self.config.decay
        self._accepts = d * self._accepts + accepted
        self._fails = d * self._fails + (1 if accepted < drafted else 0)
        self._reach = [d * r for r in self._reach]
        self._acc = [d * a for a in self._acc]
        for i in range(min(accepted + 1, drafted, len(self._reach))):
            self._reach[i] += 1
            self._acc[i] += 1 if i < accepted else 0
        if not timed:
            return
        self.draft_ms = self._ewma(self.draft_ms, draft_ms / drafted)
        if predrafted:
            self.ahead_wait_ms = self._ewma(self.ahead_wait_ms, max(draft_overhead_ms + draft_ms, 0.0))
        else:
            self.draft_overhead_ms = self._ewma(self.draft_overhead_ms, max(draft_overhead_ms, 0.0))

    def _ewma(self, old: float, new: float) -> float:
        w = 1.0 - self.config.decay
        return (1 - w) * old + w * new
