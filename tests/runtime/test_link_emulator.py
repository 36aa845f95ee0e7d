"""The link emulator over real sockets: delay, bandwidth, order, loss and breaking the link."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.link_emulator import LinkEmulator, LinkProfile


@pytest.fixture
async def echo():
    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


async def roundtrip(address: str, payload: bytes) -> tuple[bytes, float]:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    t0 = time.monotonic()
    writer.write(payload)
    await writer.drain()
    got = await reader.readexactly(len(payload))
    elapsed = time.monotonic() - t0
    writer.close()
    return got, elapsed


async def test_delay_applies_each_way(echo):
    link = await LinkEmulator(echo, LinkProfile(delay_ms=30, jitter_ms=5)).start()
    try:
        got, elapsed = await roundtrip(link.address, b"ping")
        assert (
            got == b"ping" and elapsed >= 0.030
        )  # request delayed; the echo comes back through the link too
        direct_got, _ = await roundtrip(echo, b"ping")
        assert direct_got == b"ping"
    finally:
        await link.stop()


async def test_both_directions_are_delayed(echo):
    inner = await LinkEmulator(echo, LinkProfile(delay_ms=20)).start()
    outer = await LinkEmulator(inner.address, LinkProfile(delay_ms=20)).start()
    try:
        _, elapsed = await roundtrip(outer.address, b"x")
        assert elapsed >= 0.080  # two links, each delaying both the request and the reply
    finally:
        await outer.stop()
        await inner.stop()


async def test_bandwidth_cap_and_order(echo):
    payload = bytes(range(256)) * 400  # 100 kB
    link = await LinkEmulator(echo, LinkProfile(bandwidth_mbps=8)).start()
    try:
        got, elapsed = await roundtrip(link.address, payload)
        assert got == payload  # in order, complete
        assert (
            elapsed >= len(payload) * 8 / 8e6
        )  # at least one full serialisation at 8 Mb/s (the echo pipelines)
    finally:
        await link.stop()


async def test_loss_costs_a_retransmission_timeout(echo):
    link = await LinkEmulator(echo, LinkProfile(loss=0.999999, rto_ms=50), seed=1).start()
    try:
        got, elapsed = await roundtrip(link.address, b"lost?")
        assert got == b"lost?" and elapsed >= 0.050
    finally:
        await link.stop()


async def test_broken_link_resets_and_refuses_until_restored(echo):
    link = await LinkEmulator(echo, LinkProfile()).start()
    try:
        host, port = link.address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        link.break_link()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            writer.write(b"b")
            await writer.drain()
            await reader.readexactly(1)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await roundtrip(link.address, b"c")
        link.restore()
        assert (await roundtrip(link.address, b"d"))[0] == b"d"
    finally:
        await link.stop()


def test_profile_validation():
    with pytest.raises(ValueError):
        LinkProfile(delay_ms=-1)
    with pytest.raises(ValueError):
        LinkProfile(loss=1.0)
    assert LinkProfile(delay_ms=15, jitter_ms=2).rtt_ms == 32
