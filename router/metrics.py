"""Prometheus metrics of the router, on an explicit registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("tandem_requests", "Generate requests by placement and final status",
                                ["placement", "status"], registry=registry)
        self.ttft = Histogram("tandem_ttft_seconds", "Time to first token, at the router",
                              ["placement"], buckets=TTFT_BUCKETS, registry=registry)
        self.token_latency = Histogram("tandem_token_latency_seconds",
                                       "Per-token latency after the first (chunk gap / tokens in chunk)",
                                       ["placement"], buckets=TOKEN_BUCKETS, registry=registry)
        self.tokens = Counter("tandem_generated_tokens", "Tokens streamed to clients", ["placement"],
                              registry=registry)
        self.decisions = Counter("tandem_decisions", "Placement decisions", ["placement"], registry=registry)
        self.cloud_cost = Counter("tandem_cloud_cost_usd", "Money spent in cloud pools", ["pool"], registry=registry)
        self.device_energy = Counter("tandem_device_energy_joules", "Device energy spent", registry=registry)
        self.inflight = Gauge("tandem_inflight_requests", "Generate calls being served", registry=registry)
        self.fleet = Gauge("tandem_fleet_workers", "Registered workers", ["kind"], registry=registry)
        self.registrations = Counter("tandem_fleet_registrations", "Register calls by result", ["kind", "result"],
                                     registry=registry)
        self.expired = Counter("tandem_fleet_expired", "Workers dropped after missing heartbeats", ["kind"],
                               registry=registry)
