"""The shipped Grafana dashboard asks only for metrics (and labels) the router and workers export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from router.metrics import RouterMetrics
from runtime.worker_metrics import WorkerMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tandem-dashboard.json"
SUFFIXES = ("_bucket", "_sum", "_count", "_total")
PROMETHEUS_LABELS = {"le", "instance", "job"}  # added by the histogram or by the scrape


def exported() -> dict[str, set[str]]:
    """Every exported metric family with its label names."""
    registry = CollectorRegistry()
    RouterMetrics(registry)
    WorkerMetrics(registry, "cloud")
    out: dict[str, set[str]] = {}
    for fam in registry.collect():
        labels = out.setdefault(fam.name, set())
        for s in fam.samples:
            labels.update(k for k in s.labels if k != "le")
    for name, labels in list(out.items()):  # families declared with labels but no child yet
        labels.update(getattr(registry._names_to_collectors.get(name), "_labelnames", ()))
    return out


def family(name: str, metrics: dict[str, set[str]]) -> str:
    """The family a sample name belongs to (tandem_ttft_seconds_bucket → tandem_ttft_seconds)."""
    return next((name[: -len(s)] for s in SUFFIXES if name.endswith(s) and name[: -len(s)] in metrics), name)


def test_every_panel_queries_exported_metrics_and_labels():
    dash = json.loads(DASHBOARD.read_text())
    metrics = exported()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(dash["panels"]) >= 10 and exprs
    for expr in exprs:
        families = {family(n, metrics) for n in re.findall(r"tandem_[a-z_]+", expr)}
        for f in families:
            assert f in metrics, f"{f} in {expr!r} is not exported"
        labels = {
            x.strip() for g in re.findall(r"by \(([^)]*)\)", expr) for x in g.split(",")
        } - PROMETHEUS_LABELS
        for label in labels:
            assert any(label in metrics[f] for f in families), (
                f"no metric of {expr!r} has the label {label!r}"
            )
