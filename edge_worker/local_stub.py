"""The device's own Worker servicer behind the stub interface the TANDEM draft sources call
(router.tandem_io): drafting in process for TANDEM driven from the device — no RPC, no network.

A call ends as a gRPC call does: a status the servicer aborted with is raised as an AioRpcError
with that code (and, for INVALID_ARGUMENT, the field in its trailing metadata), so the draft sources
handle the device's failures the same way whichever stub they hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from edge_worker.link import AbortError, _CallContext
from runtime.worker_servicer import WorkerServicer
from tandem.grpc_status import FIELD_METADATA_KEY


def rpc_error(err: AbortError) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((FIELD_METADATA_KEY, err.field)) if err.field else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(err.code, grpc.aio.Metadata(), trailing, err.details)


def _context(timeout: float | None) -> _CallContext:
    return _CallContext(None if timeout is None else time.monotonic() + timeout)


async def _requests(queue: asyncio.Queue) -> AsyncIterator:
    while (msg := await queue.get()) is not None:
        yield msg


class _LocalStream:
    """A bidirectional call on the servicer: `write` feeds its request stream, iterating reads its
    replies; `done_writing` ends the requests, `cancel` ends the call."""

    def __init__(self, handler, timeout: float | None) -> None:
        self._requests: asyncio.Queue = asyncio.Queue()
        self._replies = handler(_requests(self._requests), _context(timeout))
        self._done = False

    async def write(self, msg) -> None:
        if self._done:
            raise grpc.aio.UsageError("the call is closed")
        self._requests.put_nowait(msg)

    async def done_writing(self) -> None:
        if not self._done:
            self._done = True
            self._requests.put_nowait(None)

    def cancel(self) -> bool:
        """End the requests: the servicer stops; a reader still iterating is cancelled by its owner."""
        was_open = not self._done
        self._done = True
        self._requests.put_nowait(None)
        return was_open

    async def _iterate(self):
        try:
            async for item in self._replies:
                yield item
        except AbortError as err:
            raise rpc_error(err) from None

    def __aiter__(self):
        return self._iterate()


class LocalWorkerStub:
    """The calls of a Worker stub that the draft sources and a continuation make, answered by the
    device's servicer in process."""

    def __init__(self, servicer: WorkerServicer) -> None:
        self.servicer = servicer

    async def _unary(self, handler, request, timeout: float | None):
        try:
            return await handler(request, _context(timeout))
        except AbortError as err:
            raise rpc_error(err) from None

    async def Draft(self, request, timeout: float | None = None):
        return await self._unary(self.servicer.Draft, request, timeout)

    async def Release(self, request, timeout: float | None = None):
        return await self._unary(self.servicer.Release, request, timeout)

    def DraftStream(self, timeout: float | None = None) -> _LocalStream:
        return _LocalStream(self.servicer.DraftStream, timeout)

    async def Generate(self, request, timeout: float | None = None):
        """Worker.Generate's chunks (an async iterator; a failure raises AioRpcError)."""
        replies = self.servicer.Generate(request, _context(timeout))
        try:
            async for chunk in replies:
                yield chunk
        except AbortError as err:
            raise rpc_error(err) from None
        finally:
            await replies.aclose()
