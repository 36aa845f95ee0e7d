"""The dashboard's pure parts: live figures from a registry, shadow counting, and trace conversion
for what-if replay."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry

from router.dashboard.live import LiveView, histogram_quantile
from router.metrics import RouterMetrics
from router.policy.config import PolicyConfig
from router.policy.placement import Decision
from router.policy.replay import REFERENCE, entry_from_log, entry_from_record, sim_requests, whatif
from router.policy.shadow import ShadowStats
from router.policy.sim import load_scenario


class Clock:
    t = 100.0

    def __call__(self) -> float:
        return self.t


def test_histogram_quantiles_interpolate_inside_the_bucket():
    assert histogram_quantile({0.1: 0, 0.2: 10, float("inf"): 10}, 0.5) == pytest.approx(0.15)
    assert histogram_quantile({0.1: 5, float("inf"): 10}, 0.99) == 0.1  # the overflow bucket: its lower bound
    assert histogram_quantile({0.1: 0, float("inf"): 0}, 0.5) is None


def test_live_view_rates_percentiles_and_pool_costs_over_its_window():
    reg = CollectorRegistry()
    m = RouterMetrics(reg)
    clock = Clock()
    view = LiveView(window_s=10.0, clock=clock)
    view.sample(reg.collect(), [], PolicyConfig(), 1)
    for _ in range(20):
        m.requests.labels("cloud", "OK").inc()
        m.ttft.labels("cloud").observe(0.05)
    m.decisions.labels("cloud", "score").inc(20)
    m.cloud_cost.labels("asic").inc(0.02)
    m.pool_tokens.labels("asic").inc(2000)
    clock.t += 10
    v = view.sample(reg.collect(), [], PolicyConfig(), 1)
    assert v["rps"]["cloud"] == pytest.approx(2.0)
    assert v["reasons"][0] == {"placement": "cloud", "rule": "score", "rps": pytest.approx(2.0)}
    assert 25 <= v["latency"]["ttft_ms"]["cloud"]["p50"] <= 50  # inside the bucket holding 50 ms
    assert v["spend_usd"] == pytest.approx(0.02) and v["spend_usd_per_s"] == pytest.approx(0.002)
    clock.t += 30  # a quiet window: the rates fall to zero, the totals stay
    v = view.sample(reg.collect(), [], PolicyConfig(), 2)
    assert v["rps"]["cloud"] == 0 and v["spend_usd"] == pytest.approx(0.02) and v["policy_version"] == 2


def test_shadow_counts_agreement_differences_and_predictions():
    s = ShadowStats(PolicyConfig(), "try", "ann", 0.0)
    tandem = Decision(
        "tandem", "", edge_worker_id="d", pool="asic", predicted_cost_usd=1.0, predicted_ttft_ms=100
    )
    cloud = Decision("cloud", "", pool="gpu", predicted_cost_usd=3.0, predicted_ttft_ms=50)
    s.record(tandem, tandem)
    s.record(tandem, cloud)
    s.record(cloud, None)
    r = s.report()
    assert (r["decisions"], r["same_placement"], r["same_target"]) == (3, 1, 1)
    assert {(d["live"], d["shadow"], d["count"]) for d in r["differences"]} == {
        ("tandem", "cloud", 1),
        ("cloud", "refused", 1),
    }
    assert r["live"]["cost_usd"] == pytest.approx(1.0) and r["shadow"]["cost_usd"] == pytest.approx(2.0)


def test_traces_from_records_and_the_decision_log_replay_under_each_policy():
    records = [
        {
            "scheduled_s": 10.0 + i,
            "device_id": f"phone-{i % 3}",
            "max_new_tokens": 32,
            "prompt_tokens": 40,
            "privacy": "local_only" if i % 5 == 0 else "standard",
            "quality": "large_required",
            "ttft_slo_ms": 500.0,
            "token_slo_ms": 0.0,
        }
        for i in range(30)
    ]
    entries = [entry_from_record(r) for r in records]
    entries.append(
        entry_from_log(
            {
                "t_s": 45.0,
                "device_id": "",
                "max_new_tokens": 16,
                "prompt_chars": 70,
                "chars_per_token": 3.5,
                "privacy": "standard",
            }
        )
    )
    sc, reqs = sim_requests(entries, load_scenario(REFERENCE))
    assert sc.devices == 3 and len(reqs) == 31
    assert {r.route.device_id for r in reqs} == {"dev-00000", "dev-00001", "dev-00002", ""}
    assert reqs[0].t == sc.start_hour * 3600.0 and reqs[-1].prompt_tokens == 20
    points = whatif(
        entries, {"live": PolicyConfig(), "fast": dataclasses.replace(PolicyConfig(), latency_weight=5.0)}
    )
    assert [p["name"] for p in points] == ["live", "fast"] and all(p["requests"] == 31 for p in points)
    with pytest.raises(ValueError):
        sim_requests([], load_scenario(REFERENCE))
