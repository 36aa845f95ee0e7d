"""The routing policy: (request, fleet snapshot, policy config, now) → Decision. Pure.

A pipeline of small named stages (llm-d's filters → scorers → picker):

1. candidates (router.policy.candidates): EDGE on the caller's device, CLOUD on each pool, TANDEM
   on the device with each pool, each with its prediction (router.policy.predict);
2. hard rules (router.policy.rules.HARD_RULES): the first that applies excludes a candidate, and
   its text is the reason — privacy and device-only hints, no device, TANDEM disabled, quality,
   the device's thermal state, staleness, battery reserve and energy, the request's energy
   budget, the pool's price ceiling and load, the cost ceiling;
3. soft rules (router.policy.narrowing.SOFT_RULES): the SLOs (with headroom), then the placement
   preference — each narrows the survivors but never to nobody;
4. scoring (router.policy.scoring): cost, latency and battery terms in the request's own units;
5. the pick: the lowest score; ties go to a pool not measured yet (trying it is how the router
   learns it), then to the large model's output, then to the cheaper.

No survivor → FailedPrecondition listing every candidate's exclusion (ResourceExhausted when a
saturated pool was among the placements that could have served it: overload, not a constraint).
"""

from __future__ import annotations

import math

from router.policy.candidates import Option, predicted_options
from router.policy.config import PolicyConfig
from router.policy.context import DecisionContext
from router.policy.narrowing import SOFT_RULES
from router.policy.placement import Decision, Placement, Preference, RouteRequest
from router.policy.predict import prefill_energy
from router.policy.rules import apply_hard_rules, energy_headroom_j
from router.policy.scoring import Scales
from router.policy.snapshot import FleetSnapshot
from tandem.errors import FailedPrecondition, ResourceExhausted

# tie-break among equal scores: the large model's output first, then the cheaper
NO_DRAFTING_CAP_J = 1e-9  # an energy cap with nothing left for drafting (0 means no cap)
_TIE_ORDER = {Placement.TANDEM: 0, Placement.CLOUD: 1, Placement.EDGE: 2}


def decide(
    req: RouteRequest, snap: FleetSnapshot, policy: PolicyConfig, now: float, policy_version: int = 0
) -> Decision:
    """Choose where `req` runs (module docstring). Raises FailedPrecondition or ResourceExhausted."""
    ctx = DecisionContext.of(req, snap, policy, now)
    options, scales = predicted_options(ctx)
    apply_hard_rules(options, ctx)
    alive = [o for o in options if not o.excluded]
    for soft_rule in SOFT_RULES:
        alive = soft_rule(alive, ctx)
    score(alive, scales, policy)
    return pick(options, rank(alive), ctx, policy_version)


def score(alive: list[Option], scales: Scales, policy: PolicyConfig) -> None:
    for o in alive:
        assert o.prediction is not None  # every rule-surviving option was predicted
        c, t, e = scales.terms(o.prediction, policy)
        o.score = c + t + e
        o.detail = f"score {o.score:.3f} = cost {c:.3f} + latency {t:.3f} + battery {e:.3f}"


def rank(alive: list[Option]) -> list[Option]:
    """Best first (module docstring, step 5)."""
    return sorted(
        alive,
        key=lambda o: (
            round(o.score, 9),
            o.pool.observations if o.pool else 0,
            _TIE_ORDER[o.placement],
            o.prediction.cost_usd if o.prediction else 0.0,
        ),
    )


def pick(options: list[Option], ranked: list[Option], ctx: DecisionContext, policy_version: int) -> Decision:
    """The decision for the best of `ranked`, explained; raises when there is none."""
    if not ranked:
        reasons = "; ".join(f"{o.label}: {o.excluded}" for o in options)
        if any(o.rule == "saturated" for o in options):
            raise ResourceExhausted(
                f"every placement that could serve the request is saturated now: {reasons}"
            )
        raise FailedPrecondition(f"no placement can serve the request: {reasons}")
    req, d = ctx.req, ctx.device
    best, p = ranked[0], ranked[0].prediction
    assert p is not None
    why = [f"{best.label} {best.detail}"]
    if len(ranked) > 1:
        why.append(f"next {ranked[1].label} {ranked[1].score:.3f}")
    want = req.preference.preferred
    if req.device_only:
        rule = "device_only"
        why.insert(0, f"{ctx.why_device_only}: stays on the device")
    elif want is not None and best.placement is want:
        rule = "preference"
        why.insert(0, f"placement {req.preference.upper()}")
    else:
        rule = "only_candidate" if len(ranked) == 1 else "score"
        if req.preference is Preference.ONLY_CLOUD:
            why.insert(0, "placement ONLY_CLOUD")
    on_device = best.placement.on_device and d is not None
    prefill = prefill_energy(d, ctx.prompt_tokens) if on_device else 0.0
    cap = energy_cap(ctx, prefill) if best.placement is Placement.TANDEM else 0.0
    return Decision(
        rule=rule,
        placement=best.placement,
        reason="; ".join(why),
        edge_worker_id=d.worker_id if on_device else "",
        edge_endpoint=d.endpoint if on_device else "",
        pool=best.pool.name if best.pool else "",
        cloud_worker_id=best.pool.replica_id if best.pool else "",
        cloud_endpoint=best.pool.endpoint if best.pool else "",
        initial_draft_length=p.gamma,
        candidates=tuple(o.candidate(ctx) for o in options),
        policy_version=policy_version,
        predicted_cost_usd=p.cost_usd,
        predicted_ttft_ms=p.ttft_ms,
        predicted_token_ms=p.token_ms,
        predicted_energy_j=p.energy_j,
        predicted_slot_share=p.slot_share,
        predicted_token_var=p.token_var,
        draft_prices=p.prices,
        draft_model=p.model,
        energy_cap_j=cap,
        held_energy_j=held_energy(p.energy_j, cap, prefill, ctx.policy),
    )


def energy_cap(ctx: DecisionContext, prefill_j: float) -> float:
    """What a TANDEM session may spend drafting on the device (0: no cap): the request's energy
    budget, and the battery's headroom above its reserve (router.policy.rules.energy_headroom_j)
    over the policy's energy margin (the battery drains meanwhile, and blocks drafted ahead are
    counted once dropped), the lower — less the prompt's prefill, which the session's controller
    does not count. A cap with nothing left for drafting is a tiny positive one (0 would be none)."""
    caps = [ctx.req.max_device_energy_joules]
    if ctx.device is not None:
        caps.append(energy_headroom_j(ctx.device, ctx.policy) / ctx.policy.energy_margin)
    finite = [c for c in caps if 0 < c < math.inf]
    if not finite:
        return 0.0
    return max(min(finite) - prefill_j, NO_DRAFTING_CAP_J)


def held_energy(predicted_j: float, cap_j: float, prefill_j: float, policy: PolicyConfig) -> float:
    """The device energy a request holds against its battery while it runs: its prediction, and for
    a capped TANDEM session up to what its cap lets it spend (prefill included), at most the
    prediction × the energy margin — so that concurrent sessions' caps do not share the same
    headroom, while a generous cap far above the prediction does not lock the battery away."""
    if cap_j <= 0:
        return predicted_j
    return max(predicted_j, min(cap_j + prefill_j, predicted_j * policy.energy_margin))
