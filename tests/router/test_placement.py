"""Hint-based placement: a pure function over plain data."""

from __future__ import annotations

import pytest

from router.fleet import CLOUD, EDGE, DeviceState, PoolInfo, WorkerRecord
from router.placement import RouteRequest, decide
from tandem.errors import FailedPrecondition


def edge(worker_id="phone", **state) -> WorkerRecord:
    return WorkerRecord(worker_id, EDGE, f"{worker_id}:1", "draft", "tok", 512, 0, state=DeviceState(**state))


def replica(worker_id="asic-1", pool="asic", queue=0) -> WorkerRecord:
    return WorkerRecord(worker_id, CLOUD, f"{worker_id}:2", "target", "tok", 512, 0, pool=PoolInfo(pool, "asic", 2.0),
                        state=DeviceState(queue_depth=queue))


FLEET = [edge(), replica("asic-1", queue=3), replica("asic-2", queue=1)]


def test_only_device_uses_the_callers_device():
    d = decide(RouteRequest(preference="only_device", device_id="phone"), FLEET)
    assert (d.placement, d.edge_worker_id, d.edge_endpoint) == ("edge", "phone", "phone:1")
    assert "ONLY_DEVICE" in d.reason
    cloud = [c for c in d.candidates if c.placement == "cloud"]
    assert cloud and all(c.excluded for c in cloud)


def test_only_device_without_device_fails_with_reason():
    with pytest.raises(FailedPrecondition, match="not registered"):
        decide(RouteRequest(preference="only_device", device_id="tablet"), FLEET)
    with pytest.raises(FailedPrecondition, match="no device_id"):
        decide(RouteRequest(preference="only_device"), FLEET)


def test_local_only_privacy_never_leaves_the_device():
    d = decide(RouteRequest(preference="only_cloud", privacy="local_only", device_id="phone"), FLEET)
    assert d.placement == "edge" and "LOCAL_ONLY" in d.reason
    with pytest.raises(FailedPrecondition, match="LOCAL_ONLY"):
        decide(RouteRequest(privacy="local_only", device_id="phone"), [replica()])


def test_prefer_device_falls_back_to_cloud():
    assert decide(RouteRequest(preference="prefer_device", device_id="phone"), FLEET).placement == "edge"
    d = decide(RouteRequest(preference="prefer_device", device_id="tablet"), FLEET)
    assert d.placement == "cloud" and "falling back" in d.reason


def test_cloud_preferences_pick_least_loaded_replica():
    for pref in ("prefer_cloud", "only_cloud"):
        d = decide(RouteRequest(preference=pref, device_id="phone"), FLEET)
        assert (d.placement, d.cloud_worker_id, d.pool, d.cloud_endpoint) == ("cloud", "asic-2", "asic", "asic-2:2")
    d = decide(RouteRequest(preference="auto"), FLEET)  # no device named: the cloud alone
    assert d.placement == "cloud"


def test_auto_with_device_and_cloud_is_tandem():
    d = decide(RouteRequest(device_id="phone", draft_length=4), FLEET)
    assert (d.placement, d.edge_worker_id, d.cloud_worker_id, d.initial_draft_length) == ("tandem", "phone", "asic-2", 4)
    assert "drafts" in d.reason
    for pref in ("only_cloud", "prefer_cloud", "prefer_device"):
        d = decide(RouteRequest(preference=pref, device_id="phone"), FLEET)
        assert d.placement != "tandem"
        assert any(c.placement == "tandem" and c.excluded for c in d.candidates)


def test_auto_falls_back_to_device_when_no_cloud():
    d = decide(RouteRequest(device_id="phone"), [edge()])
    assert d.placement == "edge" and "no cloud replica" in d.reason


def test_nothing_registered_fails():
    for pref in ("auto", "prefer_cloud", "only_cloud", "prefer_device"):
        with pytest.raises(FailedPrecondition):
            decide(RouteRequest(preference=pref, device_id="phone"), [])
    with pytest.raises(FailedPrecondition, match="ONLY_CLOUD"):
        decide(RouteRequest(preference="only_cloud"), [edge()])


def test_every_decision_lists_candidates_with_reasons():
    d = decide(RouteRequest(device_id="phone"), FLEET)
    assert {c.placement for c in d.candidates} == {"edge", "cloud", "tandem"}
    assert all(c.reason for c in d.candidates)
