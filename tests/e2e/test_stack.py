"""End to end through real processes: SDK → router → edge worker or Ray Serve replica,
on the shipped models."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import tandem
from runtime.llm.decoder import OnnxDecoder
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.params import SamplingConfig
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, inference_pb2_grpc
from tests.conftest import PROMPTS, edge_config
from tests.e2e.conftest import DEVICE

N = 24


@pytest.fixture(scope="module")
def client(stack):
    with stack.client(timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def local(profile):
    """The same models run directly, to check what the stack streams."""
    tok = Tokenizer(profile.tokenizer)
    return {
        "edge": ModelRunner(OnnxDecoder(profile.draft), tok),
        "cloud": ModelRunner(OnnxDecoder(profile.target), tok),
    }


def expected(runner: ModelRunner, prompt: str, n: int) -> tuple[list[int], str]:
    steps = list(runner.generate(None, runner.prompt_ids(text=prompt), SamplingConfig(max_new_tokens=n)))
    return [t for s in steps for t in s.token_ids], "".join(s.text for s in steps)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text: str, name: str, **labels) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}\{{{sel}\}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    total = 0.0
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            total += float(m.group(1))
    return total


def test_fleet_is_assembled(stack):
    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    edge = [m for m in members if m.info.kind == common_pb2.WORKER_KIND_EDGE]
    cloud = [m for m in members if m.info.kind == common_pb2.WORKER_KIND_CLOUD]
    assert [m.info.worker_id for m in edge] == [DEVICE]
    pools = {m.pool.name: m.pool for m in cloud}
    assert sorted(pools) == ["asic", "gpu"] and len(cloud) == 2  # the default config's two pools
    assert 0 < pools["asic"].price_per_replica_hour_usd < pools["gpu"].price_per_replica_hour_usd
    assert edge[0].info.tokenizer_id == cloud[0].info.tokenizer_id
    assert edge[0].info.execution_provider == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in edge[0].info.available_providers
    assert edge[0].state.battery_source in (
        common_pb2.BATTERY_SOURCE_REAL,
        common_pb2.BATTERY_SOURCE_MODELLED,
    )


@pytest.mark.parametrize("prompt", PROMPTS[:4])
def test_device_placement_streams_the_draft_models_text(client, local, prompt):
    ids, text = expected(local["edge"], prompt, N)
    chunks = list(client.generate(prompt, max_new_tokens=N, placement="prefer_device", device_id=DEVICE))
    r = tandem.Result.collect(chunks)
    assert {c.placement for c in chunks} == {"edge"} and {c.worker_id for c in chunks} == {DEVICE}
    assert list(r.token_ids) == ids and r.text == text
    assert chunks[0].decision is not None and chunks[-1].final
    assert r.decision.placement == "edge" and "PREFER_DEVICE" in r.decision.reason
    assert r.usage.completion_tokens == len(ids) and r.usage.prompt_tokens > 0
    assert r.device_energy_joules > 0 and r.cloud_usd == 0


@pytest.mark.parametrize("prompt", PROMPTS[:4])
def test_cloud_placement_streams_the_target_models_text(client, local, prompt):
    ids, text = expected(local["cloud"], prompt, N)
    r = client.complete(prompt, max_new_tokens=N, placement="only_cloud")
    assert r.placements == ("cloud",) and r.decision.pool == "asic"
    assert list(r.token_ids) == ids and r.text == text
    assert "ONLY_CLOUD" in r.decision.reason
    assert r.cloud_usd > 0 and r.target_forward_passes == len(ids) and r.device_energy_joules == 0
    assert r.finish_reason in ("length", "eos")


def test_local_only_privacy_stays_on_device(client):
    r = client.complete(PROMPTS[0], max_new_tokens=8, privacy="local_only", device_id=DEVICE)
    assert r.placements == ("edge",) and "LOCAL_ONLY" in r.decision.reason


def test_chat_messages_are_accepted(client):
    r = client.complete(
        messages=[{"role": "user", "content": "write a loop"}], max_new_tokens=6, placement="only_cloud"
    )
    assert r.usage.completion_tokens == 6 and r.placement == "cloud"


def test_stop_string_and_sampling_through_the_stack(client):
    a = client.complete(PROMPTS[1], max_new_tokens=16, temperature=0.9, seed=5, placement="only_cloud")
    b = client.complete(PROMPTS[1], max_new_tokens=16, temperature=0.9, seed=5, placement="only_cloud")
    assert a.token_ids == b.token_ids
    greedy = client.complete(PROMPTS[2], max_new_tokens=24, placement="only_cloud")
    stop = greedy.text.strip()[:2]
    cut = client.complete(PROMPTS[2], max_new_tokens=24, placement="only_cloud", stop=[stop])
    assert cut.finish_reason == "stop_string" and cut.text == greedy.text[: greedy.text.index(stop)]


def test_async_client(stack):
    async def run():
        async with stack.async_client(timeout=60) as c:
            results = await asyncio.gather(
                c.complete(PROMPTS[0], max_new_tokens=8, placement="only_cloud"),
                c.complete(PROMPTS[1], max_new_tokens=8, placement="only_device", device_id=DEVICE),
            )
            decision = await c.explain(
                PROMPTS[0], max_new_tokens=8, placement="prefer_device", device_id=DEVICE
            )
            return results, decision

    (cloud, edge), decision = asyncio.run(run())
    assert cloud.placement == "cloud" and edge.placement == "edge"
    assert decision.placement == "edge" and decision.candidates


def test_no_device_is_failed_precondition(client):
    with pytest.raises(tandem.FailedPrecondition, match="not registered"):
        client.complete("x", max_new_tokens=4, placement="only_device", device_id="ghost")


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(prompt=""), "prompt"),
        (dict(max_new_tokens=0), "sampling.max_new_tokens"),
        (dict(max_new_tokens=-1), "sampling.max_new_tokens"),
        (dict(max_new_tokens=5000), "sampling.max_new_tokens"),  # above the 512-token context
        (dict(temperature=-0.5), "sampling.temperature"),
        (dict(top_p=0.0), "sampling.top_p"),
        (dict(top_p=1.5), "sampling.top_p"),
    ],
)
@pytest.mark.parametrize("placement", ["only_cloud", "only_device"])
def test_bad_input_is_invalid_argument_naming_the_field(client, kwargs, field, placement):
    kwargs = {"prompt": "def f():", "max_new_tokens": 8, **kwargs}
    with pytest.raises(tandem.InvalidArgument) as err:
        client.complete(kwargs.pop("prompt"), placement=placement, device_id=DEVICE, **kwargs)
    assert err.value.field == field, err.value


def test_unknown_enum_value_is_invalid_argument(stack):
    req = tandem.client.build_request("x", max_new_tokens=4)
    req.hints.placement = 17
    with stack.router_channel() as ch, pytest.raises(grpc.RpcError) as err:
        list(inference_pb2_grpc.InferenceStub(ch).Generate(req, timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hints.placement" in err.value.details()


def test_deadline_is_honoured(client):
    with pytest.raises(tandem.DeadlineExceeded):
        client.complete(PROMPTS[0], max_new_tokens=400, placement="only_cloud", timeout=0.05)


def test_router_metrics_count_placements_and_latency(stack, client):
    router_port = stack.components["router"].info["metrics_port"]
    before = scrape(router_port)
    client.complete(PROMPTS[0], max_new_tokens=8, placement="only_cloud")
    client.complete(PROMPTS[0], max_new_tokens=8, placement="only_device", device_id=DEVICE)
    with pytest.raises(tandem.InvalidArgument):
        client.complete(PROMPTS[0], max_new_tokens=0)
    after = scrape(router_port)
    for placement in ("cloud", "edge"):
        assert (
            metric(after, "tandem_requests_total", placement=placement, status="OK")
            == metric(before, "tandem_requests_total", placement=placement, status="OK") + 1
        )
        assert metric(after, "tandem_ttft_seconds_count", placement=placement) >= 1
        assert metric(after, "tandem_token_latency_seconds_count", placement=placement) >= 7
    assert metric(after, "tandem_cloud_cost_usd_total", pool="asic") > 0
    assert metric(after, "tandem_fleet_workers", kind="edge") == 1
    assert metric(after, "tandem_fleet_workers", kind="cloud") == 2
    edge_port = stack.components[f"edge-{DEVICE}"].info["metrics_port"]
    edge = scrape(edge_port)
    assert metric(edge, "tandem_edge_battery_percent") > 0
    assert metric(edge, "tandem_worker_generated_tokens_total", kind="edge") > 0


def test_every_server_has_health_and_reflection(stack):
    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    linked = [m for m in members if m.endpoint.startswith("link:")]
    assert [m.info.worker_id for m in linked] == [DEVICE]  # the device dialled out: no port of its own
    for open_channel, service in [(stack.router_channel, "tandem.v1.Inference")] + [
        (lambda m=m: stack.worker_channel(m), "tandem.v1.Worker") for m in members if m not in linked
    ]:
        with open_channel() as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            resp = next(
                refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            )
            assert service in {s.name for s in resp.list_services_response.service}
    for m in members:  # every worker serves /metrics too
        assert m.info.metrics_port and "tandem_worker" in scrape(m.info.metrics_port)
    cloud = scrape(stack.components["cloud"].info["metrics_port"])
    assert metric(cloud, "tandem_cloud_pool_replicas_configured", resource="asic", pool="asic") == 1
    assert metric(cloud, "tandem_cloud_pool_replicas_configured", resource="gpu", pool="gpu") == 1


def test_with_plaintext_off_every_port_refuses_a_plaintext_client(stack):
    """The stack runs TLS on every hop: a plaintext client gets nowhere on any port, and a TLS
    client without the router's certificate gets no further than a replica's handshake."""
    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    replicas = [m.endpoint for m in members if not m.endpoint.startswith("link:")]
    assert len(replicas) == 2
    for address in [stack.router_address, *replicas]:
        with grpc.insecure_channel(address) as ch:
            with pytest.raises(grpc.RpcError) as err:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, address
    for address in replicas:  # TLS that trusts the CA, but shows no client certificate
        with grpc.secure_channel(address, stack.credentials.tls().channel_credentials()) as ch:
            with pytest.raises(grpc.RpcError) as err:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, address


def test_mismatched_tokenizer_is_refused_at_registration(stack, profile, tmp_path):
    from edge_worker.worker import EdgeWorker
    from runtime.profiles import ModelProfile

    data = json.loads(profile.tokenizer.read_text())
    vocab = data["model"]["vocab"]
    a, b = [k for k, v in vocab.items() if v in (300, 301)]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    other = tmp_path / "tokenizer.json"
    other.write_text(json.dumps(data))
    odd = ModelProfile("odd", other, profile.draft, profile.target)

    async def start():
        worker = EdgeWorker(edge_config(stack.credentials, "odd-phone", stack.router_address), odd)
        await worker.start(connect_timeout_s=5)

    with pytest.raises(tandem.FailedPrecondition) as err:
        asyncio.run(start())
    msg = str(err.value)
    assert "tokenizer mismatch" in msg and "odd-phone" in msg and "share one tokenizer" in msg
    with stack.router_channel() as ch:
        ids = [
            m.info.worker_id
            for m in admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
        ]
    assert "odd-phone" not in ids
