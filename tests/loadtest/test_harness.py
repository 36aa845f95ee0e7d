"""The load-test harness's pure parts: arrival schedules, records and summaries, scenarios, the
simulated fleet's configuration, request plans and run comparison."""

from __future__ import annotations

import dataclasses
import random
import statistics
from pathlib import Path

import pytest

from loadtest.arrivals import schedule
from loadtest.command import is_loopback
from loadtest.devices import charging_at, device_configs
from loadtest.harness import plan
from loadtest.records import RequestRecord, percentile, summarise, summary_table
from loadtest.report import compare
from loadtest.scenario import Fleet, Link, load
from runtime.configfile import ConfigError

SMOKE = Path(__file__).resolve().parents[2] / "loadtest" / "scenarios" / "smoke.toml"


def test_schedules_keep_their_rate_and_shape():
    assert schedule("constant", 4.0, 2.0) == [i / 4 for i in range(8)]
    assert len(schedule("constant", 4.0, 100.0, max_requests=5)) == 5
    poisson = schedule("poisson", 20.0, 1000.0, rng=random.Random(1))
    assert abs(len(poisson) / 1000.0 - 20.0) / 20.0 < 0.02
    gaps = [b - a for a, b in zip(poisson, poisson[1:])]
    assert abs(statistics.pvariance(gaps) / statistics.mean(gaps) ** 2 - 1.0) < 0.1  # exponential: CV² = 1
    bursty = schedule("gamma", 20.0, 1000.0, burstiness=4.0, rng=random.Random(2))
    gaps = [b - a for a, b in zip(bursty, bursty[1:])]
    assert abs(len(bursty) / 1000.0 - 20.0) / 20.0 < 0.05
    assert abs(statistics.pvariance(gaps) / statistics.mean(gaps) ** 2 - 4.0) < 0.6
    assert schedule("gamma", 5.0, 10.0, rng=random.Random(3)) == schedule(
        "gamma", 5.0, 10.0, rng=random.Random(3)
    )
    with pytest.raises(ValueError):
        schedule("uniform", 1.0, 1.0)
    with pytest.raises(ValueError):
        schedule("poisson", 0.0, 1.0)


def test_latencies_count_from_the_scheduled_time_and_per_token_by_chunk():
    r = RequestRecord(
        0,
        "c",
        "d",
        8,
        scheduled_s=1.0,
        sent_s=1.5,
        first_token_s=1.6,
        end_s=2.0,
        tokens=5,
        ttft_slo_ms=500,
        token_slo_ms=150,
    )
    assert r.ttft_ms == pytest.approx(600.0)  # the half second the send was late counts
    assert r.tpot_ms == pytest.approx(100.0) and r.e2e_ms == pytest.approx(1000.0)
    assert not r.meets_slo  # TTFT 600 > 500
    assert RequestRecord(1, "c", "", 8, 0.0, 0.0, 0.1, 0.5, tokens=5, ttft_slo_ms=500).meets_slo
    assert not RequestRecord(2, "c", "", 8, 0.0, status="UNAVAILABLE").meets_slo
    assert (
        percentile([3, 1, 2, 4], 50) == 2 and percentile([3, 1, 2, 4], 99) == 4 and percentile([], 50) is None
    )


def test_summary_figures():
    recs = [
        RequestRecord(
            i,
            "c",
            "",
            8,
            scheduled_s=i * 0.5,
            sent_s=i * 0.5 + 0.001,
            first_token_s=i * 0.5 + 0.1,
            end_s=i * 0.5 + 0.3,
            tokens=10,
            placement="edge" if i % 2 else "cloud",
            cost_usd=0.001,
            device_energy_j=2.0 if i % 2 else 0.0,
            token_ms=[10.0, 20.0],
            ttft_slo_ms=150,
        )
        for i in range(10)
    ]
    recs[3].status, recs[3].error = "UNAVAILABLE", "gone"
    s = summarise(recs, requested_rate=2.0, duration_s=5.0)
    assert s["requests"] == 10 and s["ok"] == 9 and s["errors"] == {"UNAVAILABLE": 1}
    assert s["achieved_send_rate"] == pytest.approx(2.0)
    assert s["slo_attainment"] == pytest.approx(0.9) and s["tokens"] == 90
    assert s["cost_per_1k_tokens_usd"] == pytest.approx(1e3 * 0.009 / 90)
    assert s["ttft_ms"]["p50"] == pytest.approx(100.0) and s["token_ms"]["p99"] == 20.0
    assert s["by_placement"]["cloud"]["requests"] == 5 and s["by_placement"]["edge"]["requests"] == 4
    table = summary_table(s)
    assert "| requests (ok / errors) | 9 / 1 |" in table and "UNAVAILABLE 1" in table
    assert "B ÷ A" in compare(
        {"scenario": "x", "started": "t", "runs": [s]}, {"scenario": "y", "started": "u", "runs": [s]}
    )


def test_scenarios_load_and_bad_values_are_named(tmp_path):
    s = load(SMOKE)
    assert s.arrivals.sweep == (2.0,) and {h.name for h in s.hints} >= {"interactive", "private"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[arrivals]\nprocess = "uniform"\n')
    with pytest.raises(ConfigError, match=r"arrivals.*process"):
        load(bad)
    bad.write_text("[fleet]\ndevise = 3\n")
    with pytest.raises(ConfigError, match="devise"):
        load(bad)
    with pytest.raises(ConfigError):
        load(tmp_path / "missing.toml")


def test_the_simulated_fleet_is_dealt_links_by_weight_and_charges_in_turn():
    fleet = Fleet(
        devices=8,
        links=(Link(weight=3, delay_ms=5), Link(weight=1, delay_ms=40)),
        charging="cycle",
        charging_share=0.25,
        charge_period_s=8.0,
    )
    configs = device_configs(fleet, "127.0.0.1:1", seed=1)
    assert [c.link.delay_ms for c in configs].count(40) == 2 and len({c.device_id for c in configs}) == 8
    assert all(20 <= c.battery.initial_percent <= 100 for c in configs)
    assert [charging_at(fleet, i, 0.0) for i in range(8)] == [True, True] + [False] * 6
    assert sum(charging_at(fleet, 0, t / 10) for t in range(80)) == 20  # a quarter of each period
    assert not charging_at(Fleet(charging="never"), 0, 5.0) and charging_at(Fleet(charging="always"), 0, 5.0)


def test_plans_are_reproducible_and_send_device_ids_only_where_asked():
    s = load(SMOKE)
    a, b = (
        plan(s, 2.0, ["p1", "p2"], ["sim-000", "sim-001"]),
        plan(s, 2.0, ["p1", "p2"], ["sim-000", "sim-001"]),
    )
    assert a == b and a
    assert all((p.device_id == "") == (not p.hints.on_device) for p in a)
    assert plan(s, 4.0, ["p"], ["d"]) != a
    assert not any(p.from_device for p in a)  # the scenario sends every request to the router
    half = dataclasses.replace(s, requests=dataclasses.replace(s.requests, from_device=0.5))
    local = [p for p in plan(half, 8.0, ["p"], ["sim-000"]) if p.from_device]
    assert local and all(p.device_id for p in local)  # only requests that name a device


def test_only_loopback_targets_count_as_local():
    assert is_loopback("127.0.0.1:50051") and is_loopback("localhost:1") and is_loopback("[::1]:5")
    assert not is_loopback("10.1.2.3:50051") and not is_loopback("8.8.8.8:1")
