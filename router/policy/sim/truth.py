"""What actually happens to a placed request in the simulated world: latency, cloud accelerator
time, device energy — and what the router would measure of it.

The truth differs from the policy's model (router.policy.predict, router.tandem.speculation) on
purpose, in the ways real fleets do:

- TANDEM acceptance is random, token by token: each request has its own acceptance around the
  device's mean, falling with the position in a round (router.policy.sim.scenario.AcceptanceModel),
  and the rounds are played out one by one — accepted prefixes, bonus guesses, run-ahead blocks
  dropped after a miss — instead of taking the model's expectations;
- a request's link round trip is jittered around its device's, and a device in a thermal episode
  runs slower;
- a TANDEM request behind its per-token SLO is handed over to its pool (the pace guard), as the
  router does, at the pool's price;
- a pool slows with its utilisation, m(ρ) = 1 + k·ρ/(1 − min(ρ, 0.95)), and queues requests when
  every slot is taken.

Simplifications (deliberate): a device serves concurrent requests without slowing down; a block
drafted ahead keeps the γ it was drafted with only through the controller's choice of the next.
"""

from __future__ import annotations

import dataclasses
import random

from router.policy.sim.scenario import PoolModel
from router.tandem.control import DraftLengthController
from router.tandem.pace import PaceGuard
from router.tandem.speculation import RoundModel


def latency_multiplier(rho: float, k: float) -> float:
    """m(ρ) = 1 + k·ρ/(1 − min(ρ, 0.95)): how much a pool at utilisation ρ slows a request down."""
    return 1.0 + k * rho / (1.0 - min(rho, 0.95))


@dataclasses.dataclass(frozen=True)
class DeviceSpeed:
    """A device's truth at the moment a request runs (thermal slowdown applied)."""

    token_ms: float
    draft_ms: float
    prefill_ms_per_token: float
    energy_per_token_j: float
    prefill_fraction: float  # a prompt token's energy ÷ a generated one's

    def ttft_ms(self, prompt_tokens: int) -> float:
        return prompt_tokens * self.prefill_ms_per_token + self.token_ms

    def prefill_energy_j(self, prompt_tokens: int) -> float:
        return prompt_tokens * self.energy_per_token_j * self.prefill_fraction


@dataclasses.dataclass(frozen=True)
class Happened:
    """What actually happened to a served request (times as the client sees them), and what the
    router measured of it (router.policy.outcome.Outcome is built from these)."""

    ttft_ms: float
    token_ms: float
    total_ms: float  # arrival → last token (a queue wait is inside ttft)
    energy_j: float  # device energy
    compute_ms: float  # accelerator time billed
    share: float  # cloud slots held while it runs (CLOUD 1; TANDEM its passes' share)
    router_ttft_ms: float = 0.0  # EDGE: with the device link; CLOUD and TANDEM: queue + pool
    first_compute_ms: float = 0.0  # accelerator time of the first pass (it prefilled)
    # TANDEM, as the session measured it
    rounds: int = 0
    drafted: int = 0
    accepted: tuple[int, ...] = ()  # per drafted position: rounds that accepted it …
    reached: tuple[int, ...] = ()  # … of the rounds that reached it
    draft_ms: float = 0.0
    link_ms: float = 0.0  # the device's link as the rounds paid it
    verify_call_ms: float = 0.0
    handed: int = 0  # tokens the pool decoded alone after the pace guard handed the request over
    handed_compute_ms: float = 0.0  # … and their accelerator time (in compute_ms)


def edge_truth(n: int, prompt_tokens: int, rtt_ms: float, dev: DeviceSpeed) -> Happened:
    """EDGE: the client calls the router and the router the device (2 round trips); the device
    prefills, then generates every token."""
    dev_ttft = dev.ttft_ms(prompt_tokens)
    ttft = 2 * rtt_ms + dev_ttft
    return Happened(
        ttft_ms=ttft,
        token_ms=dev.token_ms,
        total_ms=ttft + (n - 1) * dev.token_ms,
        energy_j=n * dev.energy_per_token_j + dev.prefill_energy_j(prompt_tokens),
        compute_ms=0.0,
        share=0.0,
        router_ttft_ms=rtt_ms + dev_ttft,
    )


def cloud_truth(
    n: int, prompt_tokens: int, rtt_ms: float, pool: PoolModel, m: float, wait_ms: float
) -> Happened:
    """CLOUD: one client round trip; the pool's time to first token and per token stretched by m(ρ);
    a queue wait when every slot was taken. Bills n tokens of accelerator time."""
    pool_ttft = (pool.ttft_ms + pool.prefill_ms_per_token * prompt_tokens) * m
    token = pool.token_ms * m
    ttft = rtt_ms + wait_ms + pool_ttft
    return Happened(
        ttft_ms=ttft,
        token_ms=token,
        total_ms=ttft + (n - 1) * token,
        energy_j=0.0,
        compute_ms=n * pool.compute_ms_per_token,
        share=1.0,
        router_ttft_ms=wait_ms + pool_ttft,
        first_compute_ms=pool.compute_ms_per_token,
    )


def tandem_truth(
    n: int,
    prompt_tokens: int,
    rtt_ms: float,
    betas: tuple[float, ...],
    control: DraftLengthController,
    dev: DeviceSpeed,
    pool: PoolModel,
    m: float,
    wait_ms: float,
    verify_compute_factor: float,
    rng: random.Random,
    token_slo_ms: float = 0.0,
    predicted_token_ms: float = 0.0,
) -> Happened:
    """TANDEM as router.tandem.loop runs it, played out round by round with random acceptance
    (`betas`: this request's true profile) and the session's own draft-length controller
    (`control`, as the router builds it from the decision: it picks each round's γ and learns from
    the rounds, and its `overlap` says whether the device drafts ahead). Head start: the pool
    prefills and sends the first token while the device prefills and drafts γ + 1 tokens; that
    block is the second round's draft when its first token was the target's, else the device
    drafts anew. Each round drafts γ (the device's time plus its link) and verifies them (one
    pass); with overlap a round after a hit waits only for the verify call and the drafting that
    outlasted it, and after a miss the blocks drafted ahead are dropped. With a per-token SLO the
    pace guard (router.tandem.pace) hands a request that falls behind over to the pool, which
    decodes the rest alone after prefilling the context. The acceptance counts the router learns
    from are the controller's."""
    a, verify = dev.draft_ms, pool.verify_ms * m
    truth = RoundModel(betas, a, rtt_ms, verify)
    overlap = control.overlap
    pool_ttft = (pool.ttft_ms + pool.prefill_ms_per_token * prompt_tokens) * m
    ttft = rtt_ms + wait_ms + pool_ttft
    produced, rounds, drafted, dropped, after = 1, 0, 0, 0.0, 0.0
    handover_ms = (pool.ttft_ms + pool.prefill_ms_per_token * (prompt_tokens + n / 2)) * m
    guard = PaceGuard(token_slo_ms, n, pool.token_ms * m, handover_ms, predicted_token_ms)
    handed = 0  # tokens the cloud decoded alone after a hand-over
    head = control.next_gamma(n) if n > 1 else 0
    if head:
        drafted = head + 1  # the head block
        after = max(0.0, rtt_ms + dev.ttft_ms(prompt_tokens) + (head + 1) * a - pool_ttft)  # a stall
        stall = after
        # its first token was the target's: the rest is round two's draft
        pending = head if rng.random() < truth.beta(1) else 0
        if not pending:
            control.spend((head + 1) * dev.energy_per_token_j)
        prev_hit = False
        while produced < n:
            g = control.next_gamma(n - produced)
            if g <= 0:  # the last token: a plain verify step
                after += verify
                produced, rounds = produced + 1, rounds + 1
                control.observe(0, 0, 0.0, 0.0, verify)
                continue
            timed, ahead = not pending, prev_hit
            # the round's device energy, as the loop counts it: a block drafted for it, or the
            # whole head block whose continuation it verifies
            energy = g * dev.energy_per_token_j if timed else (head + 1) * dev.energy_per_token_j
            if pending:
                g, wait, pending = min(g, pending), 0.0, 0
            else:
                wait = max(0.0, g * a - verify) if prev_hit else g * a + rtt_ms
                drafted += g
            k = 0
            while k < g and rng.random() < truth.beta(k + 1):
                k += 1
            guessed = overlap and k == g and rng.random() < truth.beta(g + 1)
            prev_hit = guessed
            if overlap and not prev_hit:
                ahead = min((g + 1) * control.blocks_ahead(g), (rtt_ms + verify) / max(a, 1e-3))
                dropped += ahead
                control.spend(ahead * dev.energy_per_token_j)  # drafted ahead and dropped: spent all the same
            control.observe(
                g,
                k,
                g * a,
                wait - g * a,
                verify,
                energy,
                predrafted=ahead,
                timed=timed,
                guessed=guessed if overlap and k == g else None,
            )
            after += wait + verify
            produced, rounds = produced + k + 1, rounds + 1
            if guard.behind(after, produced - 1, (after - stall) / (produced - 1)):
                handed = n - produced
                after += handover_ms + handed * pool.token_ms * m
                produced = n
    else:
        rounds = max(n - 1, 0)
        after = rounds * verify
    rest = max(n - 1, 0)
    total = ttft + after
    return Happened(
        ttft_ms=ttft,
        token_ms=after / rest if rest else 0.0,
        total_ms=total,
        energy_j=(drafted + dropped) * dev.energy_per_token_j + dev.prefill_energy_j(prompt_tokens),
        compute_ms=pool.compute_ms_per_token * (1 + rounds * verify_compute_factor + handed),
        share=min(1.0, (pool_ttft + rounds * verify) / max(total - wait_ms, 1e-9)),
        router_ttft_ms=wait_ms + pool_ttft,
        first_compute_ms=pool.compute_ms_per_token,
        rounds=rounds,
        drafted=drafted,
        accepted=tuple(control.accepted) if head else (),
        reached=tuple(control.reached) if head else (),
        draft_ms=a,
        link_ms=rtt_ms if head else 0.0,
        verify_call_ms=verify,
        handed=handed,
        handed_compute_ms=handed * pool.compute_ms_per_token,
    )
