"""Prometheus metrics of a Worker server (edge or cloud), on an explicit registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry, kind: str) -> None:
        self.registry = registry
        labels = {"kind": kind}
        self.requests = Counter(
            "tandem_worker_requests",
            "Worker rpcs by method and status",
            ["kind", "method", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "tandem_worker_generated_tokens",
            "Tokens generated (Generate and Draft)",
            ["kind"],
            registry=registry,
        ).labels(**labels)
        self.forward_seconds = Histogram(
            "tandem_worker_forward_seconds",
            "Model time per forward pass",
            ["kind", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inflight = Gauge(
            "tandem_worker_inflight", "Calls being served", ["kind"], registry=registry
        ).labels(**labels)
        self.kind = kind
        self._sessions = Gauge(
            "tandem_worker_kv_sessions", "Sessions holding a KV cache", ["kind"], registry=registry
        ).labels(**labels)
        self._kv_bytes = Gauge(
            "tandem_worker_kv_bytes", "Bytes held by KV caches", ["kind"], registry=registry
        ).labels(**labels)
        self._cache_lookups = Gauge(
            "tandem_worker_kv_lookups",
            "KV cache lookups by result (hit: a prefix was reused)",
            ["kind", "result"],
            registry=registry,
        )
        self._evictions = Gauge(
            "tandem_worker_kv_evictions",
            "KV caches evicted to stay within the byte budget",
            ["kind"],
            registry=registry,
        ).labels(**labels)
        self.batch_size = Histogram(
            "tandem_worker_batch_size",
            "Target passes per batched forward pass",
            ["kind"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(**labels)

    def watch_cache(self, cache) -> None:
        """Read the cache's live figures at scrape time."""
        self._sessions.set_function(lambda: len(cache))
        self._kv_bytes.set_function(lambda: cache.nbytes)
        self._cache_lookups.labels(self.kind, "hit").set_function(lambda: cache.stats.hits)
        self._cache_lookups.labels(self.kind, "miss").set_function(lambda: cache.stats.misses)
        self._evictions.set_function(lambda: cache.stats.evictions)

    def count(self, method: str, status: str) -> None:
        self.requests.labels(self.kind, method, status).inc()
