"""The router's side of a device link, driven by hand: calls multiplexed by id, each with its own
deadline and cancellation, errors as gRPC raises them, a broken link failing its calls at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from router.device_links import DeviceLink, DeviceLinks, link_endpoint
from tandem.v1 import fleet_pb2, worker_pb2


class Device:
    """What the link sends, and replies put back as the device would."""

    def __init__(self) -> None:
        self.sent: list[fleet_pb2.LinkDown] = []
        self.link = DeviceLink("phone", self.sent.append)

    def calls(self) -> list[fleet_pb2.LinkCall]:
        return [m.call for m in self.sent if m.WhichOneof("message") == "call"]

    def reply(self, call_id: int, end: bool = False, code: int = 0, field: str = "", **response) -> None:
        r = fleet_pb2.LinkReply(call_id=call_id, end=end, status=fleet_pb2.LinkStatus(code=code, field=field))
        for name, msg in response.items():
            getattr(r, name).CopyFrom(msg)
        self.link.deliver(r)


async def test_concurrent_calls_are_answered_by_id_in_any_order():
    d = Device()
    first = asyncio.create_task(d.link.stub.Describe(worker_pb2.DescribeRequest(), timeout=5))
    second = asyncio.create_task(d.link.stub.Release(worker_pb2.ReleaseRequest(session_id="s"), timeout=5))
    await asyncio.sleep(0)
    (a, b) = d.calls()
    assert a.WhichOneof("request") == "describe" and b.release.session_id == "s" and a.call_id != b.call_id
    assert 0 < b.timeout_ms <= 5000
    d.reply(b.call_id, end=True, release=worker_pb2.ReleaseResponse(released=True))  # the later one first
    assert (await second).released and not first.done()  # a slow call stalls no other
    d.reply(a.call_id, end=True, describe=worker_pb2.DescribeResponse())
    await first
    assert d.link.inflight == 0


async def test_a_streaming_call_yields_its_replies_and_an_error_names_its_field():
    d = Device()
    stream = d.link.stub.Generate(worker_pb2.WorkerGenerateRequest(session_id="g"), timeout=5)
    (call,) = d.calls()
    for ids in ([1, 2], [3]):
        d.reply(call.call_id, generate=worker_pb2.WorkerGenerateChunk(token_ids=ids))
    d.reply(call.call_id, end=True, code=grpc.StatusCode.INVALID_ARGUMENT.value[0], field="sampling.top_p")
    got = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for chunk in stream:
            got.append(list(chunk.token_ids))
    assert got == [[1, 2], [3]]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("tandem-field", "sampling.top_p") in tuple(err.value.trailing_metadata())


async def test_a_call_past_its_deadline_fails_and_is_cancelled_on_the_device():
    d = Device()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await d.link.stub.Draft(worker_pb2.DraftRequest(session_id="s"), timeout=0.02)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    (call,) = d.calls()
    assert [m.cancel.call_id for m in d.sent if m.WhichOneof("message") == "cancel"] == [call.call_id]
    d.reply(call.call_id, end=True, draft=worker_pb2.DraftResponse())  # a late answer is dropped
    assert d.link.inflight == 0


async def test_a_caller_cancelled_while_awaiting_a_call_cancels_it_on_the_device():
    """As with a gRPC stub: a head-start Draft the router stops waiting for stops on the device too,
    so it cannot run on past the session's Release."""
    d = Device()
    waiting = asyncio.create_task(d.link.stub.Draft(worker_pb2.DraftRequest(session_id="s"), timeout=5))
    await asyncio.sleep(0)
    (call,) = d.calls()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert d.sent[-1].cancel.call_id == call.call_id
    assert d.link.inflight == 0


async def test_cancelling_a_stream_cancels_it_on_the_device():
    d = Device()
    stream = d.link.stub.DraftStream(timeout=5)
    assert d.calls() == []  # a client stream opens with its first request message
    await stream.write(worker_pb2.DraftStreamRequest(session_id="s"))
    await stream.write(worker_pb2.DraftStreamRequest(num_tokens=3))
    (opening, second) = d.calls()
    assert opening.draft_stream.session_id == "s" and opening.timeout_ms > 0
    assert second.call_id == opening.call_id and second.draft_stream.num_tokens == 3
    stream.cancel()
    assert d.sent[-1].cancel.call_id == opening.call_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stream:
            pass
    assert err.value.code() == grpc.StatusCode.CANCELLED


async def test_a_broken_link_fails_every_call_in_flight_at_once_and_every_later_one():
    d = Device()
    pending = [
        asyncio.create_task(d.link.stub.Describe(worker_pb2.DescribeRequest(), timeout=60)) for _ in range(3)
    ]
    stream = d.link.stub.Generate(worker_pb2.WorkerGenerateRequest(), timeout=60)
    await asyncio.sleep(0)
    d.link.close("the stream broke")
    for task in pending:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(task, 1)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "broke" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in stream:
            pass
    sent = len(d.sent)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a call on a closed link fails when awaited
        await d.link.stub.Describe(worker_pb2.DescribeRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and len(d.sent) == sent  # and sends nothing
    assert d.sent[-1] is None  # closing ended the stream


async def test_pings_measure_the_round_trip():
    d = Device()
    d.link.ping()
    nonce = d.sent[-1].ping.nonce
    await asyncio.sleep(0.01)
    d.link.pong(nonce)
    assert d.link.rtt_ms >= 10
    d.link.pong(nonce)  # a repeated pong changes nothing
    d.link.pong(12345)
    assert d.link.rtt_ms < 1000


async def test_a_new_link_of_a_device_replaces_its_old_one():
    links = DeviceLinks()
    old, new = DeviceLink("phone", lambda m: None), DeviceLink("phone", lambda m: None)
    assert links.attach(old) is None and links.attach(new) is old
    assert old.closed and not new.closed
    assert not links.detach(old) and links.get("phone") is new  # the old stream's end changes nothing
    assert links.stub_for(link_endpoint("phone")) is new.stub
    assert links.detach(new) and len(links) == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a device not connected: UNAVAILABLE
        await links.stub_for(link_endpoint("phone")).Describe(worker_pb2.DescribeRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_pings_go_round_the_links_a_share_at_a_time():
    links = DeviceLinks()
    sent: dict[str, list] = {}
    for i in range(10):
        device_id = f"d{i}"
        links.attach(DeviceLink(device_id, sent.setdefault(device_id, []).append))
    assert [links.ping_turn(0.3) for _ in range(3)] == [3, 3, 3]
    assert sorted(d for d, msgs in sent.items() if msgs) == [f"d{i}" for i in range(9)]  # none twice yet
    links.ping_turn(0.3)  # d9, then round again from d0
    assert all(len(msgs) >= 1 for msgs in sent.values()) and len(sent["d0"]) == 2 and len(sent["d3"]) == 1
    assert all(m.WhichOneof("message") == "ping" for msgs in sent.values() for m in msgs)
    assert DeviceLinks().ping_turn(0.3) == 0
