"""The pool autoscaling decision as a pure function, and its Ray Serve adapter over a plain context."""

from __future__ import annotations

import types

from cloud_worker.autoscale import OCCUPANCY, QUEUE, ScalePolicy, ServePolicy, desired_replicas

P = ScalePolicy(target_queue_per_replica=8, scale_up_occupancy=0.75, scale_down_occupancy=0.25, max_step=2)


def test_scales_up_with_the_calls_in_flight_and_full_batches():
    assert desired_replicas(1, [20.0], [0.3], 1, 8, P) == 3  # 20 in flight, 8 per replica
    assert desired_replicas(1, [60.0], [0.3], 1, 8, P) == 3  # at most two at a time
    assert desired_replicas(2, [4.0, 4.0], [0.9, 0.8], 1, 8, P) == 3  # compute-bound: batches full
    assert desired_replicas(3, [90.0, 90.0, 90.0], [1.0] * 3, 1, 4, P) == 4  # never past the bound


def test_scales_down_only_when_one_fewer_would_hold_the_load():
    assert desired_replicas(4, [1.0, 0.0, 1.0, 0.0], [0.1] * 4, 1, 8, P) == 2
    assert desired_replicas(2, [5.0, 5.0], [0.1, 0.1], 1, 8, P) == 2  # 10 would not fit one replica
    assert desired_replicas(3, [1.0, 1.0, 1.0], [0.5] * 3, 1, 8, P) == 3  # batches still half full
    assert desired_replicas(2, [0.0, 0.0], [0.0, 0.0], 2, 8, P) == 2  # never below the bound


def test_no_figures_yet_keeps_the_replicas():
    assert desired_replicas(3, [], [], 1, 8, P) == 3
    assert desired_replicas(0, [], [], 1, 8, P) == 1


def test_the_serve_adapter_reads_the_replicas_reported_metrics():
    ctx = types.SimpleNamespace(
        current_num_replicas=1,
        capacity_adjusted_min_replicas=1,
        capacity_adjusted_max_replicas=4,
        policy_state={"k": 1},
        aggregated_metrics={QUEUE: {"r1": 30.0}, OCCUPANCY: {"r1": 0.5}},
    )
    n, state = ServePolicy(target_queue_per_replica=8)(ctx)
    assert n == 3 and state == {"k": 1}
