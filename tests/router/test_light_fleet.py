"""Many devices on their links: light devices (loadtest.light_devices) on a real router (TLS, port 0)
— the router lists them a page at a time, pings one through its link, keeps quiet devices while
their links are up, counts them in its metrics without a series per device."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from prometheus_client import generate_latest

from loadtest.light_devices import serve_light
from router.server import Router
from runtime.credentials import DEVICE
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, worker_pb2
from tests.conftest import router_config

ADMIN = (("x-tandem-admin-token", "s3cret"),)
N = 12


@contextlib.asynccontextmanager
async def light_fleet(fleet, router: Router, n: int = N):
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_light(
            n,
            router.address,
            lambda d: fleet.token(DEVICE, d),
            fleet.tls().channel_credentials(),
            lambda info: ready.set(),
            stop,
        )
    )
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=60,
                                 return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    if task in done:
        task.result()  # the refusal
    assert ready.is_set()
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def router(fleet):
    # a lease of 0.2 s: a device on its link stays though it sends nothing for far longer
    r = Router(router_config(fleet, admin_token="s3cret", heartbeat_interval_ms=100, lease_ms=200))
    await r.start()
    yield r
    await r.stop(0)


def admin(router, fleet):
    ch = grpc.aio.secure_channel(router.address, fleet.tls().channel_credentials())
    return ch, admin_pb2_grpc.AdminStub(ch)


async def test_quiet_devices_stay_while_their_links_are_up_and_list_a_page_at_a_time(router, fleet):
    async with light_fleet(fleet, router):
        await asyncio.sleep(1.0)  # five leases: their state does not change, so they send nothing
        assert len(router.links) == N and len(router.fleet.members("edge")) == N
        ch, stub = admin(router, fleet)
        async with ch:
            edge = common_pb2.WORKER_KIND_EDGE
            first = await stub.ListFleet(admin_pb2.ListFleetRequest(kind=edge, limit=5))
            assert first.matched == N and len(first.members) == 5
            last = first.members[-1].info.worker_id
            rest = await stub.ListFleet(admin_pb2.ListFleetRequest(kind=edge, limit=100, after=last))
            ids = [m.info.worker_id for m in [*first.members, *rest.members]]
            assert ids == sorted(ids) and len(set(ids)) == N
            some = await stub.ListFleet(admin_pb2.ListFleetRequest(id_prefix="light-0000"))
            assert [m.info.worker_id for m in some.members] == [f"light-0000{i}" for i in range(10)]
            for bad, field in ((admin_pb2.ListFleetRequest(after="no spaces"), "after"),
                               (admin_pb2.ListFleetRequest(id_prefix="x" * 129), "id_prefix")):  # fmt: skip
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.ListFleet(bad)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()
        text = generate_latest(router.registry_metrics).decode()
        assert f"tandem_device_links {float(N)}" in text
        assert f"tandem_device_battery_percent_count {float(N)}" in text
        assert 'tandem_fleet_workers{kind="edge"} 12.0' in text
        assert "device=" not in text  # no series per device
    await asyncio.sleep(0.3)
    assert len(router.links) == 0 and not router.fleet.members("edge")  # the links closed: gone


async def test_ping_member_asks_a_device_over_its_link(router, fleet):
    async with light_fleet(fleet, router):
        ch, stub = admin(router, fleet)
        async with ch:
            r = await stub.PingMember(admin_pb2.PingMemberRequest(worker_id="light-00003"), metadata=ADMIN)
            assert r.describe.info.worker_id == "light-00003" and r.endpoint == "link:light-00003"
            assert r.round_trip_ms > 0
            assert r.describe.state.battery_source == common_pb2.BATTERY_SOURCE_MODELLED
            cases = [
                (admin_pb2.PingMemberRequest(worker_id="light-00003"), (), grpc.StatusCode.UNAUTHENTICATED),
                (admin_pb2.PingMemberRequest(worker_id="nobody"), ADMIN, grpc.StatusCode.NOT_FOUND),
                (admin_pb2.PingMemberRequest(worker_id="a b"), ADMIN, grpc.StatusCode.INVALID_ARGUMENT),
                (
                    admin_pb2.PingMemberRequest(worker_id="light-00003", timeout_ms=60_001),
                    ADMIN,
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
            ]
            for request, metadata, code in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.PingMember(request, metadata=metadata)
                assert err.value.code() == code, request


async def test_a_call_a_light_device_does_not_serve_is_unimplemented(router, fleet):
    async with light_fleet(fleet, router, n=1):
        stub = router.channels.stub("link:light-00000")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Tokenize(worker_pb2.TokenizeRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert (await stub.Describe(worker_pb2.DescribeRequest(), timeout=5)).info.worker_id == "light-00000"


async def test_the_sdk_admin_client_pages_the_fleet_and_pings_a_device(router, fleet):
    from tandem.admin import AdminClient
    from tandem.errors import NotFound

    def use() -> tuple[list[str], float]:
        with AdminClient(router.address, root_certificates=fleet.ca_bytes(), admin_token="s3cret") as admin:
            ids = [m.info.worker_id for m in admin.list_fleet(page_size=5)]  # three pages
            with pytest.raises(NotFound):
                admin.ping_member("nobody")
            return ids, admin.ping_member("light-00011").round_trip_ms

    async with light_fleet(fleet, router):
        ids, rtt = await asyncio.to_thread(use)
    assert ids == [f"light-{i:05d}" for i in range(N)] and rtt > 0
