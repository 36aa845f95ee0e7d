"""A worker's membership in the router's fleet: register, heartbeat with live state, deregister —
each call with the member's credential. Cloud replicas use it; devices hold a link instead
(edge_worker.link), unless they listen for the router's calls.

Registration retries while the router is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED) with capped
exponential backoff; a refusal (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT,
FAILED_PRECONDITION — e.g. a tokenizer that differs from the fleet's) is final and raised to the
caller. Heartbeats carry the round trip of
the previous heartbeat; a heartbeat the router does not recognise triggers a new registration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from runtime.credentials import bearer_metadata
from tandem.errors import TandemError
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class FleetMembership:
    def __init__(
        self,
        router_address: str,
        register_request: Callable[[], fleet_pb2.RegisterRequest],
        state: Callable[[], common_pb2.WorkerState],
        token: str,
        on_rtt: Callable[[float], None] | None = None,
        call_timeout_s: float = 5.0,
        channel_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """`token`: the member's credential; `channel_credentials`: TLS to the router (None: plaintext)."""
        self.router_address = router_address
        self._metadata = bearer_metadata(token)
        self._register_request = register_request
        self._state = state
        self._on_rtt = on_rtt or (lambda ms: None)
        self._timeout = call_timeout_s
        self._channel = (
            grpc.aio.secure_channel(router_address, channel_credentials)
            if channel_credentials is not None
            else grpc.aio.insecure_channel(router_address)
        )
        self._stub = fleet_pb2_grpc.FleetStub(self._channel)
        self._task: asyncio.Task | None = None
        self.worker_id = ""
        self.heartbeat_interval_s = 1.0
        self.registered = asyncio.Event()

    async def register(self, retry_for_s: float = 60.0) -> fleet_pb2.RegisterResponse:
        """Register, retrying while the router is unreachable for up to `retry_for_s` seconds.

        Raises the matching TandemError when the router refuses, or Unavailable after the retries.
        """
        deadline = time.monotonic() + retry_for_s
        delay = 0.1
        while True:
            try:
                t0 = time.perf_counter()
                resp = await self._stub.Register(
                    self._register_request(), timeout=self._timeout, metadata=self._metadata
                )
                self._on_rtt((time.perf_counter() - t0) * 1e3)
                self.worker_id = resp.worker_id
                self.heartbeat_interval_s = max(0.05, resp.heartbeat_interval_ms / 1e3)
                self.registered.set()
                log.info("registered with router %s as %s", self.router_address, self.worker_id)
                return resp
            except grpc.RpcError as err:
                if err.code() not in _RETRYABLE or time.monotonic() + delay > deadline:
                    raise from_rpc_error(err) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def start(self, retry_for_s: float = 60.0) -> None:
        """Register, then heartbeat in the background until stop()."""
        await self.register(retry_for_s)
        self._task = asyncio.create_task(self._heartbeat_loop(), name="fleet-heartbeat")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                t0 = time.perf_counter()
                resp = await self._stub.Heartbeat(
                    fleet_pb2.HeartbeatRequest(worker_id=self.worker_id, state=self._state()),
                    timeout=self._timeout,
                    metadata=self._metadata,
                )
                self._on_rtt((time.perf_counter() - t0) * 1e3)
                if not resp.known:
                    log.warning(
                        "router %s forgot worker %s; registering again", self.router_address, self.worker_id
                    )
                    await self.register()
            except grpc.RpcError as err:
                log.warning("heartbeat to %s failed: %s", self.router_address, err.code().name)
            except TandemError as err:
                log.error("re-registration refused: %s", err)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")

    async def stop(self) -> None:
        """Stop heartbeating and deregister (best effort, short timeout)."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.worker_id:
            try:
                await self._stub.Deregister(
                    fleet_pb2.DeregisterRequest(worker_id=self.worker_id),
                    timeout=1.0,
                    metadata=self._metadata,
                )
            except grpc.RpcError:
                pass
        await self._channel.close()
