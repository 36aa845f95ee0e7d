"""The router process: Inference, Fleet and Admin services, health, reflection and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry

from router.admin_service import AdminService
from router.cloud_view import ViewSender, view_to_pb
from router.config import RouterConfig
from router.dashboard.server import Dashboard
from router.device_links import DeviceLinks
from router.device_outcome import outcome_from_pb
from router.fleet import CLOUD, FleetRegistry
from router.fleet_service import FleetService
from router.identity import FleetIdentity
from router.inference_service import InferenceService
from router.metrics import RouterMetrics
from router.placer import Placer
from router.policy.estimates import Estimates
from router.policy_store import PolicyFileWatcher, PolicyStore
from router.verify_broker import VerifyBroker
from router.worker_channels import WorkerChannels
from runtime.credentials import read_secret
from runtime.serving import add_health_and_reflection, mark_not_serving, mark_serving, serve_metrics
from tandem.errors import InvalidArgument
from tandem.v1 import admin_pb2, admin_pb2_grpc, fleet_pb2, fleet_pb2_grpc, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = (
    inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)
# Devices hold their links for hours, mostly quiet: let them keep their connection alive with HTTP/2
# pings (a quiet stream is not "too many pings"), and ping them so that a device gone without a
# word (no FIN: it lost power, left coverage) is found and its link ended.
SERVER_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.max_pings_without_data", 0),
)


class Router:
    """A router bound to its port. ``await start()`` serves; ``await stop()`` shuts down."""

    def __init__(self, config: RouterConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.registry_metrics = CollectorRegistry()
        self.metrics = RouterMetrics(self.registry_metrics)
        self.fleet = FleetRegistry(clock, config.lease_ms / 1e3, config.tokenizer_id)
        self.links = DeviceLinks()
        self.metrics.watch(self.fleet.__iter__, lambda: (lk.inflight for lk in self.links.all()))
        # mutual TLS to the workers: they let in the router's certificate, the router checks theirs
        worker_credentials = None if config.insecure else config.tls.channel_credentials(present_cert=True)
        self.channels = WorkerChannels(self.links, worker_credentials)
        secret = read_secret(config.fleet_secret_file) if config.fleet_secret_file else None
        if secret is None:
            log.warning("no fleet_secret_file: this router takes no devices and no replicas")
        self.identity = FleetIdentity(secret, config.pools)
        self.fleet_service = FleetService(
            self.fleet, config, self.metrics, self.channels, self.links, self.identity
        )
        self.placer = Placer(self.fleet, PolicyStore(config.policy), Estimates(config.policy), self.metrics)
        self.policy_file = (
            PolicyFileWatcher(config.policy_file, self.placer.store, config.policy)
            if config.policy_file
            else None
        )
        if self.policy_file:
            self.policy_file.poll()  # a file present at start applies before the first request
        self.views = ViewSender(
            self._view_for, self._view_version, config.cloud_view_interval_ms / 1e3, clock,
        )  # fmt: skip
        self.fleet_service.on_linked = self.views.send  # a device decides with a view from the start
        self.fleet_service.on_outcome = self._device_outcome
        self.fleet_service.broker = VerifyBroker(
            self.fleet, self.channels, self.identity, self.placer, self.metrics, config
        )
        self.inference = InferenceService(
            self.fleet, self.channels, self.metrics, config, self.placer, self.identity
        )
        self.admin = AdminService(self.fleet, self.placer, self.channels, config.admin_token)
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        inference_pb2_grpc.add_InferenceServicer_to_server(self.inference, self.server)
        fleet_pb2_grpc.add_FleetServicer_to_server(self.fleet_service, self.server)
        admin_pb2_grpc.add_AdminServicer_to_server(self.admin, self.server)
        self.health = add_health_and_reflection(self.server, SERVICES)
        where = f"{config.host}:{config.port}"
        if config.insecure:
            self.port = self.server.add_insecure_port(where)
        else:
            self.port = self.server.add_secure_port(where, config.tls.server_credentials())
        if self.port == 0:
            raise OSError(f"cannot bind the router to {where}")
        self.metrics_port = 0
        self._httpd = None
        self._expiry: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._health: asyncio.Task | None = None
        self.dashboard: Dashboard | None = None
        self.dashboard_port = 0

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    async def start(self) -> None:
        self._httpd, self.metrics_port = serve_metrics(
            self.registry_metrics, self.config.host, self.config.metrics_port
        )
        await self.server.start()
        await mark_serving(self.health, SERVICES)
        self._expiry = asyncio.create_task(self._expire_loop(), name="fleet-expiry")
        if self.config.dashboard_port >= 0:
            self.dashboard = Dashboard(
                f"127.0.0.1:{self.port}" if self.config.host in ("0.0.0.0", "::") else self.address,
                self._dashboard_inputs,
                decision_log=self.placer.decision_log,
                live_policy=lambda: self.placer.store.policy,
                changes_allowed=bool(self.config.admin_token),
                channel_credentials=None if self.config.insecure else self.config.tls.channel_credentials(),
            )
            self.dashboard_port = await self.dashboard.start(
                self.config.dashboard_host, self.config.dashboard_port
            )
            log.info("dashboard on http://%s:%d/", self.config.dashboard_host, self.dashboard_port)
        if self.config.health_check_interval_ms:
            self._health = asyncio.create_task(self._health_loop(), name="health-checks")
        if self.policy_file:
            self._watch = asyncio.create_task(self._watch_policy_file(), name="policy-file")
        log.info("router serving on %s (metrics on %s)", self.address, self.metrics_port or "-")

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_ms / 1e3)
            await self.fleet_service.expire()
            config = self.config
            self.links.ping_turn(config.heartbeat_interval_ms / config.link_ping_interval_ms)
            self.views.tick(self.links.all())

    def _view_version(self) -> tuple:
        """What makes every device's view stale at once: a policy change, a replica joining or leaving."""
        replicas = tuple(sorted(w.worker_id for w in self.fleet.members(CLOUD)))
        return self.placer.store.current.version, replicas

    def _device_outcome(self, link, msg) -> None:
        """A request a device decided and served itself: the estimates learn from it as from the
        router's own (router.device_outcome), and the device gets a view with what they learnt at the
        next tick. A report that does not check out is dropped, with a warning."""
        pools = {w.pool.name for w in self.fleet.members(CLOUD)}
        try:
            outcome, decision = outcome_from_pb(msg, link.device_id, pools)
        except InvalidArgument as exc:
            log.warning(
                "device %s sent an outcome that does not check out: dropped (%s)", link.device_id, exc
            )
            self.metrics.device_outcomes.labels("unknown", "dropped").inc()
            return
        self.placer.finished(decision, outcome)
        self.metrics.device_outcomes.labels(outcome.placement, "learnt").inc()
        self.views.refresh(link)

    def _view_for(self, device_id: str):
        store = self.placer.store
        return view_to_pb(
            self.fleet, self.placer.estimates, store.policy, store.current.version, device_id,
            3 * self.config.cloud_view_interval_ms,
        )  # fmt: skip

    def _dashboard_inputs(self) -> tuple:
        store = self.placer.store
        return self.registry_metrics.collect(), list(self.fleet), store.policy, store.current.version

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_check_interval_ms / 1e3)
            try:
                await self.fleet_service.check_health()
            except Exception:
                log.exception("health checks failed")

    async def _watch_policy_file(self) -> None:
        assert self.policy_file is not None
        while True:
            await asyncio.sleep(self.config.policy_poll_ms / 1e3)
            self.policy_file.poll()

    async def stop(self, grace_s: float = 2.0) -> None:
        await mark_not_serving(self.health, SERVICES)
        for task in (self._expiry, self._watch, self._health):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.dashboard:
            await self.dashboard.stop()
        await self.server.stop(grace_s)
        await self.channels.close()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def create_server(config: RouterConfig) -> tuple[Router, int]:
    """Build a router bound to config.host:config.port (0 = a free port); returns it and the port."""
    router = Router(config)
    return router, router.port


async def serve(
    config: RouterConfig, ready: Callable[[dict], None] | None = None, stop_event: asyncio.Event | None = None
) -> None:
    router, port = create_server(config)
    await router.start()
    if ready:
        ready(
            {
                "component": "router",
                "port": port,
                "metrics_port": router.metrics_port,
                "address": router.address,
                "dashboard_port": router.dashboard_port,
            }
        )
    try:
        await (stop_event or asyncio.Event()).wait()
    finally:
        await router.stop()
