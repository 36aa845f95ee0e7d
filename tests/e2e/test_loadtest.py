"""`tandem loadtest` end to end: the real command against a real stack, with its own simulated
devices (real edge workers in one process) — every output written, nothing failed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import running_stack

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "loadtest" / "scenarios" / "smoke.toml"


@pytest.fixture(scope="module")
def stack(profile, tmp_path_factory):
    with running_stack(tmp_path_factory, "", ("lt-phone",), 2) as s:
        yield s


def tandem(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_a_short_run_writes_every_output_without_errors(stack, tmp_path):
    out = tmp_path / "run"
    done = tandem(
        "loadtest",
        str(SMOKE),
        "--target",
        stack.router_address,
        "--credentials",  # the stack's fleet: the simulated devices are enrolled in it
        str(stack.credentials.root),
        "--ca-file",
        str(stack.credentials.ca_file),
        "--devices",
        "3",
        "--rate",
        "3",
        "--duration",
        "6",
        "--from-device",
        "0.5",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in (
        "requests.jsonl",
        "requests.csv",
        "fleet.jsonl",
        "summary.json",
        "report.html",
        "latency_cdf.png",
        "placement_share.png",
        "fleet_battery.png",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    (run,) = summary["runs"]
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert run["requests"] == len(records) > 5 and run["ok"] == run["requests"], run["errors"]
    assert run["achieved_send_rate"] > 0 and run["ttft_ms"]["p50"] > 0
    # requests came from the simulated devices, and the router placed some of them on those devices
    sims = {r["device_id"] for r in records if r["device_id"]}
    assert sims and all(d.startswith("sim-") for d in sims)  # not lt-phone, the stack's own device
    assert {r["placement"] for r in records} & {"edge", "tandem"}
    # half the device requests came from apps on the devices, decided there, and are counted so
    on_device = [r for r in records if r["decided_at"] == "device"]
    assert on_device and all(r["device_id"] for r in on_device)
    assert run["decided_on_device"] == len(on_device) and "| decided on the device (ok) |" in done.stdout
    assert all(r["ttft_ms"] >= (r["sent_s"] - r["scheduled_s"]) * 1e3 for r in records)
    samples = [json.loads(line) for line in (out / "fleet.jsonl").read_text().splitlines()]
    assert {s["device_id"] for s in samples} == {"sim-000", "sim-001", "sim-002"}
    assert "2 requests/s" not in done.stdout and "| requests (ok / errors) |" in done.stdout
    assert "sent" in done.stderr  # the progress line

    compared = tandem("loadtest", "--compare", str(out), str(out))
    assert compared.returncode == 0 and "| TTFT p50 ms |" in compared.stdout and "1.00×" in compared.stdout


def test_attach_uses_the_edge_workers_already_registered(stack, tmp_path):
    out = tmp_path / "attached"
    done = tandem(
        "loadtest",
        str(SMOKE),
        "--target",
        stack.router_address,
        "--attach",
        "--ca-file",
        str(stack.credentials.ca_file),
        "--rate",
        "4",
        "--duration",
        "2",
        "--process",
        "constant",
        "--concurrency",
        "2",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["status"] == "OK" for r in records)
    # the cap: never more than 2 in flight (a request waits for a slot, and its latency counts the wait)
    events = sorted(
        [(r["sent_s"], 1) for r in records] + [(r["end_s"], -1) for r in records], key=lambda e: (e[0], e[1])
    )
    inflight = peak = 0
    for _, step in events:
        inflight += step
        peak = max(peak, inflight)
    assert peak <= 2
    assert all(r["ttft_ms"] >= (r["sent_s"] - r["scheduled_s"]) * 1e3 for r in records)
    assert {r["device_id"] for r in records} - {""} == {"lt-phone"}
    assert "attached to 1 edge workers" in done.stderr


def test_a_remote_target_needs_allow_remote(tmp_path):
    done = tandem(
        "loadtest", str(SMOKE), "--target", "10.255.0.1:50051", "--out", str(tmp_path / "x"), timeout=60
    )
    assert done.returncode == 2 and "--allow-remote" in done.stderr
