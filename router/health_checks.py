"""Active health checks of cloud replicas: the router asks each replica's grpc.health.v1 service
every interval, and drops a replica after `failures` checks in a row went unanswered or answered
NOT_SERVING — well before its lease would expire (a replica that stopped serving can still be
heartbeating, and a dead one's lease runs for seconds)."""

from __future__ import annotations


class FailureCounts:
    """Consecutive failed checks per worker (pure). ``record`` says when a worker is to be dropped."""

    def __init__(self, failures: int) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self.failures = failures
        self._count: dict[str, int] = {}

    def record(self, worker_id: str, ok: bool) -> bool:
        """Count one check; True exactly when this failure makes `failures` in a row."""
        if ok:
            self._count.pop(worker_id, None)
            return False
        n = self._count.get(worker_id, 0) + 1
        self._count[worker_id] = n
        return n == self.failures

    def keep_only(self, worker_ids: set[str]) -> None:
        """Forget workers no longer in the fleet."""
        for w in [w for w in self._count if w not in worker_ids]:
            del self._count[w]
