"""The dashboard in a real browser (headless Chromium driven by Playwright) on a real stack under
load: live numbers change, the device search finds the device, a shadow policy is counted beside
the live one, the decision log is replayed under two candidates, a bad weight is rejected beside
its field, the chosen candidate applies and the next decision's reason changes, and a rollback
restores the policy."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROMPTS
from tests.e2e.conftest import running_stack

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "loadtest" / "scenarios" / "smoke.toml"
TRACE = ROOT / "bench" / "results" / "loadtest" / "requests.jsonl"  # a recorded load test (bench/loadtest.py)
DEVICE = "dash-phone"
TOKEN = "dash-token"
CONFIG = f"""
[router]
admin_token = "{TOKEN}"
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "the dashboard test needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
        )
    return path


@pytest.fixture(scope="module")
def stack(profile, tmp_path_factory):
    with running_stack(tmp_path_factory, CONFIG, (DEVICE,), 2) as s:
        yield s


@pytest.fixture
def load(stack, tmp_path):
    """A real load test against the stack, from its registered device, running through the test."""
    out = tmp_path / "load"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stack.cli",
            "loadtest",
            str(SMOKE),
            "--target",
            stack.router_address,
            "--attach",
            "--ca-file",
            str(stack.credentials.ca_file),
            "--rate",
            "3",
            "--duration",
            "300",
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    yield proc
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def decision(stack) -> tuple[int, float, str]:
    """The next decision's policy version, the latency term of its winner's score, and its reason."""
    with stack.client(timeout=30) as client:
        d = client.explain(PROMPTS[0], max_new_tokens=48, device_id=DEVICE)
    latency = float(re.search(r"latency ([0-9.]+)", d.reason).group(1))
    return d.policy_version, latency, d.reason


def test_the_dashboard_live_edit_reject_apply_and_roll_back(stack, load, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert stack.dashboard_url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(stack.dashboard_url)
        expect(page.locator("#conn")).to_have_text("live", timeout=20_000)
        expect(page.locator("#policy-version")).to_have_text("v1")
        # the numbers move while the load runs: cloud spend and device energy only ever grow
        first = page.locator("#spend").inner_text(), page.locator("#energy").inner_text()
        page.wait_for_function(
            "([s, e]) => document.getElementById('spend').textContent !== s"
            " || document.getElementById('energy').textContent !== e",
            arg=list(first),
            timeout=30_000,
        )
        expect(page.locator("#devices tbody tr")).to_have_count(1)
        expect(page.locator("#devices-count")).to_have_text("1")
        expect(page.locator("#battery-bins tbody tr")).to_have_count(10)
        # the search box finds the device by part of its id, and nothing for an id no device has
        page.fill("#device-search", DEVICE.upper()[2:])
        expect(page.locator("#device-results tbody tr")).to_have_count(1)
        expect(page.locator("#device-results tbody tr td").first).to_have_text(DEVICE)
        expect(page.locator("#device-search-status")).to_have_text("1 matching")
        page.fill("#device-search", "no-such-device")
        expect(page.locator("#device-results tbody tr")).to_have_count(0)
        expect(page.locator("#device-search-status")).to_have_text("0 matching")
        page.fill("#device-search", DEVICE)
        expect(page.locator("#device-results tbody tr")).to_have_count(1)
        expect(page.locator("#pools tbody tr")).to_have_count(2)
        expect(page.locator("input.pool-price")).to_have_count(2)  # a price override per pool

        page.fill("#token", TOKEN)
        page.fill("#who", "browser-test")

        # shadow: the form's changes decide beside the live policy on the live traffic
        page.fill("#f-latency_weight", "3")
        page.fill("#note", "does latency-first move much?")
        page.click("#shadow-start")
        expect(page.locator("#shadow-state")).to_contain_text("running", timeout=10_000)
        page.wait_for_function(
            "Number(document.getElementById('shadow-decisions').textContent) >= 2", timeout=60_000
        )
        expect(page.locator("#shadow-agreement")).to_contain_text("%")
        page.click("#shadow-stop")
        expect(page.locator("#policy-status")).to_contain_text("shadow stopped after")
        expect(page.locator("#policy-version")).to_have_text("v1")  # a shadow is never enforced

        # what-if: replay the router's decision log under two candidates
        page.fill("#candidate-name", "latency-first")
        page.click("#candidate-add")
        page.fill("#f-latency_weight", "0.07")
        page.fill("#f-cost_weight", "3")
        page.fill("#candidate-name", "cost-first")
        page.click("#candidate-add")
        expect(page.locator("#candidates tbody tr")).to_have_count(2)
        page.click("#whatif-run")
        expect(page.locator("#whatif-results tbody tr")).to_have_count(3, timeout=60_000)
        expect(page.locator("#whatif-plot circle")).to_have_count(3)
        expect(page.locator("#whatif-results")).to_contain_text("★ live")
        # … and a recorded load test's per-request records, uploaded
        page.select_option("#whatif-source", "records")
        page.set_input_files("#whatif-file", str(TRACE))
        page.evaluate("document.querySelector('#whatif-results tbody').innerHTML = ''")
        page.click("#whatif-run")
        expect(page.locator("#whatif-results tbody tr")).to_have_count(3, timeout=60_000)
        expect(page.locator("#err-whatif")).to_have_text("")

        # a bad value is refused by the router and shown beside its field; nothing changes
        page.fill("#f-cost_weight", "-1")
        page.click("#review")
        expect(page.locator("#diff")).to_contain_text("cost_weight: 1 → -1")
        page.fill("#note", "try a negative weight")
        page.click("#apply")
        expect(page.locator("#err-cost_weight")).to_contain_text("must be")
        expect(page.locator("#policy-version")).to_have_text("v1")

        # the chosen candidate goes into the form and applies, with its note; the next decision is
        # scored by it
        v1, latency_before, before = decision(stack)
        page.click(".load-candidate[data-name='latency-first']")
        expect(page.locator("#f-latency_weight")).to_have_value("3")
        page.click("#review")
        expect(page.locator("#diff")).to_have_text("latency_weight: 0.07 → 3")
        page.fill("#note", "latency matters more this week")
        page.click("#apply")
        expect(page.locator("#policy-status")).to_contain_text("applied: v2 by dashboard:browser-test")
        expect(page.locator("#policy-version")).to_have_text("v2", timeout=10_000)
        v2, latency_after, after = decision(stack)
        assert (v1, v2) == (1, 2) and after != before
        assert latency_after > 10 * latency_before  # the weight went from 0.07 to 3
        expect(page.locator("#history tbody tr").first).to_contain_text("latency matters more this week")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        # roll back to v1 (a note is required for that too)
        page.click("#history button.rollback[data-version='1']")
        expect(page.locator("#err-note")).to_contain_text("note")
        page.fill("#note", "back to the default")
        page.click("#history button.rollback[data-version='1']")
        expect(page.locator("#policy-status")).to_contain_text("rolled back to v1: now v3")
        expect(page.locator("#f-latency_weight")).to_have_value("0.07")
        v3, latency_back, _ = decision(stack)
        assert v3 == 3 and latency_back < latency_after / 10
        browser.close()
    assert load.poll() is None, "the load test ended early"
