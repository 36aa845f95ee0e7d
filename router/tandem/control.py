"""Adaptive draft length (γ) for a TANDEM session: the speculation cost model over measured figures.

Each round drafts γ tokens on the device and verifies them in one target pass. The controller
measures what the cost model (router.tandem.speculation) needs — the acceptance profile β_i, the
device's time per drafted token a, the link D a draft call spends reaching the device, the verify
call's time V, and with overlap what a hit round waits beyond the modelled overlap — and picks the
γ in [1, max_gamma] with the lowest price per committed token at the policy's prices (time alone:
the fastest γ). It starts from the policy's estimates for this device and pool (the prior model
the decision predicted with), so a new session drafts as the policy expected until its own rounds
say otherwise. For large κ = (D + V)/a the optimum grows like ln(κ·ln(1/α))/ln(1/α) − 1: slow links
and fast drafts want long drafts.

Device energy caps γ: each drafted token costs the device `energy_per_token` joules, and a session
with an energy budget never drafts past what is left of it (γ = 0 then: the cloud decodes alone).
A fixed γ (benchmarks) bypasses the optimisation but not the budget.

Estimating acceptance: a round that drafted γ and accepted k observed k successes and, if k < γ,
one failure (the truncated geometric), so α̂ = Σk / (Σk + Σ[k < γ]) with pseudo-counts for the
prior. Real acceptance is not one constant per token: early drafted tokens are accepted more often
than late ones, or, in repetitive text, whole blocks are. So the controller keeps β_i, the
acceptance rate of the i-th drafted token given the earlier ones were accepted (shrunk towards the
prior profile, scaled to the session's α̂, where positions have few observations), and hands the
cost model that profile. Older rounds are discounted (`decay`), so the figures follow the text.
A session sees no position past γ + 1 (the bonus guess of a block drafted ahead), so γ is chosen
over a *hopeful* profile: positions seen less than the first are raised by the difference in their
standard errors, and a session that went short in a hard stretch tries longer drafts again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from router.tandem.speculation import FASTEST, RoundModel, RoundPrices, blocks_ahead

DEFAULT_PRIOR = RoundModel(betas=(0.6,), draft_ms=1.0, link_ms=2.0, verify_ms=3.0)
PRIOR_POSITION_WEIGHT = 2.0  # pseudo-observations behind each position of the prior profile
# Give up at most this share of the best price per token for a longer draft (at most twice the
# best one): fewer target passes per token, i.e. less cloud compute — the price is flat near its optimum.
DEFAULT_SPEED_SLACK = 0.02


def shrunk_profile(
    acc: Sequence[float], reach: Sequence[float], prior: Sequence[float], weight: float
) -> tuple[float, ...]:
    """β_i = (accepted_i + w·t_i) / (reached_i + w) for each position i, clamped into
    [0.001, 0.999]: a position's own rate where it was reached often, a target where seldom. The
    first position's target is the prior's; each later one's is the estimate just before it, in
    the prior's shape (t_i = β_{i−1}·prior_i/prior_{i−1}) — so positions seldom reached continue
    the level the data set at the positions before them, not the prior's level. `prior` repeats
    its last entry past its end."""
    out: list[float] = []
    last = len(prior) - 1
    for i, (a, r) in enumerate(zip(acc, reach)):
        p = prior[i if i < last else last]
        target = p if not out else out[-1] * p / prior[i - 1 if i - 1 < last else last]
        b = (a + weight * (target if target < 0.999 else 0.999)) / (r + weight)
        out.append(0.001 if b < 0.001 else 0.999 if b > 0.999 else b)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class DraftControlConfig:
    prior: RoundModel = (
        DEFAULT_PRIOR  # the policy's estimates; its `overlap` says whether the loop drafts ahead
    )
    fixed_gamma: int = 0  # > 0: always this γ (still capped by room and energy)
    max_gamma: int = 16  # 0: never draft
    prior_weight: float = 4.0  # pseudo-observations behind the prior's α̂
    decay: float = 0.9  # weight kept by older observations per round
    speed_slack: float = 0.0  # a share of the best price per token (DEFAULT_SPEED_SLACK)
    prices: RoundPrices = FASTEST  # what a round's time, pass and drafts cost (the decision's)


class DraftLengthController:
    """One per TANDEM session. Not thread-safe (one loop drives it)."""

    def __init__(
        self, config: DraftControlConfig, energy_per_token_j: float = 0.0, energy_budget_j: float = 0.0
    ) -> None:
        self.config = config
        prior = config.prior
        n = config.max_gamma + 1
        self._prior_profile = [prior.beta(i) for i in range(1, n + 1)]
        self._alpha0 = sum(self._prior_profile) / n  # the profile as one constant α
        w = config.prior_weight
        self._accepts = self._alpha0 * w
        self._fails = (1.0 - self._alpha0) * w
        self.draft_ms = prior.draft_ms
        self.link_ms = prior.link_ms
        self.verify_ms = prior.verify_ms
        self.ahead_extra_ms = prior.ahead_extra_ms
        self.overlap = prior.overlap
        self.energy_per_token_j = energy_per_token_j
        self.energy_left_j = energy_budget_j if energy_budget_j > 0 else math.inf
        self.last_gamma = 0
        # discounted counts: rounds that drafted position i with the ones before it accepted, and
        # of those the rounds that accepted it
        self._reach = [0.0] * n
        self._acc = [0.0] * n
        self.reached = [0] * n  # the session's own counts, undecayed (what the policy's estimates learn)
        self.accepted = [0] * n

    @property
    def alpha(self) -> float:
        """α̂: the constant per-token acceptance that fits the rounds seen (truncated geometric)."""
        return self._accepts / (self._accepts + self._fails)

    def position_acceptance(self) -> tuple[float, ...]:
        """β_i for i = 1..max_gamma + 1 (the last one stands for the bonus-token guess): each
        position's own rate, shrunk towards the prior profile's shape at the level of the positions
        before it (shrunk_profile)."""
        return shrunk_profile(self._acc, self._reach, self._prior_profile, PRIOR_POSITION_WEIGHT)

    def model(self) -> RoundModel:
        """The cost model over what the session has measured so far."""
        return self._model(self.position_acceptance())

    def _model(self, betas: tuple[float, ...]) -> RoundModel:
        return RoundModel(
            betas=betas,
            draft_ms=self.draft_ms,
            link_ms=self.link_ms,
            verify_ms=self.verify_ms,
            overlap=self.overlap,
            ahead_extra_ms=self.ahead_extra_ms,
        )

    def hopeful_acceptance(self) -> tuple[float, ...]:
        """β_i raised by how much less the session has seen position i than position 1: one standard
        error at position i's count minus one at position 1's (0 at the start, where every count is
        0, so a session starts exactly where the policy's model does). A session drafting γ sees
        nothing past γ + 1, so its estimates there keep whatever they held — often the level of a
        hard stretch long gone — and would keep it short forever; optimism in the face of that
        uncertainty drafts further, and the positions' own rates then take over."""
        w = PRIOR_POSITION_WEIGHT
        first = 1 / math.sqrt(self._reach[0] + w)
        out = []
        for b, r in zip(self.position_acceptance(), self._reach):
            lift = 1 / math.sqrt(r + w) - first
            out.append(min(b + math.sqrt(b * (1 - b)) * lift, 0.999) if lift > 0 else b)
        return tuple(out)

    def best_gamma(self) -> int:
        """The γ with the lowest price per committed token over the hopeful acceptance profile."""
        model = self._model(self.hopeful_acceptance())
        return model.best_gamma(self.config.max_gamma, self.config.prices, self.config.speed_slack)

    def blocks_ahead(self, gamma: int) -> int:
        """Blocks a run-ahead device keeps in flight (RoundModel.blocks_ahead, over the measured figures)."""
        return blocks_ahead(gamma, self.draft_ms, self.link_ms, self.verify_ms)

    def next_gamma(self, room: int) -> int:
        """γ for the next round, given that at most `room` tokens may still be committed
        (a round commits up to γ + 1). 0 means: do not draft (a plain verify step)."""
        g = self.config.fixed_gamma or (self.best_gamma() if self.config.max_gamma > 0 else 0)
        g = min(g, max(room - 1, 0))
        if self.energy_per_token_j > 0 and math.isfinite(self.energy_left_j):
            g = min(g, int(self.energy_left_j // self.energy_per_token_j))
        self.last_gamma = max(g, 0)
        return self.last_gamma

    def spend(self, energy_j: float) -> None:
        """Device energy spent outside a round (a head-start block that was dropped)."""
        self.energy_left_j -= energy_j

    def observe(
        self,
        drafted: int,
        accepted: int,
        draft_ms: float,
        draft_overhead_ms: float,
        verify_ms: float,
        energy_j: float = 0.0,
        predrafted: bool = False,
        timed: bool = True,
        guessed: bool | None = None,
    ) -> None:
        """Record a round: the device's drafting time, the rest of the wait for the block
        (`draft_overhead_ms`: the link, for a block asked for; for a block drafted ahead, what the
        round waited beyond the modelled overlap is recorded instead) and the verify call's time.
        `timed=False`: the block's drafting time is not representative (it was drafted with the
        prompt's prefill); only acceptance and the verify time are recorded, and the acceptance is
        the session's alone — the counts the policy's profile learns from (`reached`, `accepted`)
        leave out the head start, whose long block at an answer's first tokens (the hardest to
        draft) would otherwise be most of what the policy sees of the deep positions.
        `guessed`: for a block drafted ahead whose `drafted` tokens were all accepted, whether the
        device's guess of the next token was the target's — an observation of position
        `drafted` + 1. Without it a session that drafts short never sees the positions past its γ,
        and a stale low estimate there keeps it short (the hit probability, h(γ) = reach(γ + 1),
        is this very event)."""
        self.energy_left_j -= energy_j
        self.verify_ms = self._ewma(self.verify_ms, verify_ms)
        if drafted <= 0:
            return
        d = self.config.decay
        self._accepts = d * self._accepts + accepted
        self._fails = d * self._fails + (1 if accepted < drafted else 0)
        self._reach = [d * r for r in self._reach]
        self._acc = [d * a for a in self._acc]
        seen = [(i, i < accepted) for i in range(min(accepted + 1, drafted))]
        if guessed is not None and accepted >= drafted:
            seen.append((drafted, guessed))
        for i, ok in seen:
            if i < len(self._reach):
                self._reach[i] += 1
                self._acc[i] += 1 if ok else 0
                if timed:
                    self.reached[i] += 1
                    self.accepted[i] += 1 if ok else 0
        if not timed:
            return
        self.draft_ms = self._ewma(self.draft_ms, draft_ms / drafted)
        if predrafted:
            waited = max(draft_overhead_ms + draft_ms, 0.0)
            modelled = max(0.0, drafted * self.draft_ms - self.verify_ms)
            self.ahead_extra_ms = self._ewma(self.ahead_extra_ms, waited - modelled)
        else:
            self.link_ms = self._ewma(self.link_ms, max(draft_overhead_ms, 0.0))

    def _ewma(self, old: float, new: float) -> float:
        w = 1.0 - self.config.decay
        return (1 - w) * old + w * new
