"""The routing policy as a pure function over plain data: every hard rule, the score, the reasons."""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from router.fleet import PoolInfo
from router.policy.config import PolicyConfig, policy_from_dict
from router.policy.context import DecisionContext, prompt_tokens_estimate
from router.policy.decide import NO_DRAFTING_CAP_J, decide, energy_cap
from router.policy.estimates import Spread
from router.policy.placement import RouteRequest
from router.policy.predict import DeviceEstimate, PoolEstimate, predict_cloud, predict_tandem, prefill_energy
from router.policy.scoring import battery_pressure
from router.policy.snapshot import FleetSnapshot
from router.tandem.speculation import constant
from tandem.errors import FailedPrecondition, InvalidArgument, ResourceExhausted

NOW = 1000.0
POLICY = PolicyConfig()


def device(**kw) -> DeviceEstimate:
    base = dict(
        worker_id="phone",
        endpoint="phone:1",
        battery_percent=80.0,
        charging=False,
        has_battery=True,
        battery_capacity_j=54_000.0,
        thermal="nominal",
        energy_per_token_j=0.05,
        prefill_energy_fraction=0.2,
        rtt_ms=40.0,
        ttft_ms=60.0,
        token_ms=25.0,
        draft_ms=10.0,
        last_seen=NOW - 1,
    )
    base.update(kw)
    return DeviceEstimate(**base)


def pool(name="asic", price=1.2, token_ms=30.0, compute=30.0, **kw) -> PoolEstimate:
    base = dict(
        name=name,
        pool=PoolInfo(name, name, price, 0.0, 2),
        replica_id=f"{name}-1",
        endpoint=f"{name}-1:2",
        replicas=2,
        utilisation=0.2,
        ttft_ms=120.0,
        token_ms=token_ms,
        verify_ms=35.0,
        compute_ms_per_token=compute,
        compute_ms_per_verify=compute * 1.2,
    )
    base.update(kw)
    return PoolEstimate(**base)


ASIC = pool("asic", price=1.2, token_ms=30.0, compute=30.0)
GPU = pool("gpu", price=3.0, token_ms=12.0, compute=15.0)  # dearer per token, faster


def snap(dev=None, pools=(ASIC, GPU), **acceptance) -> FleetSnapshot:
    return FleetSnapshot(device=dev, pools=tuple(pools), acceptance=acceptance)


def req(**kw) -> RouteRequest:
    return RouteRequest(**{"device_id": "phone", "max_new_tokens": 128, "prompt_chars": 400, **kw})


def by(d, placement, pool_name=""):
    return next(c for c in d.candidates if c.placement == placement and c.pool == pool_name)


# ------------------------------------------------------------------ hard rules


def test_local_only_never_leaves_the_device():
    d = decide(req(privacy="local_only", preference="only_cloud"), snap(device()), POLICY, NOW)
    assert d.placement == "edge" and d.rule == "device_only" and "LOCAL_ONLY" in d.reason
    assert all(c.excluded and c.rule == "privacy" for c in d.candidates if c.placement != "edge")
    with pytest.raises(FailedPrecondition, match=r"LOCAL_ONLY.*may not leave") as e:
        decide(req(privacy="local_only"), snap(None), POLICY, NOW)
    assert "not registered" in str(e.value)


def test_only_device_stays_on_device_even_on_a_low_battery():
    d = decide(req(preference="only_device"), snap(device(battery_percent=8.0)), POLICY, NOW)
    assert d.placement == "edge" and d.edge_endpoint == "phone:1"
    with pytest.raises(FailedPrecondition, match="no device_id"):
        decide(req(preference="only_device", device_id=""), snap(None), POLICY, NOW)


def test_only_cloud_never_drafts_on_the_device():
    d = decide(req(preference="only_cloud", quality="small_ok"), snap(device()), POLICY, NOW)
    assert d.placement == "cloud"
    assert by(d, "edge").rule == "only_cloud" and by(d, "tandem", "asic").rule == "only_cloud"


def test_battery_below_reserve_and_not_charging_gets_no_edge_work_nor_drafting():
    low = device(battery_percent=15.0)
    d = decide(req(quality="small_ok"), snap(low), POLICY, NOW)
    assert d.placement == "cloud"
    assert by(d, "edge").rule == by(d, "tandem", "gpu").rule == "battery_reserve"
    assert "below the 20% reserve" in by(d, "edge").reason
    charging = decide(req(quality="small_ok"), snap(dataclasses.replace(low, charging=True)), POLICY, NOW)
    assert charging.placement == "edge"  # free, and the battery does not matter while charging


def test_energy_that_would_cross_the_reserve_is_excluded():
    tiny = device(battery_percent=21.0, battery_capacity_j=200.0)  # 2 J above the reserve
    d = decide(req(quality="small_ok"), snap(tiny), POLICY, NOW)
    assert by(d, "edge").rule == "battery_energy" and "would take the battery below" in by(d, "edge").reason
    assert d.placement != "edge"


def test_energy_of_requests_in_flight_counts_against_the_reserve():
    dev = device(battery_percent=21.0, battery_capacity_j=2_000.0)  # 20 J above the reserve
    assert decide(req(quality="small_ok"), snap(dev), POLICY, NOW).placement == "edge"  # ≈ 10 J × 1.5
    busy = dataclasses.replace(dev, inflight_energy_j=15.0)  # its battery does not show those yet
    d = decide(req(quality="small_ok"), snap(busy), POLICY, NOW)
    assert by(d, "edge").rule == "battery_energy" and "(5.0 J left above it)" in by(d, "edge").reason


def test_local_only_on_a_battery_below_the_reserve_is_refused():
    # LOCAL_ONLY forbids the cloud but does not insist on the battery reserve (ONLY_DEVICE does)
    with pytest.raises(FailedPrecondition, match="below the 20% reserve") as e:
        decide(req(privacy="local_only"), snap(device(battery_percent=12.0)), POLICY, NOW)
    assert "LOCAL_ONLY" in str(e.value)
    tiny = device(battery_percent=21.0, battery_capacity_j=200.0)
    with pytest.raises(FailedPrecondition, match="would take the battery below"):
        decide(req(privacy="local_only"), snap(tiny), POLICY, NOW)
    assert (
        decide(
            req(privacy="local_only"), snap(device(battery_percent=12.0, charging=True)), POLICY, NOW
        ).placement
        == "edge"
    )


def test_thermal_critical_gets_no_device_work():
    hot = device(thermal="critical")
    d = decide(req(quality="small_ok"), snap(hot), POLICY, NOW)
    assert d.placement == "cloud" and by(d, "edge").rule == by(d, "tandem", "asic").rule == "thermal"
    with pytest.raises(FailedPrecondition, match="thermally critical"):
        decide(req(preference="only_device"), snap(hot), POLICY, NOW)


def test_stale_device_state_gets_no_device_work():
    d = decide(req(quality="small_ok"), snap(device(last_seen=NOW - 600)), POLICY, NOW)
    assert by(d, "edge").rule == "stale_device" and d.placement == "cloud"


def test_cost_ceilings_exclude_pools_and_dear_candidates():
    d = decide(req(), snap(device()), dataclasses.replace(POLICY, max_pool_price_per_hour_usd=2.0), NOW)
    assert by(d, "cloud", "gpu").rule == by(d, "tandem", "gpu").rule == "price_ceiling" and d.pool == "asic"
    cloud_cost = by(d, "cloud", "asic").predicted_cost_usd
    tandem_cost = by(d, "tandem", "asic").predicted_cost_usd
    assert tandem_cost < cloud_cost  # fewer target passes: cheaper per token
    d = decide(req(max_cost_usd=(cloud_cost + tandem_cost) / 2), snap(device()), POLICY, NOW)
    assert d.placement == "tandem" and by(d, "cloud", "asic").rule == "cost_ceiling"
    with pytest.raises(FailedPrecondition, match="cost ceiling"):
        decide(req(max_cost_usd=1e-12, preference="only_cloud"), snap(device()), POLICY, NOW)


def test_saturated_pool_is_excluded():
    busy = dataclasses.replace(GPU, utilisation=0.99)
    d = decide(req(preference="only_cloud"), snap(None, (ASIC, busy)), POLICY, NOW)
    assert d.pool == "asic" and by(d, "cloud", "gpu").rule == "saturated"


def test_nothing_but_saturated_pools_is_overload_not_a_constraint():
    busy = (dataclasses.replace(ASIC, utilisation=0.99), dataclasses.replace(GPU, utilisation=0.99))
    with pytest.raises(ResourceExhausted, match="saturated now"):
        decide(req(preference="only_cloud"), snap(None, busy), POLICY, NOW)
    with pytest.raises(FailedPrecondition):  # a cost ceiling no pool meets is a constraint, however busy
        decide(req(preference="only_cloud", max_cost_usd=1e-12), snap(None, (ASIC, GPU)), POLICY, NOW)


def test_saturation_counts_the_slot_share_the_request_would_take():
    # 2 replicas × 2 slots at 75%: a CLOUD request (a whole slot) would take it to 100%, a TANDEM
    # one (its verify passes' share of a slot) stays below the 95% ceiling
    nearly = dataclasses.replace(
        ASIC, utilisation=0.75, pool=dataclasses.replace(ASIC.pool, slots_per_replica=2)
    )
    d = decide(req(), snap(device(), (nearly,)), POLICY, NOW)
    assert (
        by(d, "cloud", "asic").rule == "saturated"
        and "100% with this request" in by(d, "cloud", "asic").reason
    )
    t = by(d, "tandem", "asic")
    assert not t.excluded and d.placement == "tandem" and 0 < d.predicted_slot_share < 0.5


def test_quality_keeps_edge_for_requests_the_small_model_suffices_for():
    dev = snap(device())
    assert by(decide(req(), dev, POLICY, NOW), "edge").rule == "quality"  # unspecified, 128 tokens
    assert decide(req(quality="small_ok"), dev, POLICY, NOW).placement == "edge"
    short = dataclasses.replace(POLICY, small_ok_max_new_tokens=32)
    assert decide(req(max_new_tokens=16), dev, short, NOW).placement == "edge"
    assert by(decide(req(max_new_tokens=64), dev, short, NOW), "edge").rule == "quality"
    d = decide(req(quality="large_required", preference="prefer_device"), dev, POLICY, NOW)
    assert d.placement != "edge" and by(d, "edge").rule == "quality"


def test_slo_misses_are_dropped_when_another_candidate_meets_them():
    slow_link = device(rtt_ms=300.0)
    d = decide(req(ttft_slo_ms=500, token_slo_ms=100), snap(slow_link), POLICY, NOW)
    assert d.placement == "cloud"
    assert (
        by(d, "tandem", "asic").rule == "slo"
        and "while another candidate meets it" in by(d, "tandem", "asic").reason
    )
    # nobody meets an impossible SLO: the policy still serves, by score
    d = decide(req(ttft_slo_ms=1), snap(slow_link), POLICY, NOW)
    assert not any(c.rule == "slo" for c in d.candidates)
    # the policy's default SLO applies when the request sets none
    d = decide(req(), snap(slow_link), dataclasses.replace(POLICY, default_token_slo_ms=30), NOW)
    assert by(d, "tandem", "asic").rule == "slo"


def test_slo_confidence_margins_and_their_fallback_to_the_prediction_itself():
    spread = Spread(0.15)  # the prior: log(actual ÷ predicted) ~ N(0, 0.15²)
    dev = dataclasses.replace(
        snap(device(rtt_ms=20.0), (ASIC, dataclasses.replace(GPU, ttft_ms=60.0))), spread=lambda p, w: spread
    )
    margin = spread.margin(POLICY.slo_confidence, 0.0)
    assert margin == pytest.approx(math.exp(statistics.NormalDist().inv_cdf(0.9) * 0.15))
    ttft = {
        c.pool: c.predicted_ttft_ms
        for c in decide(req(), dev, POLICY, NOW).candidates
        if c.placement == "cloud"
    }
    assert ttft["gpu"] < ttft["asic"]
    # an SLO between the two with the margin: only the gpu pool is sure enough to meet it
    slo = (ttft["asic"] + ttft["gpu"]) / 2 * margin
    d = decide(req(preference="only_cloud", ttft_slo_ms=slo), dev, POLICY, NOW)
    assert d.pool == "gpu" and "not sure enough" in by(d, "cloud", "asic").reason
    # nobody is sure to meet it, the asic pool misses it outright: those predicted to meet it win
    slo = ttft["gpu"] * (1 + margin) / 2
    assert slo < ttft["asic"]
    d = decide(req(preference="only_cloud", ttft_slo_ms=slo), dev, POLICY, NOW)
    asic = by(d, "cloud", "asic")
    assert d.pool == "gpu" and asic.rule == "slo" and "predicted to miss" in asic.reason


def test_the_models_own_spread_widens_the_margin():
    spread = Spread(0.15)
    assert spread.margin(0.9, 0.1) > spread.margin(0.9, 0.0) > spread.margin(0.5, 0.0) - 1e-9
    for _ in range(3000):  # measured: actual never strays from predicted
        spread.add(0.0, 0.0)
    assert spread.margin(0.9, 0.0) < 1.02


def test_request_energy_budget_caps_drafting_and_edge():
    d = decide(req(quality="small_ok", max_device_energy_joules=6.0), snap(device()), POLICY, NOW)
    assert by(d, "edge").rule == "energy_budget"  # 128 tokens × 0.05 J + the prompt
    t = by(d, "tandem", "asic")
    assert not t.excluded and t.predicted_energy_j <= 6.0
    d = decide(req(max_device_energy_joules=1.0), snap(device()), POLICY, NOW)  # the prompt alone is more
    assert by(d, "tandem", "asic").rule == "energy_budget"


def test_tandem_disabled_by_policy():
    d = decide(req(), snap(device()), dataclasses.replace(POLICY, allow_tandem=False), NOW)
    assert d.placement == "cloud" and by(d, "tandem", "asic").rule == "tandem_disabled"


def test_nothing_registered_fails_listing_every_candidate():
    with pytest.raises(FailedPrecondition) as e:
        decide(req(), snap(None, ()), POLICY, NOW)
    assert "EDGE: device 'phone' is not registered" in str(e.value)


# ------------------------------------------------------------------ the score


def test_battery_pressure_rises_as_charge_falls_and_is_zero_while_charging():
    p = [battery_pressure(device(battery_percent=x), POLICY) for x in (100, 80, 50, 20, 10)]
    assert p == sorted(p) and p[0] == 0.0 and p[-1] == 1.0
    assert battery_pressure(device(battery_percent=30, charging=True), POLICY) == 0.0
    assert battery_pressure(device(has_battery=False), POLICY) == 0.0


def test_battery_weight_moves_work_off_a_draining_device():
    heavy = dataclasses.replace(POLICY, battery_weight=5.0)
    assert decide(req(quality="small_ok"), snap(device(battery_percent=100)), heavy, NOW).placement == "edge"
    d = decide(req(quality="small_ok"), snap(device(battery_percent=25)), heavy, NOW)
    assert d.placement == "cloud" and "battery" in by(d, "edge").reason


def test_weights_trade_cost_against_latency():
    dev = snap(device(rtt_ms=20.0))
    cheap = decide(req(), dev, dataclasses.replace(POLICY, latency_weight=0.0), NOW)
    assert (cheap.placement, cheap.pool) == ("tandem", "asic")
    fast = decide(req(), dev, dataclasses.replace(POLICY, cost_weight=0.0, latency_weight=1.0), NOW)
    assert (fast.placement, fast.pool) == ("cloud", "gpu")
    assert fast.rule == cheap.rule == "score" and "score" in fast.reason


def test_preferences_pick_their_side_when_it_survives():
    d = decide(req(preference="prefer_device"), snap(device()), POLICY, NOW)
    assert d.placement == "edge" and d.rule == "preference"
    d = decide(req(preference="prefer_cloud"), snap(device()), POLICY, NOW)
    assert d.placement == "cloud" and by(d, "tandem", "asic").rule == "preference"
    d = decide(req(preference="prefer_device"), snap(device(battery_percent=5)), POLICY, NOW)
    assert d.placement == "cloud"  # the device cannot: fall back


def test_decision_carries_predictions_version_and_reasons():
    d = decide(req(), snap(device()), POLICY, NOW, policy_version=7)
    assert d.policy_version == 7 and len(d.candidates) == 5
    chosen = by(d, d.placement, d.pool)
    assert d.predicted_cost_usd == chosen.predicted_cost_usd > 0
    assert d.predicted_ttft_ms == chosen.predicted_ttft_ms > 0
    assert all(c.reason for c in d.candidates)
    if d.placement == "tandem":
        assert d.initial_draft_length >= 1 and d.predicted_energy_j > 0


# ------------------------------------------------------------------ predictions and config


def test_tandem_prediction_follows_the_cost_model():
    dev = device()
    p = predict_tandem(dev, ASIC, constant(0.7), 128, 100, 16, overlap=False)
    g, m = p.gamma, p.model
    assert m is not None and m.betas == (0.7,) and m.link_ms == dev.rtt_ms and m.verify_ms == ASIC.verify_ms
    assert g == m.best_gamma(16)
    e = m.expected_tokens(g)
    # head start: the first token is the pool's (CLOUD's time to first token), then rounds
    assert p.ttft_ms == predict_cloud(ASIC, 128, dev.rtt_ms, 100).ttft_ms
    assert abs(p.target_passes - (1 + 127 / e)) < 1e-9
    stall = max(0.0, 40.0 + 60.0 + (g + 1) * 10.0 - ASIC.ttft_ms)
    after = stall + 127 / e * (g * 10.0 + 40.0 + 35.0) - 0.7 * (g * 10.0 + 40.0)
    assert abs(p.token_ms - after / 127) < 1e-9
    ahead = predict_tandem(dev, ASIC, constant(0.7), 128, 100, 16, fixed_gamma=g, overlap=True)
    assert ahead.token_ms < p.token_ms and ahead.energy_j > p.energy_j  # faster; drafts ahead it drops
    falling = predict_tandem(dev, ASIC, (0.9, 0.6, 0.4), 128, 100, 16, overlap=False)
    fm = falling.model
    assert fm is not None and fm.betas == (
        0.9,
        0.6,
        0.4,
    )  # the profile, not one α, sets E(γ) and the head start
    assert abs(falling.target_passes - (1 + 127 / fm.expected_tokens(falling.gamma))) < 1e-9
    assert falling.gamma < g  # acceptance that falls with the position wants shorter drafts


def test_the_policys_weights_price_the_draft_length():
    # the policy prices a round by its own weights: latency cheap against cost → longer drafts
    thrifty = decide(req(), snap(device()), dataclasses.replace(POLICY, latency_weight=0.01), NOW)
    quick = decide(req(), snap(device()), dataclasses.replace(POLICY, latency_weight=5.0), NOW)
    t1, t2 = by(thrifty, "tandem", "asic"), by(quick, "tandem", "asic")
    assert t1.predicted_cost_usd < t2.predicted_cost_usd and t1.predicted_token_ms > t2.predicted_token_ms


def test_tandem_runs_without_overlap_where_its_dropped_drafts_cost_more_than_it_saves():
    dev = device(battery_percent=30.0, energy_per_token_j=0.5)  # a draining battery: energy is dear
    d = decide(
        req(preference="prefer_tandem"), snap(dev), dataclasses.replace(POLICY, battery_weight=5.0), NOW
    )
    assert d.placement == "tandem" and not d.overlap
    d = decide(req(preference="prefer_tandem"), snap(device(charging=True)), POLICY, NOW)
    assert d.placement == "tandem" and d.overlap  # charging: energy is free, overlap is faster
    d = decide(req(preference="prefer_tandem", overlap=False), snap(device(charging=True)), POLICY, NOW)
    assert not d.overlap  # the request's hint wins


def test_policy_config_errors_name_the_field():
    with pytest.raises(InvalidArgument) as e:
        policy_from_dict({"cost_weight": -1})
    assert e.value.field == "policy.cost_weight"
    with pytest.raises(InvalidArgument) as e:
        policy_from_dict({"nope": 1})
    assert e.value.field == "policy.nope"
    with pytest.raises(InvalidArgument) as e:
        policy_from_dict({"allow_tandem": 1})
    assert e.value.field == "policy.allow_tandem"
    with pytest.raises(InvalidArgument) as e:
        policy_from_dict({"battery_reserve_percent": 100})
    assert e.value.field == "policy.battery_reserve_percent"
    assert policy_from_dict({"latency_weight": 2}).latency_weight == 2.0


def test_a_tandem_session_may_spend_no_more_than_the_battery_holds_above_its_reserve():
    dev = device(battery_percent=60.0)
    on_battery = decide(req(preference="prefer_tandem"), snap(dev), POLICY, NOW)
    assert on_battery.placement == "tandem"
    # 40 points above the 20% reserve of 54 kJ, over the energy margin, less the prompt's prefill
    # (the session's controller counts its drafts only)
    prefill = prefill_energy(dev, prompt_tokens_estimate(req(), snap(dev), POLICY))
    assert prefill > 0
    assert on_battery.energy_cap_j == pytest.approx(0.40 * 54_000.0 / POLICY.energy_margin - prefill)
    budget = decide(
        req(preference="prefer_tandem", max_device_energy_joules=50.0), snap(device()), POLICY, NOW
    )
    assert budget.energy_cap_j == pytest.approx(50.0 - prefill)  # the request's own budget, when lower
    charging = decide(req(preference="prefer_tandem"), snap(device(charging=True)), POLICY, NOW)
    assert charging.placement == "tandem" and charging.energy_cap_j == 0.0  # no cap
    assert decide(req(preference="only_cloud"), snap(device()), POLICY, NOW).energy_cap_j == 0.0


def test_a_budget_the_prefill_uses_up_leaves_a_cap_that_drafts_nothing():
    dev = device()
    r = req(preference="prefer_tandem", max_device_energy_joules=0.5)
    ctx = DecisionContext.of(r, snap(dev), POLICY, NOW)
    cap = energy_cap(ctx, prefill_j=1.0)
    assert cap == NO_DRAFTING_CAP_J and 0 < cap < dev.energy_per_token_j  # a cap of 0 would mean none
    assert energy_cap(ctx, prefill_j=0.2) == pytest.approx(0.3)


def test_a_capped_session_holds_what_its_cap_lets_it_spend_up_to_its_prediction_times_the_margin():
    """Concurrent sessions on one battery must not each count the same headroom as theirs."""
    near = device(battery_percent=20.4)  # 216 J above the reserve
    d = decide(req(preference="prefer_tandem"), snap(near), POLICY, NOW)
    assert d.placement == "tandem" and d.energy_cap_j > 0
    prefill = prefill_energy(near, prompt_tokens_estimate(req(), snap(near), POLICY))
    assert d.held_energy_j == pytest.approx(
        max(d.predicted_energy_j, min(d.energy_cap_j + prefill, d.predicted_energy_j * POLICY.energy_margin))
    )
    assert d.held_energy_j > d.predicted_energy_j
    # a second request sees the first's hold: its cap stays within what is left
    second = decide(
        req(preference="prefer_tandem"),
        snap(dataclasses.replace(near, inflight_energy_j=d.held_energy_j)),
        POLICY,
        NOW,
    )
    assert second.placement == "tandem"
    left = (0.004 * 54_000.0 - d.held_energy_j) / POLICY.energy_margin
    assert second.energy_cap_j == pytest.approx(left - prefill)
    uncapped = decide(req(preference="prefer_tandem"), snap(device(charging=True)), POLICY, NOW)
    assert uncapped.held_energy_j == uncapped.predicted_energy_j
