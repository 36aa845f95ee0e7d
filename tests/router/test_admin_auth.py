"""A router that requires an admin token refuses policy changes without it (real gRPC, port 0)."""

from __future__ import annotations

import grpc
import pytest

from router.server import Router
from tandem.v1 import admin_pb2, admin_pb2_grpc
from tests.conftest import router_config


@pytest.fixture
async def router(fleet):
    r = Router(router_config(fleet, admin_token="s3cret"))
    await r.start()
    yield r
    await r.stop(0)


@pytest.fixture
def channel(router, fleet):
    return lambda: grpc.aio.secure_channel(router.address, fleet.tls().channel_credentials())


async def test_policy_changes_need_the_admin_token(channel):
    req = admin_pb2.SetPolicyRequest(
        policy=admin_pb2.RoutingPolicy(latency_weight=2.0),
        update_mask={"paths": ["latency_weight"]},
        note="faster",
    )
    async with channel() as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetPolicy(req, metadata=(("x-tandem-admin-token", "wrong"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RollbackPolicy(admin_pb2.RollbackPolicyRequest(version=1))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (await stub.GetPolicy(admin_pb2.GetPolicyRequest())).version == 1  # reading needs no token
        v = await stub.SetPolicy(
            req, metadata=(("x-tandem-admin-token", "s3cret"), ("x-tandem-caller", "ops"))
        )
        assert (v.version, v.caller, v.note, v.policy.latency_weight) == (2, "ops", "faster", 2.0)
        assert v.policy.cost_weight == 1.0  # untouched by the mask


async def test_shadow_policies_need_the_token_are_validated_and_never_enforced(router, channel):
    shadow = admin_pb2.SetPolicyRequest(
        policy=admin_pb2.RoutingPolicy(latency_weight=5.0),
        update_mask={"paths": ["latency_weight"]},
        note="what if",
    )
    token = (("x-tandem-admin-token", "s3cret"),)
    async with channel() as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        assert not (await stub.GetShadowReport(admin_pb2.GetShadowReportRequest())).active
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetShadowPolicy(shadow)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        bad = admin_pb2.SetPolicyRequest(
            policy=admin_pb2.RoutingPolicy(cost_weight=-1.0), update_mask={"paths": ["cost_weight"]}
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetShadowPolicy(bad, metadata=token)
        assert (
            err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            and "policy.cost_weight" in err.value.details()
        )
        r = await stub.SetShadowPolicy(shadow, metadata=token)
        assert r.active and r.policy.latency_weight == 5.0 and r.note == "what if" and r.decisions == 0
        assert (await stub.GetPolicy(admin_pb2.GetPolicyRequest())).policy.latency_weight == 0.07
        stopped = await stub.ClearShadowPolicy(admin_pb2.ClearShadowPolicyRequest(), metadata=token)
        assert not stopped.active and stopped.note == "what if"
        assert not (await stub.GetShadowReport(admin_pb2.GetShadowReportRequest())).active
