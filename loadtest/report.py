"""A load test's outputs: per-request JSON lines and CSV, the fleet samples, summary JSON, an HTML
report with PNG charts, and the side-by-side comparison of two runs.

Charts need matplotlib (the `loadtest` or `test` extra); without it the report says so and every
other output is still written.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Sequence
from pathlib import Path

from loadtest.records import CSV_FIELDS, RequestRecord, summary_table

CHARTS = ("latency_cdf.png", "placement_share.png", "fleet_battery.png")


def write_records(out: Path, runs: Sequence[tuple[float, list[RequestRecord]]]) -> None:
    with (out / "requests.jsonl").open("w") as f:
        for rate, records in runs:
            for r in records:
                f.write(json.dumps({"rate": rate, **r.to_json()}) + "\n")
    with (out / "requests.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("rate", *CSV_FIELDS))
        for rate, records in runs:
            for r in records:
                d = r.to_json()
                w.writerow((rate, *(d[k] for k in CSV_FIELDS)))


def write_fleet(out: Path, samples: Sequence[dict]) -> None:
    with (out / "fleet.jsonl").open("w") as f:
        for s in samples:
            f.write(json.dumps(s) + "\n")


def charts(
    out: Path, runs: Sequence[tuple[float, list[RequestRecord]]], samples: Sequence[dict]
) -> list[str]:
    """Write the PNG charts; returns their file names (none without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for _, rs in runs for r in rs if r.ok]
    written = []
    # latency CDFs by placement
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, what, label in (
        (axes[0], "ttft", "time to first token (ms)"),
        (axes[1], "token", "per-token latency (ms)"),
    ):
        for placement in sorted({r.placement for r in records}):
            vals = sorted(
                v
                for r in records
                if r.placement == placement
                for v in ([r.ttft_ms] if what == "ttft" else r.token_ms)
                if v is not None
            )
            if vals:
                ax.plot(
                    vals, [(i + 1) / len(vals) for i in range(len(vals))], label=f"{placement} ({len(vals)})"
                )
        ax.set_xlabel(label)
        ax.set_ylabel("fraction")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Latency CDFs by placement (from each request's scheduled send time)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / CHARTS[0], dpi=110)
    plt.close(fig)
    written.append(CHARTS[0])
    # placement share over time
    if records:
        end = max(r.scheduled_s for r in records)
        width = max(1.0, end / 30)
        bins = int(end // width) + 1
        placements = sorted({r.placement for r in records})
        counts = {p: [0] * bins for p in placements}
        for r in records:
            counts[r.placement][int(r.scheduled_s // width)] += 1
        totals = [sum(counts[p][b] for p in placements) or 1 for b in range(bins)]
        fig, ax = plt.subplots(figsize=(10, 3.2))
        ax.stackplot(
            [b * width for b in range(bins)],
            *[[counts[p][b] / totals[b] for b in range(bins)] for p in placements],
            labels=placements,
            alpha=0.85,
        )
        ax.set_xlabel("scheduled send time (s)")
        ax.set_ylabel("share of requests")
        ax.set_ylim(0, 1)
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title("Placement share over time", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / CHARTS[1], dpi=110)
        plt.close(fig)
        written.append(CHARTS[1])
    # the simulated fleet's battery
    if samples:
        fig, ax = plt.subplots(figsize=(10, 3.2))
        for device in sorted({s["device_id"] for s in samples}):
            mine = [s for s in samples if s["device_id"] == device]
            ax.plot([s["t_s"] for s in mine], [s["battery_percent"] for s in mine], lw=1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("battery (%)")
        ax.set_title(
            f"Battery of the {len({s['device_id'] for s in samples})} devices, as the router saw it",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / CHARTS[2], dpi=110)
        plt.close(fig)
        written.append(CHARTS[2])
    return written


def _md_table_html(md: str) -> str:
    rows = [line.strip("|").split("|") for line in md.strip().splitlines() if not line.startswith("| ---")]
    head, body = rows[0], rows[1:]
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(out) + "</table>"


def write_html(out: Path, summary: dict, images: Sequence[str]) -> None:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Tandem load test: "
        f"{html.escape(summary['scenario'])}</title><style>body{{font-family:sans-serif;max-width:1100px;"
        f"margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;"
        f"padding:3px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child{{text-align:left}}"
        f"</style></head><body>",
        f"<h1>Load test: {html.escape(summary['scenario'])}</h1>",
        f"<p>Target {html.escape(summary['target'])}; {summary['devices']} simulated devices; "
        f"arrivals {html.escape(summary['process'])}; started {html.escape(summary['started'])}.</p>",
    ]
    for run in summary["runs"]:
        parts.append(f"<h2>{run['requested_rate']:g} requests/s</h2>")
        parts.append(_md_table_html(summary_table(run)))
    if images:
        parts += [
            f"<p><img src='{html.escape(i)}' alt='{html.escape(i)}' style='max-width:100%'></p>"
            for i in images
        ]
    else:
        parts.append(
            "<p>No charts: install matplotlib (<code>pip install 'tandem-llm[loadtest]'</code>).</p>"
        )
    parts.append(
        "<p>Files: <a href='requests.jsonl'>requests.jsonl</a>, <a href='requests.csv'>requests.csv</a>, "
        "<a href='summary.json'>summary.json</a>, <a href='fleet.jsonl'>fleet.jsonl</a>.</p></body></html>"
    )
    (out / "report.html").write_text("\n".join(parts))


COMPARED = (
    ("requests ok", lambda s: s["ok"], "{:.0f}"),
    ("errors", lambda s: s["requests"] - s["ok"], "{:.0f}"),
    ("achieved send rate /s", lambda s: s["achieved_send_rate"], "{:.2f}"),
    ("throughput req/s", lambda s: s["throughput_rps"], "{:.2f}"),
    ("goodput req/s", lambda s: s["goodput_rps"], "{:.2f}"),
    (
        "SLO attainment %",
        lambda s: None if s["slo_attainment"] is None else 100 * s["slo_attainment"],
        "{:.1f}",
    ),
    ("TTFT p50 ms", lambda s: s["ttft_ms"]["p50"], "{:.1f}"),
    ("TTFT p99 ms", lambda s: s["ttft_ms"]["p99"], "{:.1f}"),
    ("per-token p50 ms", lambda s: s["token_ms"]["p50"], "{:.2f}"),
    ("per-token p99 ms", lambda s: s["token_ms"]["p99"], "{:.2f}"),
    ("e2e p99 ms", lambda s: s["e2e_ms"]["p99"], "{:.0f}"),
    ("cost per 1k tokens $", lambda s: s["cost_per_1k_tokens_usd"], "{:.5f}"),
    ("energy per request J", lambda s: s["energy_per_request_j"], "{:.2f}"),
    ("TANDEM acceptance", lambda s: s["tandem_acceptance"], "{:.3f}"),
)


def load_summary(path: Path) -> dict:
    """A run's summary.json (from its output folder or the file itself)."""
    path = path / "summary.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no load-test summary at {path}")
    return json.loads(path.read_text())


def compare(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Two runs side by side (markdown), rate by rate, with B ÷ A."""
    lines = [
        f"A: {name_a} ({a['scenario']}, {a['started']})",
        f"B: {name_b} ({b['scenario']}, {b['started']})",
        "",
    ]
    for ra, rb in zip(a["runs"], b["runs"]):
        lines += [
            f"### {ra['requested_rate']:g} vs {rb['requested_rate']:g} requests/s",
            "",
            "| figure | A | B | B ÷ A |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, get, fmt in COMPARED:
            va, vb = get(ra), get(rb)
            ratio = f"{vb / va:.2f}×" if va and vb is not None else "—"
            lines.append(
                f"| {label} | {'—' if va is None else fmt.format(va)} | "
                f"{'—' if vb is None else fmt.format(vb)} | {ratio} |"
            )
        lines.append("")
    if len(a["runs"]) != len(b["runs"]):
        lines.append(
            f"(A has {len(a['runs'])} rates, B {len(b['runs'])}: only the first "
            f"{min(len(a['runs']), len(b['runs']))} are compared)"
        )
    return "\n".join(lines) + "\n"
