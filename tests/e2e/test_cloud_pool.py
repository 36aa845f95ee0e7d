"""Cloud pools on a real Ray Serve: batching across sessions, backpressure, failing over to the
other pool, and autoscaling on the replicas' own load."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request

import grpc
import pytest

import tandem
from loadtest.traces import greedy_tandem_trace
from runtime.llm.decoder import OnnxDecoder
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.params import SamplingConfig
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, worker_pb2, worker_pb2_grpc
from tests.conftest import PROMPTS
from tests.e2e.conftest import running_stack

DEVICE = "pool-phone"
# main: batched; tiny: one call at a time, and cheaper (the policy tries it first); auto: scales 1 → 2
CONFIG = """
[router.policy]
latency_weight = 0.0

[[router.pools]]
name = "main"
accelerator = "cpu"
price_per_replica_hour_usd = 3.0

[[router.pools]]
name = "tiny"
accelerator = "cpu"
price_per_replica_hour_usd = 0.5

[[router.pools]]
name = "auto"
accelerator = "cpu"
price_per_replica_hour_usd = 9.0

[[cloud.pools]]
name = "main"
resource = ""
replicas = 1
num_cpus = 0.25
max_batch_size = 16
batch_wait_ms = 2.0

[[cloud.pools]]
name = "tiny"
resource = ""
replicas = 1
num_cpus = 0.25
max_inflight = 1
max_batch_size = 1

[[cloud.pools]]
name = "auto"
resource = ""
replicas = 1
min_replicas = 1
max_replicas = 2
num_cpus = 0.25
target_queue_per_replica = 1.0
"""


@pytest.fixture(scope="module")
def stack(profile, tmp_path_factory):
    with running_stack(tmp_path_factory, CONFIG, (DEVICE,), 3) as s:
        yield s


@pytest.fixture(scope="module")
def target(profile):
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


def greedy(target, prompt, n):
    steps = target.generate(None, target.prompt_ids(text=prompt), SamplingConfig(max_new_tokens=n))
    return [t for s in steps for t in s.token_ids]


def replicas(stack, pool):
    with stack.router_channel() as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(admin_pb2.ListFleetRequest()).members
    return [m for m in members if m.info.kind == common_pb2.WORKER_KIND_CLOUD and m.info.pool == pool]


def batches(metrics_port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tandem_worker_batch_size_bucket")
    }


@pytest.fixture(scope="module")
def draft(profile):
    return ModelRunner(OnnxDecoder(profile.draft), Tokenizer(profile.tokenizer))


def test_concurrent_cloud_and_tandem_sessions_batch_and_stay_exact(stack, target, draft):
    main = replicas(stack, "main")[0]
    before = batches(main.info.metrics_port)
    n = 40
    want = {p: greedy(target, p, n) for p in PROMPTS}
    traces = {p: greedy_tandem_trace(target, draft, target.prompt_ids(text=p), n, 4) for p in PROMPTS}

    async def go():
        async with stack.worker_channel(main, aio=True) as ch:
            stub = worker_pb2_grpc.WorkerStub(ch)

            async def cloud(i, prompt):
                req = worker_pb2.WorkerGenerateRequest(
                    session_id=f"cloud-{i}",
                    input=common_pb2.PromptInput(text=prompt),
                    sampling=common_pb2.SamplingParams(max_new_tokens=n),
                )
                return [t async for c in stub.Generate(req, timeout=120) for t in c.token_ids]

            async def verify(i, prompt):  # half the sessions on unary Verify calls, half on a VerifyStream
                verdicts = []
                if i % 2:
                    for call in traces[prompt]:
                        v = await stub.Verify(
                            worker_pb2.VerifyRequest(
                                session_id=f"tandem-{i}", context=call.context, draft_token_ids=call.drafted
                            ),
                            timeout=120,
                        )
                        verdicts.append((v.accepted, v.next_token_id))
                    return verdicts
                stream = stub.VerifyStream(timeout=120)
                for k, call in enumerate(traces[prompt]):
                    await stream.write(
                        worker_pb2.VerifyStreamRequest(
                            session_id=f"tandem-{i}",
                            context=call.context if k == 0 else [],
                            context_length=len(call.context),
                            draft_token_ids=call.drafted,
                        )
                    )
                    v = await stream.read()
                    verdicts.append((v.accepted, v.next_token_id))
                await stream.done_writing()
                return verdicts

            return await asyncio.gather(
                *[cloud(i, p) for i, p in enumerate(PROMPTS)], *[verify(i, p) for i, p in enumerate(PROMPTS)]
            )

    outs = asyncio.run(go())
    # 16 concurrent sessions on one replica, each computing what it would alone
    assert outs[: len(PROMPTS)] == [want[p] for p in PROMPTS]
    assert outs[len(PROMPTS) :] == [[(c.accepted, c.next_token) for c in traces[p]] for p in PROMPTS]
    after = batches(main.info.metrics_port)
    single = after["1.0"] - before.get("1.0", 0.0)
    total = after["+Inf"] - before.get("+Inf", 0.0)
    assert total > single, "the replica never formed a batch of more than one pass"


def test_a_verify_stream_checks_its_messages_and_releases_its_session(stack, target, draft):
    main = replicas(stack, "main")[0]
    prompt = target.prompt_ids(text=PROMPTS[3])
    trace = greedy_tandem_trace(target, draft, prompt, 12, 4)

    async def go():
        async with stack.worker_channel(main, aio=True) as ch:
            stub = worker_pb2_grpc.WorkerStub(ch)
            statuses = []
            for first in (
                worker_pb2.VerifyStreamRequest(context=prompt),  # no session
                worker_pb2.VerifyStreamRequest(session_id="bad"),  # no context
                worker_pb2.VerifyStreamRequest(session_id="bad", context=prompt, draft_token_ids=[10**6]),
            ):
                stream = stub.VerifyStream(timeout=30)
                await stream.write(first)
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stream.read()
                statuses.append((e.value.code(), e.value.details().split(":")[0]))
            # a round whose context_length is not the stream's (a lost verdict, say) ends the stream
            stream = stub.VerifyStream(timeout=30)
            await stream.write(
                worker_pb2.VerifyStreamRequest(
                    session_id="drift", context=trace[0].context, draft_token_ids=trace[0].drafted
                )
            )
            assert (await stream.read()).next_token_id == trace[0].next_token
            await stream.write(
                worker_pb2.VerifyStreamRequest(
                    context_length=len(trace[0].context), draft_token_ids=trace[1].drafted
                )
            )
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stream.read()
            statuses.append((e.value.code(), e.value.details().split(":")[0]))
            return statuses

    async def whole():  # a session on one stream, whose end releases the session's cache
        async with stack.worker_channel(main, aio=True) as ch:
            stub = worker_pb2_grpc.WorkerStub(ch)
            stream = stub.VerifyStream(timeout=30)
            got = []
            for k, call in enumerate(trace):
                await stream.write(
                    worker_pb2.VerifyStreamRequest(
                        session_id="whole",
                        context=call.context if k == 0 else [],
                        draft_token_ids=call.drafted,
                    )
                )
                v = await stream.read()
                got.append((v.accepted, v.next_token_id, v.cached_tokens))
            await stream.done_writing()
            assert await stream.read() is grpc.aio.EOF
            released = await stub.Release(worker_pb2.ReleaseRequest(session_id="whole"), timeout=10)
            return got, released.released

    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert asyncio.run(go()) == [
        (bad, "session_id"),
        (bad, "context"),
        (bad, "draft_token_ids"),
        (bad, "context_length"),
    ]
    got, still_held = asyncio.run(whole())
    assert [(a, n) for a, n, _ in got] == [(c.accepted, c.next_token) for c in trace]
    assert all(
        cached >= len(c.context) - 1 for (_, _, cached), c in zip(got[1:], trace[1:])
    )  # the stream kept its cache
    assert not still_held


def test_a_full_replica_answers_resource_exhausted_at_once(stack):
    tiny = replicas(stack, "tiny")[0]
    long = worker_pb2.WorkerGenerateRequest(
        session_id="long",
        input=common_pb2.PromptInput(text=PROMPTS[0]),
        sampling=common_pb2.SamplingParams(max_new_tokens=400),
    )
    with stack.worker_channel(tiny) as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)
        running = stub.Generate(long, timeout=120)
        next(running)  # the one call tiny admits is in flight
        t0 = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            stub.Verify(worker_pb2.VerifyRequest(session_id="other", context=[1, 2, 3]), timeout=30)
        refused_s = time.perf_counter() - t0
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in e.value.details()
        t1 = time.perf_counter()
        rest = sum(1 for _ in running)
        served_s = time.perf_counter() - t1
    assert rest > 300 and refused_s < served_s  # refused without waiting for the running call


def test_the_router_moves_a_refused_call_to_another_pool(stack, target):
    tiny = replicas(stack, "tiny")[0]
    busy = threading.Event()
    done = threading.Event()

    def occupy():
        with stack.worker_channel(tiny) as ch:
            req = worker_pb2.WorkerGenerateRequest(
                session_id="occupy",
                input=common_pb2.PromptInput(text=PROMPTS[1]),
                sampling=common_pb2.SamplingParams(max_new_tokens=450),
            )
            for i, _ in enumerate(worker_pb2_grpc.WorkerStub(ch).Generate(req, timeout=120)):
                if i == 0:
                    busy.set()
                if done.is_set():
                    break

    t = threading.Thread(target=occupy)
    t.start()
    try:
        assert busy.wait(30)
        with stack.client(timeout=60) as client:
            chunks = list(client.generate(PROMPTS[2], max_new_tokens=24, placement="only_cloud"))
        r = tandem.Result.collect(chunks)
        assert r.decision.pool == "tiny"  # the policy chose the cheap pool, which refused the call …
        served_by = {c.worker_id for c in chunks if c.token_ids}
        assert served_by and tiny.info.worker_id not in served_by  # … and another pool served it
        assert list(r.token_ids) == greedy(target, PROMPTS[2], 24)
    finally:
        done.set()
        t.join()


def test_a_pool_scales_up_on_its_replicas_reported_load(stack):
    auto = replicas(stack, "auto")
    assert len(auto) == 1
    stop = threading.Event()

    def load(i):
        with stack.worker_channel(auto[0]) as ch:
            stub = worker_pb2_grpc.WorkerStub(ch)
            while not stop.is_set():
                req = worker_pb2.WorkerGenerateRequest(
                    session_id=f"load-{i}",
                    input=common_pb2.PromptInput(text=PROMPTS[i]),
                    sampling=common_pb2.SamplingParams(max_new_tokens=200),
                )
                for _ in stub.Generate(req, timeout=120):
                    if stop.is_set():
                        break

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 90
        while len(replicas(stack, "auto")) < 2:
            assert time.monotonic() < deadline, "the pool did not scale up under 4 calls in flight (target 1)"
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
