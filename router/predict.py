"""What a placement would cost: predicted latency, cloud money and device energy — pure functions.

Inputs are the fleet snapshot's online estimates (see router.estimates): per pool the time to first
token, per-token latency, verify-call time and accelerator milliseconds per token or per verify
pass; per device its token time, draft time, energy per token and round trip to the router; per
(device, pool) the acceptance rate α. Every figure is for the whole request of `n` new tokens.

The client sits on the device, so every placement pays the device's round trip to the router once
(the request and the stream back). EDGE pays it twice (the router calls back into the device).
TANDEM: γ drafted tokens per round, E(γ) = (1 − α^(γ+1)) / (1 − α) committed per round, a round
costs γ·a on the device plus the device round trip plus a verify call; the cloud runs n / E(γ)
target passes, so its accelerator time — and cost — shrinks by E(γ) against CLOUD.
"""

from __future__ import annotations

import dataclasses
import math

from router.costs import cloud_cost_usd
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
    ttft_ms: float  # router-observed time to first token (queueing and prefill included)
    token_ms: float  # router-observed time per streamed token
    verify_ms: float  # a verify call, as the router sees it (no device link)
    compute_ms_per_token: float  # accelerator time per CLOUD token (what is billed)
    compute_ms_per_verify: float  # accelerator time per verify pass
    observations: int = 0  # requests measured so far (0: the figures are peers' or priors)


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
    ttft_ms: float  # EDGE time to first token on the device (prefill included, link excluded)
    token_ms: float  # EDGE time per token
    draft_ms: float  # time per drafted token
    last_seen: float  # registry clock


@dataclasses.dataclass(frozen=True)
class Prediction:
    ttft_ms: float
    token_ms: float
    cost_usd: float
    energy_j: float
    gamma: int = 0  # TANDEM: the draft length the prediction assumes
    target_passes: float = 0.0

    def total_ms(self, n: int) -> float:
        return self.ttft_ms + max(n - 1, 0) * self.token_ms


def expected_tokens(alpha: float, gamma: int) -> float:
    """E(γ): tokens a round commits with per-token acceptance α (the last one is the target's)."""
    if alpha >= 1.0:
        return gamma + 1.0
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def best_gamma(alpha: float, draft_ms: float, round_ms: float, max_gamma: int) -> int:
    """The γ in [1, max_gamma] maximising E(γ) / (γ·a + C)."""
    rates = [expected_tokens(alpha, g) / max(g * draft_ms + round_ms, 1e-6) for g in range(1, max_gamma + 1)]
    return rates.index(max(rates)) + 1


def predict_cloud(pool: PoolEstimate, n: int, client_rtt_ms: float) -> Prediction:
    compute = pool.compute_ms_per_token * n
    return Prediction(ttft_ms=client_rtt_ms + pool.ttft_ms, token_ms=pool.token_ms,
                      cost_usd=cloud_cost_usd(pool.pool, compute, n), energy_j=0.0, target_passes=float(n))


def prefill_energy(device: DeviceEstimate, prompt_tokens: int) -> float:
    return prompt_tokens * device.energy_per_token_j * device.prefill_energy_fraction


def predict_edge(device: DeviceEstimate, n: int, prompt_tokens: int) -> Prediction:
    energy = n * device.energy_per_token_j + prefill_energy(device, prompt_tokens)
    return Prediction(ttft_ms=2 * device.rtt_ms + device.ttft_ms, token_ms=device.token_ms, cost_usd=0.0,
                      energy_j=energy)


def predict_tandem(device: DeviceEstimate, pool: PoolEstimate, alpha: float, n: int, prompt_tokens: int,
                   max_gamma: int, energy_budget_j: float = 0.0, fixed_gamma: int = 0) -> Prediction:
    """γ is the fixed one, else the rate-optimal one — shortened so that the drafts fit the
    energy budget (0: none). γ = 0 (no budget left for drafting) is a prediction of no drafting."""
    a = max(device.draft_ms, 1e-3)
    round_ms = device.rtt_ms + pool.verify_ms
    gamma = fixed_gamma or best_gamma(alpha, a, round_ms, max_gamma)
    if energy_budget_j > 0 and device.energy_per_token_j > 0:
        left = energy_budget_j - prefill_energy(device, prompt_tokens)
        while gamma > 0 and math.ceil(n / expected_tokens(alpha, gamma)) * gamma * device.energy_per_token_j > left:
            gamma -= 1
    e = expected_tokens(alpha, gamma)
    rounds = n / e
    compute = rounds * pool.compute_ms_per_verify
    energy = math.ceil(rounds) * gamma * device.energy_per_token_j + prefill_energy(device, prompt_tokens)
    # the first token arrives with the first round: the device prefills and drafts, the cloud prefills and verifies
    ttft = device.rtt_ms + device.ttft_ms + gamma * a + device.rtt_ms + pool.ttft_ms
    return Prediction(ttft_ms=ttft, token_ms=(gamma * a + round_ms) / e,
                      cost_usd=cloud_cost_usd(pool.pool, compute, n), energy_j=energy, gamma=gamma,
                      target_passes=rounds)
