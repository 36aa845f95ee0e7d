"""How long a decision takes with a large fleet registered: the policy's speed, measured."""

from __future__ import annotations

import math
import random
import statistics
import time

from router.fleet import DeviceState, FleetRegistry
from router.policy.config import PolicyConfig
from router.policy.decide import decide
from router.policy.estimates import Estimates
from router.policy.sim.scenario import Scenario
from router.policy.sim.strategies import TOKENIZER_ID, register_fleet
from router.policy.sim.tally import percentile
from router.policy.sim.world import draw_request
from router.policy.snapshot import build_snapshot
from tandem.errors import FailedPrecondition, ResourceExhausted


def time_decisions(
    scenario: Scenario,
    devices: int = 10_000,
    decisions: int = 5_000,
    policy: PolicyConfig | None = None,
    rng: random.Random | None = None,
) -> dict[str, float]:
    """p50/p99 wall time (ms) of build_snapshot + decide with `devices` registered EDGE workers and
    the scenario's pools, over random requests from random devices in random states."""
    policy = policy or PolicyConfig()
    rng = rng or random.Random(scenario.seed)
    now = 1_000.0
    registry = FleetRegistry(clock=lambda: now, lease_s=3600.0, tokenizer_id=TOKENIZER_ID)
    ids = [f"dev-{i:05d}" for i in range(devices)]
    register_fleet(registry, ids, scenario.pools)
    dm = scenario.device
    for dev_id in ids:
        registry.heartbeat(
            dev_id,
            DeviceState(
                battery_percent=rng.uniform(dm.battery_min_percent, dm.battery_max_percent),
                charging=rng.random() < dm.charging_share,
                battery_source="modelled",
                thermal=rng.choice(("nominal",) * 20 + ("serious", "critical")),
                energy_per_token_joules=rng.uniform(dm.energy_per_token_min_j, dm.energy_per_token_max_j),
                rtt_ms=rng.lognormvariate(math.log(scenario.link.rtt_median_ms), scenario.link.rtt_sigma),
                battery_capacity_joules=dm.capacity_joules,
            ),
        )
    est = Estimates(policy)
    for dev_id in ids:  # every device measured, as in a fleet that has been running
        est.observe_edge(dev_id, rng.uniform(50.0, 500.0), rng.uniform(dm.token_ms_min, dm.token_ms_max))
        est.observe_draft(dev_id, rng.uniform(dm.token_ms_min, dm.token_ms_max) * dm.draft_ratio)
        for p in scenario.pools:
            alpha = rng.uniform(0.4, 0.8)  # 20 rounds of γ = 4 at that acceptance
            reached = [20 * alpha**i for i in range(4)]
            est.observe_acceptance(dev_id, p.name, True, [r * alpha for r in reached], reached)
    for p in scenario.pools:
        est.observe_cloud(p.name, p.ttft_ms, p.token_ms, p.compute_ms_per_token)
        est.observe_verify(p.name, p.verify_ms, p.compute_ms_per_token * scenario.cloud.verify_compute_factor)
    reqs = [draw_request(scenario, rng, now, rng.randrange(devices)) for _ in range(decisions)]
    times = []
    for r in reqs:
        t0 = time.perf_counter()
        try:
            snap = build_snapshot(registry, est, policy, r.route.device_id)
            decide(r.route, snap, policy, now)
        except (FailedPrecondition, ResourceExhausted):
            pass
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "devices": devices,
        "decisions": decisions,
        "p50_ms": round(percentile(times, 0.5), 4),
        "p99_ms": round(percentile(times, 0.99), 4),
        "mean_ms": round(statistics.fmean(times), 4),
    }
