"""What a placement would cost: predicted latency, cloud money and device energy — pure functions.

Inputs are the fleet snapshot's online estimates (see router.policy.estimates): per pool the time to first
token, per-token latency, verify-call time and accelerator milliseconds per token or per verify
pass; per device its token time, draft time, energy per token and round trip to the router; per
(device, pool) the acceptance rate α. Every figure is for the whole request of `n` new tokens.

The client sits on the device, so every placement pays the device's round trip to the router once
(the request and the stream back). EDGE pays it twice (the router calls back into the device).

TANDEM (router.tandem.loop with its head start): the first token is the cloud's — the replica
prefills the prompt while the device prefills it too and drafts γ + 1 tokens, so the time to first
token is CLOUD's; the rounds start when the device's block is in (a *stall* when the device's
prefill takes longer than the cloud's), and that block is round two's draft when its first token
was the target's (probability α). Then rounds of γ drafted tokens, E(γ) = (1 − α^(γ+1)) / (1 − α)
committed each: a round costs γ·a on the device plus the device round trip plus a verify call —
or, with overlap, only the verify call when the previous block was wholly accepted and its bonus
token guessed (probability h = α^(γ+1)): the next block was drafted meanwhile. The cloud runs
1 + (n − 1) / E(γ) target passes, so its accelerator time — and cost — shrinks by ≈E(γ) against CLOUD.
A request holds a share of a pool's slot: CLOUD a whole one, TANDEM its prefill and verify
passes' share of its duration (`slot_share`), which is what the pool's utilisation counts.
"""

from __future__ import annotations

import dataclasses
import math

from router.policy.costs import cloud_cost_usd
from router.fleet import PoolInfo


@dataclasses.dataclass(frozen=True)
class PoolEstimate:
    """A pool as the policy sees it: price, load and measured speed."""

    name: str
    pool: PoolInfo
    replica_id: str  # the replica a request would go to (least loaded)
    endpoint: str
    replicas: int  # live replicas
    utilisation: float  # requests in flight ÷ capacity, 0..1+
    ttft_ms: float  # router-observed time to first token (queueing included) of a one-token prompt…
    token_ms: float  # router-observed time per streamed token
    verify_ms: float  # a verify call, as the router sees it (no device link)
    compute_ms_per_token: float  # accelerator time per CLOUD token (what is billed)
    compute_ms_per_verify: float  # accelerator time per verify pass
    observations: int = 0  # requests measured so far (0: the figures are peers' or priors)
    prefill_ms_per_token: float = 0.0  # … plus this per prompt token

    def first_token_ms(self, prompt_tokens: int) -> float:
        return self.ttft_ms + self.prefill_ms_per_token * prompt_tokens

    @property
    def capacity(self) -> int:
        """Slots: requests the pool serves at once (utilisation is slots held ÷ this)."""
        return self.replicas * max(self.pool.slots_per_replica, 1)


@dataclasses.dataclass(frozen=True)
class DeviceEstimate:
    """The caller's device as the policy sees it."""

    worker_id: str
    endpoint: str
    battery_percent: float
    charging: bool
    has_battery: bool
    battery_capacity_j: float
    thermal: str
    energy_per_token_j: float
    prefill_energy_fraction: float
    rtt_ms: float  # device ↔ router
    ttft_ms: float  # EDGE time to first token on the device (link excluded) of a one-token prompt…
    token_ms: float  # EDGE time per token
    draft_ms: float  # time per drafted token
    last_seen: float  # registry clock
    inflight_energy_j: float = 0.0  # predicted energy of its requests still running (not yet in its battery)
    prefill_ms_per_token: float = 0.0  # … plus this per prompt token

    def first_token_ms(self, prompt_tokens: int) -> float:
        return self.ttft_ms + self.prefill_ms_per_token * prompt_tokens


@dataclasses.dataclass(frozen=True)
class RoundPrices:
    """What a TANDEM round costs in the policy's score units: per ms of its time, per target pass
    (cloud money) and per drafted token (device energy). The draft length minimises the round's
    price per committed token, price(γ) / E(γ); the default (time only) is the fastest γ."""

    per_ms: float = 1.0
    per_pass: float = 0.0
    per_draft: float = 0.0

    def of(self, drafted: float, round_time_ms: float) -> float:
        """The price of a round that takes `round_time_ms` and drafts `drafted` tokens (used or not)."""
        return self.per_ms * round_time_ms + self.per_pass + self.per_draft * drafted


FASTEST = RoundPrices()


@dataclasses.dataclass(frozen=True)
class Prediction:
    ttft_ms: float
    token_ms: float  # mean time per token after the first: (total − TTFT) / (n − 1)
    cost_usd: float
    energy_j: float
    gamma: int = 0  # TANDEM: the draft length the prediction assumes
    target_passes: float = 0.0
    slot_share: float = 0.0  # share of one pool slot held while it runs (CLOUD 1, EDGE 0)
    prices: RoundPrices = FASTEST  # TANDEM: what γ was chosen with (the session's controller gets them too)
    overlap: bool = False  # TANDEM: with run-ahead drafting

    def total_ms(self, n: int) -> float:
        return self.ttft_ms + max(n - 1, 0) * self.token_ms


def expected_tokens(alpha: float, gamma: int) -> float:
    """E(γ): tokens a round commits with per-token acceptance α (the last one is the target's)."""
    if alpha >= 1.0:
        return gamma + 1.0
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def round_ms(alpha: float, gamma: int, draft_ms: float, link_ms: float, verify_ms: float, overlap: bool) -> float:
    """Mean time of a TANDEM round: drafting and the device link, then the verify call — except,
    with overlap, after a hit (probability α^(γ+1)), when the block was drafted during the
    previous verify and only the part of its drafting that outlasted that verify is waited for."""
    full = gamma * draft_ms + link_ms + verify_ms
    if not overlap:
        return full
    hit = alpha ** (gamma + 1)
    return (1 - hit) * full + hit * max(verify_ms, gamma * draft_ms)




def blocks_ahead(gamma: int, draft_ms: float, link_ms: float, verify_ms: float, limit: int = 8) -> int:
    """Blocks a run-ahead device keeps in flight: the link over a hit round's time, plus one
    (router.tandem.control.DraftLengthController.blocks_ahead, over estimates)."""
    return max(1, min(limit, math.ceil(link_ms / max(verify_ms, gamma * draft_ms, 0.5)) + 1))


def dropped_ahead(alpha: float, gamma: int, draft_ms: float, link_ms: float, verify_ms: float) -> float:
    """Overlap's energy price: tokens a run-ahead device drafts past a block that then misses
    (probability 1 − α^(γ+1)) — as many as it drafts while the verdict travels back, up to the
    blocks it may keep ahead — and that are dropped."""
    if gamma <= 0:
        return 0.0
    ahead = min((gamma + 1) * blocks_ahead(gamma, draft_ms, link_ms, verify_ms),
                (link_ms + verify_ms) / max(draft_ms, 1e-3))
    return (1 - alpha ** (gamma + 1)) * ahead


def drafted_per_round(alpha: float, gamma: int, draft_ms: float, link_ms: float, verify_ms: float,
                      overlap: bool) -> float:
    return gamma + (dropped_ahead(alpha, gamma, draft_ms, link_ms, verify_ms) if overlap else 0.0)


def best_gamma(alpha: float, draft_ms: float, link_ms: float, verify_ms: float, max_gamma: int,
               overlap: bool = False, prices: RoundPrices = FASTEST) -> int:
    """The γ in [1, max_gamma] minimising a round's price per committed token (router.tandem.control
    minimises the same over its measured figures)."""
    per_token = [prices.of(drafted_per_round(alpha, g, draft_ms, link_ms, verify_ms, overlap),
                           round_ms(alpha, g, draft_ms, link_ms, verify_ms, overlap)) / expected_tokens(alpha, g)
                 for g in range(1, max_gamma + 1)]
    return per_token.index(min(per_token)) + 1


def predict_cloud(pool: PoolEstimate, n: int, client_rtt_ms: float, prompt_tokens: int) -> Prediction:
    compute = pool.compute_ms_per_token * n
    return Prediction(ttft_ms=client_rtt_ms + pool.first_token_ms(prompt_tokens), token_ms=pool.token_ms,
                      cost_usd=cloud_cost_usd(pool.pool, compute, n), energy_j=0.0, target_passes=float(n),
                      slot_share=1.0)


def prefill_energy(device: DeviceEstimate, prompt_tokens: int) -> float:
    return prompt_tokens * device.energy_per_token_j * device.prefill_energy_fraction


def predict_edge(device: DeviceEstimate, n: int, prompt_tokens: int) -> Prediction:
    energy = n * device.energy_per_token_j + prefill_energy(device, prompt_tokens)
    return Prediction(ttft_ms=2 * device.rtt_ms + device.first_token_ms(prompt_tokens), token_ms=device.token_ms,
                      cost_usd=0.0,
                      energy_j=energy)


def tandem_drafted_tokens(alpha: float, gamma: int, n: int, dropped_per_round: float = 0.0) -> float:
    """Tokens a TANDEM request of n drafts on the device: the head block (γ + 1), then γ per round
    for the rounds after the first token, less the round the head block serves when it matched,
    plus what overlap drafts ahead and drops (`dropped_per_round`, see dropped_ahead)."""
    if gamma <= 0:
        return 0.0
    rounds = math.ceil(max(n - 1, 0) / expected_tokens(alpha, gamma))
    return gamma + 1 + max(rounds - alpha, 0.0) * gamma + rounds * dropped_per_round


def predict_tandem(device: DeviceEstimate, pool: PoolEstimate, alpha: float, n: int, prompt_tokens: int,
                   max_gamma: int, energy_budget_j: float = 0.0, fixed_gamma: int = 0,
                   overlap: bool = True, prices: RoundPrices = FASTEST) -> Prediction:
    """γ is the fixed one, else the one best_gamma picks at `prices` — shortened so that the drafts fit the
    energy budget (0: none). γ = 0 (no budget left for drafting) is a prediction of no drafting:
    the cloud decodes every token."""
    a = max(device.draft_ms, 1e-3)
    gamma = fixed_gamma or best_gamma(alpha, a, device.rtt_ms, pool.verify_ms, max_gamma, overlap, prices)
    def drafted(g: int) -> float:
        dropped = dropped_ahead(alpha, g, a, device.rtt_ms, pool.verify_ms) if overlap else 0.0
        return tandem_drafted_tokens(alpha, g, n, dropped)

    if energy_budget_j > 0 and device.energy_per_token_j > 0:
        left = energy_budget_j - prefill_energy(device, prompt_tokens)
        while gamma > 0 and drafted(gamma) * device.energy_per_token_j > left:
            gamma -= 1
    e = expected_tokens(alpha, gamma)
    rest = max(n - 1, 0)
    rounds = rest / e
    r = round_ms(alpha, gamma, a, device.rtt_ms, pool.verify_ms, overlap) if gamma else pool.verify_ms
    # after the cloud's first token: wait for the device's head block (its link, prefill and γ + 1
    # drafts, begun when the cloud's prefill was), then the rounds — the first of which needs no
    # drafting when the head block matched
    pool_ttft = pool.first_token_ms(prompt_tokens)
    stall = max(0.0, device.rtt_ms + device.first_token_ms(prompt_tokens) + (gamma + 1) * a - pool_ttft) if gamma else 0.0
    after = stall + rounds * r - (alpha * (gamma * a + device.rtt_ms) if gamma and rest else 0.0)
    after = max(after, rounds * pool.verify_ms)
    passes = 1 + rounds
    energy = drafted(gamma) * device.energy_per_token_j + prefill_energy(device, prompt_tokens)
    total = device.rtt_ms + pool_ttft + after
    busy = pool_ttft + rounds * pool.verify_ms
    return Prediction(ttft_ms=device.rtt_ms + pool_ttft, token_ms=after / rest if rest else 0.0,
                      cost_usd=cloud_cost_usd(pool.pool, passes * pool.compute_ms_per_verify, n), energy_j=energy,
                      gamma=gamma, target_passes=passes, slot_share=min(1.0, busy / max(total, 1e-6)),
                      prices=prices, overlap=overlap)
