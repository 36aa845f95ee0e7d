"""The dashboard's HTTP API on a real router (port 0): reads, validation errors naming the field,
the admin token, and read-only mode when the router has no token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from router.config import RouterConfig
from router.fleet import EDGE, WorkerRecord
from router.server import Router
from tests.conftest import router_config


def call(url: str, body: dict | None = None, headers: dict | None = None, method: str | None = None):
    req = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def http(*args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: call(*args, **kwargs))


@pytest.fixture
async def routers(fleet):
    made = []

    async def make(**kw) -> str:
        r = Router(router_config(fleet, dashboard_port=0, **kw))
        await r.start()
        made.append(r)
        return f"http://127.0.0.1:{r.dashboard_port}"

    yield make
    for r in made:
        await r.stop(0)


async def test_the_api_validates_names_fields_and_needs_the_token(routers):
    base = await routers(admin_token="tok")
    status, live = await http(base + "/api/live")
    assert status == 200 and live["policy_version"] == 1 and live["changes_allowed"]
    assert (await http(base + "/api/policy"))[1]["version"] == "1"
    auth = {"X-Tandem-Admin-Token": "tok", "X-Tandem-Caller": "ann"}
    status, err = await http(base + "/api/policy", {"policy": {"battery_weight": -2}, "note": "x"}, auth)
    assert (status, err["field"]) == (400, "policy.battery_weight")
    status, err = await http(base + "/api/policy", {"policy": {"battery_weight": 2}}, auth)
    assert (status, err["field"]) == (400, "note")
    status, err = await http(base + "/api/policy", {"policy": {"cost_weight": "abc"}, "note": "x"}, auth)
    assert (status, err["field"]) == (400, "policy.cost_weight")
    status, err = await http(base + "/api/policy", {"policy": {"no_such_knob": 1}, "note": "x"}, auth)
    assert (status, err["field"]) == (400, "policy.no_such_knob")
    status, err = await http(base + "/api/policy", {"policy": {"battery_weight": 2}, "note": "x"})
    assert (status, err["status"]) == (401, "UNAUTHENTICATED")
    status, v = await http(
        base + "/api/policy", {"policy": {"battery_weight": 2}, "note": "x", "expected_version": 1}, auth
    )
    assert status == 200 and v["version"] == "2" and v["caller"] == "dashboard:ann"
    status, err = await http(
        base + "/api/policy", {"policy": {"battery_weight": 3}, "note": "stale", "expected_version": 1}, auth
    )
    assert (status, err["status"]) == (409, "ABORTED")
    status, err = await http(
        base + "/api/policy", {"policy": {"pool_prices": {"asic": -1}}, "note": "x"}, auth
    )
    assert (status, err["field"]) == (400, "policy.pool_prices.asic")
    status, v = await http(
        base + "/api/policy", {"policy": {"pool_prices": {"asic": 0.25}}, "note": "spot"}, auth
    )
    assert (
        status == 200 and v["policy"]["pool_prices"] == {"asic": 0.25} and v["policy"]["battery_weight"] == 2
    )
    status, err = await http(base + "/api/rollback", {"version": 99, "note": "x"}, auth)
    assert (status, err["status"]) == (404, "NOT_FOUND")
    status, err = await http(base + "/api/whatif", {"source": "log", "candidates": []})
    assert status == 400 and "empty" in err["message"]  # no decision logged yet
    status, err = await http(
        base + "/api/whatif",
        {"source": "records", "records": "not json\n", "candidates": [{"name": "a", "policy": {}}]},
    )
    assert (status, err["field"]) == (400, "records") and "line 1" in err["message"]


async def test_without_an_admin_token_the_page_is_read_only(routers):
    base = await routers()
    assert (await http(base + "/api/live"))[1]["changes_allowed"] is False
    for path, method in (
        ("/api/policy", "POST"),
        ("/api/rollback", "POST"),
        ("/api/shadow", "POST"),
        ("/api/shadow", "DELETE"),
    ):
        status, err = await http(
            base + path, {"policy": {"cost_weight": 2}, "note": "x", "version": 1}, method=method
        )
        assert status == 403 and "read-only" in err["message"], path
    assert (await http(base + "/api/policy"))[1]["version"] == "1"


async def test_a_dashboard_outside_loopback_must_be_allowed():
    with pytest.raises(ValueError, match="dashboard_allow_remote"):
        RouterConfig(dashboard_host="0.0.0.0")
    RouterConfig(dashboard_host="0.0.0.0", dashboard_allow_remote=True, insecure=True)


def test_a_router_serves_tls_unless_told_plaintext():
    with pytest.raises(ValueError, match="serves TLS"):
        RouterConfig()
    assert RouterConfig(insecure=True).insecure


async def test_the_device_search_finds_ids_and_validates_its_parameters(fleet):
    r = Router(router_config(fleet, dashboard_port=0, lease_ms=600_000))
    await r.start()
    try:
        for i in range(120):
            r.fleet.register(
                WorkerRecord(f"phone-{i:03d}" if i % 2 else f"Laptop-{i:03d}", EDGE, "", "m", "t", 512, 0)
            )
        base = f"http://127.0.0.1:{r.dashboard_port}"
        for _ in range(100):  # the search reads the live sample, taken every second
            status, out = await http(base + "/api/devices?q=PHONE-00&limit=3")
            if out["matches"]:
                break
            await asyncio.sleep(0.1)
        assert status == 200 and out["matches"] == 5 and out["limit"] == 3
        assert [d["id"] for d in out["devices"]] == ["phone-001", "phone-003", "phone-005"]
        assert set(out["devices"][0]) >= {
            "battery_percent",
            "charging",
            "share",
            "thermal",
            "rtt_ms",
            "queue",
        }
        status, out = await http(base + "/api/devices?q=laptop")
        assert (status, out["matches"], len(out["devices"])) == (200, 60, 50)  # the default limit
        status, live = await http(base + "/api/live")
        assert live["devices"]["count"] == 120 and len(live["devices"]["top"]) == 10
        bad = (("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("q=" + "a" * 129, "q"))
        for query, field in bad:
            status, err = await http(base + "/api/devices?" + query)
            assert (status, err["status"], err["field"]) == (400, "INVALID_ARGUMENT", field), query
        assert "1 to 500" in (await http(base + "/api/devices?limit=1000"))[1]["message"]
    finally:
        await r.stop(0)
