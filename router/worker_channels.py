"""gRPC channels from the router to workers, one per endpoint, reused across calls."""

from __future__ import annotations

import grpc

from tandem.v1 import worker_pb2_grpc

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class WorkerChannels:
    def __init__(self) -> None:
        self._channels: dict[str, tuple[grpc.aio.Channel, worker_pb2_grpc.WorkerStub]] = {}

    def _entry(self, endpoint: str) -> tuple[grpc.aio.Channel, worker_pb2_grpc.WorkerStub]:
        entry = self._channels.get(endpoint)
        if entry is None:
            channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
            entry = (channel, worker_pb2_grpc.WorkerStub(channel))
            self._channels[endpoint] = entry
        return entry

    def stub(self, endpoint: str) -> worker_pb2_grpc.WorkerStub:
        return self._entry(endpoint)[1]

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        """The endpoint's channel (for its other services: health)."""
        return self._entry(endpoint)[0]

    async def drop(self, endpoint: str) -> None:
        entry = self._channels.pop(endpoint, None)
        if entry:
            await entry[0].close()

    async def close(self) -> None:
        for endpoint in list(self._channels):
            await self.drop(endpoint)
