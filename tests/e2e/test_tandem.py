"""TANDEM end to end: the device drafts, a Ray Serve replica verifies, the output is the target's."""

from __future__ import annotations

import pytest

import tandem
from tandem.llm.decoder import OnnxDecoder
from tandem.llm.runner import ModelRunner
from tandem.llm.tokenizer import Tokenizer
from tandem.params import SamplingConfig
from tests.conftest import PROMPTS
from tests.e2e.conftest import DEVICE

N = 48


@pytest.fixture(scope="module")
def client(stack):
    with tandem.Client(stack.router_address, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def target(profile):
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


def greedy(target, prompt, n=N):
    steps = list(target.generate(None, target.prompt_ids(text=prompt), SamplingConfig(max_new_tokens=n)))
    return [t for s in steps for t in s.token_ids], "".join(s.text for s in steps)


@pytest.mark.parametrize("gamma,overlap", [(0, True), (1, True), (3, True), (6, True), (0, False), (4, False)])
def test_tandem_greedy_output_is_the_targets(client, target, gamma, overlap):
    for prompt in PROMPTS:
        ids, text = greedy(target, prompt)
        chunks = list(client.generate(prompt, max_new_tokens=N, device_id=DEVICE, draft_length=gamma,
                                      overlap=overlap, placement="prefer_tandem"))
        r = tandem.Result.collect(chunks)
        assert r.placements == ("tandem",), r.decision
        assert list(r.token_ids) == ids, (prompt, gamma)
        assert r.text == text
        stats = chunks[-1].raw.tandem
        assert stats.rounds >= 1 and stats.accepted_tokens <= stats.drafted_tokens
        assert stats.accepted_tokens + stats.rounds == len(ids) or ids[-1] == 0  # each round: accepted + 1
        if gamma:
            assert stats.last_draft_length <= gamma
        assert r.target_forward_passes == stats.rounds
        assert r.cloud_usd > 0 and r.device_energy_joules > 0
        assert sum(c.raw.accepted_draft_tokens for c in chunks) == stats.accepted_tokens
        if not overlap:
            assert stats.overlap_hits == stats.overlap_misses == 0


def test_tandem_stop_string_and_chat(client, target):
    ids, text = greedy(target, PROMPTS[1], 40)
    stop = text.strip()[:3]
    r = client.complete(PROMPTS[1], max_new_tokens=40, device_id=DEVICE, stop=[stop], placement="prefer_tandem")
    assert r.finish_reason == "stop_string" and r.text == text[: text.index(stop)]
    chat = client.complete(messages=[("user", "sort a list")], max_new_tokens=12, device_id=DEVICE,
                           placement="prefer_tandem")
    assert chat.placements == ("tandem",) and chat.usage.completion_tokens == 12


def test_tandem_statistics_reach_prometheus(stack, client):
    import urllib.request

    port = stack.components["router"].info["metrics_port"]

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            lines = r.read().decode().splitlines()
        return {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in lines if ln and not ln.startswith("#")}

    before = scrape()
    r = client.complete(PROMPTS[0], max_new_tokens=32, device_id=DEVICE, draft_length=4, placement="prefer_tandem")
    after = scrape()
    assert r.placement == "tandem"
    delta = lambda name: after.get(name, 0.0) - before.get(name, 0.0)  # noqa: E731
    assert delta('tandem_requests_total{placement="tandem",status="OK"}') == 1
    assert delta("tandem_tandem_rounds_total") >= 1
    assert delta("tandem_tandem_drafted_tokens_total") >= delta("tandem_tandem_accepted_tokens_total")
    assert delta("tandem_tandem_acceptance_rate_count") == 1
    assert delta("tandem_tandem_tokens_per_round_count") == 1
    assert delta('tandem_ttft_seconds_count{placement="tandem"}') == 1


def test_tandem_sessions_are_released_on_completion_and_cancellation(stack, client):
    import time

    import grpc

    from tandem.v1 import admin_pb2, admin_pb2_grpc, worker_pb2, worker_pb2_grpc

    with grpc.insecure_channel(stack.router_address) as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    endpoints = [m.endpoint for m in members]

    def sessions() -> int:
        total = 0
        for endpoint in endpoints:
            with grpc.insecure_channel(endpoint) as ch:
                total += worker_pb2_grpc.WorkerStub(ch).Describe(worker_pb2.DescribeRequest(), timeout=5).state.active_sessions
        return total

    def wait_released() -> None:
        deadline = time.monotonic() + 10
        while sessions():
            assert time.monotonic() < deadline, "sessions still held"
            time.sleep(0.05)

    wait_released()
    client.complete(PROMPTS[0], max_new_tokens=24, device_id=DEVICE, placement="prefer_tandem")
    wait_released()
    stream = client.generate(PROMPTS[1], max_new_tokens=300, device_id=DEVICE, placement="prefer_tandem")
    next(stream)
    stream.close()  # the client cancels mid-stream
    wait_released()
