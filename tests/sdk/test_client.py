"""The SDK: its public surface, its light imports, retries before the first token only, API keys
and TLS (real gRPC servers on free ports)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent import futures

import grpc
import pytest

import tandem
from router.server import create_server
from tandem.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from tests.conftest import router_config

PUBLIC = [
    "Aborted",
    "AdminClient",
    "AsyncClient",
    "Cancelled",
    "Candidate",
    "Chunk",
    "Client",
    "DeadlineExceeded",
    "Decision",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PolicyVersion",
    "ResourceExhausted",
    "Result",
    "TandemError",
    "TandemStats",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "Usage",
    "__version__",
]


def test_the_public_surface_is_pinned():
    assert sorted(tandem.__all__) == sorted(PUBLIC)
    for name in tandem.__all__:
        assert hasattr(tandem, name), name
    assert issubclass(tandem.Unavailable, tandem.TandemError)


def test_importing_the_sdk_needs_only_grpcio_and_protobuf():
    heavy = (
        "numpy",
        "onnxruntime",
        "ray",
        "prometheus_client",
        "tokenizers",
        "psutil",
        "router",
        "edge_worker",
    )
    code = f"import sys, tandem; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class Flaky(inference_pb2_grpc.InferenceServicer):
    """An Inference server that fails the first `failures` calls UNAVAILABLE (after `tokens_first`
    tokens, if any), then answers with two chunks."""

    def __init__(self, failures: int, tokens_first: int = 0, code=grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures, self.tokens_first, self.code = failures, tokens_first, code
        self.calls: list[tuple[str, tuple]] = []

    def Generate(self, request, context):
        self.calls.append((request.request_id, tuple(context.invocation_metadata())))
        if len(self.calls) <= self.failures:
            if self.tokens_first:
                yield inference_pb2.GenerateChunk(text="x", token_ids=list(range(self.tokens_first)))
            context.abort(self.code, "replica went away")
        yield inference_pb2.GenerateChunk(text="he", token_ids=[1], placement=common_pb2.PLACEMENT_CLOUD)
        yield inference_pb2.GenerateChunk(
            text="llo",
            token_ids=[2],
            placement=common_pb2.PLACEMENT_CLOUD,
            final=True,
            finish_reason=common_pb2.FINISH_REASON_LENGTH,
        )


@pytest.fixture
def serve():
    servers = []

    def start(servicer) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        s.stop(0)


def test_unavailable_before_the_first_token_is_retried_under_the_same_request_id(serve):
    flaky = Flaky(failures=2)
    with tandem.Client(serve(flaky), timeout=10, retry_backoff_s=0.01, api_key="k") as client:
        result = client.complete("hi", max_new_tokens=2)
    assert result.text == "hello" and result.token_ids == (1, 2) and result.finish_reason == "length"
    ids = {rid for rid, _ in flaky.calls}
    assert len(flaky.calls) == 3 and len(ids) == 1 and ids != {""}
    assert ("authorization", "Bearer k") in flaky.calls[0][1]

    async def go():
        async with tandem.AsyncClient(serve(Flaky(failures=1)), timeout=10, retry_backoff_s=0.01) as client:
            return await client.complete("hi")

    assert asyncio.run(go()).text == "hello"


def test_nothing_is_retried_once_a_token_arrived_nor_other_errors_nor_past_the_retry_budget(serve):
    mid = Flaky(failures=1, tokens_first=3)
    with tandem.Client(serve(mid), timeout=10, retry_backoff_s=0.01) as client:
        got = []
        with pytest.raises(tandem.Unavailable):
            for chunk in client.generate("hi"):
                got.append(chunk.token_ids)
    assert got == [(0, 1, 2)] and len(mid.calls) == 1  # the three tokens are never sent twice

    bad = Flaky(failures=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    with tandem.Client(serve(bad), retry_backoff_s=0.01) as client, pytest.raises(tandem.InvalidArgument):
        client.complete("hi")
    assert len(bad.calls) == 1

    down = Flaky(failures=5)
    with (
        tandem.Client(serve(down), retries=2, retry_backoff_s=0.01) as client,
        pytest.raises(tandem.Unavailable),
    ):
        client.complete("hi")
    assert len(down.calls) == 3
    with pytest.raises(tandem.InvalidArgument):
        tandem.Client("127.0.0.1:1", retries=-1)


async def test_api_keys_and_tls(fleet):
    """The router serves TLS alone: clients need its CA (or system roots that vouch for it) and,
    when it has API keys, one of them."""
    r, _ = create_server(router_config(fleet, api_keys=("k1", "k2")))
    await r.start()
    ca = fleet.ca_bytes()
    try:
        async with tandem.AsyncClient(r.address, timeout=5, root_certificates=ca) as anonymous:
            with pytest.raises(tandem.Unauthenticated, match="API key"):
                await anonymous.complete("hi")
        async with tandem.AsyncClient(r.address, timeout=5, api_key="wrong", root_certificates=ca) as wrong:
            with pytest.raises(tandem.Unauthenticated):
                await wrong.complete("hi")
        # with a key the request reaches the policy, which has no worker to place it on
        async with tandem.AsyncClient(r.address, timeout=5, api_key="k2", root_certificates=ca) as client:
            with pytest.raises(tandem.TandemError) as e:
                await client.complete("hi")
            assert not isinstance(e.value, tandem.Unauthenticated)
        for opts in ({}, {"tls": True}):  # plaintext; TLS that does not trust the fleet's CA
            async with tandem.AsyncClient(r.address, timeout=2, api_key="k1", retries=0, **opts) as no:
                with pytest.raises((tandem.Unavailable, tandem.DeadlineExceeded)):
                    await no.complete("hi")

        def admin_version() -> int:  # the blocking admin client, off the router's event loop
            with tandem.AdminClient(r.address, root_certificates=ca) as admin:
                return admin.get_policy().version

        assert await asyncio.to_thread(admin_version) == 1
    finally:
        await r.stop(0)
