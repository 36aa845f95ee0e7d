"""Fleet snapshot for one decision: the caller's device and every pool, with their estimates.

O(replicas): the caller's device is looked up by id, so 10,000s of registered devices cost nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from router.fleet import CLOUD, EDGE, DeviceState, FleetRegistry, WorkerRecord, least_loaded
from router.policy.config import PolicyConfig
from router.policy.costs import priced
from router.policy.estimates import Estimates, Spread
from router.policy.predict import DeviceEstimate, PoolEstimate


@dataclasses.dataclass(frozen=True)
class FleetSnapshot:
    """What the policy may look at: the caller's device (None: not registered) and the pools."""

    device: DeviceEstimate | None
    pools: tuple[PoolEstimate, ...]
    # pool → the device's acceptance profile with it (β_i; see router.tandem.speculation)
    acceptance: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    chars_per_token: float = 0.0  # measured over the fleet's prompts (0: the policy's prior)
    # how latency strays from predictions, by placement (router.policy.estimates.Spread): a callable
    # (placement, "ttft" | "token") → Spread; None: the predictions as they are
    spread: Callable[[str, str], Spread] | None = None


def device_estimate(w: WorkerRecord, est: Estimates, policy: PolicyConfig) -> DeviceEstimate:
    s = w.state
    e = est.device(w.worker_id)
    link_ms, ahead_extra_ms = est.device_link(w.worker_id)
    measured = measured_device(
        w.worker_id,
        policy,
        endpoint=w.endpoint,
        rtt_ms=s.rtt_ms if s.rtt_ms > 0 else policy.prior_rtt_ms,
        link_ms=link_ms or 0.0,
        ahead_extra_ms=ahead_extra_ms,
        inflight_energy_j=est.device_energy[w.worker_id],
        **e,
    )
    return with_live_state(measured, s, w.last_seen)


def measured_device(
    worker_id: str,
    policy: PolicyConfig,
    *,
    rtt_ms: float,
    ttft_ms: float,
    prefill_ms_per_token: float,
    token_ms: float,
    draft_ms: float,
    link_ms: float = 0.0,
    ahead_extra_ms: float = 0.0,
    inflight_energy_j: float = 0.0,
    endpoint: str = "",
) -> DeviceEstimate:
    """A device's measured figures, its live state not yet applied (with_live_state)."""
    return DeviceEstimate(
        worker_id=worker_id,
        endpoint=endpoint,
        battery_percent=0.0,
        charging=False,
        has_battery=False,
        battery_capacity_j=0.0,
        thermal="unknown",
        energy_per_token_j=0.0,
        prefill_energy_fraction=policy.prefill_energy_fraction,
        rtt_ms=rtt_ms,
        ttft_ms=ttft_ms,
        prefill_ms_per_token=prefill_ms_per_token,
        token_ms=token_ms,
        draft_ms=draft_ms,
        link_ms=link_ms,
        ahead_extra_ms=ahead_extra_ms,
        last_seen=0.0,
        inflight_energy_j=inflight_energy_j,
    )


def with_live_state(d: DeviceEstimate, s: DeviceState, seen: float) -> DeviceEstimate:
    """`d` with the device's live state `s` as of `seen` (the registry's clock): battery, charging,
    thermal and energy per token. The router applies its latest report; a device, its state now."""
    return dataclasses.replace(
        d,
        battery_percent=s.battery_percent,
        charging=s.charging,
        has_battery=s.battery_source != "none",
        battery_capacity_j=s.battery_capacity_joules,
        thermal=s.thermal,
        energy_per_token_j=s.energy_per_token_joules,
        last_seen=seen,
    )


def pool_estimates(
    replicas: list[WorkerRecord],
    est: Estimates,
    busy: Callable[[WorkerRecord], bool] = lambda w: False,
    prices: tuple[tuple[str, float], ...] = (),
) -> tuple[PoolEstimate, ...]:
    """Per pool: its least-loaded replica (one that refused work as overloaded only when all did —
    then the pool counts as full), its utilisation, and its price (the policy's override, if any)."""
    by_pool: dict[str, list[WorkerRecord]] = {}
    for r in replicas:
        by_pool.setdefault(r.pool.name, []).append(r)
    out = []
    for name, members in sorted(by_pool.items()):
        best = least_loaded(members, busy)
        info = priced(best.pool, prices)
        capacity = len(members) * max(info.slots_per_replica, 1)
        utilisation = 1.0 if busy(best) else est.inflight[name] / capacity
        out.append(
            PoolEstimate(
                name=name,
                pool=info,
                replica_id=best.worker_id,
                endpoint=best.endpoint,
                replicas=len(members),
                utilisation=utilisation,
                observations=est.observations("pool_ttft", name),
                **est.pool(name),
            )
        )
    return tuple(out)


def build_snapshot(
    registry: FleetRegistry, est: Estimates, policy: PolicyConfig, device_id: str, greedy: bool = True
) -> FleetSnapshot:
    """The snapshot a decision for a request from `device_id` works from (`greedy`: its sampling,
    which sets the acceptance profiles it is predicted with)."""
    w = registry.get(device_id) if device_id else None
    device = device_estimate(w, est, policy) if w is not None and w.kind == EDGE else None
    pools = pool_estimates(registry.members(CLOUD), est, registry.busy, policy.pool_prices)
    acceptance = {p.name: est.acceptance(device_id, p.name, greedy) for p in pools} if device else {}
    return FleetSnapshot(
        device=device,
        pools=pools,
        acceptance=acceptance,
        chars_per_token=est.chars_per_token(),
        spread=est.spread,
    )
