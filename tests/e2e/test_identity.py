"""Every fleet member proves who it is (real router, real device, real gRPC over TLS; no Ray).

The attacks of issue 17, tried from outside with a generic gRPC client: taking over a device's id,
rewriting its battery, removing it, joining a pool uninvited or at a price of one's own choosing.
"""

from __future__ import annotations

import grpc
import pytest

import tandem
from edge_worker.worker import EdgeWorker
from router.identity import PoolSpec
from router.server import create_server
from runtime.credentials import DEVICE, POOL, bearer_metadata, member_token
from tandem.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc
from tests.conftest import PROMPTS, edge_config, router_config

POOLS = (PoolSpec("asic", "asic", price_per_replica_hour_usd=1.0),)


@pytest.fixture
async def router(fleet):
    r, _ = create_server(router_config(fleet, pools=POOLS))
    await r.start()
    yield r
    await r.stop(0)


@pytest.fixture
async def phone(router, profile, fleet):
    w = EdgeWorker(edge_config(fleet, "my-phone", router.address), profile)
    await w.start()
    yield w
    await w.stop(0)


@pytest.fixture
async def fleet_stub(router, fleet):
    async with grpc.aio.secure_channel(router.address, fleet.tls().channel_credentials()) as ch:
        yield fleet_pb2_grpc.FleetStub(ch)


def info(worker_id: str, kind=common_pb2.WORKER_KIND_EDGE) -> common_pb2.WorkerInfo:
    return common_pb2.WorkerInfo(worker_id=worker_id, kind=kind, tokenizer_id="t", max_context=512)


async def status_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def edge_works(router, fleet, device: str = "my-phone") -> bool:
    async with tandem.AsyncClient(router.address, root_certificates=fleet.ca_bytes(), timeout=30) as c:
        r = await c.complete(PROMPTS[0], max_new_tokens=4, placement="only_device", device_id=device)
    return r.placement == "edge" and r.usage.completion_tokens == 4


async def test_a_link_for_another_devices_id_is_refused_and_the_device_keeps_serving(
    router, phone, fleet, fleet_stub
):
    before = phone_link(router)
    wrong = member_token(b"not the fleet's secret, at all", DEVICE, "my-phone")
    other_device = fleet.token(DEVICE, "someone-else")  # a real credential, of another device
    for token in ("", wrong, other_device):
        call = fleet_stub.Link(metadata=bearer_metadata(token))
        await call.write(
            fleet_pb2.LinkUp(hello=fleet_pb2.LinkHello(info=info("my-phone"), state=common_pb2.WorkerState()))
        )
        assert await status_of(call.read()) == grpc.StatusCode.UNAUTHENTICATED
    assert phone_link(router) is before  # the real link was never replaced
    assert await edge_works(router, fleet)


def phone_link(router):
    link = router.links.get("my-phone")
    assert link is not None and not link.closed
    return link


async def test_registering_heartbeating_or_removing_another_member_needs_its_credential(
    router, phone, fleet, fleet_stub
):
    stranger = bearer_metadata(fleet.token(DEVICE, "stranger"))
    register = fleet_pb2.RegisterRequest(
        info=info("my-phone"), endpoint="10.0.0.9:1", state=common_pb2.WorkerState()
    )
    for metadata in ((), stranger):
        assert (
            await status_of(fleet_stub.Register(register, metadata=metadata))
            == grpc.StatusCode.UNAUTHENTICATED
        )
        drained = fleet_pb2.HeartbeatRequest(
            worker_id="my-phone", state=common_pb2.WorkerState(battery_percent=1.0)
        )
        assert (
            await status_of(fleet_stub.Heartbeat(drained, metadata=metadata))
            == grpc.StatusCode.UNAUTHENTICATED
        )
        gone = fleet_pb2.DeregisterRequest(worker_id="my-phone")
        assert (
            await status_of(fleet_stub.Deregister(gone, metadata=metadata)) == grpc.StatusCode.UNAUTHENTICATED
        )
    record = router.fleet.get("my-phone")
    assert record.endpoint == "link:my-phone" and record.state.battery_percent > 1.0
    # the device's own credential may report its state — but not a battery at -50%
    own = bearer_metadata(fleet.token(DEVICE, "my-phone"))
    bad = fleet_pb2.HeartbeatRequest(
        worker_id="my-phone", state=common_pb2.WorkerState(battery_percent=-50.0)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await fleet_stub.Heartbeat(bad, metadata=own)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "battery_percent" in err.value.details()
    assert await edge_works(router, fleet)


async def test_a_replica_needs_its_pools_credential_and_a_pool_the_router_names(router, fleet, fleet_stub):
    def replica(worker_id: str, pool: str, price: float) -> fleet_pb2.RegisterRequest:
        return fleet_pb2.RegisterRequest(
            info=info(worker_id, common_pb2.WORKER_KIND_CLOUD),
            endpoint="127.0.0.1:9",
            state=common_pb2.WorkerState(),
            pool=common_pb2.PoolProfile(name=pool, accelerator="asic", price_per_replica_hour_usd=price),
        )

    rogue = replica("rogue-1", "asic", 0.01)
    for metadata in (
        (),
        bearer_metadata(fleet.token(DEVICE, "rogue-1")),
        bearer_metadata(fleet.token(POOL, "gpu")),
    ):
        assert (
            await status_of(fleet_stub.Register(rogue, metadata=metadata)) == grpc.StatusCode.UNAUTHENTICATED
        )
    uninvited = replica("gpu-1", "gpu", 3.0)  # a real pool credential, of a pool this router does not run
    code = await status_of(fleet_stub.Register(uninvited, metadata=bearer_metadata(fleet.token(POOL, "gpu"))))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert router.fleet.members() == []
    # with the pool's credential it joins — at the router's price, not its own
    await fleet_stub.Register(rogue, metadata=bearer_metadata(fleet.token(POOL, "asic")))
    joined = router.fleet.get("rogue-1")
    assert joined.pool.price_per_replica_hour_usd == 1.0 and joined.pool.accelerator == "asic"


async def test_a_router_without_a_fleet_secret_takes_no_members(fleet, profile):
    r, _ = create_server(router_config(fleet, fleet_secret_file=None))
    await r.start()
    try:
        w = EdgeWorker(edge_config(fleet, "my-phone", r.address), profile)
        with pytest.raises(tandem.Unauthenticated, match="no fleet secret"):
            await w.start(connect_timeout_s=5)
        assert r.fleet.members() == []
    finally:
        await r.stop(0)


async def test_a_device_with_a_bad_id_or_no_credential_is_refused_before_it_starts(fleet, profile, router):
    with pytest.raises(ValueError, match="no credential"):
        EdgeWorker(edge_config(fleet, "my-phone", router.address, token_file=None), profile)
    w = EdgeWorker(edge_config(fleet, "my-phone", router.address, token_file=None, token="x"), profile)
    w.host.device_id = "has spaces/and slashes"  # what a hand-made client could send
    with pytest.raises(tandem.InvalidArgument, match=r"hello\.info\.worker_id"):
        await w.start(connect_timeout_s=5)
