"""`tandem demo` runs the whole stack, prints device and cloud generations with reasons, and
leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

import psutil

RAY_PROCESS_NAMES = ("raylet", "gcs_server", "plasma_store")


def ray_processes() -> set[int]:
    found = set()
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            text = " ".join([p.info["name"] or ""] + (p.info["cmdline"] or []))
        except psutil.Error:
            continue
        if any(n in text for n in RAY_PROCESS_NAMES) or "ray::" in text or "stack.cli" in text:
            found.add(p.pid)
    return found


def test_demo_streams_from_device_and_cloud_and_exits_cleanly(profile):
    before = ray_processes()
    res = subprocess.run(
        [sys.executable, "-m", "stack.cli", "demo", "--model", "stdlib"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = res.stdout
    assert res.returncode == 0, f"demo failed:\n{out}\n{res.stderr[-3000:]}"
    assert "--- placement: EDGE on demo-phone" in out
    assert "--- placement: CLOUD on " in out
    assert "--- policy v2 by demo" in out and "decision (policy v2)" in out  # tuned live
    assert out.count("--- reason: ") >= 5
    assert "refused: FAILED_PRECONDITION" in out
    assert "all processes stopped" in out
    leftovers = {pid for pid in ray_processes() - before if psutil.pid_exists(pid)}
    assert not leftovers, f"stray processes after the demo: {leftovers}"
