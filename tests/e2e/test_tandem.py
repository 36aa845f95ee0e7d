"""TANDEM end to end: the device drafts, a Ray Serve replica verifies, the output is the target's."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

import tandem
from runtime.llm.decoder import OnnxDecoder
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.params import SamplingConfig
from tests.conftest import PROMPTS, edge_config
from tests.e2e.conftest import DEVICE

N = 48


@pytest.fixture(scope="module")
def client(stack):
    with stack.client(timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def target(profile):
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


def greedy(target, prompt, n=N):
    steps = list(target.generate(None, target.prompt_ids(text=prompt), SamplingConfig(max_new_tokens=n)))
    return [t for s in steps for t in s.token_ids], "".join(s.text for s in steps)


@pytest.mark.parametrize(
    "gamma,overlap", [(0, True), (1, True), (3, True), (6, True), (0, False), (4, False)]
)
def test_tandem_greedy_output_is_the_targets(client, target, gamma, overlap):
    for prompt in PROMPTS:
        ids, text = greedy(target, prompt)
        chunks = list(
            client.generate(
                prompt,
                max_new_tokens=N,
                device_id=DEVICE,
                draft_length=gamma,
                overlap=overlap,
                placement="prefer_tandem",
            )
        )
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


def test_a_device_drafts_ahead_on_its_link_and_stays_exact(stack, client, target):
    """Run-ahead drafting (a DraftStream, its control messages and blocks multiplexed on the device's
    link): with a latency-only policy the router chooses it, and the output is the target's."""
    with tandem.AdminClient(
        stack.router_address, caller="pytest", root_certificates=stack.credentials.ca_bytes()
    ) as admin:
        before = admin.get_policy().version
        admin.set_policy({"cost_weight": 0.0, "latency_weight": 1.0, "battery_weight": 0.0}, note="overlap")
        try:
            ahead = 0
            for prompt in PROMPTS[:4]:
                chunks = list(
                    client.generate(prompt, max_new_tokens=N, device_id=DEVICE, placement="prefer_tandem")
                )
                r = tandem.Result.collect(chunks)
                assert r.placements == ("tandem",) and list(r.token_ids) == greedy(target, prompt)[0]
                stats = chunks[-1].raw.tandem
                ahead += stats.overlap_hits + stats.overlap_misses
            assert ahead > 0, "the device never drafted ahead"
        finally:
            admin.rollback_policy(before, note="restore")


@pytest.mark.parametrize("tree,gamma,overlap", [((3, 2), 4, False), ((3, 2), 0, True), ((4,), 2, True)])
def test_tandem_tree_drafts_keep_the_targets_output_in_fewer_passes(client, target, tree, gamma, overlap):
    """Greedy tree drafts (hints.draft_tree) commit exactly the target's tokens; side by side with
    the chain at the same γ, they take no more target passes, and fewer over the prompts."""
    passes = {"tree": 0, "chain": 0}
    for prompt in PROMPTS:
        ids, text = greedy(target, prompt)
        for kind, shape in (("tree", tree), ("chain", (1,))):
            chunks = list(
                client.generate(
                    prompt,
                    max_new_tokens=N,
                    device_id=DEVICE,
                    draft_length=gamma or 4,
                    overlap=overlap,
                    placement="prefer_tandem",
                    draft_tree=shape,
                )
            )
            r = tandem.Result.collect(chunks)
            assert r.placements == ("tandem",), r.decision
            assert list(r.token_ids) == ids and r.text == text, (prompt, kind)
            stats = chunks[-1].raw.tandem
            assert stats.accepted_tokens + stats.rounds == len(ids) or ids[-1] == 0
            passes[kind] += r.target_forward_passes
    assert passes["tree"] < passes["chain"], passes


def test_tandem_tree_hint_is_validated(client):
    for tree, temperature, why in (
        ((3, 9), 0.0, "each in"),
        ((4, 4, 2), 0.0, "at most 16"),
        ((2,), 0.8, "greedy only"),
    ):
        with pytest.raises(tandem.InvalidArgument) as err:
            list(
                client.generate(
                    "def f(",
                    max_new_tokens=4,
                    device_id=DEVICE,
                    placement="prefer_tandem",
                    draft_tree=tree,
                    temperature=temperature,
                )
            )
        assert err.value.field == "hints.draft_tree" and why in str(err.value), (tree, err.value)


def test_tandem_stop_string_and_chat(client, target):
    _ids, text = greedy(target, PROMPTS[1], 40)
    stop = text.strip()[:3]
    r = client.complete(
        PROMPTS[1], max_new_tokens=40, device_id=DEVICE, stop=[stop], placement="prefer_tandem"
    )
    assert r.finish_reason == "stop_string" and r.text == text[: text.index(stop)]
    chat = client.complete(
        messages=[("user", "sort a list")], max_new_tokens=12, device_id=DEVICE, placement="prefer_tandem"
    )
    assert chat.placements == ("tandem",) and chat.usage.completion_tokens == 12


def test_tandem_statistics_reach_prometheus(stack, client):
    import urllib.request

    port = stack.components["router"].info["metrics_port"]

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            lines = r.read().decode().splitlines()
        return {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in lines if ln and not ln.startswith("#")}

    before = scrape()
    r = client.complete(
        PROMPTS[0], max_new_tokens=32, device_id=DEVICE, draft_length=4, placement="prefer_tandem"
    )
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

    from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, worker_pb2, worker_pb2_grpc

    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    replicas = [m for m in members if m.info.kind == common_pb2.WORKER_KIND_CLOUD]
    device_metrics = stack.components[f"edge-{DEVICE}"].info["metrics_port"]

    def sessions() -> int:
        total = 0
        for m in replicas:  # asked directly, as the router (with the pool's credential)
            with stack.worker_channel(m) as ch:
                total += (
                    worker_pb2_grpc.WorkerStub(ch)
                    .Describe(worker_pb2.DescribeRequest(), timeout=5)
                    .state.active_sessions
                )
        # the device has no port to ask: its /metrics says
        text = urllib.request.urlopen(f"http://127.0.0.1:{device_metrics}/metrics", timeout=5).read()
        held = re.search(rb'^tandem_worker_kv_sessions\{kind="edge"\} (\S+)$', text, re.M)
        return total + int(float(held.group(1)))

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


def test_workers_check_tree_fields(stack, profile):
    """Draft `branching` and Verify `draft_alternatives` are validated by the workers themselves:
    INVALID_ARGUMENT naming the field, and a valid tree verifies in one pass."""
    import grpc

    from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, worker_pb2, worker_pb2_grpc

    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    cloud = next(m for m in members if m.info.kind == common_pb2.WORKER_KIND_CLOUD)
    ctx = list(range(100, 120))
    hot = common_pb2.SamplingParams(temperature=0.8, max_new_tokens=1)

    def status(call) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as err:
            call()
        return err.value.code(), err.value.details()

    async def on_a_device() -> worker_pb2.DraftResponse:
        """The same checks on a device's Worker service (one that listens, asked as the router)."""
        from edge_worker.worker import EdgeWorker
        from runtime.credentials import DEVICE

        creds = stack.credentials
        worker = EdgeWorker(edge_config(creds, "tree-board", "", listen=True), profile)
        await worker.start()
        as_router = grpc.composite_channel_credentials(
            creds.tls("router").channel_credentials(present_cert=True),
            grpc.access_token_call_credentials(creds.token(DEVICE, "tree-board")),
        )
        try:
            async with grpc.aio.secure_channel(worker.endpoint, as_router) as ch:
                stub = worker_pb2_grpc.WorkerStub(ch)
                for branching, sampling, why in (
                    ([9], None, "each in"),
                    ([4, 4, 2], None, "16"),
                    ([2], hot, "greedy only"),
                ):
                    req = worker_pb2.DraftRequest(
                        session_id="tree-bad", context=ctx, num_tokens=3, branching=branching
                    )
                    if sampling is not None:
                        req.sampling.CopyFrom(sampling)
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await stub.Draft(req, timeout=30)
                    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert "branching" in err.value.details() and why in err.value.details()
                return await stub.Draft(
                    worker_pb2.DraftRequest(session_id="tree", context=ctx, num_tokens=3, branching=[3, 2]),
                    timeout=30,
                )
        finally:
            await worker.stop(0)

    tree = asyncio.run(on_a_device())
    assert len(tree.alternatives) == 5 and all(len(a.token_ids) == 3 for a in tree.alternatives)
    with stack.worker_channel(cloud) as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)
        for alts, _sampling, field in (
            ([[1, 2]], None, "draft_alternatives[0]"),
            ([[10**6, 1, 2]], None, "draft_alternatives[0]"),
            ([[1, 2, 3]] * 16, None, "draft_alternatives"),
        ):
            req = worker_pb2.VerifyRequest(
                session_id="tree-bad",
                context=ctx,
                draft_token_ids=list(tree.token_ids),
                draft_alternatives=[worker_pb2.TokenPath(token_ids=a) for a in alts],
            )
            code, details = status(lambda req=req: stub.Verify(req, timeout=30))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, details
        v = stub.Verify(
            worker_pb2.VerifyRequest(
                session_id="tree",
                context=ctx,
                draft_token_ids=list(tree.token_ids),
                draft_alternatives=tree.alternatives,
            ),
            timeout=30,
        )
        stub.Release(worker_pb2.ReleaseRequest(session_id="tree"), timeout=10)
    assert v.forward_passes == 1 and 0 <= v.path <= 5 and 0 <= v.accepted <= 3
