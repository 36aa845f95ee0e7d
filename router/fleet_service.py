"""Fleet servicer: cloud replicas (and devices that listen) register, heartbeat and deregister;
devices hold their link. Every call proves its member (router.identity). Thin over FleetRegistry
and router.device_links."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.config import RouterConfig
from router.convert import KINDS, record_from_info, record_from_register, state_from_pb
from router.device_links import DeviceLink, DeviceLinks, link_endpoint
from router.fleet import CLOUD, EDGE, FleetRegistry, WorkerRecord
from router.health_checks import FailureCounts
from router.identity import FleetIdentity
from router.metrics import RouterMetrics
from router.verify_broker import VerifyBroker
from router.worker_channels import WorkerChannels
from runtime.credentials import bearer
from runtime.grpc_errors import map_errors, map_stream_errors
from tandem.errors import FailedPrecondition, InvalidArgument
from tandem.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

USAGE_PLACEMENTS = frozenset({"edge", "cloud", "tandem", "none"})
USAGE_STATUSES = frozenset(code.name for code in grpc.StatusCode)

HELLO_TIMEOUT_S = 10.0  # a link that says nothing for this long after it opens is dropped


class FleetService(fleet_pb2_grpc.FleetServicer):
    def __init__(
        self,
        registry: FleetRegistry,
        config: RouterConfig,
        metrics: RouterMetrics,
        channels: WorkerChannels,
        links: DeviceLinks,
        identity: FleetIdentity,
    ) -> None:
        self.registry = registry
        self.config = config
        self.metrics = metrics
        self.channels = channels
        self.links = links
        self.identity = identity
        self.broker: VerifyBroker | None = None  # set by the router once its placer exists
        self.on_linked: Callable[[DeviceLink], object] = lambda link: None  # the router: its first view
        # the router: a request a device decided and served itself, to learn from
        self.on_outcome: Callable[[DeviceLink, fleet_pb2.DeviceOutcome], object] = lambda link, o: None
        self.health_failures = FailureCounts(config.health_check_failures)

    @map_errors
    async def Register(self, request, context):
        kind = KINDS.get(request.info.kind, "unknown")
        try:
            record = record_from_register(request)
            record = self.identity.check(record, bearer(context.invocation_metadata()))
            old = self.registry.get(record.worker_id)
            self.registry.register(record)
        except Exception as exc:
            self.metrics.registrations.labels(kind, getattr(exc, "status", "INTERNAL")).inc()
            log.warning("registration of %s refused: %s", request.info.worker_id[:128], exc)
            raise
        if old and old.endpoint != record.endpoint:
            await self.channels.drop(old.endpoint)
        link = self.links.get(record.worker_id)
        if link is not None:  # a device that held a link now listens: the link is stale
            self.links.detach(link)
            link.close("the device registered to be called on its own port")
        await self.channels.bind(record.endpoint, self.identity.token_for(record))
        self.metrics.registrations.labels(kind, "OK").inc()
        log.info(
            "registered %s worker %s at %s (%s)",
            record.kind,
            record.worker_id,
            record.endpoint,
            record.model_name,
        )
        return fleet_pb2.RegisterResponse(
            worker_id=record.worker_id,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            lease_ms=self.config.lease_ms,
        )

    def _authenticate(self, worker_id: str, context) -> WorkerRecord | None:
        """The member `worker_id` names, when the call proves it is that member (Unauthenticated
        otherwise); None when no such member is registered."""
        if not worker_id:
            raise InvalidArgument("worker_id", "required")
        record = self.registry.get(worker_id)
        if record is not None:
            self.identity.check(record, bearer(context.invocation_metadata()))
        return record

    @map_errors
    async def Heartbeat(self, request, context):
        state = state_from_pb(request.state)
        if self._authenticate(request.worker_id, context) is None:
            return fleet_pb2.HeartbeatResponse(known=False)
        known = self.registry.heartbeat(request.worker_id, state)
        return fleet_pb2.HeartbeatResponse(known=known)

    @map_errors
    async def Deregister(self, request, context):
        if self._authenticate(request.worker_id, context) is None:
            return fleet_pb2.DeregisterResponse(removed=False)
        gone = self.registry.deregister(request.worker_id)
        if gone:
            await self.channels.drop(gone.endpoint)
            log.info("deregistered %s worker %s", gone.kind, gone.worker_id)
        return fleet_pb2.DeregisterResponse(removed=gone is not None)

    async def expire(self) -> None:
        """Drop silent workers (called periodically by the router)."""
        # a device on its link is there until the link breaks (HTTP/2 keepalive finds a dead one)
        for w in self.registry.expire(lambda w: w.worker_id in self.links):
            log.warning(
                "%s worker %s missed heartbeats for %d ms: dropped", w.kind, w.worker_id, self.config.lease_ms
            )
            self.metrics.expired.labels(w.kind).inc()
            link = self.links.get(w.worker_id)
            if link is not None:
                link.close("its lease ran out")
            await self.channels.drop(w.endpoint)

    async def check_health(self) -> None:
        """Ask every cloud replica's health service once (concurrently); drop the ones that failed
        `health_check_failures` checks in a row (called periodically by the router)."""
        replicas = self.registry.members(CLOUD)
        self.health_failures.keep_only({w.worker_id for w in replicas})
        results = await asyncio.gather(*[self._healthy(w) for w in replicas])
        for w, (ok, why) in zip(replicas, results):
            if self.health_failures.record(w.worker_id, ok) and self.registry.get(w.worker_id) is w:
                log.warning(
                    "cloud replica %s at %s failed %d health checks in a row (%s): dropped",
                    w.worker_id,
                    w.endpoint,
                    self.health_failures.failures,
                    why,
                )
                self.registry.deregister(w.worker_id)
                self.metrics.unhealthy.labels(w.kind).inc()
                await self.channels.drop(w.endpoint)

    async def _healthy(self, w: WorkerRecord) -> tuple[bool, str]:
        stub = health_pb2_grpc.HealthStub(self.channels.channel(w.endpoint))
        try:
            resp = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self.config.health_check_timeout_ms / 1e3
            )
        except grpc.RpcError as err:
            return False, err.code().name
        ok = resp.status == health_pb2.HealthCheckResponse.SERVING
        return ok, "" if ok else health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    @map_stream_errors
    async def Link(self, request_iterator, context):
        """A device's link (fleet.proto): hello → welcome, then calls out and replies, telemetry and
        pings both ways until the stream ends, which is the device leaving."""
        hello = await self._hello(request_iterator)
        device_id = hello.info.worker_id
        record = record_from_info(
            hello.info, link_endpoint(device_id), hello.state, common_pb2.PoolProfile(), "hello"
        )
        if record.kind != EDGE:
            raise InvalidArgument("hello.info.kind", "a link is a device's (WORKER_KIND_EDGE)")
        # before anything changes: a link without the device's credential takes nothing over
        self.identity.check(record, bearer(context.invocation_metadata()))
        old = self.registry.get(device_id)
        # the stream's messages out, in order; None ends it (the reader finished, or the link closed)
        out: asyncio.Queue[fleet_pb2.LinkDown | None] = asyncio.Queue()
        link = DeviceLink(device_id, out.put_nowait)
        self.registry.register(record)  # FailedPrecondition on a tokenizer that is not the fleet's
        if old is not None and old.endpoint != record.endpoint:  # it listened before
            await self.channels.drop(old.endpoint)
        if self.links.attach(link) is not None:
            self.metrics.link_reconnects.inc()
        log.info("device %s linked (%s, %s)", device_id, record.model_name, record.execution_provider)
        yield fleet_pb2.LinkDown(
            welcome=fleet_pb2.LinkWelcome(
                worker_id=device_id,
                heartbeat_interval_ms=self.config.heartbeat_interval_ms,
                telemetry_refresh_ms=self.config.link_telemetry_refresh_ms,
                telemetry_battery_step=self.config.link_battery_step,
                cloud_view_interval_ms=self.config.cloud_view_interval_ms,
            )
        )
        link.ping()  # its round trip now, not an interval from now
        self.on_linked(link)
        reader = asyncio.create_task(self._read_link(link, request_iterator), name=f"link-{device_id}")
        reader.add_done_callback(lambda _t: out.put_nowait(None))
        try:
            # one awaited queue per link, not a wait over several futures per message: a router
            # holds thousands of mostly idle links, and every message should cost little
            while (msg := await out.get()) is not None:
                yield msg
        finally:
            why = link.closed
            if reader.done() and not reader.cancelled():
                err = reader.exception()
                why = why or (reader.result() if err is None else f"reading the link failed: {err!r}")
            reader.cancel()
            link.close(why or "the stream ended")
            if self.links.detach(link):
                self.registry.deregister(device_id)
                log.info("device %s left: %s", device_id, link.closed)

    def _count_usage(self, link: DeviceLink, usage: fleet_pb2.DeviceUsage) -> None:
        """Add what a device's apps asked of it since its last report to the metrics: every request
        it decided, and to the request and token counts those it served itself (the router never
        saw them; forwarded CLOUD requests it counted when it served them). A report that does not
        check out is dropped whole, with a warning."""
        seen = link.usage_seen
        deltas = []
        for c in usage.counts:
            if (
                c.placement not in USAGE_PLACEMENTS
                or c.status not in USAGE_STATUSES
                or c.requests < 0
                or c.completion_tokens < 0
                or not 0 <= c.device_energy_joules < 1e12
            ):
                log.warning("device %s sent a usage report that does not check out: dropped", link.device_id)
                return
            key = (c.placement, c.status)
            before = seen.get(key, (0, 0, 0.0))
            now = (c.requests, c.completion_tokens, c.device_energy_joules)
            deltas.append((key, [max(a - b, 0) for a, b in zip(now, before)]))
            seen[key] = now
        for (placement, status), (n, tokens, energy) in deltas:
            if n:
                self.metrics.device_requests.labels(placement, status).inc(n)
            if placement in ("edge", "tandem"):
                if n:
                    self.metrics.requests.labels(placement, status).inc(n)
                if tokens:
                    self.metrics.tokens.labels(placement).inc(tokens)
                if energy:
                    self.metrics.device_energy.inc(energy)

    @map_stream_errors
    async def VerifyStream(self, request_iterator, context):
        """TANDEM verified for a device driving it (router.verify_broker)."""
        if self.broker is None:
            raise FailedPrecondition("this router brokers no verify streams")
        async for response in self.broker.stream(request_iterator, context):
            yield response

    async def _hello(self, request_iterator) -> fleet_pb2.LinkHello:
        try:
            first = await asyncio.wait_for(anext(aiter(request_iterator)), HELLO_TIMEOUT_S)
        except (StopAsyncIteration, TimeoutError):
            raise InvalidArgument("hello", "a link starts with the device's hello") from None
        if first.WhichOneof("message") != "hello":
            raise InvalidArgument(
                "hello", f"a link starts with the device's hello, not {first.WhichOneof('message')}"
            )
        return first.hello

    async def _read_link(self, link: DeviceLink, request_iterator) -> str:
        """The device's messages until the stream ends; returns why it ended."""
        try:
            async for msg in request_iterator:
                kind = msg.WhichOneof("message")
                if kind == "reply":
                    link.deliver(msg.reply)
                elif kind == "telemetry":
                    state = state_from_pb(msg.telemetry, "telemetry")
                    if link.rtt_ms:  # the router's own measurement of the link
                        state = dataclasses.replace(state, rtt_ms=link.rtt_ms)
                    if not self.registry.heartbeat(link.device_id, state):
                        # dropped (its lease ran out): the device dials again and registers anew
                        return "the router had forgotten the device"
                elif kind == "usage":
                    self._count_usage(link, msg.usage)
                elif kind == "outcome":
                    self.on_outcome(link, msg.outcome)
                elif kind == "pong":
                    if link.pong(msg.pong.nonce):
                        self.metrics.link_rtt.observe(link.rtt_ms / 1e3)
                        record = self.registry.get(link.device_id)
                        if record is not None:
                            self.registry.heartbeat(
                                link.device_id, dataclasses.replace(record.state, rtt_ms=link.rtt_ms)
                            )
                else:
                    return f"the device sent {kind!r} after its hello"
            return "the device closed the link"
        except InvalidArgument as exc:
            return f"the device sent bad telemetry ({exc})"
        except grpc.RpcError as exc:
            return f"the stream broke ({exc.code().name})"
