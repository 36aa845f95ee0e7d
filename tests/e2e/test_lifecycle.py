"""Fleet lifecycle and overload with a real router and real edge workers (no Ray needed)."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest

import tandem
from edge_worker.config import EdgeConfig
from edge_worker.worker import EdgeWorker
from router.config import RouterConfig
from router.health_checks import FailureCounts
from router.server import create_server
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
from tests.conftest import PROMPTS


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
async def router():
    r, _ = create_server(
        RouterConfig(port=0, metrics_port=-1, dashboard_port=-1, heartbeat_interval_ms=100, lease_ms=400)
    )
    await r.start()
    yield r
    await r.stop(0)


@pytest.fixture
async def edge(router, profile):
    w = EdgeWorker(
        EdgeConfig(device_id="phone", router=router.address, metrics_port=-1, max_inflight=1), profile
    )
    await w.start()
    yield w
    await w.stop(0)


async def test_forgotten_worker_registers_again(router, edge):
    assert router.fleet.get("phone") is not None
    router.fleet.deregister("phone")  # e.g. the router restarted and lost its state
    await until(lambda: router.fleet.get("phone") is not None, what="re-registration")


async def test_silent_worker_expires(router, edge):
    edge.membership._task.cancel()  # stop heartbeating without deregistering, as a crashed device would
    await until(lambda: router.fleet.get("phone") is None, what="expiry")
    async with tandem.AsyncClient(router.address, timeout=10) as c:
        with pytest.raises(tandem.FailedPrecondition):
            await c.complete("x", max_new_tokens=2, placement="only_device", device_id="phone")


async def test_clean_shutdown_deregisters(router, profile):
    w = EdgeWorker(EdgeConfig(device_id="tablet", router=router.address, metrics_port=-1), profile)
    await w.start()
    assert router.fleet.get("tablet") is not None
    await w.stop(0)
    assert router.fleet.get("tablet") is None  # at once, not after the lease


async def test_busy_worker_answers_resource_exhausted(router, edge):
    async with tandem.AsyncClient(router.address, timeout=30) as c:
        long = c.generate(PROMPTS[0], max_new_tokens=480, placement="only_device", device_id="phone")
        first = await long.__anext__()  # the worker is now busy with a ~480-token generation
        assert first.placement == "edge"
        t0 = time.perf_counter()
        with pytest.raises(tandem.ResourceExhausted, match="busy"):
            await c.complete(PROMPTS[1], max_new_tokens=4, placement="only_device", device_id="phone")
        assert time.perf_counter() - t0 < 5  # fails fast instead of queueing
        rest = [ch async for ch in long]
        assert rest[-1].final and rest[-1].usage.completion_tokens == 480


async def test_cancelled_stream_releases_the_session(router, edge):
    async with tandem.AsyncClient(router.address, timeout=30) as c:
        stream = c.generate(PROMPTS[2], max_new_tokens=400, placement="only_device", device_id="phone")
        await stream.__anext__()
        await stream.aclose()  # cancels the call
    async with grpc.aio.insecure_channel(edge.endpoint) as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)

        async def released():
            d = await stub.Describe(worker_pb2.DescribeRequest())
            return d.state.active_sessions == 0 and d.state.queue_depth == 0

        await until(released, what="session release")


async def test_router_overload_is_resource_exhausted(profile):
    r, _ = create_server(RouterConfig(port=0, metrics_port=-1, dashboard_port=-1, max_inflight=1))
    await r.start()
    w = EdgeWorker(EdgeConfig(device_id="phone", router=r.address, metrics_port=-1), profile)
    await w.start()
    try:
        async with tandem.AsyncClient(r.address, timeout=30) as c:
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
        stack.stop_component("edge-doomed", sig=signal.SIGKILL)  # no deregistration: it just vanishes
        with grpc.insecure_channel(stack.router_address) as ch:
            admin = admin_pb2_grpc.AdminStub(ch)
            deadline = time.monotonic() + 15  # default lease is 5 s
            while any(
                m.info.worker_id == "doomed" for m in admin.ListFleet(admin_pb2.ListFleetRequest()).members
            ):
                assert time.monotonic() < deadline, "killed worker still listed"
                time.sleep(0.1)


async def test_cloud_replicas_failing_health_checks_are_dropped_long_before_their_lease():
    r, _ = create_server(
        RouterConfig(
            port=0,
            metrics_port=-1,
            dashboard_port=-1,
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
        async with grpc.aio.insecure_channel(r.address) as ch:
            fleet = fleet_pb2_grpc.FleetStub(ch)
            for name in ("healthy", "stopped", "not-serving"):
                server = grpc.aio.server()
                healths[name] = add_health_and_reflection(server, [service])
                port = server.add_insecure_port("127.0.0.1:0")
                await server.start()
                await mark_serving(healths[name], [service])
                servers[name] = server
                await fleet.Register(
                    fleet_pb2.RegisterRequest(
                        info=common_pb2.WorkerInfo(
                            worker_id=name,
                            kind=common_pb2.WORKER_KIND_CLOUD,
                            tokenizer_id="t",
                            max_context=512,
                        ),
                        endpoint=f"127.0.0.1:{port}",
                        pool=common_pb2.PoolProfile(name="p"),
                    )
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
