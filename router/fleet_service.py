"""Fleet servicer: workers register, heartbeat and deregister (thin over FleetRegistry)."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.config import RouterConfig
from router.convert import KINDS, record_from_register, state_from_pb
from router.fleet import CLOUD, EDGE, FleetRegistry, WorkerRecord
from router.health_checks import FailureCounts
from router.metrics import RouterMetrics
from router.worker_channels import WorkerChannels
from runtime.grpc_errors import map_errors
from tandem.errors import InvalidArgument
from tandem.v1 import fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)


class FleetService(fleet_pb2_grpc.FleetServicer):
    def __init__(
        self, registry: FleetRegistry, config: RouterConfig, metrics: RouterMetrics, channels: WorkerChannels
    ) -> None:
        self.registry = registry
        self.config = config
        self.metrics = metrics
        self.channels = channels
        self.health_failures = FailureCounts(config.health_check_failures)

    def update_gauges(self) -> None:
        for kind in (EDGE, CLOUD):
            self.metrics.fleet.labels(kind).set(len(self.registry.members(kind)))

    def _battery(self, record) -> None:
        if record is not None and record.kind == EDGE and record.state.battery_source != "none":
            self.metrics.battery.labels(record.worker_id).set(record.state.battery_percent)

    def _forget(self, record) -> None:
        if record.kind == EDGE:
            try:
                self.metrics.battery.remove(record.worker_id)
            except KeyError:
                pass

    @map_errors
    async def Register(self, request, context):
        kind = KINDS.get(request.info.kind, "unknown")
        try:
            record = record_from_register(request)
            old = self.registry.get(record.worker_id)
            self.registry.register(record)
        except Exception as exc:
            self.metrics.registrations.labels(kind, getattr(exc, "status", "INTERNAL")).inc()
            log.warning("registration of %s refused: %s", request.info.worker_id, exc)
            raise
        if old and old.endpoint != record.endpoint:
            await self.channels.drop(old.endpoint)
        self.metrics.registrations.labels(kind, "OK").inc()
        self._battery(record)
        self.update_gauges()
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

    @map_errors
    async def Heartbeat(self, request, context):
        if not request.worker_id:
            raise InvalidArgument("worker_id", "required")
        known = self.registry.heartbeat(request.worker_id, state_from_pb(request.state))
        self._battery(self.registry.get(request.worker_id))
        return fleet_pb2.HeartbeatResponse(known=known)

    @map_errors
    async def Deregister(self, request, context):
        if not request.worker_id:
            raise InvalidArgument("worker_id", "required")
        gone = self.registry.deregister(request.worker_id)
        if gone:
            self._forget(gone)
            await self.channels.drop(gone.endpoint)
            log.info("deregistered %s worker %s", gone.kind, gone.worker_id)
        self.update_gauges()
        return fleet_pb2.DeregisterResponse(removed=gone is not None)

    async def expire(self) -> None:
        """Drop silent workers (called periodically by the router)."""
        for w in self.registry.expire():
            log.warning(
                "%s worker %s missed heartbeats for %d ms: dropped", w.kind, w.worker_id, self.config.lease_ms
            )
            self.metrics.expired.labels(w.kind).inc()
            self._forget(w)
            await self.channels.drop(w.endpoint)
        self.update_gauges()

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
                self._forget(w)
                await self.channels.drop(w.endpoint)
        self.update_gauges()

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
