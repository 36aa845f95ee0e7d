"""The device-fleet simulator on tiny scenarios: scenario validation, truth models, determinism, and the
properties the strategies must show (privacy, quality, batteries), with the router's real policy."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
import tomllib
from pathlib import Path

import pytest

from router.policy.sim import (
    REFERENCE,
    AlwaysCloud,
    AlwaysDevice,
    RandomPlacement,
    RouterPolicy,
    SimDevice,
    cloud_truth,
    edge_truth,
    latency_multiplier,
    load_scenario,
    peak_arrival_rate,
    scenario_from_dict,
    simulate,
    tandem_truth,
    time_decisions,
)
from router.policy.sim.state import fixed_gamma
from router.policy.sim.truth import DeviceSpeed
from router.tandem.control import DraftControlConfig, DraftLengthController
from router.tandem.speculation import RoundModel, constant
from tandem.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[3]

REF = load_scenario(REFERENCE)
# a quarter of an hour at the evening peak, 20 devices: ~1,700 requests
TINY = dataclasses.replace(REF, devices=20, hours=0.25, start_hour=19)


def strategies():
    return [AlwaysCloud(), AlwaysDevice(), RandomPlacement(random.Random(1)), RouterPolicy()]


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    return {s.name: simulate(TINY, s) for s in strategies()}


# ------------------------------------------------------------------ scenario


def raw() -> dict:
    return tomllib.loads(REFERENCE.read_text())


def test_reference_scenario_has_the_specified_mix():
    r = REF.requests
    assert (REF.devices, REF.hours, len(REF.diurnal)) == (200, 24.0, 24)
    assert (r.local_only_share, r.small_ok_share, r.large_required_share) == (0.1, 0.2, 0.7)
    assert r.interactive_share == 0.6 and (r.ttft_slo_ms, r.token_slo_ms) == (500, 100)
    assert {p.name: p.price_per_replica_hour_usd for p in REF.pools} == {"asic": 1.0, "gpu": 3.0}
    assert REF.diurnal.index(max(REF.diurnal)) >= 18  # the evening peak


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: d["requests"].update(bogus=1), "requests.bogus"),
        (lambda d: d["device"].pop("drain_percent_per_hour"), "device.drain_percent_per_hour"),
        (lambda d: d["pools"][1].update(token_ms="fast"), "pools[1].token_ms"),
        (lambda d: d["requests"].update(small_ok_share=0.5), "requests.local_only_share"),
        (lambda d: d.update(diurnal=[1.0] * 23), "diurnal"),
        (lambda d: d["link"].update(rtt_sigma=-1.0), "link.rtt_sigma"),
        (lambda d: d.update(devices=2.5), "devices"),
    ],
)
def test_a_bad_scenario_names_the_key(edit, key):
    d = raw()
    edit(d)
    with pytest.raises(InvalidArgument) as e:
        scenario_from_dict(d)
    assert e.value.field == key


def test_load_scenario_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(REFERENCE.read_text().replace("seed = ", "sed = "))
    with pytest.raises(InvalidArgument, match=r"bad\.toml: sed"):
        load_scenario(bad)


# ------------------------------------------------------------------ truth models


def test_latency_multiplier_grows_with_load_and_stays_finite():
    assert latency_multiplier(0.0, 0.1) == 1.0
    ms = [latency_multiplier(r, 0.1) for r in (0.2, 0.5, 0.8, 0.95, 1.0)]
    assert ms == sorted(ms) and ms[-1] < 5


DEV = DeviceSpeed(
    token_ms=20.0, draft_ms=16.0, prefill_ms_per_token=0.4, energy_per_token_j=0.1, prefill_fraction=0.2
)


def tandem(betas=(0.7,), gamma=4, overlap=False, seed=0, n=200, **kw):
    gpu = next(p for p in REF.pools if p.name == "gpu")
    args = dict(
        n=n,
        prompt_tokens=300,
        rtt_ms=40.0,
        betas=betas,
        control=DraftLengthController(fixed_gamma(gamma, overlap)),
        dev=DEV,
        pool=gpu,
        m=1.0,
        wait_ms=0.0,
        verify_compute_factor=1.2,
        rng=random.Random(seed),
    )
    return tandem_truth(**{**args, **kw})


def test_tandem_truth_plays_rounds_out_and_matches_the_model_on_average():
    gpu = next(p for p in REF.pools if p.name == "gpu")
    cloud = cloud_truth(200, 300, 40.0, gpu, 1.0, 0.0)
    runs = [tandem(seed=s) for s in range(300)]
    # head start: the first token is the pool's; the truth varies from request to request
    assert all(t.ttft_ms == pytest.approx(cloud.ttft_ms) for t in runs)
    assert len({t.rounds for t in runs}) > 5
    # …and on average it is the cost model's: 199 tokens in rounds of E(γ)
    e = RoundModel(constant(0.7), 16.0, 40.0, gpu.verify_ms).expected_tokens(4)
    mean_rounds = sum(t.rounds for t in runs) / len(runs)
    assert mean_rounds == pytest.approx(199 / e, rel=0.05)
    t = runs[0]
    assert t.compute_ms == pytest.approx(gpu.compute_ms_per_token * (1 + t.rounds * 1.2))
    assert t.compute_ms < cloud.compute_ms / 2 and cloud.share == 1.0 and 0 < t.share < 0.5
    # without overlap every round drafts γ on the device and crosses its link, then verifies
    round_ms = 4 * 16.0 + 40.0 + gpu.verify_ms
    assert t.token_ms * 199 <= t.rounds * round_ms + 5 * 16.0 + 40.0 + 300 * 0.4 + 20.0
    # overlap: faster rounds, and the device pays for the blocks it drafted ahead past misses
    ahead = [tandem(seed=s, overlap=True) for s in range(300)]
    assert sum(a.total_ms for a in ahead) < sum(t.total_ms for t in runs)
    assert sum(a.energy_j for a in ahead) > sum(t.energy_j for t in runs)


def test_tandem_truth_counts_acceptance_as_the_session_would():
    truth = (0.95, 0.8, 0.6, 0.4, 0.3)
    t = tandem(betas=truth, gamma=4, n=4000)
    assert len(t.reached) == 5 and t.reached[0] > t.reached[1] > t.reached[2] > t.reached[3] > 0
    rates = [a / r for a, r in zip(t.accepted[:4], t.reached[:4])]
    assert rates[0] == pytest.approx(0.95, abs=0.03) and rates[2] == pytest.approx(0.6, abs=0.06)
    assert t.draft_ms == 16.0 and t.verify_call_ms == pytest.approx(REF.pools[1].verify_ms)
    assert tandem(gamma=0).rounds == 199 and tandem(gamma=0).reached == ()  # no drafting: the cloud decodes


def test_edge_pays_the_link_twice_and_every_token_on_the_battery():
    o = edge_truth(100, 500, 40.0, DeviceSpeed(20.0, 16.0, 0.4, 0.2, 0.2))
    assert o.ttft_ms == pytest.approx(2 * 40 + 500 * 0.4 + 20)
    assert o.energy_j == pytest.approx(100 * 0.2 + 500 * 0.2 * 0.2)
    assert o.compute_ms == 0 and o.share == 0


def test_a_device_charges_and_drains_by_its_own_clock():
    a, b = SimDevice(3, REF, seed=42), SimDevice(3, REF, seed=42)
    b.advance(1800.0)  # the same process whichever times it is asked at
    for t in (600.0, 1200.0, 1800.0):
        a.advance(t)
    assert (a.battery, a.charging, a.thermal) == (b.battery, b.charging, b.thermal)
    before = a.battery
    a.spend(540.0)  # 1% of 54 kJ
    assert a.battery == pytest.approx(max(0.0, before - 1.0))


# ------------------------------------------------------------------ runs


def test_a_seed_reproduces_a_run_exactly():
    again = simulate(TINY, RouterPolicy())
    assert again == simulate(TINY, RouterPolicy())
    other = simulate(dataclasses.replace(TINY, seed=TINY.seed + 1), RouterPolicy())
    assert other["requests"] != again["requests"] or other["cloud_cost_usd"] != again["cloud_cost_usd"]


def test_every_strategy_sees_the_same_workload_and_shares_sum_to_one(runs):
    assert len({r["requests"] for r in runs.values()}) == 1
    for r in runs.values():
        assert sum(r["share"].values()) == pytest.approx(1.0, abs=1e-3)
        assert set(r["share"]) == {"edge", "cloud", "tandem", "refused"}
        assert 0.0 <= r["slo_attainment"] <= 1.0


def test_privacy_violations_zero_for_the_policy_and_not_for_always_cloud(runs):
    assert runs["policy"]["privacy_violations"] == 0
    assert runs["always-cloud"]["privacy_violations"] > 0.05 * runs["always-cloud"]["requests"]


def test_quality_violations_zero_for_the_policy_and_not_for_always_device(runs):
    assert runs["policy"]["quality_violations"] == 0
    assert runs["always-device"]["quality_violations"] > 0.5 * runs["always-device"]["requests"]


def test_placements_match_the_strategies(runs):
    assert runs["always-cloud"]["share"]["cloud"] == 1.0 and runs["always-cloud"]["device_energy_j"] == 0
    assert runs["always-device"]["share"]["edge"] == 1.0 and runs["always-device"]["cloud_cost_usd"] == 0
    assert all(runs["random"]["share"][p] > 0.25 for p in ("edge", "cloud", "tandem"))
    assert runs["policy"]["cloud_cost_usd"] < runs["always-cloud"]["cloud_cost_usd"]


def test_at_the_peak_always_cloud_loads_the_cloud_to_the_scenarios_utilisation():
    flat = dataclasses.replace(TINY, diurnal=(1.0,) * 24, hours=0.5)
    r = simulate(flat, AlwaysCloud())
    assert r["requests"] == pytest.approx(peak_arrival_rate(flat) * 1800, rel=0.1)
    assert r["cloud_utilisation_peak_hour"] == pytest.approx(flat.peak_cloud_utilisation, abs=0.12)


def test_the_policy_keeps_batteries_above_the_reserve_where_always_device_does_not():
    # every battery just above the 20% reserve, nobody charging, no request insisting on the device
    low = dataclasses.replace(
        TINY,
        hours=0.1,
        device=dataclasses.replace(
            TINY.device,
            battery_min_percent=20.02,
            battery_max_percent=20.3,
            charging_share=1e-9,
            drain_percent_per_hour=0.0,
        ),
        requests=dataclasses.replace(
            TINY.requests, local_only_share=0.0, small_ok_share=0.3, large_required_share=0.7
        ),
    )
    assert simulate(low, AlwaysDevice())["devices_pushed_below_reserve"] >= low.devices // 2
    r = simulate(low, RouterPolicy())
    assert r["share"]["edge"] + r["share"]["tandem"] > 0
    # the energy rule holds for every request on its own; what slips through is a device's concurrent
    # requests, each checked against a battery that does not yet show the others' energy
    assert r["pushed_below_reserve_causes"].get("alone", 0) == 0
    assert r["devices_pushed_below_reserve"] <= 2


def test_decision_timing_reports_percentiles():
    t = time_decisions(TINY, devices=300, decisions=100)
    assert t["devices"] == 300 and 0 < t["p50_ms"] <= t["p99_ms"]


def test_bench_writes_json_markdown_and_png(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_policy", ROOT / "bench/policy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--seeds", "1,2", "--devices", "10", "--hours", "0.05", "--curve", "0", "--out", str(tmp_path)]
    args += ["--timing-devices", "100", "--timing-decisions", "50", "--jobs", "1"]
    args += ["--policy", "latency_weight=0.4"]
    assert bench.main(args) == 0
    data = json.loads((tmp_path / "policy.json").read_text())
    first = data["days"][0]
    assert [d["seed"] for d in data["days"]] == [1, 2]
    strategies = ["always-cloud", "always-device", "random", "policy", "policy, no pace guard"]
    assert list(first["rows"]) == strategies
    assert list(data["days"][1]["rows"]) == ["always-cloud", "policy", "policy, no pace guard"]
    assert data["policy_overrides"] == {"latency_weight": 0.4} and len(first["curve"]) == 1
    cost = data["summary"]["policy"]["cost_share_of_always_cloud"]
    assert cost["worst"] == max(cost["by_seed"].values()) and set(cost["by_seed"]) == {"1", "2"}
    assert set(data["targets"]) >= {"slo_attainment", "decision_p99_ms"}
    md = (tmp_path / "policy.md").read_text()
    assert "| policy | slo_attainment |" in md and "Calibration" in md
    assert (tmp_path / "policy.png").read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.lstrip().startswith("{")


def test_tandem_truth_runs_the_sessions_controller_which_follows_the_requests_acceptance():
    gpu = next(p for p in REF.pools if p.name == "gpu")
    fast = dataclasses.replace(DEV, draft_ms=4.0)
    prior = RoundModel(constant(0.5), fast.draft_ms, 40.0, gpu.verify_ms)
    start = DraftLengthController(DraftControlConfig(prior=prior)).next_gamma(200)

    def session(alpha):
        control = DraftLengthController(DraftControlConfig(prior=prior))
        t = tandem(betas=constant(alpha), control=control, n=400, dev=fast)
        return t, control

    easy, easy_ctl = session(0.95)
    hard, _ = session(0.2)
    # it starts where the decision's model does, then drafts longer on easy text and shorter on hard
    assert hard.drafted / hard.rounds < start < easy.drafted / easy.rounds
    assert easy.rounds < hard.rounds
    # what the router learns from is the controller's count (the head start left out)
    assert easy.reached == tuple(easy_ctl.reached) and sum(easy.reached) > 0


def test_a_capped_session_drafts_no_more_than_its_cap_head_block_included():
    """The head block counts against the cap whether its first token was the target's or not."""
    prefill = 300 * DEV.energy_per_token_j * DEV.prefill_fraction
    for seed in range(200):
        control = DraftLengthController(fixed_gamma(4, False), DEV.energy_per_token_j, 3.0)
        t = tandem(betas=(0.9,), seed=seed, control=control)
        assert t.energy_j - prefill <= 3.0 + 1e-9
        assert t.drafted * DEV.energy_per_token_j == pytest.approx(t.energy_j - prefill)
