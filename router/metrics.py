"""Prometheus metrics of the router, on an explicit registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATIO_BUCKETS = (0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0)
TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "tandem_requests",
            "Generate requests by placement and final status",
            ["placement", "status"],
            registry=registry,
        )
        self.ttft = Histogram(
            "tandem_ttft_seconds",
            "Time to first token, at the router",
            ["placement"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.token_latency = Histogram(
            "tandem_token_latency_seconds",
            "Per-token latency after the first (chunk gap / tokens in chunk)",
            ["placement"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "tandem_generated_tokens", "Tokens streamed to clients", ["placement"], registry=registry
        )
        self.decisions = Counter(
            "tandem_decisions",
            "Placement decisions by placement and what settled them "
            "(device_only, preference, only_candidate, score; no_candidate: none could serve)",
            ["placement", "rule"],
            registry=registry,
        )
        self.exclusions = Counter(
            "tandem_decision_exclusions",
            "Candidates excluded, by placement and hard rule",
            ["placement", "rule"],
            registry=registry,
        )
        self.predicted_ratio = Histogram(
            "tandem_latency_actual_over_predicted",
            "Measured ÷ predicted latency of the chosen placement",
            ["placement", "what"],
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.policy_version = Gauge(
            "tandem_policy_version", "Version of the routing policy in force", registry=registry
        )
        self.cloud_cost = Counter(
            "tandem_cloud_cost_usd", "Money spent in cloud pools", ["pool"], registry=registry
        )
        self.pool_tokens = Counter(
            "tandem_pool_tokens",
            "Tokens of the requests a pool served or verified (CLOUD "
            "and TANDEM), the denominator of its cost per token",
            ["pool"],
            registry=registry,
        )
        self.device_energy = Counter("tandem_device_energy_joules", "Device energy spent", registry=registry)
        self.inflight = Gauge("tandem_inflight_requests", "Generate calls being served", registry=registry)
        self.registrations = Counter(
            "tandem_fleet_registrations", "Register calls by result", ["kind", "result"], registry=registry
        )
        self.fallbacks = Counter(
            "tandem_tandem_fallbacks",
            "Requests that continued elsewhere (TANDEM: device or replica lost; CLOUD: replica lost or "
            "busy), by cause",
            ["cause"],
            registry=registry,
        )
        self.acceptance = Histogram(
            "tandem_tandem_acceptance_rate",
            "Per-request share of drafted tokens accepted",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=registry,
        )
        self.tokens_per_round = Histogram(
            "tandem_tandem_tokens_per_round",
            "Per-request tokens committed per round",
            buckets=(1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 12, 17),
            registry=registry,
        )
        self.rounds = Counter("tandem_tandem_rounds", "Draft/verify rounds", registry=registry)
        self.drafted = Counter("tandem_tandem_drafted_tokens", "Tokens drafted by devices", registry=registry)
        self.accepted = Counter("tandem_tandem_accepted_tokens", "Drafted tokens accepted", registry=registry)
        self.expired = Counter(
            "tandem_fleet_expired", "Workers dropped after missing heartbeats", ["kind"], registry=registry
        )
        self.unhealthy = Counter(
            "tandem_fleet_unhealthy",
            "Cloud replicas dropped after failing health checks in a row",
            ["kind"],
            registry=registry,
        )

        self.link_reconnects = Counter(
            "tandem_device_link_reconnects",
            "Links that replaced a link of the same device",
            registry=registry,
        )
        self.device_requests = Counter(
            "tandem_device_decided_requests",
            "Requests devices decided for their own apps, by placement and final status (as the "
            "devices report them; those a device served itself are in tandem_requests too)",
            ["placement", "status"],
            registry=registry,
        )
        self.device_outcomes = Counter(
            "tandem_device_outcomes",
            "Reports of requests devices served themselves (timings and counts) that the policy's "
            "estimates learnt from, or that did not check out and were dropped",
            ["placement", "result"],
            registry=registry,
        )
        self.link_rtt = Histogram(
            "tandem_device_link_rtt_seconds",
            "Round trip of the devices' links, measured by pings on them",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.fleet = FleetCollector()  # counted from the fleet when scraped: see watch()
        registry.register(self.fleet)

    def watch(self, members: Callable[[], Iterable], links: Callable[[], Iterable[int]]) -> None:
        """Count the fleet's figures (FleetCollector) from `members()` and `links()`."""
        self.fleet.members, self.fleet.links = members, links

    def fallback(self, cause: str) -> None:
        """A request continued elsewhere (router.failover's causes, TANDEM's device and pool losses)."""
        self.fallbacks.labels(cause).inc()

    def observe_tandem(self, stats) -> None:
        """Record a finished TANDEM request's statistics (router.tandem.loop.TandemStats)."""
        if stats.rounds:
            committed = stats.accepted + stats.rounds
            self.tokens_per_round.observe(committed / stats.rounds)
            self.rounds.inc(stats.rounds)
        if stats.drafted:
            self.acceptance.observe(stats.accepted / stats.drafted)
            self.drafted.inc(stats.drafted)
            self.accepted.inc(stats.accepted)


BATTERY_BUCKETS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0)


class FleetCollector:
    """Fleet-wide figures computed when scraped, in one pass over the members, so that the number of
    devices grows neither the number of series (no per-device labels: a router holds thousands of
    devices) nor the work done per heartbeat.

    `members()` gives the registered workers (router.fleet.WorkerRecord); `links()` the connected
    links' calls in flight, one number per link."""

    def __init__(
        self, members: Callable[[], Iterable] = tuple, links: Callable[[], Iterable[int]] = tuple
    ) -> None:
        self.members = members
        self.links = links

    def collect(self):
        kinds: dict[str, int] = {"edge": 0, "cloud": 0}
        counts = [0] * len(BATTERY_BUCKETS)
        total, n = 0.0, 0
        for w in self.members():
            kinds[w.kind] = kinds.get(w.kind, 0) + 1
            state = w.state
            if w.kind != "edge" or state.battery_source == "none":
                continue
            n += 1
            total += state.battery_percent
            for i, edge in enumerate(BATTERY_BUCKETS):
                if state.battery_percent <= edge:
                    counts[i] += 1
                    break
        fleet = GaugeMetricFamily("tandem_fleet_workers", "Registered workers", labels=["kind"])
        for kind, count in kinds.items():
            fleet.add_metric([kind], count)
        yield fleet
        cumulative, buckets = 0, []
        for edge, c in zip(BATTERY_BUCKETS, counts):
            cumulative += c
            buckets.append((f"{edge:g}", cumulative))
        buckets.append(("+Inf", n))
        yield HistogramMetricFamily(
            "tandem_device_battery_percent",
            "Battery charge of the devices that report one (one observation per device, now)",
            buckets=buckets,
            sum_value=total,
        )
        inflight = list(self.links())
        yield GaugeMetricFamily("tandem_device_links", "Devices connected by their link", value=len(inflight))
        yield GaugeMetricFamily(
            "tandem_device_link_calls_inflight", "Calls in flight on the devices' links", value=sum(inflight)
        )
        yield GaugeMetricFamily(
            "tandem_device_link_calls_inflight_max",
            "Calls in flight on the busiest device link",
            value=max(inflight, default=0),
        )
