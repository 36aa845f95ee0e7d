"""The dashboard's device view: the distributions' bins, the top devices by work, the search and its
parameters, and a live sample of 10,000 devices whose size does not grow with the fleet."""

from __future__ import annotations

import dataclasses
import json

import pytest

from router.dashboard.devices import (
    BATTERY_EDGES,
    BATTERY_LABELS,
    RTT_EDGES_MS,
    RTT_LABELS,
    SEARCH_LIMIT,
    bin_labels,
    histogram,
    search,
    search_params,
    summary,
    top_by_share,
)
from router.dashboard.live import LiveView
from router.fleet import CLOUD, EDGE, DeviceState, PoolInfo, WorkerRecord
from router.policy.config import PolicyConfig
from tandem.errors import InvalidArgument


def row(id: str, share: float = 0.0, **kw) -> dict:
    base = {"battery_percent": 50.0, "charging": False, "thermal": "nominal", "rtt_ms": 12.0, "queue": 0}
    return {"id": id, "share": share, "tokens": 0, "tokens_since_last": 0.0, **base, **kw}


def counts(hist: list[dict]) -> list[int]:
    return [b["count"] for b in hist]


def test_bins_hold_their_lower_edge_and_the_ends_take_the_rest():
    assert bin_labels(BATTERY_EDGES, 0, 100) == BATTERY_LABELS
    assert BATTERY_LABELS[0] == "0–10" and BATTERY_LABELS[-1] == "90–100" and len(BATTERY_LABELS) == 10
    assert bin_labels(RTT_EDGES_MS) == ["<5", "5–10", "10–20", "20–50", "50–100", "100–200", "≥200"]
    assert bin_labels(RTT_EDGES_MS) == RTT_LABELS
    assert bin_labels((0.5, 2.5), 0) == ["0–0.5", "0.5–2.5", "≥2.5"]
    battery = histogram([0, 9.99, 10, 55, 99.9, 100], BATTERY_EDGES, BATTERY_LABELS)
    assert counts(battery) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]  # 100 % is in the last bin
    rtt = histogram([0, 4.99, 5, 19.99, 20, 199, 200, 5000], RTT_EDGES_MS, RTT_LABELS)
    assert counts(rtt) == [2, 1, 1, 1, 0, 1, 2]
    assert counts(histogram([], RTT_EDGES_MS, RTT_LABELS)) == [0] * 7


def test_the_top_devices_by_share_largest_first_ties_by_id():
    rows = [row("d", 0.1), row("c", 0.3), row("b", 0.3), row("a", 0.05), row("e", 0.25)]
    assert [d["id"] for d in top_by_share(rows, 3)] == ["b", "c", "e"]
    assert [d["id"] for d in top_by_share(rows, 10)] == ["b", "c", "e", "d", "a"]  # fewer: all
    idle = [row(f"dev-{i}") for i in (3, 1, 2)]
    assert [d["id"] for d in top_by_share(idle, 2)] == ["dev-1", "dev-2"]  # no work: by id
    assert top_by_share([], 10) == []


def test_the_summary_counts_charging_and_thermal_states():
    rows = [
        row("a", charging=True, thermal="fair"),
        row("b", thermal="critical"),
        row("c", charging=True),
        row("d", thermal="fair", battery_percent=5, rtt_ms=250),
    ]
    s = summary(rows, top_n=2)
    assert (s["count"], s["charging"]) == (4, 2)
    assert s["thermal"] == {"nominal": 1, "fair": 2, "serious": 0, "critical": 1, "unknown": 0}
    assert list(s["thermal"]) == ["nominal", "fair", "serious", "critical", "unknown"]
    assert sum(counts(s["battery"])) == 4 and s["battery"][0]["count"] == 1
    assert s["rtt_ms"][-1] == {"label": "≥200", "count": 1} and s["rtt_ms"][2]["count"] == 3
    assert [d["id"] for d in s["top"]] == ["a", "b"]
    assert summary([])["count"] == 0 and summary([])["top"] == []


def test_search_matches_substrings_of_ids_case_insensitively_first_by_id():
    rows = [row(i) for i in ("Phone-12", "phone-2", "laptop-1", "phone-120", "board")]
    r = search(rows, "PHONE-1", 50)
    assert [d["id"] for d in r["devices"]] == ["Phone-12", "phone-120"] and r["matches"] == 2
    r = search(rows, "o", 2)
    assert r["matches"] == 5 and [d["id"] for d in r["devices"]] == ["Phone-12", "board"]
    assert (r["q"], r["limit"]) == ("o", 2)
    assert search(rows, "", 10)["matches"] == 5  # nothing typed: every device
    assert search(rows, "tablet", 10) == {"q": "tablet", "limit": 10, "matches": 0, "devices": []}


def test_search_parameters_are_bounded_and_errors_name_them():
    assert search_params({}) == ("", SEARCH_LIMIT)
    assert search_params({"q": "phone", "limit": "500"}) == ("phone", 500)
    assert search_params({"q": "x" * 128, "limit": "1"}) == ("x" * 128, 1)
    with pytest.raises(InvalidArgument) as err:
        search_params({"q": "x" * 129})
    assert err.value.field == "q" and "128" in str(err.value)
    for bad in ("0", "501", "-1", "1.5", "ten", " 5", "9" * 40):
        with pytest.raises(InvalidArgument) as err:
            search_params({"q": "a", "limit": bad})
        assert err.value.field == "limit" and "1 to 500" in str(err.value), bad


def fleet(n: int, tokens=lambda i: 0) -> list[WorkerRecord]:
    """`n` devices with spread-out battery, RTT and thermal state, and one cloud replica."""
    thermal = ("nominal", "fair", "serious", "critical", "unknown")
    devices = [
        WorkerRecord(
            f"dev-{i:05d}",
            EDGE,
            "",
            "m",
            "t",
            512,
            0,
            state=DeviceState(
                battery_percent=i % 101,
                charging=i % 4 == 0,
                thermal=thermal[i % 5],
                rtt_ms=float(i % 300),
                queue_depth=i % 3,
                tokens_generated=tokens(i),
            ),
        )
        for i in range(n)
    ]
    replica = WorkerRecord("asic-0", CLOUD, "", "m", "t", 512, 0, pool=PoolInfo("asic", "asic", 1.0))
    return [*devices, replica]


def two_samples(n: int) -> tuple[LiveView, dict]:
    """A live view sampled twice; between the samples device i made i % 1000 tokens."""
    view, t = LiveView(clock=lambda: t), 0.0
    view.sample([], fleet(n), PolicyConfig(), 1)
    t = 1.0
    return view, view.sample([], fleet(n, lambda i: i % 1000), PolicyConfig(), 1)


def test_a_live_sample_of_ten_thousand_devices_is_a_bounded_summary():
    view, v = two_samples(10_000)
    d = v["devices"]
    assert (d["count"], d["charging"]) == (10_000, 2_500)
    assert d["thermal"] == dict.fromkeys(("nominal", "fair", "serious", "critical", "unknown"), 2_000)
    assert sum(counts(d["battery"])) == sum(counts(d["rtt_ms"])) == 10_000
    assert d["rtt_ms"][0]["count"] == 10_000 // 300 * 5 + 5  # rtt 0..4 of each run of 300
    # the most work: i % 1000 == 999 (ten devices, equal shares, so by id)
    assert [x["id"] for x in d["top"]] == [f"dev-{i:05d}" for i in range(999, 10_000, 1000)]
    work = sum(i % 1000 for i in range(10_000))
    assert d["top"][0]["share"] == pytest.approx(999 / work)
    assert sum(x["share"] for x in view.devices) == pytest.approx(1.0)
    assert len(view.devices) == 10_000 and search(view.devices, "dev-0999", 50)["matches"] == 10
    # its JSON is the same size for a hundred devices as for ten thousand, bar a few digits
    small = len(json.dumps(two_samples(100)[1]))
    big = len(json.dumps(v))
    assert big < 12_000 and big - small < 300


def test_one_device_is_its_own_top():
    _, v = two_samples(1)
    assert [x["id"] for x in v["devices"]["top"]] == ["dev-00000"] and v["devices"]["count"] == 1


def test_the_first_sample_counts_no_work_and_gone_devices_are_forgotten():
    view, t = LiveView(clock=lambda: t), 0.0
    devs = fleet(3, lambda i: 100 * i)
    assert all(x["share"] == 0 for x in view.sample([], devs, PolicyConfig(), 1)["devices"]["top"])
    t = 1.0
    grown = [
        dataclasses.replace(
            w, state=dataclasses.replace(w.state, tokens_generated=w.state.tokens_generated + 5)
        )
        for w in devs[1:]
    ]
    top = view.sample([], grown, PolicyConfig(), 1)["devices"]["top"]
    assert [(x["id"], x["share"]) for x in top] == [("dev-00001", 0.5), ("dev-00002", 0.5)]
    assert {x["id"] for x in view.devices} == {"dev-00001", "dev-00002"}


def test_a_sample_nobody_looks_at_leaves_the_devices_out_and_shares_start_afresh():
    view, t = LiveView(clock=lambda: t), 0.0
    view.sample([], fleet(3), PolicyConfig(), 1)
    t = 1.0
    quiet = view.sample([], fleet(3, lambda i: 7 * i), PolicyConfig(), 1, devices=False)
    assert quiet["devices"] is None and view.devices == [] and view.devices_at is None
    assert len(view.series) == 2  # the charts keep going
    t = 2.0
    back = view.devices_now(fleet(3, lambda i: 7 * i))  # the work while nobody looked is not counted
    assert back["count"] == 3 and all(x["share"] == 0 for x in back["top"]) and view.devices_at == 2.0
