"""The routing policy against three baselines on a simulated device fleet (loadtest/fleet_sim.py).

    .venv/bin/python bench/policy.py                                  # the reference scenario, a day
    .venv/bin/python bench/policy.py --devices 50 --hours 2           # a quick look (from start_hour)
    .venv/bin/python bench/policy.py --seed 7 --curve '' --out /tmp/p  # another day of the same scenario
    .venv/bin/python bench/policy.py --policy latency_weight=0.1 --policy allow_tandem=false

Strategies: always-cloud (the least-utilised pool; ignores privacy), always-device (EDGE; ignores
quality and batteries), random (EDGE, CLOUD[pool] or TANDEM[pool] uniformly), and policy (the
router's decide on the default PolicyConfig, plus any --policy overrides). Also the policy at a few
latency_weight values (the curve in the plot), and the wall time of build_snapshot + decide with
10,000 registered devices.

Prints progress to stderr, then JSON and a markdown table to stdout; writes policy.json, policy.md
and policy.png (cost share of always-cloud vs SLO attainment) to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.policy.config import PolicyConfig, policy_from_dict  # noqa: E402
from router.policy.replay import REFERENCE  # noqa: E402
from router.policy.sim import (
    AlwaysCloud,
    AlwaysDevice,
    RandomPlacement,
    RouterPolicy,
    load_scenario,
    peak_arrival_rate,
    simulate,
    time_decisions,
)
from tandem.errors import InvalidArgument  # noqa: E402

# what the default policy is expected to reach on the reference scenario
TARGETS = {
    "cost_share_of_always_cloud": ("<=", 0.40),
    "slo_attainment": (">=", 0.95),
    "devices_pushed_below_reserve": ("<=", 0),
    "privacy_violations": ("<=", 0),
    "quality_violations": ("<=", 0),
    "decision_p99_ms": ("<=", 1.0),
}
CURVE = "0,0.03,0.2,0.5,1"


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


def shown_path(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else path


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_targets(policy_row: dict[str, Any], timing: dict[str, float]) -> dict[str, dict[str, Any]]:
    values = {k: policy_row[k] for k in TARGETS if k in policy_row}
    values["decision_p99_ms"] = timing["p99_ms"]
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = values[key]
        out[key] = {"value": v, "target": f"{op} {bound:g}", "met": v <= bound if op == "<=" else v >= bound}
    return out


def markdown(
    rows: list[dict[str, Any]],
    curve: list[dict[str, Any]],
    timing: dict[str, float],
    targets: dict[str, dict[str, Any]],
    header: str,
) -> str:
    lines = [
        header,
        "",
        "| strategy | cloud cost $ | cost vs always-cloud | SLO attainment | device energy kJ "
        "| devices pushed below reserve | privacy violations | quality violations "
        "| edge / cloud / tandem / refused | requests | TTFT mean ms | TTFT p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows + curve:
        s = r["share"]
        lines.append(
            f"| {r['strategy']} | {r['cloud_cost_usd']:.2f} | {r['cost_share_of_always_cloud']:.1%} "
            f"| {r['slo_attainment']:.1%} | {r['device_energy_j'] / 1e3:.0f} | {r['devices_pushed_below_reserve']} "
            f"| {r['privacy_violations']} | {r['quality_violations']} "
            f"| {s['edge']:.0%} / {s['cloud']:.0%} / {s['tandem']:.0%} / {s['refused']:.1%} | {r['requests']} "
            f"| {r['ttft_mean_ms']:.0f} | {r['ttft_p95_ms']:.0f} |"
        )
    p = rows[-1]
    lines += [
        "",
        f"Policy diagnostics: SLO ceiling {p['slo_attainment_ceiling']:.1%} (interactive requests no placement "
        f"their privacy and quality allow could have served in time); misses "
        f"{json.dumps({k: v for k, v in p['slo_missed_by_kind'].items() if v})}; refusals "
        f"{json.dumps(p['refusal_causes'])}; pushed below the reserve {json.dumps(p['pushed_below_reserve_causes'])}; "
        f"mean TANDEM draft length {p['mean_gamma']:g}, slot share {p['tandem_mean_slot_share']:g}.",
    ]
    lines += [
        "",
        f"Decision time (build_snapshot + decide) with {timing['devices']:,} registered devices, "
        f"{timing['decisions']:,} decisions: p50 {timing['p50_ms']:.3f} ms, p99 {timing['p99_ms']:.3f} ms.",
        "",
        "| target (default policy) | value | target | met |",
        "| --- | ---: | --- | --- |",
    ]
    for key, t in targets.items():
        op, bound = TARGETS[key]
        share = key in ("cost_share_of_always_cloud", "slo_attainment")
        shown, want = (
            (f"{t['value']:.1%}", f"{op} {bound:.0%}") if share else (f"{t['value']:g}", f"{op} {bound:g}")
        )
        lines.append(f"| {key} | {shown} | {want} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], curve: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        x, y = r["cost_share_of_always_cloud"], r["slo_attainment"]
        ax.scatter([x], [y], s=60, zorder=3)
        ax.annotate(r["strategy"], (x, y), textcoords="offset points", xytext=(6, 6))
    if curve:  # the policy at other latency weights, through the policy's own point
        pts = sorted(curve + [rows[-1]], key=lambda r: r["latency_weight"])
        ax.plot(
            [r["cost_share_of_always_cloud"] for r in pts],
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
    ceiling = rows[-1]["slo_attainment_ceiling"]
    ax.axhline(
        ceiling,
        color="red",
        lw=0.8,
        ls="--",
        label=f"SLO ceiling {ceiling:.1%} (no allowed placement meets the rest)",
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.axvline(TARGETS["cost_share_of_always_cloud"][1], color="green", lw=0.8, ls=":")
    ax.axhline(TARGETS["slo_attainment"][1], color="green", lw=0.8, ls=":")
    ax.set_ylim(top=max(ceiling, TARGETS["slo_attainment"][1]) + 0.02)
    ax.set_xlabel("cloud cost, share of always-cloud (green: the policy's targets)")
    ax.set_ylabel("SLO attainment (interactive requests)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(REFERENCE))
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
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
        "--seed", type=int, help="override the scenario's seed (another day of the same fleet and mix)"
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
        help=f"latency_weight values for the policy curve ('' for none; default {CURVE})",
    )
    ap.add_argument("--timing-devices", type=int, default=10_000)
    ap.add_argument("--timing-decisions", type=int, default=5_000)
    args = ap.parse_args(argv)

    try:
        sc = load_scenario(args.scenario)
        sc = dataclasses.replace(
            sc,
            devices=args.devices or sc.devices,
            hours=args.hours or sc.hours,
            seed=sc.seed if args.seed is None else args.seed,
        )
        overrides = parse_overrides(args.policy)
        policy = policy_from_dict(overrides)
    except InvalidArgument as e:
        raise SystemExit(f"error: {e}") from None
    wall = time.perf_counter()
    log(
        f"scenario {args.scenario}: {sc.devices} devices, {sc.hours:g} h, "
        f"peak {peak_arrival_rate(sc):.2f} requests/s"
    )

    rows = []
    for strategy in (
        AlwaysCloud(),
        AlwaysDevice(),
        RandomPlacement(random.Random(sc.seed + 1)),
        RouterPolicy(policy),
    ):
        t0 = time.perf_counter()
        rows.append(simulate(sc, strategy, progress=log))
        log(f"{strategy.name}: done in {time.perf_counter() - t0:.1f} s")
    curve = []
    for w in (float(x) for x in args.curve.split(",") if x.strip()):
        if w == policy.latency_weight:
            continue  # that point is the policy row
        r = simulate(
            sc,
            RouterPolicy(dataclasses.replace(policy, latency_weight=w), name=f"policy lw={w:g}"),
            progress=None,
        )
        r["latency_weight"] = w
        curve.append(r)
        log(f"policy latency_weight={w:g}: done")
    base = rows[0]["cloud_cost_usd"] or 1.0
    for r in rows + curve:
        r["cost_share_of_always_cloud"] = round(r["cloud_cost_usd"] / base, 4)
    rows[-1]["latency_weight"] = policy.latency_weight
    log(f"timing decisions with {args.timing_devices} registered devices…")
    timing = time_decisions(sc, args.timing_devices, args.timing_decisions, policy)
    targets = check_targets(rows[-1], timing)

    result = {
        "scenario": {
            "path": shown_path(args.scenario),
            "seed": sc.seed,
            "devices": sc.devices,
            "hours": sc.hours,
            "start_hour": sc.start_hour,
            "peak_arrival_rate_per_s": round(peak_arrival_rate(sc), 4),
        },
        "policy_overrides": overrides,
        "policy_is_default": policy == PolicyConfig(),
        "strategies": rows,
        "latency_weight_curve": curve,
        "decision_time": timing,
        "targets": targets,
        "wall_s": round(time.perf_counter() - wall, 1),
    }
    header = (
        f"Policy vs baselines: {sc.devices} devices, {sc.hours:g} simulated hours, seed {sc.seed} "
        f"({result['scenario']['path']}{', policy ' + json.dumps(overrides) if overrides else ''})."
    )
    md = markdown(rows, curve, timing, targets, header)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (out / "policy.md").write_text(md)
    plot(rows, curve, out / "policy.png", f"{sc.devices} devices, {sc.hours:g} h, seed {sc.seed}")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print()
    print(md, end="")
    log(f"wrote {out / 'policy.json'}, {out / 'policy.md'}, {out / 'policy.png'} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
