"""The router's side of the device links: each connected device's one stream, and the Worker calls
the router makes over it, multiplexed by call id.

Devices dial out (router.fleet_service.FleetService.Link); nothing dials a device. A device's
worker record has the endpoint ``link:<device id>``, and `LinkStub` answers the router's code as
a generated Worker stub would — unary calls awaited, streaming calls iterated and cancelled, errors
raised as ``grpc.aio.AioRpcError`` — so the TANDEM loop, EDGE streams and failover need not know a
device is behind a link. Each call has its own deadline; a call past it fails with
DEADLINE_EXCEEDED and is cancelled on the device. When the link breaks every call in flight on it
fails with UNAVAILABLE at once (a TANDEM request then continues in the cloud).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable

import grpc

from tandem.v1 import fleet_pb2, worker_pb2

LINK_PREFIX = "link:"

# the oneof field of a call's request and of its replies, per Worker method
_REQUEST = {
    "Describe": "describe",
    "Draft": "draft",
    "DraftStream": "draft_stream",
    "Generate": "generate",
    "Release": "release",
    "GetTokenizer": "get_tokenizer",
    "Tokenize": "tokenize",
}
_RESPONSE = {**_REQUEST, "DraftStream": "draft_block"}


def link_endpoint(device_id: str) -> str:
    return LINK_PREFIX + device_id


def rpc_error(code: grpc.StatusCode, details: str, field: str = "") -> grpc.aio.AioRpcError:
    """An error as a direct gRPC call would raise it (INVALID_ARGUMENT's field as its trailer)."""
    trailing = grpc.aio.Metadata(("tandem-field", field)) if field else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


_CODES = {c.value[0]: c for c in grpc.StatusCode}


class _Call:
    """One call on the link: its replies as they arrive (an error ends them)."""

    def __init__(self, link: DeviceLink, call_id: int, method: str, timeout: float | None) -> None:
        self.link = link
        self.call_id = call_id
        self.method = method
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.replies: asyncio.Queue = asyncio.Queue()
        self.done = False
        self.opened = False  # its first message has gone out (a client stream's goes with its first write)
        # one timer per call ends it at its deadline (not a wait_for — a task and a timer — per message)
        loop = asyncio.get_running_loop()
        self._timer = None if timeout is None else loop.call_later(max(timeout, 0.0), self._expire)

    def timeout_ms(self) -> float:
        return 0.0 if self.deadline is None else max(1.0, (self.deadline - time.monotonic()) * 1e3)

    def deliver(self, reply: fleet_pb2.LinkReply) -> None:
        if reply.WhichOneof("response"):
            self.replies.put_nowait(getattr(reply, reply.WhichOneof("response")))
        if reply.end:
            code = _CODES.get(reply.status.code, grpc.StatusCode.UNKNOWN)
            end = (
                None
                if code == grpc.StatusCode.OK
                else rpc_error(code, reply.status.message, reply.status.field)
            )
            self.replies.put_nowait(_End(end))

    def fail(self, err: grpc.aio.AioRpcError) -> None:
        self.replies.put_nowait(_End(err))

    async def next(self):
        """The next response message, or _End."""
        item = self.replies.get_nowait() if not self.replies.empty() else await self.replies.get()
        if isinstance(item, _End):
            self.finish()
        return item

    def _expire(self) -> None:
        """The deadline passed: stop the call here and on the device; its reader gets
        DEADLINE_EXCEEDED after the replies that came before it."""
        self._timer = None
        if not self.done:
            self.finish()
            if self.opened:
                self.link.send_nowait(fleet_pb2.LinkDown(cancel=fleet_pb2.LinkCancel(call_id=self.call_id)))
            self.replies.put_nowait(_End(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")))

    def cancel(self) -> None:
        """Stop the call here and on the device."""
        if not self.done:
            self.finish()
            if self.opened:  # the device knows of it
                self.link.send_nowait(fleet_pb2.LinkDown(cancel=fleet_pb2.LinkCancel(call_id=self.call_id)))
            self.replies.put_nowait(
                _End(rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled by application!"))
            )

    def finish(self) -> None:
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.calls.pop(self.call_id, None)


class _End:
    def __init__(self, error: grpc.aio.AioRpcError | None) -> None:
        self.error = error


class _StreamCall:
    """A streaming call as grpc.aio presents one: iterate its responses, write (DraftStream),
    cancel."""

    def __init__(self, call: _Call) -> None:
        self._call = call

    def __aiter__(self) -> AsyncIterator:
        return self._iterate()

    async def _iterate(self):
        while True:
            item = await self._call.next()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def write(self, msg) -> None:
        call = self._call
        if call.done:
            raise grpc.aio.UsageError("the call has ended")
        if not call.opened:  # the call opens with its first request message
            call.link.start(call, msg)
            return
        await call.link.send(
            fleet_pb2.LinkDown(call=fleet_pb2.LinkCall(call_id=call.call_id, **{_REQUEST[call.method]: msg}))
        )

    async def done_writing(self) -> None:
        if not self._call.done and self._call.opened:
            await self._call.link.send(
                fleet_pb2.LinkDown(call=fleet_pb2.LinkCall(call_id=self._call.call_id, half_close=True))
            )

    def cancel(self) -> bool:
        self._call.cancel()
        return True


class LinkStub:
    """The Worker stub of a device behind its link (the methods the router calls on devices)."""

    def __init__(self, link: DeviceLink) -> None:
        self._link = link

    async def _unary(self, method: str, request, timeout: float | None):
        """Awaited as a gRPC unary call is: a caller that is cancelled while waiting cancels the call
        on the device too (a Draft nobody waits for must not run on, or outlive its session's
        Release)."""
        call = self._link.open(method, request, timeout)
        try:
            item = await call.next()
            if isinstance(item, _End):
                raise item.error or rpc_error(grpc.StatusCode.INTERNAL, f"{method} ended without an answer")
            end = await call.next()  # the end that follows the response
        except asyncio.CancelledError:
            call.cancel()
            raise
        if isinstance(end, _End) and end.error is not None:
            raise end.error
        return item

    async def Describe(self, request, timeout=None) -> worker_pb2.DescribeResponse:
        return await self._unary("Describe", request, timeout)

    async def Draft(self, request, timeout=None) -> worker_pb2.DraftResponse:
        return await self._unary("Draft", request, timeout)

    async def Release(self, request, timeout=None) -> worker_pb2.ReleaseResponse:
        return await self._unary("Release", request, timeout)

    async def GetTokenizer(self, request, timeout=None) -> worker_pb2.GetTokenizerResponse:
        return await self._unary("GetTokenizer", request, timeout)

    async def Tokenize(self, request, timeout=None) -> worker_pb2.TokenizeResponse:
        return await self._unary("Tokenize", request, timeout)

    def Generate(self, request, timeout=None) -> _StreamCall:
        return _StreamCall(self._link.open("Generate", request, timeout))

    def DraftStream(self, timeout=None) -> _StreamCall:
        return _StreamCall(self._link.open("DraftStream", None, timeout))


class DeviceLink:
    """One connected device's link: the router → device messages go out through `send`, the
    replies come back through `deliver`. Closed when the stream ends; a closed link fails every call."""

    def __init__(self, device_id: str, send: Callable[[fleet_pb2.LinkDown | None], None]) -> None:
        """`send` queues a message for the stream in order (it never blocks); `send(None)`, which
        `close` makes, ends the stream."""
        self.device_id = device_id
        self._send = send
        self.calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self.closed: str = ""  # why, once closed
        self.stub = LinkStub(self)
        self.rtt_ms = 0.0  # measured by pings on the link (a moving mean)
        self._pings: dict[int, float] = {}
        # the device's last usage report: (placement, status) → (requests, tokens, joules)
        self.usage_seen: dict[tuple[str, str], tuple[int, int, float]] = {}

    async def send(self, msg: fleet_pb2.LinkDown) -> None:
        if self.closed:
            raise rpc_error(
                grpc.StatusCode.UNAVAILABLE, f"device {self.device_id}'s link is down: {self.closed}"
            )
        self._send(msg)

    def send_nowait(self, msg: fleet_pb2.LinkDown) -> None:
        """Queue a message (cancellations); dropped on a closed link."""
        if not self.closed:
            self._send(msg)

    def open(self, method: str, request, timeout: float | None) -> _Call:
        """Start a call: its first message goes out now (in order with the link's other messages).
        On a closed link the call fails with UNAVAILABLE when it is awaited or read, as a gRPC call
        to an unreachable server does."""
        call = _Call(self, next(self._ids), method, timeout)
        if self.closed:
            call.done = True
            call.fail(
                rpc_error(
                    grpc.StatusCode.UNAVAILABLE, f"device {self.device_id}'s link is down: {self.closed}"
                )
            )
            return call
        self.calls[call.call_id] = call
        if request is not None:  # else a client stream: it opens with its first write
            self.start(call, request)
        return call

    def start(self, call: _Call, request) -> None:
        """Send `call`'s opening message, carrying `request` (and what is left of its deadline)."""
        call.opened = True
        first = fleet_pb2.LinkCall(call_id=call.call_id, timeout_ms=call.timeout_ms())
        getattr(first, _REQUEST[call.method]).CopyFrom(request)
        self.send_nowait(fleet_pb2.LinkDown(call=first))

    def deliver(self, reply: fleet_pb2.LinkReply) -> None:
        call = self.calls.get(reply.call_id)
        if call is not None:  # else a call already given up on (cancelled, past its deadline)
            call.deliver(reply)

    def close(self, why: str) -> None:
        """The link is gone: every call in flight on it fails with UNAVAILABLE."""
        if self.closed:
            return
        self.closed = why or "closed"
        self._send(None)
        err = rpc_error(grpc.StatusCode.UNAVAILABLE, f"device {self.device_id}'s link broke: {self.closed}")
        for call in list(self.calls.values()):
            call.fail(err)
        self.calls.clear()

    @property
    def inflight(self) -> int:
        return len(self.calls)

    def ping(self) -> None:
        """Send a ping; its pong measures the link's round trip."""
        nonce = next(self._ids)
        self._pings[nonce] = time.perf_counter()
        while len(self._pings) > 16:  # pongs that never came
            self._pings.pop(next(iter(self._pings)))
        self.send_nowait(fleet_pb2.LinkDown(ping=fleet_pb2.LinkPing(nonce=nonce)))

    def pong(self, nonce: int) -> bool:
        """Take a pong; True when it answered a ping of ours (the round trip is then updated)."""
        sent = self._pings.pop(nonce, None)
        if sent is None:
            return False
        ms = (time.perf_counter() - sent) * 1e3
        self.rtt_ms = ms if not self.rtt_ms else 0.7 * self.rtt_ms + 0.3 * ms
        return True


class DeviceLinks:
    """The connected devices' links by device id."""

    def __init__(self) -> None:
        self._links: dict[str, DeviceLink] = {}
        self._ping_cursor = 0

    def get(self, device_id: str) -> DeviceLink | None:
        return self._links.get(device_id)

    def attach(self, link: DeviceLink) -> DeviceLink | None:
        """`link` is now its device's; returns the link it replaced (closed), if any."""
        old = self._links.get(link.device_id)
        self._links[link.device_id] = link
        if old is not None:
            old.close("replaced by a new link of the same device")
        return old

    def detach(self, link: DeviceLink) -> bool:
        """Forget `link` if it is still its device's (not replaced); True when it was."""
        if self._links.get(link.device_id) is link:
            del self._links[link.device_id]
            return True
        return False

    def stub_for(self, endpoint: str) -> LinkStub:
        """The stub of the device at a ``link:`` endpoint; a device not connected fails its calls
        with UNAVAILABLE."""
        link = self._links.get(endpoint[len(LINK_PREFIX) :])
        if link is None:
            gone = DeviceLink(endpoint[len(LINK_PREFIX) :], _never)
            gone.close("not connected")
            return gone.stub
        return link.stub

    def __len__(self) -> int:
        return len(self._links)

    def __contains__(self, device_id: str) -> bool:
        return device_id in self._links

    def all(self) -> list[DeviceLink]:
        return list(self._links.values())

    def ping_turn(self, share: float) -> int:
        """Ping the next `share` of the links (at least one), in turn: called every tick with
        share = tick ÷ ping interval, a large fleet's pings spread over the interval instead of
        going out at once. Returns how many were pinged."""
        links = self.all()
        if not links:
            return 0
        n = min(len(links), max(1, math.ceil(len(links) * share)))
        start = self._ping_cursor % len(links)
        for i in range(start, start + n):
            links[i % len(links)].ping()
        self._ping_cursor = start + n
        return n


def _never(msg) -> None:  # a closed link's send: only its end
    assert msg is None, "a closed link sent a message"
