"""Light simulated devices: no model, for measuring how many devices one router holds.

Each light device is a real device link (edge_worker.link.LinkClient) with a connection, TLS
session and credential of its own: it says hello, sends telemetry every heartbeat interval the
router asks for, answers the router's pings, and answers the one trivial call, Describe (what
``Admin.PingMember`` makes); any other call gets UNIMPLEMENTED. The router sees ordinary devices
(so keep them out of fleets that serve requests: they claim a model they do not have).

Run by ``tandem devices --light N`` (bench/links.py starts several such processes).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import grpc

import tandem
from edge_worker.link import LinkClient
from tandem.v1 import common_pb2, fleet_pb2, worker_pb2

log = logging.getLogger(__name__)

LIGHT_MODEL = "light"  # the model a light device claims (it runs none)


class LightDevice:
    """One light device's identity and state (a slowly draining modelled battery)."""

    def __init__(self, device_id: str, tokenizer_id: str, rng: random.Random) -> None:
        self.device_id = device_id
        self.tokenizer_id = tokenizer_id
        self.percent = rng.uniform(20.0, 100.0)
        self.charging = rng.random() < 0.3
        self.started = time.monotonic()

    def info(self) -> common_pb2.WorkerInfo:
        return common_pb2.WorkerInfo(
            worker_id=self.device_id,
            kind=common_pb2.WORKER_KIND_EDGE,
            model_name=LIGHT_MODEL,
            tokenizer_id=self.tokenizer_id,
            vocab_size=1,
            max_context=1,
            execution_provider="none",
            version=tandem.__version__,
            eos_token_id=-1,
        )

    def state(self) -> common_pb2.WorkerState:
        hours = (time.monotonic() - self.started) / 3600
        drift = 10 * hours if self.charging else -5 * hours
        percent = min(100.0, max(0.0, self.percent + drift))
        return common_pb2.WorkerState(
            battery_percent=percent,
            charging=self.charging,
            battery_source=common_pb2.BATTERY_SOURCE_MODELLED,
            thermal=common_pb2.THERMAL_STATE_NOMINAL,
        )

    def hello(self) -> fleet_pb2.LinkHello:
        return fleet_pb2.LinkHello(info=self.info(), state=self.state())

    async def Describe(self, request, context) -> worker_pb2.DescribeResponse:
        return worker_pb2.DescribeResponse(info=self.info(), state=self.state())


async def serve_light(
    count: int,
    router: str,
    token: Callable[[str], str],
    channel_credentials: grpc.ChannelCredentials | None,
    ready: Callable[[dict], None],
    stop: asyncio.Event,
    prefix: str = "light",
    first: int = 0,
    tokenizer_id: str = LIGHT_MODEL,
    connect_concurrency: int = 64,
    progress: Callable[[str], None] = log.info,
) -> None:
    """Link `count` light devices (`prefix`-`first` …) to `router`, device `d` proving itself with
    `token(d)`, at most `connect_concurrency` connecting at once (a fleet does not dial at one
    instant); report them through `ready`, hold the links until `stop` is set, then close them.
    Raises the router's refusal of a device (a TandemError), or Unavailable."""
    rng = random.Random(f"{prefix}-{first}")
    devices = [LightDevice(f"{prefix}-{i:05d}", tokenizer_id, rng) for i in range(first, first + count)]
    clients = [
        LinkClient(router, token(d.device_id), d.hello, d.state, d, channel_credentials, rng=rng)
        for d in devices
    ]
    gate = asyncio.Semaphore(connect_concurrency)
    linked = 0

    async def connect(client: LinkClient) -> None:
        nonlocal linked
        async with gate:
            await client.start()
        linked += 1
        if linked % 500 == 0 or linked == count:
            progress(f"{linked}/{count} light devices linked")

    try:
        await asyncio.gather(*(connect(c) for c in clients))
        ready({"devices": count, "first": devices[0].device_id if devices else ""})
        await stop.wait()
    finally:
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
