"""What a placement would cost: predicted latency, cloud money and device energy — pure functions.

Inputs are the fleet snapshot's online estimates (see router.policy.estimates): per pool the time to first
token, per-token latency, verify-call time and accelerator milliseconds per token or per verify
pass; per device its token time, draft time, energy per token and round trip to the router; per
(device, pool) the acceptance profile β_i. Every figure is for the whole request of `n` new tokens.

The client sits on the device, so every placement pays the device's round trip to the router once
(the request and the stream back). EDGE pays it twice (the router calls back into the device).

TANDEM (router.tandem.loop with its head start): the first token is the cloud's — the replica
prefills the prompt while the device prefills it too and drafts γ + 1 tokens, so the time to first
token is CLOUD's; the rounds start when the device's block is in (a *stall* when the device's
prefill takes longer than the cloud's), and that block is round two's draft when its first token
was the target's (probability β_1). Then rounds of γ drafted tokens, each committing E(γ) and
taking the round time of the speculation cost model (router.tandem.speculation: drafting, the
device's link and the verify call — or, with overlap after a hit, little more than the verify
call). The cloud runs 1 + (n − 1) / E(γ) target passes, so its accelerator time — and cost —
shrinks by ≈E(γ) against CLOUD.
A request holds a share of a pool's slot: CLOUD a whole one, TANDEM its prefill and verify
passes' share of its duration (`slot_share`), which is what the pool's utilisation counts.
"""

from __future__ import annotations

import dataclasses
import math

from router.fleet import PoolInfo
from router.policy.costs import cloud_cost_usd
from router.tandem.speculation import FASTEST, RoundModel, RoundPrices


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
    link_ms: float = 0.0  # a draft call's overhead as TANDEM rounds pay it (0: the round trip, rtt_ms)
    ahead_extra_ms: float = 0.0  # what run-ahead blocks keep a round waiting beyond the modelled overlap
    inflight_energy_j: float = 0.0  # predicted energy of its requests still running (not yet in its battery)
    prefill_ms_per_token: float = 0.0  # … plus this per prompt token

    def first_token_ms(self, prompt_tokens: int) -> float:
        return self.ttft_ms + self.prefill_ms_per_token * prompt_tokens


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
    model: RoundModel | None = (
        None  # TANDEM: the round model predicted with (the session's controller's prior)
    )
    # the variance of log(actual ÷ predicted) per-token time that the model itself knows of (TANDEM:
    # how many tokens its rounds commit, hits and misses); the rest is learned (router.policy.estimates)
    token_var: float = 0.0

    @property
    def overlap(self) -> bool:
        """TANDEM: with run-ahead drafting."""
        return self.model is not None and self.model.overlap

    def total_ms(self, n: int) -> float:
        return self.ttft_ms + max(n - 1, 0) * self.token_ms


def predict_cloud(pool: PoolEstimate, n: int, client_rtt_ms: float, prompt_tokens: int) -> Prediction:
    compute = pool.compute_ms_per_token * n
    return Prediction(
        ttft_ms=client_rtt_ms + pool.first_token_ms(prompt_tokens),
        token_ms=pool.token_ms,
        cost_usd=cloud_cost_usd(pool.pool, compute, n),
        energy_j=0.0,
        target_passes=float(n),
        slot_share=1.0,
    )


def prefill_energy(device: DeviceEstimate, prompt_tokens: int) -> float:
    return prompt_tokens * device.energy_per_token_j * device.prefill_energy_fraction


def predict_edge(device: DeviceEstimate, n: int, prompt_tokens: int) -> Prediction:
    energy = n * device.energy_per_token_j + prefill_energy(device, prompt_tokens)
    return Prediction(
        ttft_ms=2 * device.rtt_ms + device.first_token_ms(prompt_tokens),
        token_ms=device.token_ms,
        cost_usd=0.0,
        energy_j=energy,
    )


def tandem_drafted_tokens(model: RoundModel, gamma: int, n: int) -> float:
    """Tokens a TANDEM request of n drafts on the device: the head block (γ + 1), then γ per round
    for the rounds after the first token, less the round the head block serves when its first token
    was the target's (probability β_1), plus what overlap drafts ahead and drops."""
    if gamma <= 0:
        return 0.0
    rounds = math.ceil(max(n - 1, 0) / model.expected_tokens(gamma))
    return gamma + 1 + max(rounds - model.beta(1), 0.0) * gamma + rounds * model.dropped_ahead(gamma)


def round_model(
    device: DeviceEstimate, pool: PoolEstimate, betas: tuple[float, ...], overlap: bool
) -> RoundModel:
    """The cost model of a TANDEM round between `device` and `pool`: the device's draft time, its
    link as rounds pay it (what its sessions measured, else its round trip to the router) and the
    pool's verify call."""
    return RoundModel(
        betas=betas,
        draft_ms=max(device.draft_ms, 1e-3),
        link_ms=device.link_ms or device.rtt_ms,
        verify_ms=pool.verify_ms,
        overlap=overlap,
        ahead_extra_ms=device.ahead_extra_ms,
    )


def predict_tandem(
    device: DeviceEstimate,
    pool: PoolEstimate,
    betas: tuple[float, ...],
    n: int,
    prompt_tokens: int,
    max_gamma: int,
    energy_budget_j: float = 0.0,
    fixed_gamma: int = 0,
    overlap: bool = True,
    prices: RoundPrices = FASTEST,
) -> Prediction:
    """γ is the fixed one, else the model's best at `prices` — shortened so that the drafts fit the
    energy budget (0: none). γ = 0 (no budget left for drafting) is a prediction of no drafting:
    the cloud decodes every token. `betas`: the device's acceptance profile with this pool."""
    model = round_model(device, pool, betas, overlap)
    a = model.draft_ms
    gamma = fixed_gamma or model.best_gamma(max_gamma, prices)
    if energy_budget_j > 0 and device.energy_per_token_j > 0:
        left = energy_budget_j - prefill_energy(device, prompt_tokens)
        while gamma > 0 and tandem_drafted_tokens(model, gamma, n) * device.energy_per_token_j > left:
            gamma -= 1
    rest = max(n - 1, 0)
    e = model.expected_tokens(gamma)
    rounds = rest / e
    r = model.round_ms(gamma) if gamma else pool.verify_ms
    # after the cloud's first token: wait for the device's head block (its link, prefill and γ + 1
    # drafts, begun when the cloud's prefill was), then the rounds — the first of which needs no
    # drafting when the head block matched (probability β_1)
    pool_ttft = pool.first_token_ms(prompt_tokens)
    stall = (
        max(0.0, model.link_ms + device.first_token_ms(prompt_tokens) + (gamma + 1) * a - pool_ttft)
        if gamma
        else 0.0
    )
    after = stall + rounds * r - (model.beta(1) * (gamma * a + model.link_ms) if gamma and rest else 0.0)
    after = max(after, rounds * pool.verify_ms)
    passes = 1 + rounds
    energy = tandem_drafted_tokens(model, gamma, n) * device.energy_per_token_j + prefill_energy(
        device, prompt_tokens
    )
    total = device.rtt_ms + pool_ttft + after
    busy = pool_ttft + rounds * pool.verify_ms
    token_var = 0.0
    if gamma and rounds >= 1:
        token_var = (
            model.tokens_variance(gamma) / e**2 + model.round_ms_variance(gamma) / max(r, 1e-6) ** 2
        ) / rounds
    return Prediction(
        ttft_ms=device.rtt_ms + pool_ttft,
        token_ms=after / rest if rest else 0.0,
        cost_usd=cloud_cost_usd(pool.pool, passes * pool.compute_ms_per_verify, n),
        energy_j=energy,
        gamma=gamma,
        target_passes=passes,
        slot_share=min(1.0, busy / max(total, 1e-6)),
        prices=prices,
        model=model,
        token_var=token_var,
    )
