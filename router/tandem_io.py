"""gRPC implementations of the TANDEM loop's Drafter (an edge worker) and Verifier (a cloud pool).

Failure semantics: a draft call that fails with UNAVAILABLE, a broken link or its per-round timeout
raises DeviceLost; a verify call that fails that way is retried on another replica of the pool
(safe: the committed context travels with every call, so the new replica recomputes its cache),
and CloudLost is raised when none is left. The client's own deadline passing is DeadlineExceeded.
Any other status is passed through as the matching TandemError.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import grpc

from router.fleet import WorkerRecord
from router.tandem_loop import CloudLost, DeviceLost, Draft, Verdict
from router.worker_channels import WorkerChannels
from tandem.errors import DeadlineExceeded
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, worker_pb2

_LOST = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
         grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


class Deadline:
    """The client's deadline, and a per-call timeout that never outlives it."""

    def __init__(self, remaining_s: float | None, round_timeout_s: float) -> None:
        self._end = None if remaining_s is None else time.monotonic() + remaining_s
        self.round_timeout_s = round_timeout_s

    def timeout(self) -> float:
        if self._end is None:
            return self.round_timeout_s
        left = self._end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the request's deadline passed")
        return min(left, self.round_timeout_s)

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


class GrpcDrafter:
    def __init__(self, channels: WorkerChannels, edge: WorkerRecord, session_id: str,
                 sampling: common_pb2.SamplingParams, support_size: int, deadline: Deadline) -> None:
        self.stub = channels.stub(edge.endpoint)
        self.edge = edge
        self.session_id = session_id
        self.sampling = sampling
        self.support_size = support_size
        self.deadline = deadline

    async def draft(self, context: Sequence[int], n: int) -> Draft:
        req = worker_pb2.DraftRequest(session_id=self.session_id, context=list(context), num_tokens=n,
                                      sampling=self.sampling, support_size=self.support_size)
        t0 = time.perf_counter()
        try:
            resp = await self.stub.Draft(req, timeout=self.deadline.timeout())
        except grpc.RpcError as err:
            if self.deadline.expired():
                raise DeadlineExceeded("the request's deadline passed while drafting") from None
            if err.code() in _LOST:
                raise DeviceLost(f"device_{err.code().name.lower()}") from None
            raise from_rpc_error(err) from None
        return Draft(list(resp.token_ids), list(resp.distributions), (time.perf_counter() - t0) * 1e3,
                     resp.compute_ms, resp.energy_joules)

    async def release(self) -> None:
        try:
            await self.stub.Release(worker_pb2.ReleaseRequest(session_id=self.session_id), timeout=1.0)
        except grpc.RpcError:
            pass


class GrpcVerifier:
    """Verifies on a replica of one pool; on failure moves the session to another replica."""

    def __init__(self, channels: WorkerChannels, first: WorkerRecord,
                 replicas: Callable[[], list[WorkerRecord]], session_id: str,
                 sampling: common_pb2.SamplingParams, deadline: Deadline) -> None:
        self.channels = channels
        self.replica = first
        self._replicas = replicas
        self._failed: set[str] = set()
        self._used: set[str] = {first.endpoint}
        self.session_id = session_id
        self.sampling = sampling
        self.deadline = deadline
        self.retries = 0

    def _next_replica(self) -> WorkerRecord:
        left = [r for r in self._replicas() if r.worker_id not in self._failed]
        if not left:
            raise CloudLost(f"no replica of pool {self.replica.pool.name!r} left to verify "
                            f"({len(self._failed)} failed)")
        return min(left, key=lambda r: (r.state.queue_depth, r.worker_id))

    async def verify(self, context: Sequence[int], draft: Draft) -> Verdict:
        req = worker_pb2.VerifyRequest(session_id=self.session_id, context=list(context),
                                       draft_token_ids=draft.tokens, draft_distributions=draft.dists,
                                       sampling=self.sampling)
        while True:
            t0 = time.perf_counter()
            try:
                resp = await self.channels.stub(self.replica.endpoint).Verify(req, timeout=self.deadline.timeout())
                return Verdict(resp.accepted, resp.next_token_id, (time.perf_counter() - t0) * 1e3,
                               resp.compute_ms, resp.forward_passes, self.replica.worker_id)
            except grpc.RpcError as err:
                if self.deadline.expired():
                    raise DeadlineExceeded("the request's deadline passed while verifying") from None
                if err.code() not in _LOST and err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise from_rpc_error(err) from None
                self._failed.add(self.replica.worker_id)
                self.retries += 1
                self.replica = self._next_replica()
                self._used.add(self.replica.endpoint)

    async def release(self) -> None:
        for endpoint in self._used:
            try:
                await self.channels.stub(endpoint).Release(worker_pb2.ReleaseRequest(session_id=self.session_id),
                                                           timeout=1.0)
            except grpc.RpcError:
                pass
