"""Prometheus metrics of an edge worker (device state), on an explicit registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Info


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.battery_percent = Gauge("tandem_edge_battery_percent", "Battery charge", registry=registry)
        self.charging = Gauge("tandem_edge_charging", "1 while on external power", registry=registry)
        self.energy = Counter("tandem_edge_energy_joules", "Energy spent on model compute", registry=registry)
        self.rtt_ms = Gauge(
            "tandem_edge_router_rtt_ms", "Last measured round trip to the router", registry=registry
        )
        self.provider = Info(
            "tandem_edge_execution_provider", "onnxruntime execution provider in use", registry=registry
        )
