"""A simulation run's running totals, and the summary made of them: the headline figures (cost,
SLO attainment, energy, violations, placements) and the diagnostics that explain them (SLO misses
by kind and the share no allowed placement could have avoided, refusal causes, why a device went
below its reserve, actual ÷ predicted latency)."""

from __future__ import annotations

import collections
import dataclasses
import math
import statistics
from collections.abc import Mapping
from typing import Any

from router.policy.sim.state import PoolState

PLACEMENTS = ("edge", "cloud", "tandem", "refused")


@dataclasses.dataclass
class Tally:
    """Running totals of one run."""

    requests: int = 0
    placements: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    by_pool: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    cost_usd: float = 0.0
    cost_by_placement: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    by_class: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )  # "quality[ interactive]: placement"
    compute_ms: float = 0.0
    energy_j: float = 0.0
    interactive: int = 0
    interactive_met: int = 0
    misses_by_placement: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    missed: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # "edge ttft", …
    privacy_violations: int = 0
    quality_violations: int = 0
    pushed_below_events: int = 0
    pushed_below_devices: set = dataclasses.field(default_factory=set)
    ttfts: list = dataclasses.field(default_factory=list)
    queue_waits: int = 0
    refusal_examples: list = dataclasses.field(default_factory=list)
    refusal_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # interactive misses that no placement the request allows would have avoided, by placement
    infeasible_misses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    tandem_shares: list = dataclasses.field(default_factory=list)
    pushed_below_examples: list = dataclasses.field(default_factory=list)
    pushed_below_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    ttft_ratio: collections.defaultdict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    token_ratio: collections.defaultdict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    gammas: list = dataclasses.field(default_factory=list)
    pace_handovers: int = 0  # TANDEM requests the pace guard handed over to the cloud
    # cloud occupancy seen by arrivals, per hour of the run (Poisson arrivals see time averages)
    util_sum: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    util_n: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def summary(t: Tally, strategy: str, pools: Mapping[str, PoolState], span_s: float) -> dict[str, Any]:
    """A run's results: the headline figures, then diagnostics (see router.policy.sim)."""
    total = max(t.requests, 1)
    ttfts = sorted(t.ttfts)
    out: dict[str, Any] = {
        "strategy": strategy,
        "requests": t.requests,
        "cloud_cost_usd": round(t.cost_usd, 4),
        "slo_attainment": round(t.interactive_met / t.interactive, 4) if t.interactive else 1.0,
        "device_energy_j": round(t.energy_j, 1),
        "devices_pushed_below_reserve": len(t.pushed_below_devices),
        "pushed_below_reserve_events": t.pushed_below_events,
        "pushed_below_reserve_causes": dict(t.pushed_below_causes),
        "privacy_violations": t.privacy_violations,
        "quality_violations": t.quality_violations,
        "refused": t.placements["refused"],
        "share": {p: round(t.placements[p] / total, 4) for p in PLACEMENTS},
        "by_pool": dict(sorted(t.by_pool.items())),
        "cost_by_placement": {k: round(v, 4) for k, v in sorted(t.cost_by_placement.items())},
        "placements_by_class": dict(sorted(t.by_class.items())),
        "ttft_mean_ms": round(statistics.fmean(ttfts), 1) if ttfts else 0.0,
        "ttft_p95_ms": round(percentile(ttfts, 0.95), 1) if ttfts else 0.0,
        "interactive": t.interactive,
        "slo_misses_by_placement": dict(t.misses_by_placement),
        # of those, the ones no placement the request allows would have met (truth, at that moment)
        "slo_misses_infeasible": dict(t.infeasible_misses),
        "slo_missed_by_kind": dict(sorted(t.missed.items())),  # a request may miss both
        # the best any placement the requests allow could have done (1 − infeasible ÷ interactive)
        "slo_attainment_ceiling": round(1 - sum(t.infeasible_misses.values()) / t.interactive, 4)
        if t.interactive
        else 1.0,
        "cloud_utilisation_mean": {
            n: round(p.busy_integral / (p.model.slots * span_s), 4) for n, p in pools.items()
        },
        "cloud_utilisation_peak_hour": round(
            max((t.util_sum[h] / t.util_n[h] for h in t.util_n), default=0.0), 4
        ),
        "queued_requests": t.queue_waits,
        "mean_gamma": round(statistics.fmean(t.gammas), 2) if t.gammas else 0.0,
        "pace_handovers": t.pace_handovers,
        # the share of a slot a TANDEM request really holds (the router counts it as a whole one)
        "tandem_mean_slot_share": round(statistics.fmean(t.tandem_shares), 3) if t.tandem_shares else 0.0,
        "refusal_causes": dict(t.refusal_causes),
        "refusal_examples": t.refusal_examples,
        "pushed_below_examples": t.pushed_below_examples,
    }
    if t.ttft_ratio:  # calibration: actual ÷ predicted (the policy's predictions only)

        def quantile(values: list[float], q: float) -> float | None:
            return round(percentile(sorted(values), q), 3) if values else None

        out["actual_over_predicted"] = {
            str(pl): {
                f"{what}_p{round(q * 100)}": quantile(ratios[pl], q)
                for what, ratios in (("ttft", t.ttft_ratio), ("token", t.token_ratio))
                for q in (0.5, 0.9)
            }
            for pl in sorted(t.ttft_ratio)
        }
    return out


REFUSAL_PHRASES = {
    "saturated": "pool saturated",
    "thermally critical": "thermal critical",
    "reserve and not charging": "battery below reserve",
    "would take the battery": "battery energy",
    "may not leave the device": "local only",
}


def refusal_cause(message: str) -> str:
    """A short key for a refusal from decide: the hard rules its message names."""
    return " + ".join(sorted({v for k, v in REFUSAL_PHRASES.items() if k in message})) or "other"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in [0, 1])."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]
