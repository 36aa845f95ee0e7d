"""The routing policy through the real router: decisions explained, and changed live by the Admin API."""

from __future__ import annotations

import grpc
import pytest

import tandem
from tandem.v1 import admin_pb2, admin_pb2_grpc
from tests.conftest import PROMPTS
from tests.e2e.conftest import DEVICE


@pytest.fixture(scope="module")
def client(stack):
    with stack.client(timeout=120) as c:
        yield c


@pytest.fixture
def admin(stack):
    """An Admin client; whatever a test changes is rolled back afterwards."""
    with tandem.AdminClient(
        stack.router_address, caller="pytest", root_certificates=stack.credentials.ca_bytes()
    ) as a:
        start = a.get_policy().version
        yield a
        if a.get_policy().version != start:
            a.rollback_policy(start, note="test teardown")


def test_requests_come_back_with_the_policys_placement_and_reason(client, admin):
    version = admin.get_policy().version
    explained = client.explain(PROMPTS[0], max_new_tokens=24, device_id=DEVICE)
    r = client.complete(PROMPTS[0], max_new_tokens=24, device_id=DEVICE)
    d = r.decision
    assert d.placement == explained.placement == r.placement
    assert d.policy_version == explained.policy_version == version
    assert "score" in d.reason and d.predicted_cost_usd > 0 and d.predicted_ttft_ms > 0
    chosen = [c for c in d.candidates if not c.excluded and c.placement == d.placement and c.pool == d.pool]
    assert chosen and min(c.score for c in d.candidates if not c.excluded) == chosen[0].score
    edge = next(c for c in d.candidates if c.placement == "edge")
    assert edge.excluded and "quality" in edge.reason  # 24 tokens, quality unspecified: not the small model


def test_a_policy_change_changes_the_next_decision_without_a_restart(client, admin):
    before = client.complete(PROMPTS[1], max_new_tokens=12, device_id=DEVICE)
    assert before.placement == "tandem", [(c.placement, c.pool, c.reason) for c in before.decision.candidates]
    v = admin.set_policy({"allow_tandem": False}, note="no drafting today")
    assert v.caller == "pytest" and v.source == "admin" and v.policy["allow_tandem"] is False
    after = client.complete(PROMPTS[1], max_new_tokens=12, device_id=DEVICE)
    assert after.placement == "cloud" and after.decision.policy_version == v.version
    assert any("disabled by the policy" in c.reason for c in after.decision.candidates)
    # the pool follows the weights: cost alone → the cheaper ASIC, latency alone → the faster GPU
    admin.set_policy({"cost_weight": 0.0, "latency_weight": 1.0})
    assert client.explain(PROMPTS[1], max_new_tokens=64, placement="only_cloud").pool == "gpu"
    admin.set_policy({"cost_weight": 1.0, "latency_weight": 0.0})
    assert client.explain(PROMPTS[1], max_new_tokens=64, placement="only_cloud").pool == "asic"
    back = admin.rollback_policy(v.version - 1, note="drafting is back")
    assert back.restored_version == v.version - 1 and back.policy["allow_tandem"] is True
    assert client.complete(PROMPTS[1], max_new_tokens=12, device_id=DEVICE).placement == "tandem"
    history = admin.policy_history()
    assert [h.version for h in history[:4]] == [back.version, back.version - 1, back.version - 2, v.version]


def test_bad_policy_changes_are_named_and_change_nothing(stack, admin):
    version = admin.get_policy().version
    with pytest.raises(tandem.InvalidArgument) as e:
        admin.set_policy({"battery_reserve_percent": 120.0})
    assert e.value.field == "policy.battery_reserve_percent"
    with stack.router_channel() as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.SetPolicy(
                admin_pb2.SetPolicyRequest(
                    policy=admin_pb2.RoutingPolicy(), update_mask={"paths": ["no_such_field"]}
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in err.value.details()
    with pytest.raises(tandem.Aborted):
        admin.set_policy({"cost_weight": 2.0}, expected_version=version - 1 if version > 1 else version + 5)
    with pytest.raises(tandem.NotFound):
        admin.rollback_policy(10_000)
    assert admin.get_policy().version == version


def test_no_placement_is_failed_precondition_with_reasons(client):
    with pytest.raises(tandem.FailedPrecondition) as e:
        client.complete("x = 1", max_new_tokens=4, privacy="local_only", device_id="no-such-phone")
    assert "LOCAL_ONLY" in str(e.value) and "not registered" in str(e.value)


def test_policy_metrics_reach_prometheus(stack, client, admin):
    import urllib.request

    port = stack.components["router"].info["metrics_port"]
    client.complete(PROMPTS[0], max_new_tokens=8, placement="only_cloud")
    v = admin.set_policy({"latency_weight": 0.1})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert f"tandem_policy_version {float(v.version)}" in text
    assert (
        'tandem_decisions_total{placement="cloud",rule="score"}' in text
    )  # ONLY_CLOUD: the two pools scored
    assert 'tandem_decision_exclusions_total{placement="edge",rule="only_cloud"}' in text
    assert 'tandem_latency_actual_over_predicted_count{placement="cloud",what="ttft"}' in text
    # the devices' battery as one distribution (no series per device), the device counted in it
    assert "tandem_device_battery_percent_count 1.0" in text
    assert "tandem_device_links 1.0" in text
