"""The device's side of its link to the router (fleet.proto, `Fleet.Link`): devices dial out.

The device opens one stream, says hello with its credential, and then serves the router's Worker
calls on it with its own WorkerServicer, in-process — each call a task of its own, with its own
deadline and cancellation, so a slow call never stalls another — while it sends telemetry every
heartbeat interval and answers pings. When the link breaks (the router restarted, the network
moved) it dials again with jittered exponential backoff and comes back under the same id; a refusal
(UNAUTHENTICATED, INVALID_ARGUMENT, FAILED_PRECONDITION) is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from runtime.worker_servicer import WorkerServicer
from tandem.errors import TandemError
from tandem.grpc_status import FIELD_METADATA_KEY, from_rpc_error
from tandem.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

# the request oneof of a LinkCall → the servicer's method, and the reply's response oneof
METHODS = {
    "describe": ("Describe", "describe"),
    "draft": ("Draft", "draft"),
    "draft_stream": ("DraftStream", "draft_block"),
    "generate": ("Generate", "generate"),
    "release": ("Release", "release"),
    "get_tokenizer": ("GetTokenizer", "get_tokenizer"),
    "tokenize": ("Tokenize", "tokenize"),
}
STREAMING = {"generate", "draft_stream"}
FINAL = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
}


class AbortError(Exception):
    """A call the servicer aborted, with its status (named as grpc.aio's, which runtime.grpc_errors
    passes through)."""

    def __init__(self, code: grpc.StatusCode, details: str, field: str) -> None:
        super().__init__(details)
        self.code, self.details, self.field = code, details, field


class _CallContext:
    """What the servicer sees of a call that came over the link (the parts of a ServicerContext it uses)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.field = ""

    def set_trailing_metadata(self, metadata) -> None:
        self.field = next((v for k, v in metadata if k == FIELD_METADATA_KEY), "")

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AbortError(code, details, self.field)

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def invocation_metadata(self):
        return ()

    def peer(self) -> str:
        return "router (link)"


async def _requests(queue: asyncio.Queue) -> AsyncIterator:
    while (msg := await queue.get()) is not None:
        yield msg


class LinkClient:
    """Keeps a device's link up until `stop()`."""

    def __init__(
        self,
        router: str,
        token: str,
        hello: Callable[[], fleet_pb2.LinkHello],
        state: Callable[[], common_pb2.WorkerState],
        servicer: WorkerServicer | Any,
        channel_credentials: grpc.ChannelCredentials | None = None,
        backoff_s: tuple[float, float] = (0.2, 10.0),
        rng: random.Random | None = None,
        on_view: Callable[[fleet_pb2.CloudView], None] = lambda view: None,
        usage: Callable[[], Any] = lambda: None,
    ) -> None:
        """`hello` and `state` say what the device runs and how it is now, each time they are sent.
        `servicer` answers the router's calls (a WorkerServicer; a call it has no method for gets
        UNIMPLEMENTED). `on_view` takes each cloud view the router sends; `usage` gives what the
        device's apps asked of it (edge_worker.apps.Usage, or None), sent at a telemetry tick when
        its version moved."""
        self.router = router
        self.token = token
        self.hello = hello
        self.state = state
        self.servicer = servicer
        self.channel_credentials = channel_credentials
        self.backoff_s = backoff_s
        self.rng = rng or random.Random()
        self.on_view = on_view
        self.usage = usage
        self.connected = asyncio.Event()
        self.reconnects = 0  # links dialled again after one broke
        self.worker_id = ""
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self._out: asyncio.Queue | None = None  # the link's messages up, while it is up

    def _open_channel(self) -> grpc.aio.Channel:
        options = [
            # a quiet link stays up: HTTP/2 pings find a dead router (and keep NAT mappings open)
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            # a connection of its own, as a device has: not one shared with other links in the process
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if self.channel_credentials is not None:
            return grpc.aio.secure_channel(self.router, self.channel_credentials, options=options)
        return grpc.aio.insecure_channel(self.router, options=options)

    async def start(self, connect_timeout_s: float = 60.0, wait: bool = True) -> None:
        """Keep the link up in the background; return once it is up. Raises the router's refusal
        (a TandemError), or Unavailable when it could not be reached within `connect_timeout_s`.
        `wait` False: return at once (a device that serves its apps offline); a refusal is logged."""
        self._task = asyncio.create_task(self._run(), name="device-link")
        if not wait:
            self._task.add_done_callback(_log_refusal)
            return
        connected = asyncio.ensure_future(self.connected.wait())
        done, _ = await asyncio.wait({connected, self._task}, timeout=connect_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if connected in done:
            return
        connected.cancel()
        if self._task in done:
            self._task.result()  # the refusal
        await self.stop()
        from tandem.errors import Unavailable

        raise Unavailable(f"router {self.router} unreachable for {connect_timeout_s:g} s")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _run(self) -> None:
        delay = self.backoff_s[0]
        while True:
            self._channel = self._open_channel()
            try:
                await self._session()
                delay = self.backoff_s[0]  # it was up: start the backoff again
            except grpc.RpcError as err:
                if err.code() in FINAL:
                    raise from_rpc_error(err) from None
                log.warning("link to %s down: %s %s", self.router, err.code().name, err.details())
            except (OSError, grpc.aio.UsageError, ValueError):
                log.exception("link to %s failed", self.router)
            finally:
                self.connected.clear()
                await self._channel.close()
                self._channel = None
            self.reconnects += 1
            await asyncio.sleep(delay * (0.5 + self.rng.random()))  # jittered: a fleet does not dial at once
            delay = min(delay * 2, self.backoff_s[1])

    async def _session(self) -> None:
        """One link, from hello to its end."""
        call = fleet_pb2_grpc.FleetStub(self._channel).Link(
            metadata=(("authorization", f"Bearer {self.token}"),)
        )
        await call.write(fleet_pb2.LinkUp(hello=self.hello()))
        first = await call.read()
        if first is grpc.aio.EOF:
            raise grpc.aio.AioRpcError(
                await call.code(), grpc.aio.Metadata(), grpc.aio.Metadata(), await call.details()
            )
        self.worker_id = first.welcome.worker_id
        out: asyncio.Queue[fleet_pb2.LinkUp] = asyncio.Queue()
        self._out = out
        calls: dict[int, tuple[asyncio.Task, asyncio.Queue | None]] = {}
        tasks = [
            asyncio.create_task(self._write(call, out)),
            asyncio.create_task(self._telemetry(out, first.welcome)),
        ]
        self.connected.set()
        log.info("linked to router %s as %s", self.router, self.worker_id)
        try:
            # read() throughout: grpc.aio refuses a call read both with read() and by iteration
            while (msg := await call.read()) is not grpc.aio.EOF:
                kind = msg.WhichOneof("message")
                if kind == "call":
                    self._on_call(msg.call, calls, out)
                elif kind == "cancel":
                    entry = calls.pop(msg.cancel.call_id, None)
                    if entry is not None:
                        entry[0].cancel()
                elif kind == "ping":
                    out.put_nowait(fleet_pb2.LinkUp(pong=fleet_pb2.LinkPong(nonce=msg.ping.nonce)))
                elif kind == "cloud_view":
                    self.on_view(msg.cloud_view)
        finally:
            self._out = None
            for task, _ in calls.values():
                task.cancel()
            for task in tasks:
                task.cancel()
            call.cancel()

    def report(self, outcome: fleet_pb2.DeviceOutcome) -> bool:
        """Send the router what a request the device served itself measured (fleet.proto
        DeviceOutcome), if the link is up; False: it is not (an offline request teaches nothing)."""
        if self._out is None or not self.connected.is_set():
            return False
        self._out.put_nowait(fleet_pb2.LinkUp(outcome=outcome))
        return True

    @staticmethod
    async def _write(call, out: asyncio.Queue) -> None:
        while True:
            await call.write(await out.get())

    async def _telemetry(self, out: asyncio.Queue, welcome: fleet_pb2.LinkWelcome) -> None:
        """Look at the state every heartbeat interval; send it when it changed, and at least every
        telemetry_refresh_ms (an idle device stays quiet)."""
        interval = max(welcome.heartbeat_interval_ms, 50) / 1e3
        refresh = max(welcome.telemetry_refresh_ms / 1e3, interval)
        step = welcome.telemetry_battery_step
        last, sent_at, usage_sent = None, 0.0, 0
        while True:
            await asyncio.sleep(interval)
            state, now = self.state(), time.monotonic()
            if last is None or now - sent_at >= refresh or changed(last, state, step):
                out.put_nowait(fleet_pb2.LinkUp(telemetry=state))
                last, sent_at = state, now
            usage = self.usage()
            if usage is not None and usage.version != usage_sent:
                out.put_nowait(fleet_pb2.LinkUp(usage=usage.to_pb()))
                usage_sent = usage.version

    def _on_call(self, msg: fleet_pb2.LinkCall, calls: dict, out: asyncio.Queue) -> None:
        entry = calls.get(msg.call_id)
        if entry is not None:  # a later message of a streaming call
            requests = entry[1]
            if requests is not None:
                requests.put_nowait(None if msg.half_close else msg.draft_stream)
            return
        kind = msg.WhichOneof("request")
        if kind not in METHODS:
            out.put_nowait(_end(msg.call_id, grpc.StatusCode.UNIMPLEMENTED, f"no such call: {kind}"))
            return
        requests = asyncio.Queue() if kind == "draft_stream" else None
        if requests is not None:
            requests.put_nowait(msg.draft_stream)
        deadline = time.monotonic() + msg.timeout_ms / 1e3 if msg.timeout_ms > 0 else None
        task = asyncio.create_task(
            self._serve(msg.call_id, kind, getattr(msg, kind), requests, deadline, out)
        )
        calls[msg.call_id] = (task, requests)
        task.add_done_callback(lambda _t, cid=msg.call_id: calls.pop(cid, None))

    async def _serve(self, call_id: int, kind: str, request, requests, deadline, out: asyncio.Queue) -> None:
        """Run one call on the servicer and send its answer."""
        method, field = METHODS[kind]
        ctx = _CallContext(deadline)
        handler = getattr(self.servicer, method, None)
        if handler is None:
            out.put_nowait(_end(call_id, grpc.StatusCode.UNIMPLEMENTED, f"no {method} on this device"))
            return

        def reply(msg=None, end: bool = False) -> fleet_pb2.LinkUp:
            up = fleet_pb2.LinkUp()  # built in place: the response is copied once
            r = up.reply
            r.call_id = call_id
            r.end = end
            if msg is not None:
                getattr(r, field).CopyFrom(msg)
            return up

        try:
            async with asyncio.timeout(ctx.time_remaining()):
                if kind in STREAMING:
                    source = _requests(requests) if requests is not None else request
                    replies, ended = handler(source, ctx), False
                    try:
                        async for item in replies:
                            # Generate's last chunk ends the call: one message, not two, per stream
                            ended = kind == "generate" and bool(item.finish_reason)
                            out.put_nowait(reply(item, end=True) if ended else reply(item))
                            if ended:
                                break
                    finally:
                        await replies.aclose()
                    if not ended:
                        out.put_nowait(reply(end=True))
                else:
                    out.put_nowait(reply(await handler(request, ctx), end=True))
        except AbortError as err:
            out.put_nowait(_end(call_id, err.code, err.details, err.field))
        except TimeoutError:
            out.put_nowait(
                _end(call_id, grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed on the device")
            )
        except TandemError as err:  # raised outside the servicer's own mapping
            out.put_nowait(
                _end(call_id, getattr(grpc.StatusCode, err.status, grpc.StatusCode.UNKNOWN), err.message)
            )
        except asyncio.CancelledError:
            raise  # the router gave up on it (or the link broke): nobody waits for an answer
        except Exception:
            log.exception("link call %s (%s) failed", call_id, method)
            out.put_nowait(_end(call_id, grpc.StatusCode.INTERNAL, f"{method} failed on the device"))


def _log_refusal(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the router refused this device's link: %s", task.exception())


def changed(before: common_pb2.WorkerState, now: common_pb2.WorkerState, battery_step: float) -> bool:
    """Whether `now` is worth telemetry after `before` was sent (pure): anything but the battery
    level differs, or the level moved by `battery_step` points or more."""
    moved = abs(now.battery_percent - before.battery_percent)
    if moved and moved >= battery_step:
        return True
    a, b = common_pb2.WorkerState(), common_pb2.WorkerState()
    a.CopyFrom(before)
    b.CopyFrom(now)
    a.ClearField("battery_percent")
    b.ClearField("battery_percent")
    return a != b


def _end(call_id: int, code: grpc.StatusCode, message: str, field: str = "") -> fleet_pb2.LinkUp:
    status = fleet_pb2.LinkStatus(code=code.value[0], message=message, field=field)
    return fleet_pb2.LinkUp(reply=fleet_pb2.LinkReply(call_id=call_id, end=True, status=status))
