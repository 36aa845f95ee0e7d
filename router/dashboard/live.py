"""The dashboard's live figures, computed from the router's Prometheus registry (the one /metrics
serves) and its fleet registry: rates and percentiles over a sliding window, totals over time.

Pure given its inputs: ``LiveView.sample(families, fleet, policy)`` takes the registry's metric
families as collected, the fleet's members and the policy, with an injected clock. Its cost is
linear in the fleet and its size is not: devices appear as a summary and the top few by work
(router.dashboard.devices); every device's row stays in ``LiveView.devices`` for search.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence

from router.dashboard.devices import summary
from router.policy.config import pool_price

Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)


def flatten(families: Iterable) -> dict[Key, float]:
    """Every sample of `families` (prometheus_client Metric objects) by (name, labels)."""
    out: dict[Key, float] = {}
    for fam in families:
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _by(
    flat: dict[Key, float], name: str, label: str, where: dict[str, str] | None = None
) -> dict[str, float]:
    """Sum of `name`'s samples grouped by the value of `label` (samples matching `where`)."""
    out: dict[str, float] = collections.defaultdict(float)
    for (n, labels), v in flat.items():
        if n != name:
            continue
        d = dict(labels)
        if where and any(d.get(k) != w for k, w in where.items()):
            continue
        out[d.get(label, "")] += v
    return dict(out)


def _delta(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in now.items()}


def histogram_quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile of a histogram given its cumulative bucket counts by upper bound, linearly
    interpolated inside the bucket (as Prometheus' histogram_quantile); None when it is empty."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lo, below = 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if math.isinf(b):
                return lo  # in the overflow bucket: the last finite bound is what is known
            return lo + (b - lo) * ((rank - below) / (c - below) if c > below else 1.0)
        lo, below = b, c
    return lo


def _buckets(flat: dict[Key, float], name: str, placement: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for (n, labels), v in flat.items():
        d = dict(labels)
        if n == f"{name}_bucket" and d.get("placement") == placement:
            out[float(d["le"])] = out.get(float(d["le"]), 0.0) + v
    return out


@dataclasses.dataclass
class _Window:
    """The registry now (`flat`) and at the window's start (`old`), `span` seconds apart."""

    flat: dict[Key, float]
    old: dict[Key, float]
    span: float

    def rate(self, name: str, label: str) -> dict[str, float]:
        """Per second over the window, by `label`."""
        delta = _delta(_by(self.flat, name, label), _by(self.old, name, label))
        return {k: v / self.span for k, v in delta.items()}

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.flat.items() if n == name)

    def window(self, name: str) -> float:
        """How much `name` grew over the window."""
        return self.total(name) - sum(v for (n, _), v in self.old.items() if n == name)

    def reasons(self) -> list[dict]:
        """Decisions per second by placement and settling rule, the most frequent first."""
        out = []
        for (n, labels), v in self.flat.items():
            if n == "tandem_decisions_total":
                d = dict(labels)
                r = (v - self.old.get((n, labels), 0.0)) / self.span
                if r > 0:
                    out.append({"placement": d.get("placement", ""), "rule": d.get("rule", ""), "rps": r})
        return sorted(out, key=lambda x: -x["rps"])

    def latency(self) -> dict[str, dict[str, dict]]:
        """TTFT and per-token latency p50/p90/p99 (ms) by placement, over the window."""
        out: dict[str, dict[str, dict]] = {}
        for what, name in (("ttft_ms", "tandem_ttft_seconds"), ("token_ms", "tandem_token_latency_seconds")):
            out[what] = {}
            for placement in sorted(
                {dict(k[1]).get("placement", "") for k in self.flat if k[0] == f"{name}_bucket"}
            ):
                buckets = _delta(_buckets(self.flat, name, placement), _buckets(self.old, name, placement))
                qs = {f"p{int(q * 100)}": histogram_quantile(buckets, q) for q in (0.5, 0.9, 0.99)}
                out[what][placement] = {k: None if v is None else v * 1e3 for k, v in qs.items()}
        return out

    def tandem(self) -> dict[str, float | None]:
        """TANDEM over the window: acceptance (per request and per token), tokens per round, γ."""
        rounds, drafted, accepted = (
            self.window(f"tandem_tandem_{x}_total") for x in ("rounds", "drafted_tokens", "accepted_tokens")
        )
        acc_n, acc_sum = (self.window(f"tandem_tandem_acceptance_rate_{x}") for x in ("count", "sum"))
        tpr_n, tpr_sum = (self.window(f"tandem_tandem_tokens_per_round_{x}") for x in ("count", "sum"))
        return {
            "acceptance": acc_sum / acc_n if acc_n else None,
            "acceptance_tokens": accepted / drafted if drafted else None,
            "tokens_per_round": tpr_sum / tpr_n if tpr_n else None,
            "gamma": drafted / rounds if rounds else None,
        }

    def pools(self, fleet: Sequence, policy) -> list[dict]:
        """Each pool's replicas, queue, price, spend and tokens (totals and per second)."""
        cost = _by(self.flat, "tandem_cloud_cost_usd_total", "pool")
        tokens = _by(self.flat, "tandem_pool_tokens_total", "pool")
        d_cost = _delta(cost, _by(self.old, "tandem_cloud_cost_usd_total", "pool"))
        d_tok = _delta(tokens, _by(self.old, "tandem_pool_tokens_total", "pool"))
        pools: dict[str, dict] = {}
        for w in fleet:
            if w.kind != "cloud":
                continue
            reported = w.pool.price_per_replica_hour_usd
            p = pools.setdefault(
                w.pool.name,
                {
                    "name": w.pool.name,
                    "accelerator": w.pool.accelerator,
                    "replicas": 0,
                    "queue": 0,
                    "reported_price_per_replica_hour_usd": reported,
                    "price_per_replica_hour_usd": pool_price(policy, w.pool.name, reported),
                },
            )
            p["replicas"] += 1
            p["queue"] += w.state.queue_depth
        for name, p in pools.items():
            tok = tokens.get(name, 0.0)
            p["cost_usd"] = cost.get(name, 0.0)
            p["cost_per_1k_tokens_usd"] = 1e3 * p["cost_usd"] / tok if tok else None
            p["cost_usd_per_s"] = d_cost.get(name, 0.0) / self.span
            p["tokens_per_s"] = d_tok.get(name, 0.0) / self.span
        return sorted(pools.values(), key=lambda p: p["name"])


class LiveView:
    """Keeps the last `window_s` of registry snapshots and `history` points of totals."""

    def __init__(
        self, window_s: float = 10.0, history: int = 600, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._snaps: collections.deque[tuple[float, dict[Key, float]]] = collections.deque()
        self.series: collections.deque[dict] = collections.deque(maxlen=history)
        self._device_tokens: dict[str, float] = {}
        self.devices: list[dict] = []  # the last sample's row per device (fleet order), for search
        self.devices_at: float | None = None  # when they were sampled (None: not since the last skip)

    def _before(self, now: float) -> tuple[float, dict[Key, float]]:
        while len(self._snaps) > 1 and now - self._snaps[1][0] >= self.window_s:
            self._snaps.popleft()
        return self._snaps[0]

    def sample(
        self, families: Iterable, fleet: Sequence, policy, policy_version: int, devices: bool = True
    ) -> dict:
        """The live view now: `fleet` are router.fleet.WorkerRecord, `policy` the PolicyConfig in
        force. Without `devices` the device part (one pass over every device) is left out: its
        "devices" is None and the next one's shares start afresh (`devices_now` fills it in)."""
        now = self.clock()
        flat = flatten(families)
        self._snaps.append((now, flat))
        t0, old = self._before(now)
        w = _Window(flat, old, max(now - t0, 1e-9))
        rps = {p: r for p, r in w.rate("tandem_requests_total", "placement").items() if p != "none" or r}
        spend, energy = w.total("tandem_cloud_cost_usd_total"), w.total("tandem_device_energy_joules_total")
        self.series.append(
            {
                "t": now,
                "rps": sum(rps.values()),
                "spend_usd": spend,
                "device_energy_j": energy,
                "rps_by_placement": rps,
            }
        )
        return {
            "t": now,
            "window_s": round(w.span, 3),
            "policy_version": policy_version,
            "rps": rps,
            "reasons": w.reasons()[:8],
            "latency": w.latency(),
            "slo": {"ttft_ms": policy.default_ttft_slo_ms, "token_ms": policy.default_token_slo_ms},
            "tandem": w.tandem(),
            "spend_usd": spend,
            "spend_usd_per_s": w.window("tandem_cloud_cost_usd_total") / w.span,
            "device_energy_j": energy,
            "device_energy_j_per_s": w.window("tandem_device_energy_joules_total") / w.span,
            "pools": w.pools(fleet, policy),
            "devices": self.devices_now(fleet) if devices else self._skip_devices(),
            "inflight": w.total("tandem_inflight_requests"),
        }

    def devices_now(self, fleet: Sequence) -> dict:
        """The device part of the live view (router.dashboard.devices.summary) from `fleet` now."""
        return summary(self._devices(fleet))

    def _skip_devices(self) -> None:
        self._device_tokens = {}
        self.devices = []
        self.devices_at = None

    def _devices(self, fleet: Sequence) -> list[dict]:
        """Each device's state and its share of the work (tokens) since the last sample, in fleet
        order (kept as `devices`)."""
        devices = []
        seen = {}
        for w in fleet:
            if w.kind != "edge":
                continue
            prev = self._device_tokens.get(w.worker_id, w.state.tokens_generated)
            seen[w.worker_id] = w.state.tokens_generated
            devices.append(
                {
                    "id": w.worker_id,
                    "battery_percent": w.state.battery_percent,
                    "charging": w.state.charging,
                    "thermal": w.state.thermal,
                    "rtt_ms": w.state.rtt_ms,
                    "queue": w.state.queue_depth,
                    "tokens": w.state.tokens_generated,
                    "tokens_since_last": max(0.0, w.state.tokens_generated - prev),
                }
            )
        self._device_tokens = seen
        work = sum(d["tokens_since_last"] for d in devices)
        for d in devices:
            d["share"] = d["tokens_since_last"] / work if work else 0.0
        self.devices = devices
        self.devices_at = self.clock()
        return devices
