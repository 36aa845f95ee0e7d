"""The routing policy: (request, fleet snapshot, policy config, now) → Decision. Pure.

Candidates: EDGE on the caller's device, CLOUD on each pool, TANDEM on the device with each pool.
Each gets a prediction (router.policy.predict) and then, in order:

1. Hard rules — the first that applies excludes the candidate, and its text is the reason:
   privacy LOCAL_ONLY and ONLY_DEVICE keep everything on the device; ONLY_CLOUD never drafts on it;
   no registered device; thermal critical (no device work at all); device state older than
   max_device_state_age_s at `now`; a battery below the reserve and
   not charging (no EDGE, no drafting — unless the request insists on the device: ONLY_DEVICE);
   predicted device energy (× margin), on top of what the device's requests in flight will spend,
   that would take the battery below the reserve; the request's device energy
   budget; EDGE when the small model's quality does not suffice (it does with QUALITY_SMALL_OK, a
   device-only request, PREFER_DEVICE, or a short request per the policy); TANDEM disabled; a pool
   that is dearer than the price ceiling or saturated; a predicted cost above the cost ceiling.
2. SLOs: a candidate predicted to miss the TTFT or per-token SLO (scaled by slo_headroom) is dropped
   when another meets both; when none does, the SLOs as they are.
3. Preference: PREFER_DEVICE picks EDGE, PREFER_CLOUD a CLOUD and PREFER_TANDEM a TANDEM candidate
   when one survived.
4. Score (lower wins): cost_weight·cost/C + latency_weight·(time/T − 1) + battery_weight·pressure·energy/J,
   where C is the cost of the cheapest plain-CLOUD run, T the fastest plain run's (CLOUD or EDGE,
   excluded or not: the scales do not depend on who survived) total time and J the energy of the
   whole request on the device; pressure = ((100 − charge)/(100 − reserve))² clamped to [0, 1], 0
   while charging or without a battery. TANDEM's draft length and overlap are chosen by the same
   prices (router.policy.predict.RoundPrices), among the variants that meet the SLOs.

No survivor → FailedPrecondition listing every candidate's exclusion.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

from router.policy.placement import (LOCAL_ONLY, ONLY_CLOUD, ONLY_DEVICE, PREFER_CLOUD, PREFER_DEVICE, PREFER_TANDEM,
                              Candidate, Decision, RouteRequest)
from router.policy.config import PolicyConfig
from router.policy.costs import cloud_cost_usd
from router.policy.predict import (FASTEST, DeviceEstimate, PoolEstimate, Prediction, RoundPrices, predict_cloud,
                            predict_edge, predict_tandem)
from tandem.errors import FailedPrecondition, ResourceExhausted


@dataclasses.dataclass(frozen=True)
class FleetSnapshot:
    """What the policy may look at: the caller's device (None: not registered) and the pools."""

    device: DeviceEstimate | None
    pools: tuple[PoolEstimate, ...]
    acceptance: Mapping[str, float] = dataclasses.field(default_factory=dict)  # pool → α for this device
    chars_per_token: float = 0.0  # measured over the fleet's prompts (0: the policy's prior)


def prompt_tokens_estimate(req: RouteRequest, snap: FleetSnapshot, policy: PolicyConfig) -> int:
    """The prompt's length in tokens, before it is tokenized: its characters ÷ characters per token."""
    return max(1, round(req.prompt_chars / (snap.chars_per_token or policy.prompt_chars_per_token)))


@dataclasses.dataclass
class _Option:
    placement: str
    pool: PoolEstimate | None
    prediction: Prediction | None = None
    excluded: str = ""
    rule: str = ""  # short key of the exclusion (metrics label)
    score: float = 0.0
    detail: str = ""

    def exclude(self, rule: str, why: str) -> None:
        self.rule, self.excluded = rule, why

    @property
    def label(self) -> str:
        return self.placement.upper() + (f"[{self.pool.name}]" if self.pool else "")


def battery_pressure(device: DeviceEstimate, policy: PolicyConfig) -> float:
    """0 (full, charging or mains) … 1 (at or below the reserve): how much device energy matters.
    Quadratic in the share of the usable charge spent, so it stays low while the battery is full."""
    if device.charging or not device.has_battery:
        return 0.0
    room = 100.0 - policy.battery_reserve_percent
    return min(1.0, max(0.0, (100.0 - device.battery_percent) / room)) ** 2


def energy_headroom_j(device: DeviceEstimate, policy: PolicyConfig) -> float:
    """Joules the device may spend before its battery falls to the reserve (inf while charging):
    its reported charge above the reserve, less what its requests in flight are predicted to spend
    (the battery it reported does not show them yet)."""
    if device.charging or not device.has_battery:
        return float("inf")
    capacity = device.battery_capacity_j or policy.default_battery_capacity_joules
    above = (device.battery_percent - policy.battery_reserve_percent) / 100.0 * capacity
    return max(0.0, above - device.inflight_energy_j)


def small_model_ok(req: RouteRequest, policy: PolicyConfig) -> tuple[bool, str]:
    if req.quality == "large_required":
        return False, "quality LARGE_REQUIRED: EDGE output is the small model's"
    if req.quality == "small_ok":
        return True, "quality SMALL_OK"
    if req.privacy == LOCAL_ONLY or req.preference in (ONLY_DEVICE, PREFER_DEVICE):
        return True, "the request asks for the device"
    if policy.small_ok_max_new_tokens and req.max_new_tokens <= policy.small_ok_max_new_tokens:
        return True, f"short request ({req.max_new_tokens} <= {policy.small_ok_max_new_tokens} tokens)"
    return False, ("quality unspecified: EDGE output is the small model's and the request is not short"
                   + (f" (> {policy.small_ok_max_new_tokens} tokens)" if policy.small_ok_max_new_tokens else ""))


def _device_rule(opt: _Option, req: RouteRequest, d: DeviceEstimate, policy: PolicyConfig, insists: bool,
                 now: float) -> tuple[str, str] | None:
    """The first hard rule about the device that excludes `opt` (EDGE or TANDEM): (key, reason)."""
    if d.thermal == "critical":
        return "thermal", f"device {d.worker_id} is thermally critical: no device work"
    if now - d.last_seen > policy.max_device_state_age_s:
        return "stale_device", f"device {d.worker_id}'s state is {now - d.last_seen:.0f} s old: its battery is unknown"
    low = d.has_battery and not d.charging and d.battery_percent < policy.battery_reserve_percent
    if low and not insists:
        return "battery_reserve", (f"battery {d.battery_percent:.0f}% is below the {policy.battery_reserve_percent:.0f}% reserve "
                f"and not charging: no {'EDGE work' if opt.placement == 'edge' else 'drafting'}")
    assert opt.prediction is not None
    need = opt.prediction.energy_j * policy.energy_margin
    headroom = energy_headroom_j(d, policy)
    if not insists and need > headroom:
        return "battery_energy", (f"predicted {opt.prediction.energy_j:.1f} J (×{policy.energy_margin:g} margin) would take the "
                f"battery below the {policy.battery_reserve_percent:.0f}% reserve ({headroom:.1f} J left above it)")
    budget = req.max_device_energy_joules
    if budget and opt.prediction.energy_j > budget:
        return "energy_budget", (f"predicted {opt.prediction.energy_j:.1f} J exceeds the request's device energy "
                                 f"budget of {budget:g} J")
    if opt.placement == "tandem" and opt.prediction.gamma == 0:
        return "energy_budget", "the device energy budget leaves nothing for drafting"
    return None


def _pool_rule(opt: _Option, policy: PolicyConfig) -> tuple[str, str] | None:
    p = opt.pool
    assert p is not None
    ceiling = policy.max_pool_price_per_hour_usd
    if ceiling and p.pool.price_per_replica_hour_usd > ceiling:
        return "price_ceiling", f"pool {p.name!r} costs ${p.pool.price_per_replica_hour_usd:g}/h, above the ${ceiling:g}/h ceiling"
    assert opt.prediction is not None
    after = p.utilisation + opt.prediction.slot_share / max(p.capacity, 1)
    if after > policy.max_pool_utilisation:
        return "saturated", (f"pool {p.name!r} is saturated ({p.utilisation:.0%} of capacity, "
                             f"{after:.0%} with this request)")
    return None


def decide(req: RouteRequest, snap: FleetSnapshot, policy: PolicyConfig, now: float,
           policy_version: int = 0) -> Decision:
    """Choose where `req` runs. Pure; raises FailedPrecondition listing every exclusion, or
    ResourceExhausted when a saturated pool was among the placements that could have served it."""
    d = snap.device
    n = req.max_new_tokens
    prompt_tokens = prompt_tokens_estimate(req, snap, policy)
    client_rtt = d.rtt_ms if d else policy.prior_rtt_ms
    device_only = req.privacy == LOCAL_ONLY or req.preference == ONLY_DEVICE
    # only ONLY_DEVICE insists on the device: it may spend the battery reserve. LOCAL_ONLY forbids the
    # cloud but not the reserve — on a device at its reserve it is refused.
    insists = req.preference == ONLY_DEVICE
    why_device_only = "privacy LOCAL_ONLY" if req.privacy == LOCAL_ONLY else "placement ONLY_DEVICE"
    small_ok, why_small = small_model_ok(req, policy)
    cost_ceiling = min((c for c in (policy.max_cost_usd, req.max_cost_usd) if c > 0), default=0.0)

    ttft_slo = req.ttft_slo_ms or policy.default_ttft_slo_ms
    token_slo = req.token_slo_ms or policy.default_token_slo_ms

    def misses(p: Prediction, headroom: float = policy.slo_headroom) -> str:
        """What `p` is predicted to miss ('' if nothing), with the SLOs scaled by `headroom`."""
        out, shown = [], f" × {headroom:g} headroom" if headroom < 1 else ""
        if ttft_slo and p.ttft_ms > ttft_slo * headroom:
            out.append(f"TTFT {p.ttft_ms:.0f} ms > {ttft_slo:g} ms{shown}")
        if token_slo and n > 1 and p.token_ms > token_slo * headroom:
            out.append(f"{p.token_ms:.1f} ms/token > {token_slo:g} ms{shown}")
        return ", ".join(out)

    # predictions: the plain runs first — the cheapest CLOUD run and the fastest plain run are the
    # score's scales (below), which also price a TANDEM round for choosing its draft length
    options = [_Option("edge", None)]
    options += [_Option("cloud", p) for p in snap.pools]
    for o in options:
        if o.placement == "cloud":
            o.prediction = predict_cloud(o.pool, n, client_rtt, prompt_tokens)  # type: ignore[arg-type]
        elif d is not None:
            o.prediction = predict_edge(d, n, prompt_tokens)
    plain = [o.prediction for o in options if o.prediction]
    cost_ref = min((p.cost_usd for p in plain if p.cost_usd > 0), default=0.0) or 1.0
    time_ref = min((p.total_ms(n) for p in plain), default=0.0) or 1.0
    energy_ref = options[0].prediction.energy_j if options[0].prediction else 0.0  # the whole request on the device
    pressure = battery_pressure(d, policy) if d else 0.0

    def score(p: Prediction) -> tuple[float, float, float]:
        """(cost, latency, battery) terms; lower is better."""
        return (policy.cost_weight * p.cost_usd / cost_ref,
                policy.latency_weight * (p.total_ms(n) / time_ref - 1.0),
                policy.battery_weight * pressure * p.energy_j / energy_ref if energy_ref > 0 else 0.0)

    for p in snap.pools:
        o = _Option("tandem", p)
        options.append(o)
        if d is None or device_only or req.preference == ONLY_CLOUD or not policy.allow_tandem:
            continue  # excluded by a rule that needs no prediction
        alpha = snap.acceptance.get(p.name, policy.prior_acceptance)
        prices = RoundPrices(
            per_ms=policy.latency_weight / time_ref,
            per_pass=policy.cost_weight * cloud_cost_usd(p.pool, p.compute_ms_per_verify, 0) / cost_ref,
            per_draft=policy.battery_weight * pressure * d.energy_per_token_j / energy_ref if energy_ref > 0 else 0.0)
        if not (prices.per_ms or prices.per_pass or prices.per_draft):
            prices = FASTEST
        # the variants the session could run: γ at the score's prices, or the fastest γ when that
        # one alone meets the SLOs; with overlap (faster, but the device drafts ahead and drops
        # what misses) or without; the one predicted to meet the SLOs at the lowest score
        variants = []
        for overlap in ((True, False) if req.overlap else (False,)):
            args = (d, p, alpha, n, prompt_tokens, policy.max_draft_length, req.max_device_energy_joules,
                    req.draft_length, overlap)
            pred = predict_tandem(*args, prices=prices)
            if misses(pred) and prices != FASTEST:
                fast = predict_tandem(*args, prices=FASTEST)
                pred = pred if misses(fast) else fast
            variants.append(pred)
        o.prediction = min(variants, key=lambda v: (bool(misses(v)), sum(score(v))))

    # 1. hard rules
    for o in options:
        if o.placement != "edge" and device_only:
            o.exclude("privacy" if req.privacy == LOCAL_ONLY else "only_device",
                      f"{why_device_only}: the prompt may not leave the device")
        elif o.placement != "cloud" and req.preference == ONLY_CLOUD and not device_only:
            o.exclude("only_cloud", "placement ONLY_CLOUD: nothing runs on the device")
        elif o.placement != "cloud" and d is None:
            o.exclude("no_device", f"device {req.device_id!r} is not registered" if req.device_id
                      else "no device_id in the request's hints")
        elif o.placement == "tandem" and not policy.allow_tandem:
            o.exclude("tandem_disabled", "TANDEM is disabled by the policy")
        elif o.placement == "edge" and not small_ok:
            o.exclude("quality", why_small)
        elif o.placement != "cloud" and (rule := _device_rule(o, req, d, policy, insists, now)):  # type: ignore[arg-type]
            o.exclude(*rule)
        elif o.pool is not None and (rule := _pool_rule(o, policy)):
            o.exclude(*rule)
        elif cost_ceiling and o.prediction.cost_usd > cost_ceiling:  # type: ignore[union-attr]
            o.exclude("cost_ceiling", f"predicted ${o.prediction.cost_usd:.6f} is above the "  # type: ignore[union-attr]
                      f"${cost_ceiling:g} cost ceiling")
    alive = [o for o in options if not o.excluded]

    # 2. SLOs
    # with the headroom if any candidate meets them so, else as they are: a candidate that misses
    # by less is still the better bet than the cheapest one
    for headroom in (policy.slo_headroom, 1.0):
        if any(not misses(o.prediction, headroom) for o in alive):  # type: ignore[arg-type]
            alive = _narrow(alive, lambda o: not misses(o.prediction, headroom), "slo",  # type: ignore[arg-type]
                            lambda o: f"predicted to miss the SLO ({misses(o.prediction, headroom)}) while "  # type: ignore[arg-type]
                                      "another candidate meets it")
            break

    # 3. preference
    want = {PREFER_DEVICE: "edge", PREFER_CLOUD: "cloud", PREFER_TANDEM: "tandem"}.get(req.preference)
    if want:
        alive = _narrow(alive, lambda o: o.placement == want, "preference",
                        lambda o: f"placement {req.preference.upper()}: a {want.upper()} candidate is available")

    # 4. score
    # scales that do not hinge on one outlier and do not depend on which candidates survived: cost
    # in units of the cheapest plain CLOUD run, latency as the slowdown against the fastest plain run
    # (CLOUD or EDGE), energy in units of running the whole request on the device
    for o in alive:
        assert o.prediction is not None
        c, t, e = score(o.prediction)
        o.score = c + t + e
        o.detail = f"score {o.score:.3f} = cost {c:.3f} + latency {t:.3f} + battery {e:.3f}"
    # ties: a pool not measured yet first (its figures are its peers', so trying it is how the
    # router learns it), then the large model's output, then the cheaper
    order = {"tandem": 0, "cloud": 1, "edge": 2}
    ranked = sorted(alive, key=lambda o: (round(o.score, 9), o.pool.observations if o.pool else 0,
                                          order[o.placement], o.prediction.cost_usd))  # type: ignore[union-attr]
    candidates = tuple(_candidate(o, d, req) for o in options)
    if not ranked:
        reasons = "; ".join(f"{o.label}: {o.excluded}" for o in options)
        if any(o.rule == "saturated" for o in options):  # a pool with room would serve it: overload, not a constraint
            raise ResourceExhausted(f"every placement that could serve the request is saturated now: {reasons}")
        raise FailedPrecondition(f"no placement can serve the request: {reasons}")
    best = ranked[0]
    p = best.prediction
    assert p is not None
    why = [f"{best.label} {best.detail}"]
    if len(ranked) > 1:
        why.append(f"next {ranked[1].label} {ranked[1].score:.3f}")
    if device_only:
        rule = "device_only"
        why.insert(0, f"{why_device_only}: stays on the device")
    elif want and best.placement == want:
        rule = "preference"
        why.insert(0, f"placement {req.preference.upper()}")
    else:
        rule = "only_candidate" if len(ranked) == 1 else "score"
        if req.preference == ONLY_CLOUD:
            why.insert(0, "placement ONLY_CLOUD")
    on_device = best.placement in ("edge", "tandem")
    return Decision(
        rule=rule,
        placement=best.placement,
        reason="; ".join(why),
        edge_worker_id=d.worker_id if on_device and d else "",
        edge_endpoint=d.endpoint if on_device and d else "",
        pool=best.pool.name if best.pool else "",
        cloud_worker_id=best.pool.replica_id if best.pool else "",
        cloud_endpoint=best.pool.endpoint if best.pool else "",
        initial_draft_length=p.gamma,
        candidates=candidates,
        policy_version=policy_version,
        predicted_cost_usd=p.cost_usd,
        predicted_ttft_ms=p.ttft_ms,
        predicted_token_ms=p.token_ms,
        predicted_energy_j=p.energy_j,
        predicted_slot_share=p.slot_share,
        draft_prices=p.prices,
        overlap=p.overlap,
    )


def _narrow(alive: list[_Option], keep: Callable[[_Option], bool], rule: str,
            why: Callable[[_Option], str]) -> list[_Option]:
    """The survivors that `keep` accepts, excluding the others — unless it accepts none (or all),
    in which case nobody is excluded: a soft rule never empties the field."""
    kept = [o for o in alive if keep(o)]
    if not kept or len(kept) == len(alive):
        return alive
    for o in alive:
        if not keep(o):
            o.exclude(rule, why(o))
    return kept


def _candidate(o: _Option, d: DeviceEstimate | None, req: RouteRequest) -> Candidate:
    p = o.prediction
    return Candidate(
        placement=o.placement,
        edge_worker_id=(d.worker_id if d else req.device_id) if o.placement != "cloud" else "",
        pool=o.pool.name if o.pool else "",
        cloud_worker_id=o.pool.replica_id if o.pool else "",
        excluded=bool(o.excluded),
        reason=o.excluded or o.detail,
        rule=o.rule,
        score=o.score,
        predicted_cost_usd=p.cost_usd if p else 0.0,
        predicted_ttft_ms=p.ttft_ms if p else 0.0,
        predicted_token_ms=p.token_ms if p else 0.0,
        predicted_energy_j=p.energy_j if p else 0.0,
    )

