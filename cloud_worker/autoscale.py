"""Autoscaling a pool on its replicas' own load — Ray Serve's autoscaler, with Tandem's policy.

The data path does not pass through Serve (the router calls replicas directly), so Serve's own
request counts see nothing. Each replica reports its load instead (``record_autoscaling_stats``:
calls in flight and batch occupancy), and Serve's controller calls :class:`ServePolicy` with them.
The decision itself is :func:`desired_replicas`, a pure function over plain numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

QUEUE = "queue_depth"  # calls in flight on a replica (Verify, Generate, Draft)
OCCUPANCY = "batch_occupancy"  # mean batch size ÷ max batch size over the last interval, 0..1


@dataclasses.dataclass(frozen=True)
class ScalePolicy:
    target_queue_per_replica: float = 8.0  # calls in flight per replica the pool aims at
    scale_up_occupancy: float = 0.75  # batches this full mean the replicas compute flat out
    scale_down_occupancy: float = 0.25
    max_step: int = 2  # replicas added or removed per decision


def desired_replicas(
    current: int,
    queue_depths: list[float],
    occupancies: list[float],
    lo: int,
    hi: int,
    policy: ScalePolicy = ScalePolicy(),
) -> int:
    """Replicas the pool should run, in [lo, hi], moving at most `max_step` from `current`.

    Up when the calls in flight per replica exceed the target, or batches are nearly full (the
    replicas are compute-bound: more in flight would only queue); down when both the queue and the
    batches leave room for the pool to run one replica fewer. No figures (replicas starting): stay.
    """
    current = max(current, 1)
    if not queue_depths:
        return min(max(current, lo), hi)
    total = sum(queue_depths)
    occupancy = sum(occupancies) / len(occupancies) if occupancies else 0.0
    want = math.ceil(total / policy.target_queue_per_replica) if total > 0 else lo
    if occupancy >= policy.scale_up_occupancy:
        want = max(want, current + 1)
    elif want < current and (
        occupancy > policy.scale_down_occupancy
        or total / max(current - 1, 1) > policy.target_queue_per_replica
    ):
        want = current  # the load would not fit one replica fewer
    want = min(max(want, current - policy.max_step), current + policy.max_step)
    return min(max(want, lo), hi)


class ServePolicy:
    """Ray Serve custom autoscaling policy: ``AutoscalingPolicy(policy_function=
    "cloud_worker.autoscale:ServePolicy", policy_kwargs=<ScalePolicy fields>)``. Serve builds it
    once and calls it with an AutoscalingContext every tick: the replicas' reported figures →
    desired_replicas."""

    def __init__(self, **kwargs: Any) -> None:
        self.policy = ScalePolicy(**kwargs)

    def __call__(self, ctx: Any) -> tuple[int, dict]:
        metrics: Mapping[str, Mapping[Any, float]] = ctx.aggregated_metrics or {}
        n = desired_replicas(
            ctx.current_num_replicas,
            list(metrics.get(QUEUE, {}).values()),
            list(metrics.get(OCCUPANCY, {}).values()),
            ctx.capacity_adjusted_min_replicas,
            ctx.capacity_adjusted_max_replicas,
            self.policy,
        )
        return n, dict(ctx.policy_state or {})
