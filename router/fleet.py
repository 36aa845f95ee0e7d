"""The router's fleet registry: who is registered, their live state, and who has gone silent.

Plain data and an injected clock; no gRPC. The registry enforces the fleet's one tokenizer: draft
and target must tokenize identically, so a worker whose tokenizer id differs from the fleet's is
refused with FailedPrecondition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from tandem.errors import FailedPrecondition

EDGE = "edge"
CLOUD = "cloud"
REPLICA_BUSY_S = 1.0  # a replica that refused a call as overloaded gets no new work for this long


@dataclasses.dataclass(frozen=True)
class DeviceState:
    """Live state reported by a worker (battery fields meaningful only for devices with one)."""

    battery_percent: float = 100.0
    charging: bool = False
    battery_source: str = "none"  # none | real | modelled
    thermal: str = "unknown"  # unknown | nominal | fair | serious | critical
    energy_per_token_joules: float = 0.0
    queue_depth: int = 0
    active_sessions: int = 0
    rtt_ms: float = 0.0
    kv_cache_bytes: int = 0
    battery_capacity_joules: float = 0.0
    tokens_generated: int = 0  # since the worker started (drafted ones included)


@dataclasses.dataclass(frozen=True)
class PoolInfo:
    name: str = ""
    accelerator: str = ""
    price_per_replica_hour_usd: float = 0.0
    price_per_1k_tokens_usd: float = 0.0
    replicas: int = 0
    slots_per_replica: int = 8  # requests one replica serves at full speed (utilisation's denominator)


@dataclasses.dataclass(frozen=True)
class WorkerRecord:
    """A registered worker: identity, what it runs, where to call it, and its latest state."""

    worker_id: str
    kind: str  # EDGE | CLOUD
    endpoint: str
    model_name: str
    tokenizer_id: str
    max_context: int
    eos_token_id: int
    execution_provider: str = ""
    available_providers: tuple[str, ...] = ()
    vocab_size: int = 0
    version: str = ""
    pool: PoolInfo = PoolInfo()
    state: DeviceState = DeviceState()
    metrics_port: int = 0
    registered_at: float = 0.0
    last_seen: float = 0.0
    busy_until: float = 0.0  # registry clock: it refused a call as overloaded (RESOURCE_EXHAUSTED) until then


def least_loaded(
    replicas: Iterable[WorkerRecord], busy: Callable[[WorkerRecord], bool] = lambda w: False
) -> WorkerRecord:
    """The one replica choice: not busy (refused work as overloaded lately) first, then the shortest
    queue, then the fewest sessions, then the id (deterministic). Raises ValueError when empty."""
    return min(replicas, key=lambda w: (busy(w), w.state.queue_depth, w.state.active_sessions, w.worker_id))


class FleetRegistry:
    """Registered workers by id. Single-threaded use (the router's event loop)."""

    def __init__(self, clock: Callable[[], float], lease_s: float, tokenizer_id: str = "") -> None:
        self._clock = clock
        self.lease_s = lease_s
        self._pinned_tokenizer = tokenizer_id
        self._workers: dict[str, WorkerRecord] = {}
        self._by_kind: dict[str, dict[str, WorkerRecord]] = {EDGE: {}, CLOUD: {}}  # so pools cost O(replicas)
        self.version = 0  # bumped on every membership change

    @property
    def tokenizer_id(self) -> str:
        """The fleet's tokenizer: the pinned one, or that of the registered workers (empty if none)."""
        if self._pinned_tokenizer:
            return self._pinned_tokenizer
        return next((w.tokenizer_id for w in self._workers.values()), "")

    def register(self, record: WorkerRecord) -> WorkerRecord:
        """Add or replace a worker. Raises FailedPrecondition on a tokenizer mismatch."""
        others = [w for w in self._workers.values() if w.worker_id != record.worker_id]
        expected = self._pinned_tokenizer or next((w.tokenizer_id for w in others), "")
        if expected and record.tokenizer_id != expected:
            holders = [w for w in others if w.tokenizer_id == expected]
            by = (
                f"{holders[0].kind} worker {holders[0].worker_id!r} ({holders[0].model_name})"
                if holders
                else "the router's configuration"
            )
            raise FailedPrecondition(
                f"tokenizer mismatch: {record.kind} worker {record.worker_id!r} ({record.model_name}) uses "
                f"tokenizer {record.tokenizer_id}, but the fleet uses {expected} (set by {by}); draft and "
                f"target models must share one tokenizer"
            )
        now = self._clock()
        old = self._workers.get(record.worker_id)
        record = dataclasses.replace(record, registered_at=old.registered_at if old else now, last_seen=now)
        if old is not None and old.kind != record.kind:
            self._by_kind[old.kind].pop(record.worker_id, None)
        self._workers[record.worker_id] = record
        self._by_kind[record.kind][record.worker_id] = record
        self.version += 1
        return record

    def heartbeat(self, worker_id: str, state: DeviceState) -> bool:
        """Record live state; False when the worker is unknown (it must register again)."""
        w = self._workers.get(worker_id)
        if w is None:
            return False
        w = self._workers[worker_id] = dataclasses.replace(w, state=state, last_seen=self._clock())
        self._by_kind[w.kind][worker_id] = w
        return True

    def mark_busy(self, worker_id: str, seconds: float) -> None:
        """The worker answered RESOURCE_EXHAUSTED: new work avoids it for `seconds`."""
        w = self._workers.get(worker_id)
        if w is not None:
            w = self._workers[worker_id] = dataclasses.replace(w, busy_until=self._clock() + seconds)
            self._by_kind[w.kind][worker_id] = w

    def busy(self, w: WorkerRecord) -> bool:
        return w.busy_until > self._clock()

    def replica_failed(self, worker_id: str, overloaded: bool) -> None:
        """A replica failed a call: one that refused it as overloaded is avoided for REPLICA_BUSY_S;
        one lost is dropped (it registers again with its next heartbeat if it is alive)."""
        if overloaded:
            self.mark_busy(worker_id, REPLICA_BUSY_S)
        else:
            self.deregister(worker_id)

    def pick_replica(self, pool: str, exclude: Iterable[str] = ()) -> WorkerRecord | None:
        """The least-loaded replica of `pool` that is not busy and not in `exclude` (None: none)."""
        skip = set(exclude)
        left = [
            w
            for w in self._by_kind[CLOUD].values()
            if w.pool.name == pool and w.worker_id not in skip and not self.busy(w)
        ]
        return least_loaded(left) if left else None

    def deregister(self, worker_id: str) -> WorkerRecord | None:
        w = self._workers.pop(worker_id, None)
        if w:
            self._by_kind[w.kind].pop(worker_id, None)
            self.version += 1
        return w

    def expire(self, present: Callable[[WorkerRecord], bool] = lambda w: False) -> list[WorkerRecord]:
        """Drop workers silent for longer than the lease, except those `present` says are known to
        be there by other means (a device's open link); returns them."""
        cutoff = self._clock() - self.lease_s
        gone = [w for w in self._workers.values() if w.last_seen < cutoff and not present(w)]
        for w in gone:
            del self._workers[w.worker_id]
            self._by_kind[w.kind].pop(w.worker_id, None)
        if gone:
            self.version += 1
        return gone

    def get(self, worker_id: str) -> WorkerRecord | None:
        return self._workers.get(worker_id)

    def members(self, kind: str | None = None) -> list[WorkerRecord]:
        return list(self._workers.values() if kind is None else self._by_kind[kind].values())

    def now(self) -> float:
        return self._clock()

    def __iter__(self) -> Iterable[WorkerRecord]:
        return iter(list(self._workers.values()))
