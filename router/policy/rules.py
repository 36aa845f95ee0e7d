"""The policy's hard rules: each excludes a candidate that may not or cannot serve the request.

A rule is a named predicate over one candidate and the decision's context; it returns why it
excludes the candidate, or None. The rules run in HARD_RULES' order and the first that applies
excludes the candidate: its reason is what the decision reports, its name the metrics label.
Every rule stands alone (it checks what it needs), so each is tested on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from router.policy.candidates import Option
from router.policy.config import PolicyConfig
from router.policy.context import DecisionContext
from router.policy.placement import Placement, Preference, Privacy
from router.policy.predict import DeviceEstimate


@dataclasses.dataclass(frozen=True)
class HardRule:
    name: str  # the exclusion's key (metrics label)
    check: Callable[[Option, DecisionContext], str | None]

    def __call__(self, o: Option, ctx: DecisionContext) -> str | None:
        return self.check(o, ctx)


def energy_headroom_j(device: DeviceEstimate, policy: PolicyConfig) -> float:
    """Joules the device may spend before its battery falls to the reserve (inf while charging):
    its reported charge above the reserve, less what its requests in flight are predicted to spend
    (the battery it reported does not show them yet)."""
    if device.charging or not device.has_battery:
        return float("inf")
    capacity = device.battery_capacity_j or policy.default_battery_capacity_joules
    above = (device.battery_percent - policy.battery_reserve_percent) / 100.0 * capacity
    return max(0.0, above - device.inflight_energy_j)


def privacy(o: Option, ctx: DecisionContext) -> str | None:
    if o.placement is not Placement.EDGE and ctx.req.privacy is Privacy.LOCAL_ONLY:
        return "privacy LOCAL_ONLY: the prompt may not leave the device"
    return None


def only_device(o: Option, ctx: DecisionContext) -> str | None:
    if o.placement is not Placement.EDGE and ctx.req.preference is Preference.ONLY_DEVICE:
        return "placement ONLY_DEVICE: the prompt may not leave the device"
    return None


def only_cloud(o: Option, ctx: DecisionContext) -> str | None:
    if o.placement.on_device and ctx.req.preference is Preference.ONLY_CLOUD and not ctx.req.device_only:
        return "placement ONLY_CLOUD: nothing runs on the device"
    return None


def no_device(o: Option, ctx: DecisionContext) -> str | None:
    if o.placement.on_device and ctx.device is None:
        did = ctx.req.device_id
        return f"device {did!r} is not registered" if did else "no device_id in the request's hints"
    return None


def tandem_disabled(o: Option, ctx: DecisionContext) -> str | None:
    if o.placement is Placement.TANDEM and not ctx.policy.allow_tandem:
        return "TANDEM is disabled by the policy"
    return None


def quality(o: Option, ctx: DecisionContext) -> str | None:
    return ctx.why_small if o.placement is Placement.EDGE and not ctx.small_ok else None


def thermal(o: Option, ctx: DecisionContext) -> str | None:
    d = ctx.device
    if o.placement.on_device and d is not None and d.thermal == "critical":
        return f"device {d.worker_id} is thermally critical: no device work"
    return None


def stale_device(o: Option, ctx: DecisionContext) -> str | None:
    d = ctx.device
    if o.placement.on_device and d is not None and ctx.now - d.last_seen > ctx.policy.max_device_state_age_s:
        return f"device {d.worker_id}'s state is {ctx.now - d.last_seen:.0f} s old: its battery is unknown"
    return None


def battery_reserve(o: Option, ctx: DecisionContext) -> str | None:
    d, reserve = ctx.device, ctx.policy.battery_reserve_percent
    if not o.placement.on_device or d is None or ctx.insists:
        return None
    if d.has_battery and not d.charging and d.battery_percent < reserve:
        work = "EDGE work" if o.placement is Placement.EDGE else "drafting"
        pct = f"{d.battery_percent:.0f}%"
        return f"battery {pct} is below the {reserve:.0f}% reserve and not charging: no {work}"
    return None


def battery_energy(o: Option, ctx: DecisionContext) -> str | None:
    d, p, policy = ctx.device, o.prediction, ctx.policy
    if not o.placement.on_device or d is None or p is None or ctx.insists:
        return None
    headroom = energy_headroom_j(d, policy)
    if p.energy_j * policy.energy_margin > headroom:
        return (
            f"predicted {p.energy_j:.1f} J (×{policy.energy_margin:g} margin) would take the battery below "
            f"the {policy.battery_reserve_percent:.0f}% reserve ({headroom:.1f} J left above it)"
        )
    return None


def energy_budget(o: Option, ctx: DecisionContext) -> str | None:
    p, budget = o.prediction, ctx.req.max_device_energy_joules
    if not o.placement.on_device or p is None:
        return None
    if budget and p.energy_j > budget:
        return f"predicted {p.energy_j:.1f} J exceeds the request's device energy budget of {budget:g} J"
    if o.placement is Placement.TANDEM and p.gamma == 0:
        return "the device energy budget leaves nothing for drafting"
    return None


def price_ceiling(o: Option, ctx: DecisionContext) -> str | None:
    ceiling, pool = ctx.policy.max_pool_price_per_hour_usd, o.pool
    if pool is not None and ceiling and pool.pool.price_per_replica_hour_usd > ceiling:
        price = pool.pool.price_per_replica_hour_usd
        return f"pool {pool.name!r} costs ${price:g}/h, above the ${ceiling:g}/h ceiling"
    return None


def saturated(o: Option, ctx: DecisionContext) -> str | None:
    pool, p = o.pool, o.prediction
    if pool is None or p is None:
        return None
    after = pool.utilisation + p.slot_share / max(pool.capacity, 1)
    if after > ctx.policy.max_pool_utilisation:
        return (
            f"pool {pool.name!r} is saturated ({pool.utilisation:.0%} of capacity, "
            f"{after:.0%} with this request)"
        )
    return None


def cost_ceiling(o: Option, ctx: DecisionContext) -> str | None:
    p = o.prediction
    if ctx.cost_ceiling and p is not None and p.cost_usd > ctx.cost_ceiling:
        return f"predicted ${p.cost_usd:.6f} is above the ${ctx.cost_ceiling:g} cost ceiling"
    return None


HARD_RULES: tuple[HardRule, ...] = tuple(
    HardRule(f.__name__, f)
    for f in (
        privacy,
        only_device,
        only_cloud,
        no_device,
        tandem_disabled,
        quality,
        thermal,
        stale_device,
        battery_reserve,
        battery_energy,
        energy_budget,
        price_ceiling,
        saturated,
        cost_ceiling,
    )
)


def apply_hard_rules(
    options: list[Option], ctx: DecisionContext, rules: tuple[HardRule, ...] = HARD_RULES
) -> None:
    """Exclude each option by the first rule that applies to it."""
    for o in options:
        for rule in rules:
            why = rule(o, ctx)
            if why:
                o.exclude(rule.name, why)
                break
