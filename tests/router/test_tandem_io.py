"""The TANDEM I/O layer (router.tandem_io) against in-memory worker stubs: replica failover, stale
draft blocks, and closing and releasing sessions. The stubs stand in for gRPC channels so that each
failure can be placed exactly; the real thing is tested end to end in tests/e2e."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from router.failover import ReplicaFailover
from router.fleet import CLOUD, EDGE, FleetRegistry, PoolInfo, WorkerRecord
from router.tandem.loop import CloudLost, DeviceLost, Draft
from router.tandem_io import Deadline, GrpcVerifier, RequestedDrafts, StreamedDrafts
from tandem.errors import InvalidArgument
from tandem.v1 import common_pb2, worker_pb2


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeVerifyCall:
    """A VerifyStream: each written message is answered by the replica's `answer` (or its error)."""

    def __init__(self, replica: FakeStub) -> None:
        self.replica = replica
        self.written: list[worker_pb2.VerifyStreamRequest] = []
        self.replies: asyncio.Queue = asyncio.Queue()
        self.cancelled = self.closed = False

    async def write(self, msg) -> None:
        self.written.append(msg)
        if self.replica.error is not None:
            raise self.replica.error
        self.replies.put_nowait(self.replica.answer(msg))

    async def read(self):
        return await self.replies.get()

    def cancel(self) -> None:
        self.cancelled = True

    async def done_writing(self) -> None:
        self.closed = True

    async def code(self):
        return grpc.StatusCode.OK

    async def details(self):
        return ""


class FakeDraftStream:
    """A DraftStream whose blocks the test pushes (`push`), or ends with an error (`fail`)."""

    def __init__(self) -> None:
        self.written: list[worker_pb2.DraftStreamRequest] = []
        self.out: asyncio.Queue = asyncio.Queue()
        self.cancelled = False

    async def write(self, msg) -> None:
        self.written.append(msg)

    def push(self, block) -> None:
        self.out.put_nowait(block)

    def fail(self, err: grpc.RpcError) -> None:
        self.out.put_nowait(err)

    def cancel(self) -> None:
        self.cancelled = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self.out.get()
        if isinstance(item, grpc.RpcError):
            raise item
        if item is None:
            raise StopAsyncIteration
        return item


class FakeStub:
    def __init__(self, name: str) -> None:
        self.name = name
        self.error: grpc.RpcError | None = None  # every verify round fails so
        self.calls: list[FakeVerifyCall] = []
        self.releases: list[str] = []
        self.drafts: list[worker_pb2.DraftRequest] = []
        self.draft_error: grpc.RpcError | None = None
        self.stream = FakeDraftStream()

    def answer(self, msg) -> worker_pb2.VerifyResponse:
        # accept every drafted token, then a bonus token of 7
        return worker_pb2.VerifyResponse(
            accepted=len(msg.draft_token_ids), next_token_id=7, compute_ms=1.0, forward_passes=1
        )

    def VerifyStream(self, timeout=None):
        call = FakeVerifyCall(self)
        self.calls.append(call)
        return call

    async def Release(self, req, timeout=None):
        self.releases.append(req.session_id)
        return worker_pb2.ReleaseResponse()

    async def Draft(self, req, timeout=None):
        self.drafts.append(req)
        if self.draft_error is not None:
            raise self.draft_error
        return worker_pb2.DraftResponse(
            token_ids=[1, 2, 3][: req.num_tokens], compute_ms=0.5, energy_joules=0.1
        )

    def DraftStream(self, timeout=None):
        return self.stream


class FakeChannels:
    def __init__(self) -> None:
        self.stubs: dict[str, FakeStub] = {}

    def stub(self, endpoint: str) -> FakeStub:
        return self.stubs.setdefault(endpoint, FakeStub(endpoint))


def replica(i: int, queue: int = 0) -> WorkerRecord:
    from router.fleet import DeviceState

    return WorkerRecord(
        worker_id=f"asic-{i}", kind=CLOUD, endpoint=f"asic-{i}:1", model_name="m", tokenizer_id="t",
        max_context=512, eos_token_id=0, pool=PoolInfo(name="asic"), state=DeviceState(queue_depth=queue),
    )  # fmt: skip


DEVICE = WorkerRecord(
    worker_id="phone", kind=EDGE, endpoint="phone:1", model_name="d", tokenizer_id="t", max_context=512,
    eos_token_id=0,
)  # fmt: skip


@pytest.fixture
def fleet():
    registry = FleetRegistry(clock=lambda: 100.0, lease_s=10.0)
    for i, q in ((1, 0), (2, 1), (3, 2)):
        registry.register(replica(i, q))
    return registry


def verifier(fleet, channels, first="asic-1") -> GrpcVerifier:
    causes: list[str] = []
    failover = ReplicaFailover(fleet, fleet.get(first), causes.append)
    v = GrpcVerifier(
        channels, failover, "sess-1", common_pb2.SamplingParams(max_new_tokens=8), Deadline(None, 5.0)
    )
    v.causes = causes  # type: ignore[attr-defined]
    return v


async def test_a_lost_replica_is_dropped_and_the_round_resent_whole_to_the_least_loaded_other(fleet):
    channels = FakeChannels()
    channels.stub("asic-1:1").error = rpc_error(grpc.StatusCode.UNAVAILABLE, "gone")
    v = verifier(fleet, channels)
    verdict = await v.verify([5, 6, 7], Draft([8, 9]))
    assert (verdict.accepted, verdict.next_token, verdict.worker_id) == (2, 7, "asic-2")
    assert fleet.get("asic-1") is None and v.causes == ["replica_lost"]  # lost: dropped from the fleet
    first = channels.stub("asic-2:1").calls[0].written[0]
    assert first.session_id == "sess-1" and list(first.context) == [5, 6, 7]  # it recomputes from all of it
    assert channels.stub("asic-1:1").calls[0].cancelled


async def test_an_overloaded_replica_is_avoided_for_a_while_not_dropped(fleet):
    channels = FakeChannels()
    channels.stub("asic-1:1").error = rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
    v = verifier(fleet, channels)
    assert (await v.verify([5], Draft([8]))).worker_id == "asic-2"
    busy = fleet.get("asic-1")
    assert busy is not None and fleet.busy(busy) and v.causes == ["replica_busy"]
    assert fleet.pick_replica("asic") == fleet.get("asic-2")  # new work avoids it


async def test_when_every_replica_fails_the_pool_is_lost(fleet):
    channels = FakeChannels()
    for i in (1, 2, 3):
        channels.stub(f"asic-{i}:1").error = rpc_error(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(CloudLost, match="no replica of pool 'asic' left"):
        await verifier(fleet, channels).verify([5], Draft([8]))


async def test_a_status_not_worth_retrying_passes_through(fleet):
    channels = FakeChannels()
    channels.stub("asic-1:1").error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "draft_distributions: bad")
    with pytest.raises(InvalidArgument):
        await verifier(fleet, channels).verify([5], Draft([8]))
    assert fleet.get("asic-1") is not None  # a bad request is not a bad replica


async def test_rounds_on_one_stream_send_the_context_only_when_the_loop_moved_otherwise(fleet):
    channels = FakeChannels()
    v = verifier(fleet, channels)
    await v.verify([5], Draft([8, 9]))  # commits 8, 9 and the bonus 7
    await v.verify([5, 8, 9, 7], Draft([1]))  # what the stream's replica already holds
    await v.verify([5, 8, 9, 7, 1, 7, 2], Draft([3]))  # the loop committed more than the verdicts said
    written = channels.stub("asic-1:1").calls[0].written
    assert [list(m.context) for m in written] == [[5], [], [5, 8, 9, 7, 1, 7, 2]]
    assert [m.context_length for m in written] == [1, 4, 7]


async def test_release_ends_the_stream_and_releases_the_session_on_every_replica_given_up(fleet):
    channels = FakeChannels()
    channels.stub("asic-1:1").error = rpc_error(grpc.StatusCode.UNAVAILABLE)
    v = verifier(fleet, channels)
    await v.verify([5], Draft([8]))
    await v.release()
    assert channels.stub("asic-2:1").calls[0].closed  # its stream ends: the replica releases the session
    assert channels.stub("asic-1:1").releases == ["sess-1"] and channels.stub("asic-2:1").releases == []


def block(epoch: int, start: int, tokens, index: int = 0, energy: float = 0.2) -> worker_pb2.DraftBlock:
    return worker_pb2.DraftBlock(
        epoch=epoch, start_length=start, token_ids=tokens, index=index, energy_joules=energy
    )


def streamed(channels) -> StreamedDrafts:
    return StreamedDrafts(
        channels.stub(DEVICE.endpoint), "sess-1", common_pb2.SamplingParams(), 32, Deadline(None, 5.0)
    )


async def test_stale_blocks_are_dropped_and_counted():
    channels = FakeChannels()
    drafts = streamed(channels)
    stream = channels.stub("phone:1").stream
    stream.push(block(epoch=5, start=3, tokens=[1, 1]))  # an older epoch's
    stream.push(block(epoch=0, start=9, tokens=[2, 2]))  # continues another context
    stream.push(block(epoch=0, start=3, tokens=[4, 5]))
    d = await drafts.block([1, 2, 3], 2)
    assert d.tokens == [4, 5] and not d.ahead
    assert drafts.dropped == 2 and drafts.wasted_energy_j == pytest.approx(0.4)
    start = stream.written[0]
    assert start.session_id == "sess-1" and list(start.context) == [1, 2, 3] and start.epoch == 0
    await drafts.close()


async def test_a_hit_keeps_the_epoch_and_a_miss_restarts_the_device():
    channels = FakeChannels()
    drafts = streamed(channels)
    stream = channels.stub("phone:1").stream
    stream.push(block(0, 3, [4, 5]))
    await drafts.block([1, 2, 3], 2)
    await drafts.settle([1, 2, 3, 4, 5, 6], hit=True)  # wholly accepted, bonus guessed
    stream.push(block(0, 6, [7, 8], index=1))
    assert (await drafts.block([1, 2, 3, 4, 5, 6], 2)).ahead
    await drafts.settle([1, 2, 3, 4, 5, 6, 7, 9], hit=False)
    stream.push(block(1, 8, [10, 11]))
    await drafts.block([1, 2, 3, 4, 5, 6, 7, 9], 2)
    assert [m.epoch for m in stream.written] == [0, 0, 1] and stream.written[1].verified_blocks == 1
    await drafts.close()


async def test_close_counts_the_blocks_left_ahead_cancels_and_releases_once():
    channels = FakeChannels()
    drafts = streamed(channels)
    stream = channels.stub("phone:1").stream
    stream.push(block(0, 3, [4, 5]))
    await drafts.block([1, 2, 3], 2)
    stream.push(block(0, 5, [6, 7], index=1))  # drafted ahead, never used
    await asyncio.sleep(0.01)  # the reader queues it
    await drafts.close()
    await drafts.close()
    assert stream.cancelled and drafts.dropped == 1
    assert channels.stub("phone:1").releases == ["sess-1"]


async def test_a_broken_draft_stream_is_a_lost_device():
    channels = FakeChannels()
    drafts = streamed(channels)
    channels.stub("phone:1").stream.fail(rpc_error(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(DeviceLost) as e:
        await drafts.block([1, 2, 3], 2)
    assert e.value.cause == "device_unavailable"
    await drafts.close()


async def test_requested_drafts_lose_the_device_on_a_failed_call_and_release_once():
    channels = FakeChannels()
    drafts = RequestedDrafts(
        channels.stub(DEVICE.endpoint), "sess-1", common_pb2.SamplingParams(), 32, Deadline(None, 5.0)
    )
    d = await drafts.block([1, 2, 3], 2)
    assert d.tokens == [1, 2] and list(channels.stub("phone:1").drafts[0].context) == [1, 2, 3]
    channels.stub("phone:1").draft_error = rpc_error(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(DeviceLost):
        await drafts.block([1, 2, 3, 1, 2], 2)
    await drafts.close()
    await drafts.close()
    assert channels.stub("phone:1").releases == ["sess-1"]


def test_a_deadline_never_outlives_the_clients():
    d = Deadline(0.5, round_timeout_s=5.0)
    assert 0 < d.timeout() <= 0.5 and not d.expired()
    assert Deadline(None, 5.0).timeout() == 5.0 and Deadline(None, 5.0).timeout_total() is None
