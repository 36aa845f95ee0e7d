"""`tandem demo` runs the whole stack from a non-editable install (a wheel built from this checkout,
installed into a folder of its own, run from outside the checkout), prints device and cloud
generations with reasons, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

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


def installed_wheel(tmp_path: Path) -> Path:
    """The package as `pip install .` installs it (no dependencies: the test's environment has them),
    in a folder of its own."""
    src, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    # the files git tracks, as they are in the working tree: a build in the checkout itself would
    # leave (and reuse) a build/ folder there
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)], check=True
    )
    wheel = next(wheels.glob("tandem_llm-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def test_demo_streams_from_device_and_cloud_and_exits_cleanly(tmp_path):
    site = installed_wheel(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import stack.cli, runtime.profiles as p; print(stack.cli.__file__); "
         "print(p.builtin_profile('stdlib').missing())"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert where[0].startswith(str(site)) and where[1] == "None"  # the wheel's code and its shipped models
    before = ray_processes()
    res = subprocess.run(
        [sys.executable, "-m", "stack.cli", "demo", "--model", "stdlib"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    out = res.stdout
    assert res.returncode == 0, f"demo failed:\n{out}\n{res.stderr[-3000:]}"
    assert "--- placement: EDGE on demo-phone" in out
    assert "--- placement: CLOUD on " in out
    assert "--- policy v2 by demo" in out and "decision (policy v2)" in out  # tuned live
    assert out.count("--- reason: ") >= 5
    assert "=== on the device: private" in out and "(decided on the device)" in out  # an app on the device
    assert "refused: FAILED_PRECONDITION" in out
    assert "all processes stopped" in out
    leftovers = {pid for pid in ray_processes() - before if psutil.pid_exists(pid)}
    assert not leftovers, f"stray processes after the demo: {leftovers}"
