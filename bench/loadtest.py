"""The load-test harness against the local stack: how high a rate the stack sustains, whether the
harness keeps its schedule there, and a 60-second run with 20 simulated devices.

    .venv/bin/python bench/loadtest.py                      # ≈6 minutes
    .venv/bin/python bench/loadtest.py --rates 2,4 --step-s 10 --fixed-s 20    # a quick look

One local stack (router and the default asic and gpu pools on Ray Serve) serves every phase:

1. a sweep of constant-rate runs (`--rates`, `--step-s` seconds each) of loadtest/scenarios/bench.toml with
   `--devices` simulated devices; a rate is *sustained* when every request succeeds, completions
   keep up with sends (throughput ≥ 95% of the rate) and TTFT p99 stays under `--ttft-limit-ms`;
2. at the highest sustained rate: the requested against the achieved send rate (the harness's own
   schedule-keeping, target within 2%) and the send lag;
3. a `--fixed-s` second run at `--fixed-rate` (default: three quarters of the highest sustained
   rate) with Poisson arrivals, writing every output into bench/results/loadtest/.

Every phase is a real `tandem loadtest` run (loadtest.command). Prints progress to stderr, JSON and
a markdown table to stdout, and writes bench/results/loadtest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest import command  # noqa: E402
from loadtest.records import summary_table  # noqa: E402
from stack.local_stack import LocalStack  # noqa: E402

SCENARIO = ROOT / "loadtest" / "scenarios" / "bench.toml"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def loadtest(target: str, out: Path, **flags) -> dict:
    """One `tandem loadtest` run against `target`; its summary."""
    argv = [str(SCENARIO), "--target", target, "--out", str(out)]
    for key, value in flags.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    if command.main(parser.parse_args(argv)) != 0:
        raise RuntimeError(f"tandem loadtest {' '.join(argv)} failed")
    return json.loads((out / "summary.json").read_text())


def sustained(run: dict, ttft_limit_ms: float) -> bool:
    p99 = run["ttft_ms"]["p99"]
    return (
        run["ok"] == run["requests"]
        and run["throughput_rps"] >= 0.95 * run["requested_rate"]
        and p99 is not None
        and p99 <= ttft_limit_ms
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="4,6,8,10,12,16")
    ap.add_argument("--step-s", type=float, default=20.0, help="seconds of sending per sweep rate")
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--ttft-limit-ms", type=float, default=5000.0)
    ap.add_argument(
        "--fixed-rate", type=float, help="rate of the fixed run (default: ¾ of the highest sustained)"
    )
    ap.add_argument("--fixed-s", type=float, default=60.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    work = out / "loadtest-sweep"
    t0 = time.perf_counter()
    with LocalStack(progress=log) as stack:
        stack.start_router()
        stack.start_cloud()
        stack.wait_fleet(edge=0, cloud=2, timeout_s=120)
        log(
            f"sweep: constant arrivals at {args.rates} requests/s, {args.step_s:g} s each, "
            f"{args.devices} devices"
        )
        sweep = loadtest(
            stack.router_address,
            work,
            rates=args.rates,
            process="constant",
            duration=args.step_s,
            devices=args.devices,
        )
        runs = sweep["runs"]
        ok = [r for r in runs if sustained(r, args.ttft_limit_ms)]
        highest = max(ok, key=lambda r: r["requested_rate"]) if ok else None
        fixed_rate = args.fixed_rate or (round(0.75 * highest["requested_rate"], 2) if highest else 1.0)
        log(
            f"highest sustained rate: {highest['requested_rate'] if highest else 'none'}; "
            f"fixed run at {fixed_rate:g}/s for {args.fixed_s:g} s"
        )
        fixed_dir = out / "loadtest"
        if fixed_dir.exists():
            shutil.rmtree(fixed_dir)
        fixed = loadtest(
            stack.router_address,
            fixed_dir,
            rate=fixed_rate,
            process="poisson",
            duration=args.fixed_s,
            devices=args.devices,
        )
    shutil.rmtree(work, ignore_errors=True)  # the sweep's records are summarised below
    (run,) = fixed["runs"]
    result = {
        "devices": args.devices,
        "sweep": [
            {
                "rate": r["requested_rate"],
                "sustained": sustained(r, args.ttft_limit_ms),
                "ok": r["ok"],
                "requests": r["requests"],
                "errors": r["errors"],
                "scheduled_rate": r["scheduled_rate"],
                "achieved_send_rate": r["achieved_send_rate"],
                "send_lag_ms_p99": r["send_lag_ms"]["p99"],
                "throughput_rps": r["throughput_rps"],
                "ttft_ms_p50": r["ttft_ms"]["p50"],
                "ttft_ms_p99": r["ttft_ms"]["p99"],
                "slo_attainment": r["slo_attainment"],
            }
            for r in runs
        ],
        "highest_sustained_rate": highest["requested_rate"] if highest else None,
        "send_rate_error_at_highest": (
            abs(highest["achieved_send_rate"] / highest["requested_rate"] - 1)
            if highest and highest["achieved_send_rate"]
            else None
        ),
        "fixed_run": {
            "rate": fixed_rate,
            "duration_s": args.fixed_s,
            "requests": run["requests"],
            "ok": run["ok"],
            "scheduled_rate": run["scheduled_rate"],
            "achieved_send_rate": run["achieved_send_rate"],
            "errors": run["errors"],
            "outputs": sorted(p.name for p in fixed_dir.iterdir()),
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    lines = [
        f"Sweep: constant arrivals, {args.step_s:g} s per rate, {args.devices} simulated devices, the local "
        f"stack (router, asic and gpu pools of one replica each) on this 2-core machine.",
        "",
        "| requested /s | achieved send /s | send error | send lag p99 ms | completed /s | TTFT p50 / p99 ms "
        "| errors | sustained |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["sweep"]:
        err = abs(r["achieved_send_rate"] / r["rate"] - 1) if r["achieved_send_rate"] else None
        lines.append(
            f"| {r['rate']:g} | {r['achieved_send_rate']:.3f} "
            f"| {'—' if err is None else f'{100 * err:.2f}%'} "
            f"| {r['send_lag_ms_p99']:.2f} | {r['throughput_rps']:.2f} | {r['ttft_ms_p50']:.0f} / "
            f"{r['ttft_ms_p99']:.0f} | {r['requests'] - r['ok']} | {'yes' if r['sustained'] else 'no'} |"
        )
    lines += [
        "",
        f"Fixed run: Poisson arrivals at {fixed_rate:g}/s for {args.fixed_s:g} s, {args.devices} devices "
        f"(outputs in bench/results/loadtest/):",
        "",
        summary_table(run),
    ]
    md = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loadtest.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "loadtest.md").write_text(md)
    print(json.dumps(result, indent=2))
    print()
    print(md, end="")
    log(f"wrote {out / 'loadtest.json'} and {out / 'loadtest.md'} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
