"""gRPC implementations of the TANDEM loop's draft sources (an edge worker) and Verifier (a cloud pool).

Draft sources: :class:`RequestedDrafts` asks for each round's block with a Draft call;
:class:`StreamedDrafts` keeps a DraftStream open on which the device drafts ahead.

Failure semantics: a draft call or stream that fails with UNAVAILABLE, a broken link or the
per-round timeout raises DeviceLost; a verify round that fails that way is retried on another
replica of the pool (router.failover; safe: a new VerifyStream starts from the whole committed
context, so the new replica recomputes its cache),
and CloudLost is raised when none is left. The client's own deadline passing is DeadlineExceeded.
Any other status is passed through as the matching TandemError.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import grpc

from router.failover import ReplicaFailover
from router.fleet import WorkerRecord
from router.tandem.loop import CloudLost, DeviceLost, Draft, Verdict
from router.worker_channels import WorkerChannels
from tandem.errors import DeadlineExceeded, Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, worker_pb2

_LOST = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


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

    def timeout_total(self) -> float | None:
        """What is left of the client's deadline (None: no deadline)."""
        return None if self._end is None else max(0.001, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


def replica_lost(err: grpc.RpcError) -> bool:
    """Whether a failed cloud call is worth retrying on another replica of the pool."""
    return err.code() in _LOST or overloaded(err)


def overloaded(err: grpc.RpcError) -> bool:
    """The worker refused the call as overloaded (it is alive: avoid it for a while)."""
    return err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def release_session(stub, session_id: str) -> None:
    """Release `session_id` on a worker, best effort (it expires there anyway)."""
    try:
        await stub.Release(worker_pb2.ReleaseRequest(session_id=session_id), timeout=1.0)
    except grpc.RpcError:
        pass


def round_sampling(sampling: common_pb2.SamplingParams) -> common_pb2.SamplingParams:
    """The sampling a TANDEM session's rounds send: the request's, without its stop strings (the
    loop's driver matches those on the committed text itself)."""
    out = common_pb2.SamplingParams()
    out.CopyFrom(sampling)
    del out.stop[:]
    return out


def verify_message(context: Sequence[int], draft: Draft) -> worker_pb2.VerifyStreamRequest:
    """A VerifyStream round verifying `draft` after the committed `context` (its length checked)."""
    return worker_pb2.VerifyStreamRequest(
        draft_token_ids=draft.tokens,
        draft_distributions=draft.dists,
        context_length=len(context),
        draft_alternatives=[worker_pb2.TokenPath(token_ids=a) for a in draft.alternatives],
    )


def _device_error(err: grpc.RpcError, deadline: Deadline) -> Exception:
    if deadline.expired():
        return DeadlineExceeded("the request's deadline passed while drafting")
    if err.code() in _LOST:
        return DeviceLost(f"device_{err.code().name.lower()}")
    return from_rpc_error(err)


async def _draft_call(
    stub,
    session_id: str,
    sampling: common_pb2.SamplingParams,
    support_size: int,
    deadline: Deadline,
    committed: Sequence[int],
    n: int,
    branching: Sequence[int] = (),
) -> Draft:
    """One Draft rpc: `n` tokens continuing `committed` (the worker reuses the session's cache);
    a tree of that depth with `branching` (greedy)."""
    req = worker_pb2.DraftRequest(
        session_id=session_id,
        context=list(committed),
        num_tokens=n,
        sampling=sampling,
        support_size=support_size,
        branching=list(branching[:n]),
    )
    try:
        resp = await stub.Draft(req, timeout=deadline.timeout())
    except grpc.RpcError as err:
        raise _device_error(err, deadline) from None
    return Draft(
        list(resp.token_ids),
        list(resp.distributions),
        compute_ms=resp.compute_ms,
        energy_j=resp.energy_joules,
        alternatives=[list(a.token_ids) for a in resp.alternatives],
    )


class _DeviceDrafts:
    """What both draft sources hold: the device's stub (a Worker stub: a gRPC one, the device's link,
    or the device's own servicer in process) and the session's drafting parameters; the blocks
    drafted and not used, and their energy."""

    def __init__(
        self,
        stub,
        session_id: str,
        sampling: common_pb2.SamplingParams,
        support_size: int,
        deadline: Deadline,
        branching: Sequence[int] = (),
    ) -> None:
        self.stub = stub
        self.session_id = session_id
        self.sampling = sampling
        self.support_size = support_size
        self.deadline = deadline
        self.branching = tuple(branching)
        self.dropped = 0  # blocks drafted and not used
        self.wasted_energy_j = 0.0
        self._closed = False

    async def head(self, committed: Sequence[int], n: int) -> Draft:
        """A unary Draft call on the session (a stream opened later reuses its cache)."""
        return await _draft_call(
            self.stub,
            self.session_id,
            self.sampling,
            self.support_size,
            self.deadline,
            committed,
            n,
            self.branching,
        )


class RequestedDrafts(_DeviceDrafts):
    """One Draft call per round (a tree when `branching` is set: greedy requests only)."""

    async def block(self, committed: Sequence[int], gamma: int) -> Draft:
        return await self.head(committed, gamma)

    async def settle(self, committed: Sequence[int], hit: bool) -> None:
        return None

    async def close(self) -> None:
        """Release the device's session (once)."""
        if not self._closed:
            self._closed = True
            await release_session(self.stub, self.session_id)


class StreamedDrafts(_DeviceDrafts):
    """A DraftStream on which the device drafts ahead (see worker.proto and router.tandem.loop).

    The router's view: the current epoch, the context length the next block must continue, and
    the blocks received. A block of an older epoch, or one that does not continue the committed
    context, is stale and dropped.
    """

    def __init__(
        self,
        stub,
        session_id: str,
        sampling: common_pb2.SamplingParams,
        support_size: int,
        deadline: Deadline,
        blocks_ahead: Callable[[int], int] = lambda gamma: 2,
        branching: Sequence[int] = (),
    ) -> None:
        super().__init__(stub, session_id, sampling, support_size, deadline, branching)
        self.blocks_ahead = blocks_ahead
        self.call = None
        self.blocks: asyncio.Queue = asyncio.Queue()
        self.reader: asyncio.Task | None = None
        self.epoch = -1
        self.expect_start = -1  # context length the next valid block continues
        self.gamma = 0
        self.verified = 0

    async def _open(self) -> None:
        self.call = self.stub.DraftStream(timeout=self.deadline.timeout_total())
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for block in self.call:
                self.blocks.put_nowait(block)
        except grpc.RpcError as err:
            self.blocks.put_nowait(err)
        except asyncio.CancelledError:
            raise
        else:
            self.blocks.put_nowait(None)

    async def _send(self, **fields) -> None:
        try:
            await self.call.write(worker_pb2.DraftStreamRequest(**fields))
        except grpc.RpcError as err:
            raise _device_error(err, self.deadline) from None
        except (grpc.aio.UsageError, asyncio.InvalidStateError):
            raise DeviceLost("device_stream_closed") from None

    async def block(self, committed: Sequence[int], gamma: int) -> Draft:
        if self.call is None:
            await self._open()
        if self.expect_start != len(committed):  # first block, or after a miss: restart the device here
            self.epoch += 1
            self.verified = 0
            self.expect_start = len(committed)
            self.gamma = gamma
            await self._send(
                session_id=self.session_id,
                sampling=self.sampling,
                support_size=self.support_size,
                context=list(committed),
                epoch=self.epoch,
                num_tokens=gamma,
                max_blocks_ahead=self.blocks_ahead(gamma),
                branching=list(self.branching),
            )
        elif gamma != self.gamma:  # applies to blocks drafted from now on
            self.gamma = gamma
            await self._send(epoch=self.epoch, num_tokens=gamma, verified_blocks=self.verified)
        while True:
            try:
                item = await asyncio.wait_for(self.blocks.get(), self.deadline.timeout())
            except TimeoutError:
                raise (
                    DeadlineExceeded("the request's deadline passed while drafting")
                    if self.deadline.expired()
                    else DeviceLost("device_timeout")
                ) from None
            if item is None:
                raise DeviceLost("device_stream_closed")
            if isinstance(item, grpc.RpcError):
                raise _device_error(item, self.deadline)
            if item.epoch != self.epoch or item.start_length != self.expect_start:
                self.dropped += 1
                self.wasted_energy_j += item.energy_joules
                continue
            return Draft(
                list(item.token_ids),
                list(item.distributions),
                bonus_guess=item.bonus_guess,
                compute_ms=item.compute_ms,
                energy_j=item.energy_joules,
                ahead=item.index > 0,
                alternatives=[list(a.token_ids) for a in item.alternatives],
            )

    async def settle(self, committed: Sequence[int], hit: bool) -> None:
        if hit:  # the device's chain is the committed context: its next block stays valid
            self.expect_start = len(committed)
            self.verified += 1
            await self._send(epoch=self.epoch, verified_blocks=self.verified)
        else:
            self.expect_start = -1  # the next block() restarts the device from the committed context

    async def close(self) -> None:
        """End the stream, count the blocks drafted and never used, release the session (once)."""
        if self._closed:
            return
        self._closed = True
        if self.call is not None:
            self.call.cancel()
        if self.reader is not None:
            self.reader.cancel()
            try:
                await self.reader
            except (asyncio.CancelledError, Exception):
                pass
        while not self.blocks.empty():
            item = self.blocks.get_nowait()
            if isinstance(item, worker_pb2.DraftBlock):
                self.dropped += 1
                self.wasted_energy_j += item.energy_joules
        await release_session(self.stub, self.session_id)


class GrpcVerifier:
    """Verifies on a replica of one pool over a VerifyStream; on failure moves the session to another
    replica (router.failover: a new stream there starts from the whole committed context, so it
    recomputes)."""

    def __init__(
        self,
        channels: WorkerChannels,
        failover: ReplicaFailover,
        session_id: str,
        sampling: common_pb2.SamplingParams,
        deadline: Deadline,
    ) -> None:
        self.channels = channels
        self.failover = failover
        self.session_id = session_id
        self.sampling = sampling
        self.deadline = deadline
        self._call: grpc.aio.StreamStreamCall | None = None  # the stream to self.replica
        self._stream_context: list[int] = []  # the committed context as the stream's replica holds it

    @property
    def replica(self) -> WorkerRecord:
        return self.failover.current

    async def verify(self, context: Sequence[int], draft: Draft) -> Verdict:
        while True:
            t0 = time.perf_counter()
            msg = verify_message(context, draft)
            if self._call is None:
                self._call = self._open()
                msg.session_id = self.session_id
                msg.sampling.CopyFrom(self.sampling)
                msg.context.extend(context)
            elif self._stream_context != context:  # the loop moved on otherwise than by the verdicts
                msg.context.extend(context)
            try:
                resp = await self._round(self._call, msg)
                if not 0 <= resp.path <= len(draft.alternatives):
                    raise _rpc_error(
                        grpc.StatusCode.INTERNAL,
                        f"the replica committed path {resp.path} of {len(draft.alternatives) + 1}",
                    )
                self._stream_context = [*context, *draft.path(resp.path)[: resp.accepted], resp.next_token_id]
                return Verdict(
                    resp.accepted,
                    resp.next_token_id,
                    (time.perf_counter() - t0) * 1e3,
                    resp.compute_ms,
                    resp.forward_passes,
                    resp.worker_id or self._replica_id(),
                    resp.path,
                )
            except grpc.RpcError as err:
                self._call.cancel()
                self._call = None
                if self.deadline.expired():
                    raise DeadlineExceeded("the request's deadline passed while verifying") from None
                if not replica_lost(err):
                    raise from_rpc_error(err) from None
                self._lost(err)

    def _replica_id(self) -> str:
        return self.replica.worker_id

    def _open(self):
        """A VerifyStream to the current replica."""
        return self.channels.stub(self.replica.endpoint).VerifyStream(timeout=self.deadline.timeout_total())

    def _lost(self, err: grpc.RpcError) -> None:
        """The stream's replica was lost with `err`: move to another of the pool (the next round
        opens a stream there), or raise CloudLost when none is left."""
        if self.failover.failed(overloaded(err)) is None:
            raise CloudLost(
                f"no replica of pool {self.failover.pool!r} left to verify ({len(self.failover.tried)} tried)"
            ) from None

    async def _round(self, call: grpc.aio.StreamStreamCall, msg: worker_pb2.VerifyStreamRequest):
        """Send one round and read its verdict; any failure (the per-round timeout included) is an
        RpcError."""
        try:
            await call.write(msg)
            resp = await asyncio.wait_for(call.read(), self.deadline.timeout())
        except TimeoutError:
            raise _rpc_error(
                grpc.StatusCode.DEADLINE_EXCEEDED, "no verdict within the round timeout"
            ) from None
        except (grpc.aio.UsageError, asyncio.InvalidStateError):  # the stream had ended: its status says why
            resp = grpc.aio.EOF
        if resp is grpc.aio.EOF:
            code = await call.code()
            raise _rpc_error(
                grpc.StatusCode.UNAVAILABLE if code == grpc.StatusCode.OK else code,
                await call.details() or "the replica ended the verify stream",
            )
        return resp

    def replace_after(self, err: grpc.RpcError, what: str) -> WorkerRecord:
        """After a call outside the rounds to the current replica failed with `err`: another replica
        of the pool, or the matching TandemError (the deadline passed or a status not worth
        retrying; UNAVAILABLE, prefixed with `what`, when no replica is left)."""
        if self.deadline.expired() or not replica_lost(err):
            raise from_rpc_error(err) from None
        nxt = self.failover.failed(overloaded(err))
        if nxt is None:
            raise Unavailable(f"{what}: no replica of pool {self.failover.pool!r} left") from None
        return nxt

    async def release(self) -> None:
        """End the stream (which releases the session on its replica) and release the session on
        every replica given up on, best effort."""
        if self._call is not None:
            with contextlib.suppress(grpc.RpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                await self._call.done_writing()
            self._call = None
        for endpoint in self.failover.endpoints - {self.replica.endpoint}:
            await release_session(self.channels.stub(endpoint), self.session_id)


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
