"""Replica failover: one request moving between the replicas of a pool. No I/O.

The one rule for every cloud call that fails (a CLOUD stream, a TANDEM verify stream, the calls
around them): the replica is marked (avoided for a while when it refused the call as overloaded,
dropped from the fleet when lost) and the request moves to the least-loaded replica of the same
pool that it has not tried yet — nothing is repeated or lost, because the caller resumes from
what was committed.
"""

from __future__ import annotations

from collections.abc import Callable

from router.fleet import FleetRegistry, WorkerRecord


class ReplicaFailover:
    """The replica a request is on now, and where it goes when that one fails."""

    def __init__(
        self,
        registry: FleetRegistry,
        first: WorkerRecord,
        observe: Callable[[str], None] = lambda cause: None,
    ) -> None:
        """`observe` hears the cause of every move ("replica_busy" or "replica_lost": metrics)."""
        self.registry = registry
        self.pool = first.pool.name
        self.current = first
        self.tried: set[str] = {first.worker_id}
        self.endpoints: set[str] = {first.endpoint}  # every replica that may hold the request's session
        self.observe = observe

    def failed(self, overloaded: bool) -> WorkerRecord | None:
        """The current replica failed (`overloaded`: it answered RESOURCE_EXHAUSTED, else it was
        lost): mark it and move to the next replica of the pool; None when none is left."""
        self.registry.replica_failed(self.current.worker_id, overloaded)
        self.observe("replica_busy" if overloaded else "replica_lost")
        nxt = self.registry.pick_replica(self.pool, exclude=self.tried)
        if nxt is not None:
            self.move_to(nxt)
        return nxt

    def move_to(self, replica: WorkerRecord) -> None:
        """Continue on `replica` (the next pick, or one the policy chose anew)."""
        self.current = replica
        self.tried.add(replica.worker_id)
        self.endpoints.add(replica.endpoint)
