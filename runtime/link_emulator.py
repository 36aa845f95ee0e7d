"""A TCP-level link emulator: a proxy that adds one-way delay, jitter, a bandwidth cap and loss.

Put it between two Tandem processes (e.g. the router and an edge worker) to measure round-trip
effects over real sockets. Each direction of each connection is a FIFO pipe: a chunk read at time t
is written at max(t + delay + jitter, previous delivery) + size / bandwidth, so bytes stay in order
(as TCP guarantees). TCP never loses bytes; *loss* is modelled as what the application sees — a
chunk that is hit waits an extra retransmission timeout (``rto_ms``, Linux's 200 ms minimum).

The emulator can also *break* the link: ``break_link()`` resets every connection and refuses new
ones until ``restore()`` — a device that walked out of coverage.

    tandem link --listen 127.0.0.1:7000 --to 127.0.0.1:50061 --delay-ms 15 --jitter-ms 2
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LinkProfile:
    delay_ms: float = 0.0  # one-way
    jitter_ms: float = 0.0  # uniform in [0, jitter_ms], added to the delay (order is preserved)
    bandwidth_mbps: float = 0.0  # 0: unlimited
    loss: float = 0.0  # probability that a chunk waits an extra rto_ms
    rto_ms: float = 200.0

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.bandwidth_mbps < 0 or self.rto_ms < 0:
            raise ValueError("delay_ms, jitter_ms, bandwidth_mbps and rto_ms must be >= 0")
        if not 0 <= self.loss < 1:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")

    @property
    def rtt_ms(self) -> float:
        return 2 * self.delay_ms + self.jitter_ms


class LinkEmulator:
    """Listens on host:port (0 = a free port) and forwards every connection to `upstream`."""

    def __init__(
        self,
        upstream: str,
        profile: LinkProfile,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        capture: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """`capture`: a list that every byte forwarded is appended to, as ("up" | "down", bytes) —
        "up" from the connecting side to `upstream` (a packet capture of the emulated link)."""
        up_host, _, up_port = upstream.rpartition(":")
        self.upstream = (up_host, int(up_port))
        self.profile = profile
        self.host, self.port = host, port
        self._rng = random.Random(seed)
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task] = set()
        self.broken = False
        self.bytes_forwarded = 0
        self.capture = capture

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> LinkEmulator:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("link %s -> %s:%d: %s", self.address, *self.upstream, self.profile)
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._reset_all()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t

    def break_link(self) -> None:
        """Reset every open connection and refuse new ones until restore()."""
        self.broken = True
        self._reset_all()

    def restore(self) -> None:
        self.broken = False

    def _reset_all(self) -> None:
        for a, b in list(self._conns):
            for w in (a, b):
                with contextlib.suppress(Exception):
                    w.transport.abort()
        self._conns.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.broken:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        for src, dst, way in ((reader, up_writer, "up"), (up_reader, writer, "down")):
            task = asyncio.create_task(self._pipe(src, dst, way))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(queue, dst))
        last_delivery = 0.0
        p = self.profile
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if self.capture is not None:
                    self.capture.append((way, data))
                now = time.monotonic()
                extra = p.delay_ms + (self._rng.uniform(0, p.jitter_ms) if p.jitter_ms else 0.0)
                if p.loss and self._rng.random() < p.loss:
                    extra += p.rto_ms
                at = max(now + extra / 1e3, last_delivery)
                if p.bandwidth_mbps:
                    at += len(data) * 8 / (p.bandwidth_mbps * 1e6)
                last_delivery = at
                queue.put_nowait((at, data))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            queue.put_nowait(None)
            with contextlib.suppress(BaseException):
                await sender

    async def _deliver(self, queue: asyncio.Queue, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                at, data = item
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                self.bytes_forwarded += len(data)
                await dst.drain()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
