"""Apps on the device (edge_worker.apps) against the whole stack: CLOUD and TANDEM decided on the
device and served through the router under the device's identity; output exact as ever."""

from __future__ import annotations

import time

import pytest

import tandem
from tests.conftest import PROMPTS
from tests.e2e.conftest import DEVICE
from tests.e2e.test_stack import metric, scrape


@pytest.fixture(scope="module")
def app(stack):
    """An app on the device: the SDK on the agent's local address, with no credential of its own;
    ready once the device holds a cloud view with the pools (it comes within a housekeeping tick
    of the replicas joining)."""
    with tandem.Client(stack.apps[DEVICE], timeout=120) as c:
        deadline = time.monotonic() + 30
        while True:
            try:
                c.complete("ping", max_new_tokens=1, placement="only_cloud")
                break
            except tandem.FailedPrecondition:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield c


def test_cloud_from_the_device_goes_through_the_router_and_says_who_decided(app, stack):
    r = app.complete(PROMPTS[0], max_new_tokens=12, placement="only_cloud")
    assert r.placement == "cloud" and r.usage.completion_tokens == 12
    assert r.decision.decided_at == "device" and r.decision.policy_version >= 1
    assert r.decision.pool in stack.pool_names() and r.decision.cloud_worker_id  # the router's pick
    with stack.client(timeout=120) as direct:
        same = direct.complete(PROMPTS[0], max_new_tokens=12, placement="only_cloud")
    assert same.token_ids == r.token_ids and same.decision.decided_at == "router"


def test_tandem_from_the_device_is_the_large_models_output(app, stack):
    with stack.client(timeout=120) as direct:
        cloud = direct.complete(PROMPTS[1], max_new_tokens=32, placement="only_cloud")
    learnt = "tandem_device_outcomes_total"
    before = metric(scrape(stack.components["router"].info["metrics_port"]), learnt, placement="tandem",
                    result="learnt")  # fmt: skip
    r = app.complete(PROMPTS[1], max_new_tokens=32, placement="prefer_tandem")
    assert r.placement == "tandem" and r.decision.decided_at == "device"
    assert r.token_ids == cloud.token_ids
    # the router learns from the session it never drove (the device's report: timings and counts)
    deadline = time.monotonic() + 10
    while metric(scrape(stack.components["router"].info["metrics_port"]), learnt, placement="tandem",
                 result="learnt") == before:  # fmt: skip
        assert time.monotonic() < deadline, "the router never learnt from the device-driven session"
        time.sleep(0.05)


def test_the_device_checks_its_apps_requests(app):
    with pytest.raises(tandem.InvalidArgument) as err:
        app.complete(PROMPTS[0], max_new_tokens=0)
    assert "max_new_tokens" in err.value.field


def test_device_driven_tandem_samples_and_drafts_trees(app):
    """Sampling (the speculative-sampling rule at the replica, with the device's q) and draft
    trees (greedy) carry over to TANDEM driven from the device."""
    sampled = app.complete(PROMPTS[2], max_new_tokens=24, placement="prefer_tandem", temperature=0.8, seed=7)
    assert sampled.placement == "tandem" and sampled.usage.completion_tokens == 24
    assert sampled.decision.decided_at == "device" and sampled.tandem.drafted_tokens > 0
    chain = app.complete(PROMPTS[3], max_new_tokens=24, placement="prefer_tandem")
    tree = app.complete(PROMPTS[3], max_new_tokens=24, placement="prefer_tandem", draft_tree=[3, 2])
    assert tree.placement == "tandem" and tree.token_ids == chain.token_ids  # still the target's output
