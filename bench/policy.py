"""The routing policy on a simulated device fleet (router/policy/sim), over several days (seeds).

    .venv/bin/python bench/policy.py                             # seeds 1–5 of the reference scenario
    .venv/bin/python bench/policy.py --seeds 1 --hours 2 --devices 50   # a quick look
    .venv/bin/python bench/policy.py --policy latency_weight=0.1 --policy allow_tandem=false

For each seed (another day of the same fleet and mix): always-cloud (the least-utilised pool, the
cost reference), the policy (the router's decide on the default PolicyConfig plus any --policy
overrides) and the policy without the pace guard (the router's `pace_guard = false`) — the mean
and the worst seed of each figure, and the targets checked on the worst seed. On the first seed
also always-device (EDGE; ignores quality and batteries), random (EDGE, CLOUD[pool] or
TANDEM[pool] uniformly) and the policy at a few latency_weight values (the curve in the plot);
the policy's calibration (actual ÷ predicted latency, the simulator's truth against the policy's
model); and the wall time of build_snapshot + decide with 10,000 registered devices.

Seeds run in parallel, one process per core. Prints progress to stderr, then JSON and markdown to
stdout; writes policy.json, policy.md and policy.png (cost share of always-cloud vs SLO
attainment) to --out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import random
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench/tandem.py would shadow the SDK package `tandem` otherwise

from router.policy.config import PolicyConfig, policy_from_dict  # noqa: E402
from router.policy.sim import (  # noqa: E402
    REFERENCE,
    AlwaysCloud,
    AlwaysDevice,
    RandomPlacement,
    RouterPolicy,
    Scenario,
    load_scenario,
    peak_arrival_rate,
    simulate,
    time_decisions,
)
from tandem.errors import InvalidArgument  # noqa: E402

SEEDS = "1,2,3,4,5"
CURVE = "0,0.03,0.2,0.5,1"
# what the default policy is expected to reach on the worst seed
TARGETS = {
    "cost_share_of_always_cloud": ("<=", 0.40),
    "slo_attainment": (">=", 0.95),
    "devices_pushed_below_reserve": ("<=", 0),
    "privacy_violations": ("<=", 0),
    "quality_violations": ("<=", 0),
    "decision_p99_ms": ("<=", 1.0),
}
FIGURES = (  # per-seed figures of the seed table: (key, worst is the max?)
    ("cost_share_of_always_cloud", True),
    ("slo_attainment", False),
    ("slo_attainment_ceiling", False),
    ("devices_pushed_below_reserve", True),
    ("privacy_violations", True),
    ("quality_violations", True),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, the value read as a TOML value (``0.1``, ``true``), else as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--policy {item!r}: expected key=value")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def with_share(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    row["cost_share_of_always_cloud"] = round(row["cloud_cost_usd"] / (base["cloud_cost_usd"] or 1.0), 4)
    return row


def run_seed(sc: Scenario, policy: PolicyConfig, first: bool, curve: list[float]) -> dict[str, Any]:
    """One day: the cost reference, the policy with and without the pace guard; on the first
    seed also the other baselines and the latency-weight curve."""
    t0 = time.perf_counter()
    base = simulate(sc, AlwaysCloud())
    rows = {"always-cloud": with_share(base, base)}
    if first:
        rows["always-device"] = with_share(simulate(sc, AlwaysDevice()), base)
        rows["random"] = with_share(simulate(sc, RandomPlacement(random.Random(sc.seed + 1))), base)
    rows["policy"] = with_share(simulate(sc, RouterPolicy(policy)), base)
    unguarded = simulate(sc, RouterPolicy(policy, name="policy, no pace guard"), pace_guard=False)
    rows["policy, no pace guard"] = with_share(unguarded, base)
    points = []
    for w in curve if first else ():
        if w == policy.latency_weight:
            continue  # that point is the policy row
        r = simulate(sc, RouterPolicy(dataclasses.replace(policy, latency_weight=w), name=f"policy lw={w:g}"))
        points.append({**with_share(r, base), "latency_weight": w})
    rows["policy"]["latency_weight"] = policy.latency_weight
    log(f"seed {sc.seed}: done in {time.perf_counter() - t0:.0f} s")
    return {"seed": sc.seed, "rows": rows, "curve": points}


def aggregate(days: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
    """Per figure: each seed's value, the mean and the worst."""
    out: dict[str, Any] = {}
    for key, worst_is_max in FIGURES:
        values = {d["seed"]: d["rows"][strategy][key] for d in days}
        worst = max(values.values()) if worst_is_max else min(values.values())
        out[key] = {"by_seed": values, "mean": round(statistics.fmean(values.values()), 4), "worst": worst}
    return out


def check_targets(summary: dict[str, Any], timing: dict[str, float]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = timing["p99_ms"] if key == "decision_p99_ms" else summary[key]["worst"]
        out[key] = {"worst": v, "target": f"{op} {bound:g}", "met": v <= bound if op == "<=" else v >= bound}
    return out


def pct(x: float) -> str:
    return f"{x:.1%}"


def markdown(result: dict[str, Any]) -> str:
    sc, days = result["scenario"], result["days"]
    seeds = [d["seed"] for d in days]
    lines = [
        f"Policy on a simulated fleet: {sc['devices']} devices, {sc['hours']:g} simulated hours per day, "
        f"seeds {', '.join(map(str, seeds))} ({sc['path']}"
        + (f", policy {json.dumps(result['policy_overrides'])}" if result["policy_overrides"] else "")
        + ").",
        "",
        "| strategy | figure | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | worst |",
        "| --- | --- | " + " | ".join("---:" for _ in seeds) + " | ---: | ---: |",
    ]
    for strategy, summary in result["summary"].items():
        for key, _ in FIGURES:
            f = summary[key]
            share = key.startswith(("cost_share", "slo_"))
            show = pct if share else str
            cells = " | ".join(show(f["by_seed"][s]) for s in seeds)
            lines.append(f"| {strategy} | {key} | {cells} | {show(f['mean'])} | {show(f['worst'])} |")
    t = result["decision_time"]
    lines += [
        "",
        "| target (default policy, worst seed) | worst | target | met |",
        "| --- | ---: | --- | --- |",
    ]
    for key, c in result["targets"].items():
        share = key in ("cost_share_of_always_cloud", "slo_attainment")
        op, bound = TARGETS[key]
        shown, want = (pct(c["worst"]), f"{op} {bound:.0%}") if share else (f"{c['worst']:g}", c["target"])
        lines.append(f"| {key} | {shown} | {want} | {'yes' if c['met'] else '**no**'} |")
    first = days[0]
    lines += [
        "",
        f"Seed {first['seed']}, every strategy:",
        "",
        "| strategy | cloud cost $ | cost vs always-cloud | SLO attainment | device energy kJ "
        "| pushed below reserve | privacy / quality violations | edge / cloud / tandem / refused "
        "| TTFT mean / p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in list(first["rows"].values()) + first["curve"]:
        s = r["share"]
        lines.append(
            f"| {r['strategy']} | {r['cloud_cost_usd']:.2f} | {pct(r['cost_share_of_always_cloud'])} "
            f"| {pct(r['slo_attainment'])} | {r['device_energy_j'] / 1e3:.0f} "
            f"| {r['devices_pushed_below_reserve']} | {r['privacy_violations']} / {r['quality_violations']} "
            f"| {s['edge']:.0%} / {s['cloud']:.0%} / {s['tandem']:.0%} / {s['refused']:.1%} "
            f"| {r['ttft_mean_ms']:.0f} / {r['ttft_p95_ms']:.0f} |"
        )
    p = first["rows"]["policy"]
    misses = {k: v for k, v in p["slo_missed_by_kind"].items() if v}
    lines += [
        "",
        f"Policy diagnostics (seed {first['seed']}): SLO ceiling {pct(p['slo_attainment_ceiling'])} "
        f"(no placement the requests' privacy and quality allow could have met the rest); misses "
        f"{json.dumps(misses)}; "
        f"TANDEM requests handed over by the pace guard {p['pace_handovers']}; refusals "
        f"{json.dumps(p['refusal_causes'])}; mean TANDEM draft length {p['mean_gamma']:g}, slot share "
        f"{p['tandem_mean_slot_share']:g}.",
        "",
        "Calibration, actual ÷ predicted (the simulator's truth against the policy's model):",
        "",
        "| placement | TTFT p50 | TTFT p90 | per token p50 | per token p90 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for pl, c in p.get("actual_over_predicted", {}).items():
        cells = [c.get(k) for k in ("ttft_p50", "ttft_p90", "token_p50", "token_p90")]
        lines.append(f"| {pl} | " + " | ".join("—" if v is None else f"{v:.3f}" for v in cells) + " |")
    lines += [
        "",
        f"Decision time (build_snapshot + decide) with {t['devices']:,} registered devices, "
        f"{t['decisions']:,} decisions: p50 {t['p50_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms.",
    ]
    return "\n".join(lines) + "\n"


def plot(first: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    rows, curve = list(first["rows"].values()), first["curve"]
    policy = first["rows"]["policy"]
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        x, y = r["cost_share_of_always_cloud"], r["slo_attainment"]
        ax.scatter([x], [y], s=60, zorder=3)
        ax.annotate(r["strategy"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if curve:  # the policy at other latency weights, through the policy's own point
        pts = sorted([*curve, policy], key=lambda r: r["latency_weight"])
        xs = [r["cost_share_of_always_cloud"] for r in pts]
        ax.plot(
            xs,
            [r["slo_attainment"] for r in pts],
            "--o",
            color="grey",
            markersize=4,
            zorder=2,
            label="policy by latency_weight",
        )
        for r in pts:
            ax.annotate(
                f"{r['latency_weight']:g}",
                (r["cost_share_of_always_cloud"], r["slo_attainment"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=8,
                color="grey",
            )
    ceiling = policy["slo_attainment_ceiling"]
    ax.axhline(ceiling, color="red", lw=0.8, ls="--", label=f"SLO ceiling {ceiling:.1%}")
    ax.axvline(TARGETS["cost_share_of_always_cloud"][1], color="green", lw=0.8, ls=":")
    ax.axhline(TARGETS["slo_attainment"][1], color="green", lw=0.8, ls=":")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(top=max(ceiling, TARGETS["slo_attainment"][1]) + 0.02)
    ax.set_xlabel("cloud cost, share of always-cloud (green: the policy's targets)")
    ax.set_ylabel("SLO attainment (interactive requests)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def shown_path(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(REFERENCE))
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    ap.add_argument("--seeds", default=SEEDS, help=f"days to simulate (default {SEEDS})")
    ap.add_argument(
        "--devices",
        type=int,
        help="override the scenario's device count (the arrival rate stays the "
        "scenario's: it is set by the cloud's capacity)",
    )
    ap.add_argument(
        "--hours", type=float, help="override the simulated span (from the scenario's start_hour)"
    )
    ap.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="PolicyConfig override for the policy strategy (repeatable)",
    )
    ap.add_argument(
        "--curve",
        default=CURVE,
        help=f"latency_weight values for the policy curve on the first seed ('' for none; default {CURVE})",
    )
    ap.add_argument("--timing-devices", type=int, default=10_000)
    ap.add_argument("--timing-decisions", type=int, default=5_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="seeds simulated at once")
    args = ap.parse_args(argv)

    try:
        base = load_scenario(args.scenario)
        base = dataclasses.replace(base, devices=args.devices or base.devices, hours=args.hours or base.hours)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        overrides = parse_overrides(args.policy)
        policy = policy_from_dict(overrides)
    except (InvalidArgument, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    if not seeds:
        raise SystemExit("error: --seeds names no seed")
    curve = [float(x) for x in args.curve.split(",") if x.strip()]
    wall = time.perf_counter()
    log(
        f"scenario {args.scenario}: {base.devices} devices, {base.hours:g} h per day, seeds {seeds}, "
        f"peak {peak_arrival_rate(base):.2f} requests/s"
    )
    scenarios = [dataclasses.replace(base, seed=s) for s in seeds]
    if args.jobs <= 1 or len(scenarios) == 1:
        days = [run_seed(sc, policy, i == 0, curve) for i, sc in enumerate(scenarios)]
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_seed, sc, policy, i == 0, curve) for i, sc in enumerate(scenarios)]
            days = [f.result() for f in futures]
    summary = {name: aggregate(days, name) for name in ("policy", "policy, no pace guard")}
    log(f"timing decisions with {args.timing_devices} registered devices…")
    timing = time_decisions(base, args.timing_devices, args.timing_decisions, policy)
    result = {
        "scenario": {
            "path": shown_path(args.scenario),
            "seeds": seeds,
            "devices": base.devices,
            "hours": base.hours,
            "start_hour": base.start_hour,
            "peak_arrival_rate_per_s": round(peak_arrival_rate(base), 4),
        },
        "policy_overrides": overrides,
        "policy_is_default": policy == PolicyConfig(),
        "summary": summary,
        "targets": check_targets(summary["policy"], timing),
        "days": days,
        "decision_time": timing,
        "wall_s": 0.0,
    }
    result["wall_s"] = round(time.perf_counter() - wall, 1)
    md = markdown(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (out / "policy.md").write_text(md)
    plot(days[0], out / "policy.png", f"{base.devices} devices, {base.hours:g} h, seed {seeds[0]}")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print()
    print(md, end="")
    log(f"wrote {out / 'policy.json'}, {out / 'policy.md'}, {out / 'policy.png'} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
