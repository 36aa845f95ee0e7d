"""The device as its apps' entry point (edge_worker.apps): decisions on the device, EDGE and
LOCAL_ONLY kept on it, offline, and the cloud view it decides with — a real router and a real edge
worker (the shipped draft model) in this process, apps calling over a unix socket with the SDK."""

from __future__ import annotations

import asyncio
import time

import pytest

import tandem
from edge_worker.worker import EdgeWorker
from router.server import create_server
from runtime.link_emulator import LinkEmulator, LinkProfile
from tests.conftest import PROMPTS, edge_config, router_config

DEVICE = "phone"


async def until(predicate, timeout_s: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def router_cfg(fleet, port: int = 0, **kw):
    return router_config(fleet, port=port, heartbeat_interval_ms=100, lease_ms=400,
                         cloud_view_interval_ms=200, **kw)  # fmt: skip


async def test_an_app_on_the_device_is_served_there_and_offline_keeps_what_the_device_can_do(
    fleet, profile, tmp_path
):
    router, _ = create_server(router_cfg(fleet))
    await router.start()
    port = router.port
    apps = f"unix://{tmp_path}/apps.sock"
    worker = EdgeWorker(edge_config(fleet, DEVICE, router.address, apps=apps), profile)
    await worker.start()
    try:
        await until(lambda: worker.decider.fresh(), what="a cloud view")
        assert worker.apps_address == apps
        async with tandem.AsyncClient(apps, timeout=30) as app:  # the same SDK, unchanged
            r = await app.complete(PROMPTS[0], max_new_tokens=6, privacy="local_only")
            assert r.placement == "edge" and r.usage.completion_tokens == 6
            assert r.decision.decided_at == "device" and r.decision.policy_version == 1
            assert r.decision.edge_worker_id == DEVICE
            # a request for another device is refused, naming the field
            with pytest.raises(tandem.InvalidArgument) as err:
                await app.complete("x", max_new_tokens=2, device_id="someone-else")
            assert err.value.field == "hints.device_id"
            # the router counts what the device decided, from the counts it reports
            metrics = router.registry_metrics

            def counted(placement, status, name="tandem_device_decided_requests_total"):
                return metrics.get_sample_value(name, {"placement": placement, "status": status}) or 0

            await until(lambda: counted("edge", "OK") == 1 and counted("none", "INVALID_ARGUMENT") == 1,
                        what="the device's usage report")  # fmt: skip
            assert counted("edge", "OK", "tandem_requests_total") == 1  # served on the device: counted

            await router.stop(0)  # the cloud goes away
            await until(lambda: not worker.decider.fresh(), what="the device to notice")
            r = await app.complete(PROMPTS[1], max_new_tokens=5, placement="prefer_device")
            assert r.placement == "edge" and r.usage.completion_tokens == 5
            r = await app.complete(PROMPTS[2], max_new_tokens=5, privacy="local_only")
            assert r.placement == "edge" and r.decision.decided_at == "device"
            with pytest.raises(tandem.Unavailable) as err:
                await app.complete(PROMPTS[3], max_new_tokens=5, quality="large_required")
            assert "cloud is unreachable" in str(err.value) and "link to the router is down" in str(err.value)

            # the router comes back (same port): so does the cloud view, and with it the cloud
            # candidates — this router has no pools, so a request for the large model is now the
            # policy's FAILED_PRECONDITION, not UNAVAILABLE
            router, _ = create_server(router_cfg(fleet, port=port))
            await router.start()
            await until(lambda: worker.decider.fresh(), timeout_s=30, what="the link and view to come back")
            with pytest.raises(tandem.FailedPrecondition):
                await app.complete(PROMPTS[3], max_new_tokens=5, quality="large_required")
    finally:
        await worker.stop(0)
        await router.stop(0)


async def test_a_local_only_request_sends_nothing_of_its_prompt_or_tokens_over_the_link(
    fleet, profile, tmp_path
):
    """The link's traffic itself, captured between device and router (plaintext for this test
    alone: TLS would hide what is inspected): no byte of the prompt or the answer crosses it."""
    router, _ = create_server(router_cfg(fleet, insecure=True))
    await router.start()
    capture: list[tuple[str, bytes]] = []
    wire = await LinkEmulator(router.address, LinkProfile(), capture=capture).start()
    apps = f"unix://{tmp_path}/apps.sock"
    worker = EdgeWorker(edge_config(fleet, DEVICE, wire.address, apps=apps, insecure=True), profile)
    await worker.start()
    try:
        await until(lambda: worker.decider.fresh(), what="a cloud view")
        marker = "zebra-umbrella-4711 " + PROMPTS[0]
        async with tandem.AsyncClient(apps, timeout=30) as app:
            # the capture works: a request the router serves over the link carries its prompt
            capture.clear()
            async with tandem.AsyncClient(router.address, timeout=30) as routed:
                await routed.complete("parrot-lantern-9 " + PROMPTS[1], max_new_tokens=4,
                                      placement="only_device", device_id=DEVICE)  # fmt: skip
            assert b"parrot-lantern-9" in b"".join(data for _, data in capture)

            capture.clear()
            r = await app.complete(marker, max_new_tokens=24, privacy="local_only")
            await asyncio.sleep(0.5)  # what the device reports afterwards is in the capture too
        assert r.placement == "edge" and r.decision.decided_at == "device" and len(r.text) > 8
        sent = b"".join(data for way, data in capture if way == "up")
        got = b"".join(data for way, data in capture if way == "down")
        assert b"zebra-umbrella-4711" not in sent + got
        assert r.text.encode() not in sent + got
        for piece in (r.text[i : i + 6] for i in range(0, len(r.text) - 6, 6)):
            assert piece.encode() not in sent, piece
    finally:
        await worker.stop(0)
        await wire.stop()
        await router.stop(0)


async def test_a_device_calls_the_router_under_its_own_credential_for_itself_alone(fleet, profile):
    """What a device forwards for its apps travels under the device's credential: the router takes
    it beside its API keys, for requests that name that device only."""
    router, _ = create_server(router_cfg(fleet, api_keys=("app-key",)))
    await router.start()
    worker = EdgeWorker(edge_config(fleet, DEVICE, router.address), profile)
    await worker.start()
    ca = fleet.ca_bytes()
    try:
        hints = dict(max_new_tokens=3, placement="only_device")
        async with tandem.AsyncClient(router.address, root_certificates=ca, api_key=worker.token) as c:
            r = await c.complete(PROMPTS[0], device_id=DEVICE, **hints)
            assert r.placement == "edge"
            with pytest.raises(tandem.Unauthenticated):  # not a credential for another device
                await c.complete(PROMPTS[0], device_id="tablet", **hints)
        async with tandem.AsyncClient(router.address, root_certificates=ca, api_key="guess") as c:
            with pytest.raises(tandem.Unauthenticated):
                await c.complete(PROMPTS[0], device_id=DEVICE, **hints)
        async with tandem.AsyncClient(router.address, root_certificates=ca, api_key="app-key") as c:
            assert (await c.complete(PROMPTS[0], device_id=DEVICE, **hints)).placement == "edge"
    finally:
        await worker.stop(0)
        await router.stop(0)


async def test_the_router_learns_from_what_the_device_served_itself_and_sends_a_fresher_view(
    fleet, profile, tmp_path, caplog
):
    """Device-decided requests never pass the router, yet its policy must learn the device's
    speeds from them: the device reports each one's timings and counts (fleet.proto DeviceOutcome),
    the router's estimates learn, and the device's next view carries what they learnt. A report
    that does not check out is dropped whole and the link stays up."""
    from router.device_outcome import outcome_from_pb
    from tandem.v1 import fleet_pb2

    router, _ = create_server(router_cfg(fleet))
    await router.start()
    apps = f"unix://{tmp_path}/apps.sock"
    worker = EdgeWorker(edge_config(fleet, DEVICE, router.address, apps=apps), profile)
    await worker.start()
    sent: list = []
    report = worker.link.report
    worker.apps_service.report = lambda o: (sent.append(o), report(o))[1]
    try:
        await until(lambda: worker.decider.fresh(), what="a cloud view")
        prior = router.placer.estimates.device(DEVICE)["token_ms"]
        assert worker.decider.view.device.token_ms == prior  # nothing measured yet
        async with tandem.AsyncClient(apps, timeout=30) as app:
            r = await app.complete(PROMPTS[0], max_new_tokens=12, placement="only_device")
        assert r.placement == "edge" and r.decision.decided_at == "device"
        assert len(sent) == 1 and sent[0].placement == "edge" and sent[0].tokens == 12
        assert sent[0].prompt_tokens == r.usage.prompt_tokens
        assert not any(f.name == "pool" for f, _ in sent[0].ListFields())  # EDGE: no pool
        # the router learnt the device's speed (the shipped draft runs far under the 25 ms prior)…
        await until(lambda: router.placer.estimates.device(DEVICE)["token_ms"] != prior, what="learning")
        learnt = router.placer.estimates.device(DEVICE)["token_ms"]
        assert learnt < prior
        # …and the device decides with it at the next tick
        await until(lambda: worker.decider.view.device.token_ms == pytest.approx(learnt), what="a fresh view")

        # a report that does not check out: dropped (the router says why), the estimates unchanged
        bad = fleet_pb2.DeviceOutcome()
        bad.CopyFrom(sent[0])
        bad.token_ms = float("nan")
        with pytest.raises(tandem.InvalidArgument) as err:
            outcome_from_pb(bad, DEVICE, set())
        assert err.value.field == "outcome.token_ms"
        before = router.placer.estimates.device(DEVICE)
        caplog.clear()
        assert worker.link.report(bad)
        await until(lambda: "does not check out" in caplog.text, what="the refusal")
        assert router.placer.estimates.device(DEVICE) == before
        assert worker.link.connected.is_set()
        counted = router.registry_metrics.get_sample_value
        assert counted("tandem_device_outcomes_total", {"placement": "edge", "result": "learnt"}) == 1
        assert counted("tandem_device_outcomes_total", {"placement": "unknown", "result": "dropped"}) == 1
    finally:
        await worker.stop(0)
        await router.stop(0)
