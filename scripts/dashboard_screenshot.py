"""Take the README's dashboard screenshot: a local stack, a load test of the smoke scenario running
against it, and headless Chromium on the dashboard.

    .venv/bin/python scripts/dashboard_screenshot.py [--out bench/results/dashboard.png] [--after-s 25]

Needs Debian's chromium and the `playwright` package (the `test` extra).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.local_stack import LocalStack  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/dashboard.png")
    ap.add_argument("--after-s", type=float, default=25.0, help="seconds of load before the screenshot")
    args = ap.parse_args()
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        print("needs Debian's chromium: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with LocalStack(progress=lambda m: print(f"[shot] {m}", file=sys.stderr)) as stack:
        stack.start_router()
        stack.start_cloud()
        stack.wait_fleet(edge=0, cloud=2)
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stack.cli",
                "loadtest",
                str(ROOT / "loadtest/scenarios/smoke.toml"),
                "--target",
                stack.router_address,
                "--duration",
                str(args.after_s + 20),
                "--rate",
                "4",
                "--out",
                str(stack.workdir / "load"),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=browser_path, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                time.sleep(8)  # the simulated devices register before the page opens
                page.goto(stack.dashboard_url)
                time.sleep(args.after_s)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            load.terminate()
            load.wait(timeout=60)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
