"""Fleet lifecycle and overload with a real router and real edge workers (no Ray needed): devices
on their links, and devices that listen for the router's calls."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest

import tandem
from edge_worker.worker import EdgeWorker
from router.health_checks import FailureCounts
from router.identity import PoolSpec
from router.server import create_server
from runtime.credentials import POOL, bearer_metadata
from runtime.serving import add_health_and_reflection, mark_not_serving, mark_serving
from stack.local_stack import LocalStack
from tandem.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    fleet_pb2,
    fleet_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)
from tests.conftest import PROMPTS, edge_config, router_config


async def until(predicate, timeout_s: float = 10.0, what: str = "condition"):
    """Poll `predicate` (sync or async) until true; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def router(fleet):
    r, _ = create_server(router_config(fleet, heartbeat_interval_ms=100, lease_ms=400))
    await r.start()
    yield r
    await r.stop(0)


@pytest.fixture
async def edge(router, profile, fleet):
    w = EdgeWorker(edge_config(fleet, "phone", router.address, max_inflight=1), profile)
    await w.start()
    yield w
    await w.stop(0)


@pytest.fixture
async def listening_edge(router, profile, fleet):
    """A device the router calls on its own port (it registers that port instead of linking)."""
    w = EdgeWorker(edge_config(fleet, "board", router.address, listen=True), profile)
    await w.start()
    yield w
    await w.stop(0)


async def test_a_linked_device_opens_no_port_and_serves_edge(router, edge, fleet):
    assert edge.server is None and edge.port == 0 and edge.endpoint == ""
    assert router.fleet.get("phone").endpoint == "link:phone"
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
        r = await c.complete(PROMPTS[0], max_new_tokens=8, placement="only_device", device_id="phone")
    assert r.placement == "edge" and r.usage.completion_tokens == 8


async def test_a_device_comes_back_by_itself_after_the_router_restarts(fleet, profile):
    config = router_config(fleet, heartbeat_interval_ms=100, lease_ms=400)
    r, _ = create_server(config)
    await r.start()
    port = r.port
    w = EdgeWorker(edge_config(fleet, "phone", r.address), profile)
    await w.start()
    try:
        await r.stop(0)  # its registry is gone with it
        r, _ = create_server(router_config(fleet, port=port, heartbeat_interval_ms=100, lease_ms=400))
        await r.start()
        await until(lambda: r.fleet.get("phone") is not None, 15, "the device to link again")
        assert w.link.reconnects >= 1
        async with tandem.AsyncClient(r.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
            got = await c.complete(PROMPTS[1], max_new_tokens=4, placement="only_device", device_id="phone")
        assert got.placement == "edge"
    finally:
        await w.stop(0)
        await r.stop(0)


async def test_forgotten_listening_worker_registers_again(router, listening_edge):
    assert router.fleet.get("board").endpoint == listening_edge.endpoint
    router.fleet.deregister("board")  # e.g. the router restarted and lost its state
    await until(lambda: router.fleet.get("board") is not None, what="re-registration")


async def test_silent_worker_expires(router, listening_edge, fleet):
    listening_edge.membership._task.cancel()  # no heartbeats and no deregistration: a crashed device
    await until(lambda: router.fleet.get("board") is None, what="expiry")
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=10) as c:
        with pytest.raises(tandem.FailedPrecondition):
            await c.complete("x", max_new_tokens=2, placement="only_device", device_id="board")


async def test_a_listening_worker_serves_the_router_alone(router, listening_edge, fleet):
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
        r = await c.complete(PROMPTS[0], max_new_tokens=4, placement="only_device", device_id="board")
    assert r.placement == "edge"
    # TLS, with a certificate the fleet's CA signed (a worker's), but not the router's credential
    worker_cert = fleet.tls("worker").channel_credentials(present_cert=True)
    async with grpc.aio.secure_channel(listening_edge.endpoint, worker_cert) as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.Describe(worker_pb2.DescribeRequest())
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as e:  # another device's credential is not the router's
            await stub.Describe(
                worker_pb2.DescribeRequest(), metadata=bearer_metadata(fleet_token(router, "phone"))
            )
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def fleet_token(router, device_id: str) -> str:
    from runtime.credentials import DEVICE

    return router.identity.token(DEVICE, device_id)


async def test_clean_shutdown_deregisters(router, profile, fleet):
    w = EdgeWorker(edge_config(fleet, "tablet", router.address), profile)
    await w.start()
    assert router.fleet.get("tablet") is not None
    await w.stop(0)
    # the closed link is the device leaving: no lease to wait out
    await until(lambda: router.fleet.get("tablet") is None, 2, "the device to leave")


async def test_busy_worker_answers_resource_exhausted(router, edge, fleet):
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
        long = c.generate(PROMPTS[0], max_new_tokens=480, placement="only_device", device_id="phone")
        first = await long.__anext__()  # the worker is now busy with a ~480-token generation
        assert first.placement == "edge"
        t0 = time.perf_counter()
        with pytest.raises(tandem.ResourceExhausted, match="busy"):
            await c.complete(PROMPTS[1], max_new_tokens=4, placement="only_device", device_id="phone")
        assert time.perf_counter() - t0 < 5  # fails fast instead of queueing
        rest = [ch async for ch in long]
        assert rest[-1].final and rest[-1].usage.completion_tokens == 480


async def test_cancelled_stream_releases_the_session(router, edge, fleet):
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
        stream = c.generate(PROMPTS[2], max_new_tokens=400, placement="only_device", device_id="phone")
        await stream.__anext__()
        await stream.aclose()  # cancels the call, and the call on the device's link

    def released():
        return len(edge.host.runner.cache) == 0 and edge.servicer.inflight == 0

    await until(released, what="session release")


async def test_router_overload_is_resource_exhausted(profile, fleet):
    r, _ = create_server(router_config(fleet, max_inflight=1))
    await r.start()
    w = EdgeWorker(edge_config(fleet, "phone", r.address), profile)
    await w.start()
    try:
        async with tandem.AsyncClient(r.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
            long = c.generate(PROMPTS[0], max_new_tokens=480, placement="only_device", device_id="phone")
            await long.__anext__()
            with pytest.raises(tandem.ResourceExhausted, match="router busy"):
                await c.complete("x", max_new_tokens=2, placement="only_device", device_id="phone")
            await long.aclose()
    finally:
        await w.stop(0)
        await r.stop(0)


def test_killed_edge_process_is_dropped_from_the_fleet(profile):
    with LocalStack() as stack:
        stack.start_router()
        stack.start_edge("doomed")
        stack.wait_fleet(edge=1, cloud=0)
        stack.stop_component("edge-doomed", sig=signal.SIGKILL)  # no goodbye: it just vanishes
        with stack.router_channel() as ch:
            admin = admin_pb2_grpc.AdminStub(ch)
            deadline = time.monotonic() + 3  # its link broke: no lease (5 s) to wait out
            while any(
                m.info.worker_id == "doomed" for m in admin.ListFleet(admin_pb2.ListFleetRequest()).members
            ):
                assert time.monotonic() < deadline, "killed worker still listed"
                time.sleep(0.1)


async def test_cloud_replicas_failing_health_checks_are_dropped_long_before_their_lease(fleet):
    r, _ = create_server(
        router_config(
            fleet,
            pools=(PoolSpec("p", "cpu", 1.0),),
            heartbeat_interval_ms=1000,
            lease_ms=60_000,
            health_check_interval_ms=50,
            health_check_timeout_ms=300,
            health_check_failures=2,
        )
    )
    await r.start()
    service = worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name
    servers, healths = {}, {}
    try:
        async with grpc.aio.secure_channel(r.address, fleet.tls().channel_credentials()) as ch:
            stub = fleet_pb2_grpc.FleetStub(ch)
            for name in ("healthy", "stopped", "not-serving"):
                server = grpc.aio.server()
                healths[name] = add_health_and_reflection(server, [service])
                # as a replica does: mutual TLS, the router's certificate alone gets in
                port = server.add_secure_port(
                    "127.0.0.1:0", fleet.tls("worker").server_credentials(require_client_auth=True)
                )
                await server.start()
                await mark_serving(healths[name], [service])
                servers[name] = server
                await stub.Register(
                    fleet_pb2.RegisterRequest(
                        info=common_pb2.WorkerInfo(
                            worker_id=name,
                            kind=common_pb2.WORKER_KIND_CLOUD,
                            tokenizer_id="t",
                            max_context=512,
                        ),
                        endpoint=f"127.0.0.1:{port}",
                        pool=common_pb2.PoolProfile(name="p"),
                    ),
                    metadata=bearer_metadata(fleet.token(POOL, "p")),
                )
            assert {w.worker_id for w in r.fleet.members()} == set(servers)
            await servers["stopped"].stop(0)  # a replica process that died: nothing answers
            await mark_not_serving(healths["not-serving"], [service])  # one that is shutting down
            await until(
                lambda: {w.worker_id for w in r.fleet.members()} == {"healthy"}, 10, "the two to be dropped"
            )
            # the healthy replica answered the checks that dropped the others, and stays
            assert r.registry_metrics.get_sample_value("tandem_fleet_unhealthy_total", {"kind": "cloud"}) == 2
            assert (
                r.registry_metrics.get_sample_value("tandem_fleet_expired_total", {"kind": "cloud"}) is None
            )
    finally:
        for server in servers.values():
            await server.stop(0)
        await r.stop(0)


def test_health_check_failures_are_counted_in_a_row():
    counts = FailureCounts(2)
    assert [counts.record("a", ok) for ok in (False, True, False, False, False)] == [
        False,
        False,
        False,
        True,
        False,
    ]
    counts.record("b", False)
    counts.keep_only({"a"})
    assert not counts.record("b", False)  # b was forgotten: this is its first failure again
    with pytest.raises(ValueError):
        FailureCounts(0)
