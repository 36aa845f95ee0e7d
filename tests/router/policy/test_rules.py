"""Each hard rule of the policy on its own (router.policy.rules): when it excludes a candidate and
why, and that it leaves alone what is not its business."""

from __future__ import annotations

import dataclasses

import pytest

from router.fleet import PoolInfo
from router.policy import rules
from router.policy.candidates import Option
from router.policy.config import PolicyConfig
from router.policy.context import DecisionContext
from router.policy.placement import Placement, RouteRequest
from router.policy.predict import DeviceEstimate, PoolEstimate, Prediction
from router.policy.snapshot import FleetSnapshot

NOW = 1000.0
DEVICE = DeviceEstimate(
    worker_id="phone", endpoint="phone:1", battery_percent=80.0, charging=False, has_battery=True,
    battery_capacity_j=54_000.0, thermal="nominal", energy_per_token_j=0.05, prefill_energy_fraction=0.2,
    rtt_ms=40.0, ttft_ms=60.0, token_ms=25.0, draft_ms=10.0, last_seen=NOW - 1,
)  # fmt: skip
POOL = PoolEstimate(
    name="asic", pool=PoolInfo("asic", "asic", 1.2, 0.0, 2), replica_id="asic-1", endpoint="asic-1:2",
    replicas=2, utilisation=0.2, ttft_ms=120.0, token_ms=30.0, verify_ms=35.0, compute_ms_per_token=30.0,
    compute_ms_per_verify=36.0,
)  # fmt: skip
PRED = Prediction(ttft_ms=200.0, token_ms=30.0, cost_usd=0.001, energy_j=5.0, gamma=4, slot_share=0.3)


POLICY = PolicyConfig()


def ctx(device=DEVICE, policy=POLICY, **req) -> DecisionContext:
    route = RouteRequest(**{"device_id": "phone", "max_new_tokens": 128, "prompt_chars": 400, **req})
    return DecisionContext.of(route, FleetSnapshot(device=device, pools=(POOL,)), policy, NOW)


EDGE = Option(Placement.EDGE, None, PRED)
CLOUD = Option(Placement.CLOUD, POOL, PRED)
TANDEM = Option(Placement.TANDEM, POOL, PRED)
ALL = (EDGE, CLOUD, TANDEM)


def excluded(rule, c: DecisionContext) -> set[Placement]:
    return {o.placement for o in ALL if rule(o, c)}


def test_the_rules_run_in_their_documented_order_and_are_named():
    assert [r.name for r in rules.HARD_RULES] == [
        "privacy", "only_device", "only_cloud", "no_device", "tandem_disabled", "quality", "thermal",
        "stale_device", "battery_reserve", "battery_energy", "energy_budget", "price_ceiling", "saturated",
        "cost_ceiling",
    ]  # fmt: skip


def test_privacy_keeps_local_only_on_the_device():
    assert excluded(rules.privacy, ctx(privacy="local_only")) == {Placement.CLOUD, Placement.TANDEM}
    assert "LOCAL_ONLY" in rules.privacy(CLOUD, ctx(privacy="local_only"))
    assert excluded(rules.privacy, ctx()) == set()


def test_only_device_and_only_cloud():
    assert excluded(rules.only_device, ctx(preference="only_device")) == {Placement.CLOUD, Placement.TANDEM}
    assert excluded(rules.only_cloud, ctx(preference="only_cloud")) == {Placement.EDGE, Placement.TANDEM}
    # ONLY_CLOUD yields to a device-only request (privacy decides, not this rule)
    assert excluded(rules.only_cloud, ctx(preference="only_cloud", privacy="local_only")) == set()


def test_no_device_names_what_is_missing():
    assert excluded(rules.no_device, ctx(device=None)) == {Placement.EDGE, Placement.TANDEM}
    assert "not registered" in rules.no_device(EDGE, ctx(device=None))
    assert "no device_id" in rules.no_device(EDGE, ctx(device=None, device_id=""))


def test_tandem_disabled_and_quality():
    off = dataclasses.replace(PolicyConfig(), allow_tandem=False)
    assert excluded(rules.tandem_disabled, ctx(policy=off)) == {Placement.TANDEM}
    assert excluded(rules.quality, ctx(quality="large_required")) == {Placement.EDGE}
    assert excluded(rules.quality, ctx(quality="small_ok")) == set()
    assert excluded(rules.quality, ctx()) == {Placement.EDGE}  # unspecified and not short
    short = dataclasses.replace(PolicyConfig(), small_ok_max_new_tokens=200)
    assert excluded(rules.quality, ctx(policy=short)) == set()


def test_thermal_and_stale_device_state_stop_device_work():
    hot = dataclasses.replace(DEVICE, thermal="critical")
    assert excluded(rules.thermal, ctx(device=hot)) == {Placement.EDGE, Placement.TANDEM}
    stale = dataclasses.replace(DEVICE, last_seen=NOW - 60)
    assert excluded(rules.stale_device, ctx(device=stale)) == {Placement.EDGE, Placement.TANDEM}
    assert excluded(rules.stale_device, ctx()) == set()


def test_the_battery_reserve_unless_the_request_insists_or_it_charges():
    low = dataclasses.replace(DEVICE, battery_percent=10.0)
    assert excluded(rules.battery_reserve, ctx(device=low)) == {Placement.EDGE, Placement.TANDEM}
    assert "drafting" in rules.battery_reserve(TANDEM, ctx(device=low))
    assert excluded(rules.battery_reserve, ctx(device=low, preference="only_device")) == set()
    assert excluded(rules.battery_reserve, ctx(device=dataclasses.replace(low, charging=True))) == set()


def test_battery_energy_counts_the_margin_and_the_requests_in_flight():
    # 22% of 54 kJ: 1080 J above the 20% reserve
    near = dataclasses.replace(DEVICE, battery_percent=22.0)
    big = Option(Placement.EDGE, None, dataclasses.replace(PRED, energy_j=800.0))  # × 1.5 margin > 1080 J
    assert rules.battery_energy(big, ctx(device=near))
    small = Option(Placement.EDGE, None, dataclasses.replace(PRED, energy_j=600.0))
    assert rules.battery_energy(small, ctx(device=near)) is None
    busy = dataclasses.replace(near, inflight_energy_j=300.0)
    assert rules.battery_energy(small, ctx(device=busy))


def test_the_requests_energy_budget_and_a_tandem_left_without_drafts():
    assert excluded(rules.energy_budget, ctx(max_device_energy_joules=1.0)) == {
        Placement.EDGE,
        Placement.TANDEM,
    }
    no_drafts = Option(Placement.TANDEM, POOL, dataclasses.replace(PRED, gamma=0))
    assert "nothing for drafting" in rules.energy_budget(no_drafts, ctx())


def test_pool_price_ceiling_saturation_and_cost_ceiling():
    cheap = dataclasses.replace(PolicyConfig(), max_pool_price_per_hour_usd=1.0)
    assert excluded(rules.price_ceiling, ctx(policy=cheap)) == {Placement.CLOUD, Placement.TANDEM}
    full = Option(
        Placement.CLOUD, dataclasses.replace(POOL, utilisation=0.9), dataclasses.replace(PRED, slot_share=1)
    )
    assert "saturated" in rules.saturated(full, ctx())  # 90% + 1 of 4 slots > 95%
    assert rules.saturated(CLOUD, ctx()) is None
    assert excluded(rules.cost_ceiling, ctx(max_cost_usd=0.0005)) == {
        o.placement for o in ALL
    }  # all cost $0.001
    assert excluded(rules.cost_ceiling, ctx(max_cost_usd=0.01)) == set()


@pytest.mark.parametrize("rule", rules.HARD_RULES, ids=lambda r: r.name)
def test_a_plain_request_on_a_healthy_device_passes_every_rule(rule):
    assert excluded(rule, ctx(quality="small_ok")) == set()


def test_the_first_rule_that_applies_excludes():
    options = [Option(Placement.TANDEM, POOL, PRED)]
    rules.apply_hard_rules(options, ctx(privacy="local_only", device=None))
    assert options[0].rule == "privacy"  # before no_device
