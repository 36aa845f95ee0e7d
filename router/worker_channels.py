"""The router's way to a worker: a gRPC channel per cloud replica endpoint, reused across calls; a
device's link (router.device_links) for a ``link:`` endpoint.

Calls to a worker's own port carry the member's credential (`bind`), which is how the worker knows
the caller is the router (runtime.serving.CallerCheck)."""

from __future__ import annotations

import grpc

from router.device_links import LINK_PREFIX, DeviceLinks, LinkStub
from runtime.credentials import bearer_metadata
from runtime.tls import open_channel
from tandem.v1 import worker_pb2_grpc

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class _WithCredential:
    """A Worker stub whose every call carries the worker's credential."""

    def __init__(self, stub: worker_pb2_grpc.WorkerStub, metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)
        ours = self._metadata

        def call(*args, metadata=None, **kwargs):
            return method(*args, metadata=ours + tuple(metadata or ()), **kwargs)

        setattr(self, name, call)  # found directly from now on
        return call


class WorkerChannels:
    def __init__(
        self, links: DeviceLinks | None = None, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        """`credentials`: TLS to the workers' ports (None: plaintext)."""
        self.links = links if links is not None else DeviceLinks()
        self.credentials = credentials
        self._channels: dict[str, tuple[grpc.aio.Channel, _WithCredential]] = {}
        self._tokens: dict[str, str] = {}

    async def bind(self, endpoint: str, token: str) -> None:
        """Calls to `endpoint` carry `token` from now on (a new token: a new channel)."""
        if self._tokens.get(endpoint) != token:
            await self.drop(endpoint)
            self._tokens[endpoint] = token

    def _entry(self, endpoint: str) -> tuple[grpc.aio.Channel, _WithCredential]:
        entry = self._channels.get(endpoint)
        if entry is None:
            channel = open_channel(endpoint, self.credentials, CHANNEL_OPTIONS)
            stub = _WithCredential(
                worker_pb2_grpc.WorkerStub(channel), bearer_metadata(self._tokens.get(endpoint, ""))
            )
            entry = (channel, stub)
            self._channels[endpoint] = entry
        return entry

    def stub(self, endpoint: str) -> _WithCredential | LinkStub:
        """The Worker stub of the worker at `endpoint` (a device's over its link)."""
        if endpoint.startswith(LINK_PREFIX):
            return self.links.stub_for(endpoint)
        return self._entry(endpoint)[1]

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        """The endpoint's channel (for its other services: health)."""
        return self._entry(endpoint)[0]

    async def drop(self, endpoint: str) -> None:
        """Close the channel to `endpoint` (a link closes with its stream: nothing to do)."""
        self._tokens.pop(endpoint, None)
        entry = self._channels.pop(endpoint, None)
        if entry:
            await entry[0].close()

    async def close(self) -> None:
        for endpoint in list(self._channels):
            await self.drop(endpoint)
