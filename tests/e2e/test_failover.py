"""TANDEM and CLOUD failover with real processes killed mid-stream: nothing lost, nothing repeated."""

from __future__ import annotations

import time

import psutil
import pytest

import tandem
from runtime.llm.decoder import OnnxDecoder
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.params import SamplingConfig
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2
from tests.conftest import PROMPTS
from tests.e2e.conftest import running_stack

N = 300
LINK = ["--link-delay-ms", "5"]  # a 10 ms round trip keeps the stream going long enough to kill things


@pytest.fixture(scope="module")
def stack(profile, tmp_path_factory):
    config = (
        "[router.policy]\nlatency_weight = 0.0\n\n"
        '[[cloud.pools]]\nname = "asic"\nreplicas = 2\nnum_cpus = 0.25\n'
    )
    with running_stack(tmp_path_factory, config, (), 2) as s:
        yield s


@pytest.fixture(scope="module")
def target(profile):
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


def greedy(target, prompt):
    steps = list(target.generate(None, target.prompt_ids(text=prompt), SamplingConfig(max_new_tokens=N)))
    return [t for s in steps for t in s.token_ids]


def fleet(stack):
    with stack.router_channel() as ch:
        return list(admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members)


KILLED: set[str] = set()  # worker ids of the replicas the tests killed


def live_replicas(stack, n, timeout_s=120):
    """Wait until exactly n replicas are registered and heartbeating, none of them a killed one
    (a killed replica stays registered until its heartbeats have been missed for a while)."""
    deadline = time.monotonic() + timeout_s
    while True:
        cloud = [m for m in fleet(stack) if m.info.kind == common_pb2.WORKER_KIND_CLOUD]
        if len(cloud) == n and all(
            m.heartbeat_age_ms < 1500 and m.info.worker_id not in KILLED for m in cloud
        ):
            return cloud
        assert time.monotonic() < deadline, (
            f"replicas: {[(m.info.worker_id, m.heartbeat_age_ms) for m in cloud]}"
        )
        time.sleep(0.2)


def pid_listening_on(port: int) -> int:
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return c.pid
    raise AssertionError(f"nobody listens on {port}")


def stream_and(client, prompt, device, action, after_chunks=3):
    chunks = []
    for chunk in client.generate(prompt, max_new_tokens=N, device_id=device, placement="prefer_tandem"):
        chunks.append(chunk)
        if len(chunks) == after_chunks:
            action(chunks)
    return chunks


def test_replica_killed_mid_stream_is_retried_on_another(stack, target):
    live_replicas(stack, 2)
    stack.start_edge("phone-a", LINK)
    stack.wait_fleet(edge=1, cloud=2)
    want = greedy(target, PROMPTS[0])
    killed = {}

    def kill_verifier(chunks):
        worker_id = chunks[0].decision.cloud_worker_id
        member = next(m for m in fleet(stack) if m.info.worker_id == worker_id)
        pid = pid_listening_on(int(member.endpoint.rsplit(":", 1)[1]))
        psutil.Process(pid).kill()
        killed["id"] = worker_id
        KILLED.add(worker_id)

    with stack.client(timeout=120) as client:
        chunks = stream_and(client, PROMPTS[0], "phone-a", kill_verifier)
    r = tandem.Result.collect(chunks)
    assert list(r.token_ids) == want  # nothing lost, nothing repeated
    assert r.placements == ("tandem",)
    assert {c.worker_id for c in chunks[3:] if c.token_ids} - {killed["id"]}, "no other replica verified"


def test_cloud_replica_killed_mid_stream_continues_on_another(stack, target):
    live_replicas(stack, 2)
    want = greedy(target, PROMPTS[2])
    chunks, killed = [], None
    with stack.client(timeout=120) as client:
        for chunk in client.generate(PROMPTS[2], max_new_tokens=N, placement="only_cloud"):
            chunks.append(chunk)
            if len(chunks) == 3:
                killed = chunk.worker_id
                member = next(m for m in fleet(stack) if m.info.worker_id == killed)
                psutil.Process(pid_listening_on(int(member.endpoint.rsplit(":", 1)[1]))).kill()
                KILLED.add(killed)
    r = tandem.Result.collect(chunks)
    assert list(r.token_ids) == want and r.finish_reason == "length"  # nothing lost, nothing repeated
    assert r.placements == ("cloud",) and r.usage.completion_tokens == N
    assert {c.worker_id for c in chunks[3:] if c.token_ids} - {killed}, "no other replica continued"
    # the router dropped the dead replica at once, before its heartbeats lapsed
    assert killed not in {m.info.worker_id for m in fleet(stack)}


def test_all_replicas_killed_finishes_on_the_device(stack, target):
    replicas = live_replicas(stack, 2)  # Ray has replaced the replica killed before

    def kill_pool(chunks):
        for m in replicas:
            psutil.Process(pid_listening_on(int(m.endpoint.rsplit(":", 1)[1]))).kill()
            KILLED.add(m.info.worker_id)

    with stack.client(timeout=120) as client:
        chunks = stream_and(client, PROMPTS[1], "phone-a", kill_pool)
    r = tandem.Result.collect(chunks)
    assert r.usage.completion_tokens == N == len(r.token_ids)
    assert r.placements == ("tandem", "edge")
    committed_in_tandem = [t for c in chunks if c.placement == "tandem" for t in c.token_ids]
    want = greedy(target, PROMPTS[1])
    assert committed_in_tandem == want[: len(committed_in_tandem)]  # the tandem part is the target's
    assert chunks[-1].raw.tandem.fallbacks["cloud_unavailable"] == 1


def test_device_killed_mid_stream_is_noticed_at_once_continues_in_the_cloud_and_comes_back(stack, target):
    """The device's process dies mid-TANDEM: its link breaks, so the router knows at once (not at
    the end of a lease), the request continues in the cloud exactly, and the device, started
    again, rejoins under its id."""
    live_replicas(stack, 2)
    want = greedy(target, PROMPTS[2])
    noticed = {}

    with stack.router_channel() as ch, stack.client(timeout=120) as client:
        admin = admin_pb2_grpc.AdminStub(ch)

        def linked() -> bool:
            members = admin.ListFleet(admin_pb2.ListFleetRequest(kind=common_pb2.WORKER_KIND_EDGE)).members
            return any(m.info.worker_id == "phone-a" for m in members)

        def kill_device(chunks):
            assert linked()
            t0 = time.perf_counter()
            stack.components["edge-phone-a"].proc.kill()
            while linked():
                assert time.perf_counter() - t0 < 10, "the router never noticed"
            noticed["ms"] = (time.perf_counter() - t0) * 1e3

        chunks = stream_and(client, PROMPTS[2], "phone-a", kill_device)
    stack.stop_component("edge-phone-a")
    assert noticed["ms"] < 100, f"the router noticed after {noticed['ms']:.0f} ms"
    r = tandem.Result.collect(chunks)
    assert list(r.token_ids) == want  # exactly the uninterrupted greedy output
    assert r.placements == ("tandem", "cloud")
    fallbacks = dict(chunks[-1].raw.tandem.fallbacks)
    assert sum(fallbacks.values()) == 1 and next(iter(fallbacks)).startswith("device_")
    stack.start_edge("phone-a", LINK)  # the same id and credential: it is the same device
    stack.wait_fleet(edge=1, cloud=2)


def test_a_request_behind_its_token_slo_is_handed_to_the_cloud_and_stays_exact(stack, target):
    """The pace guard (router.tandem.pace): a TANDEM request that cannot keep its per-token SLO — a
    device behind an 80 ms round trip, an impossible SLO — continues in the cloud from its committed
    tokens; the output is still the target's, token for token."""
    live_replicas(stack, 2)
    stack.start_edge("slow-phone", ["--link-delay-ms", "40"])
    deadline = time.monotonic() + 60
    while not any(m.info.worker_id == "slow-phone" for m in fleet(stack)):
        assert time.monotonic() < deadline, "slow-phone never registered"
        time.sleep(0.2)
    want = greedy(target, PROMPTS[3])
    with stack.client(timeout=120) as client:
        for prompt in PROMPTS[:3]:  # the router measures the pool decoding alone (what a hand-over costs)
            client.complete(prompt, max_new_tokens=32, placement="only_cloud")
        chunks = list(
            client.generate(
                PROMPTS[3],
                max_new_tokens=N,
                device_id="slow-phone",
                placement="prefer_tandem",
                token_slo_ms=0.01,
            )
        )
    r = tandem.Result.collect(chunks)
    assert list(r.token_ids) == want
    assert r.placements == ("tandem", "cloud"), r.placements  # TANDEM rounds, then the pool alone
    assert chunks[-1].raw.tandem.fallbacks["slo_pace"] == 1


def app_on(stack, device, link_delay_ms):
    """An app on `device` (started behind an emulated link), once its agent holds a cloud view with
    the pool in it."""
    if f"edge-{device}" not in stack.components:
        stack.start_edge(device, ["--link-delay-ms", str(link_delay_ms)])
    app = tandem.Client(stack.apps[device], timeout=120)
    deadline = time.monotonic() + 60
    while True:
        try:
            app.complete("ping", max_new_tokens=1, placement="only_cloud")
            return app
        except (tandem.FailedPrecondition, tandem.Unavailable):
            assert time.monotonic() < deadline, "the device never had a cloud view with the pool"
            time.sleep(0.2)


def test_device_driven_tandem_over_a_30ms_link_is_exact_and_survives_its_replica_dying(stack, target):
    """TANDEM driven from the device (its app's request, verified on the router's broker) over a
    30 ms round trip: the replica verifying it is killed mid-stream, the broker moves the session
    to the other replica, and the output is the target's, token for token."""
    live_replicas(stack, 2)
    want = greedy(target, PROMPTS[4])
    killed = {}
    with app_on(stack, "phone-30", 15) as app:
        chunks = []
        for chunk in app.generate(PROMPTS[4], max_new_tokens=N, placement="prefer_tandem"):
            chunks.append(chunk)
            if len(chunks) == 3:
                worker_id = chunks[1].worker_id  # the replica the broker verifies on
                member = next(m for m in fleet(stack) if m.info.worker_id == worker_id)
                psutil.Process(pid_listening_on(int(member.endpoint.rsplit(":", 1)[1]))).kill()
                killed["id"] = worker_id
                KILLED.add(worker_id)
    r = tandem.Result.collect(chunks)
    assert r.decision.decided_at == "device"
    assert list(r.token_ids) == want  # nothing lost, nothing repeated
    assert r.placements == ("tandem",)
    assert {c.worker_id for c in chunks[3:] if c.token_ids} - {killed["id"]}, "no other replica verified"


def test_device_driven_tandem_finishes_on_the_device_when_the_whole_pool_dies(stack, target):
    replicas = live_replicas(stack, 2)
    with app_on(stack, "phone-30", 15) as app:
        chunks = []
        for chunk in app.generate(PROMPTS[5], max_new_tokens=N, placement="prefer_tandem"):
            chunks.append(chunk)
            if len(chunks) == 3:
                for m in replicas:
                    psutil.Process(pid_listening_on(int(m.endpoint.rsplit(":", 1)[1]))).kill()
                    KILLED.add(m.info.worker_id)
    r = tandem.Result.collect(chunks)
    assert r.usage.completion_tokens == N == len(r.token_ids)
    assert r.placements == ("tandem", "edge")
    in_tandem = [t for c in chunks if c.placement == "tandem" for t in c.token_ids]
    assert in_tandem == greedy(target, PROMPTS[5])[: len(in_tandem)]  # the tandem part is the target's
    assert chunks[-1].raw.tandem.fallbacks["cloud_unavailable"] == 1
