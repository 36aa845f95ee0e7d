"""The pace guard (router.tandem.pace): when a TANDEM request hands over to the cloud."""

from __future__ import annotations

from router.tandem.pace import PaceGuard

GUARD = PaceGuard(token_slo_ms=100.0, n=201, cloud_token_ms=30.0, handover_ms=150.0)


def test_on_pace_it_stays():
    assert not GUARD.behind(elapsed_ms=900.0, produced=20, pace_ms=45.0)


def test_behind_pace_it_hands_over_when_the_cloud_finishes_sooner():
    # 20 tokens in 2.4 s at 120 ms each: 180 more at that pace overshoot the 20 s budget
    assert GUARD.behind(elapsed_ms=2400.0, produced=20, pace_ms=120.0)
    # the same, but the cloud is no faster: nothing to gain
    slow_cloud = PaceGuard(100.0, 201, cloud_token_ms=130.0, handover_ms=150.0)
    assert not slow_cloud.behind(2400.0, 20, 120.0)


def test_it_waits_for_a_few_rounds_and_does_nothing_without_an_slo_or_at_the_end():
    assert not GUARD.behind(600.0, 5, 120.0)  # too early to judge
    assert not PaceGuard(0.0, 201, 30.0, 150.0).behind(2400.0, 20, 500.0)  # no SLO
    assert not GUARD.behind(30_000.0, 200, 150.0)  # nothing left to hand over


def test_the_head_blocks_wait_is_not_charged_per_token():
    # a long wait for the device's head block, then rounds at a fine pace: still on track
    assert not GUARD.behind(elapsed_ms=2500.0, produced=20, pace_ms=60.0)


def test_the_predicted_pace_holds_a_few_slow_rounds_back():
    placed = PaceGuard(100.0, 201, cloud_token_ms=30.0, handover_ms=150.0, predicted_ms=60.0)
    # 10 tokens at 120 ms each: alone, a sure miss; against a 60 ms prediction, still on track
    assert GUARD.behind(elapsed_ms=1300.0, produced=10, pace_ms=120.0)
    assert not placed.behind(elapsed_ms=1300.0, produced=10, pace_ms=120.0)
    # 60 tokens at 130 ms: the evidence outweighs the prediction
    assert placed.behind(elapsed_ms=7900.0, produced=60, pace_ms=130.0)
