"""The edge worker process: draft model + Worker service + device telemetry + its link to the router."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry

import tandem
from edge_worker.apps import DeviceDecider, DeviceInference
from edge_worker.battery import ModelledBattery, read_os_battery
from edge_worker.config import EdgeConfig
from edge_worker.link import LinkClient
from edge_worker.metrics import EdgeMetrics
from edge_worker.thermal import read_max_temp_c, state_for
from router.metrics import RouterMetrics
from runtime.fleet_client import FleetMembership
from runtime.link_emulator import LinkEmulator, LinkProfile
from runtime.llm.decoder import OnnxDecoder, available_providers, choose_providers
from runtime.llm.kv_cache import SessionCache
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.profiles import ModelProfile
from runtime.serving import (
    WORKER_SERVICES,
    add_health_and_reflection,
    mark_not_serving,
    mark_serving,
    serve_metrics,
    worker_server,
)
from runtime.worker_metrics import WorkerMetrics
from runtime.worker_servicer import WorkerServicer
from tandem.v1 import common_pb2, fleet_pb2, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)

APPS_SERVICE = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name

THERMAL = {
    "unknown": common_pb2.THERMAL_STATE_UNKNOWN,
    "nominal": common_pb2.THERMAL_STATE_NOMINAL,
    "fair": common_pb2.THERMAL_STATE_FAIR,
    "serious": common_pb2.THERMAL_STATE_SERIOUS,
    "critical": common_pb2.THERMAL_STATE_CRITICAL,
}


class EdgeHost:
    """Identity, live state and energy accounting of this device (the servicer's WorkerHost)."""

    def __init__(
        self,
        config: EdgeConfig,
        runner: ModelRunner,
        available: list[str],
        metrics: EdgeMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.runner = runner
        self.available = available
        self.metrics = metrics
        self.device_id = config.device_id or f"{socket.gethostname()}-edge"
        self.metrics_port = 0
        self.rtt_ms = 0.0
        self.tokens_generated = 0
        self.energy_spent = 0.0
        self.servicer: WorkerServicer | None = None
        bc = config.battery
        os_battery = read_os_battery() if bc.mode in ("auto", "real") else None
        if bc.mode == "real" and os_battery is None:
            raise RuntimeError(
                "battery.mode = 'real' but the OS reports no battery; use 'auto' or 'modelled'"
            )
        self.real_battery = os_battery is not None
        self.battery = ModelledBattery(
            bc.capacity_wh * 3600.0, bc.initial_percent, bc.charging, bc.charge_watts, clock
        )
        metrics.provider.info({"provider": runner.decoder.execution_provider})

    def info(self) -> common_pb2.WorkerInfo:
        spec = self.runner.spec
        return common_pb2.WorkerInfo(
            worker_id=self.device_id,
            kind=common_pb2.WORKER_KIND_EDGE,
            model_name=spec.name,
            tokenizer_id=self.runner.tokenizer.id,
            vocab_size=spec.vocab_size,
            max_context=spec.max_context,
            execution_provider=self.runner.decoder.execution_provider,
            available_providers=self.available,
            metrics_port=self.metrics_port,
            version=tandem.__version__,
            eos_token_id=spec.eos_token_id if spec.eos_token_id is not None else -1,
        )

    def battery_reading(self) -> tuple[float, bool, int]:
        if self.real_battery:
            r = read_os_battery()
            if r is not None:
                return r.percent, r.charging, common_pb2.BATTERY_SOURCE_REAL
        return self.battery.percent, self.battery.charging, common_pb2.BATTERY_SOURCE_MODELLED

    def state(self) -> common_pb2.WorkerState:
        percent, charging, source = self.battery_reading()
        thermal = self.config.thermal_override or state_for(read_max_temp_c())
        self.metrics.battery_percent.set(percent)
        self.metrics.charging.set(1 if charging else 0)
        return common_pb2.WorkerState(
            battery_percent=percent,
            charging=charging,
            battery_source=source,
            thermal=THERMAL[thermal],
            energy_per_token_joules=self.config.battery.energy_per_token_joules,
            queue_depth=self.servicer.inflight if self.servicer else 0,
            active_sessions=len(self.runner.cache),
            rtt_ms=self.rtt_ms,
            kv_cache_bytes=self.runner.cache.nbytes,
            tokens_generated=self.tokens_generated,
            energy_spent_joules=self.energy_spent,
            battery_capacity_joules=self.battery.capacity_j,
        )

    def spend_energy(self, prefill_tokens: int, generated_tokens: int) -> float:
        bc = self.config.battery
        joules = bc.energy_per_token_joules * (generated_tokens + bc.prefill_energy_fraction * prefill_tokens)
        self.battery.drain(joules)  # a real battery drains by itself; the model keeps the account
        self.tokens_generated += generated_tokens
        self.energy_spent += joules
        self.metrics.energy.inc(joules)
        return joules

    def set_rtt(self, ms: float) -> None:
        self.rtt_ms = ms
        self.metrics.rtt_ms.set(ms)


class EdgeWorker:
    """A running edge worker. ``await start()`` opens its link to the router (or, with `listen`,
    serves the Worker service on a port and registers it for the router to call); ``await stop()``
    undoes it. Raises ValueError at construction when the device has no credential but a router."""

    def __init__(self, config: EdgeConfig, profile: ModelProfile) -> None:
        self.config = config
        self.token = config.credential()
        if (config.router or config.listen) and not self.token:
            raise ValueError(
                f"device {config.device_id or '(unnamed)'} has no credential: set token or token_file "
                "(`tandem credentials enroll device ID` prints one)"
            )
        self.registry = CollectorRegistry()
        available = available_providers()
        providers = choose_providers(config.providers, available)
        decoder = OnnxDecoder(
            profile.draft, providers=providers, threads=config.threads, name=f"{profile.name}-draft"
        )
        runner = ModelRunner(decoder, Tokenizer(profile.tokenizer), SessionCache(config.kv_cache_mb * 2**20))
        self.host = EdgeHost(config, runner, available, EdgeMetrics(self.registry))
        self.servicer = WorkerServicer(
            runner, self.host, WorkerMetrics(self.registry, "edge"), config.max_inflight
        )
        self.host.servicer = self.servicer
        # apps on the device: the router's policy decides here (edge_worker.apps)
        self.decider = DeviceDecider(
            self.device_id, config.policy, lambda: self.link is not None and self.link.connected.is_set()
        )
        self.apps_server: grpc.aio.Server | None = None
        self.apps_service: DeviceInference | None = None
        self.apps_address = ""
        self._router_channel: grpc.aio.Channel | None = None
        self.server: grpc.aio.Server | None = None
        self.health = None
        self.port = 0
        if config.listen:
            # the device's own credential admits the router: only the two of them know it
            self.server, self.health, self.port = worker_server(
                self.servicer,
                f"{config.host}:{config.port}",
                self.token,
                f"device {self.device_id}",
                None if config.insecure else config.tls.server_credentials(require_client_auth=True),
            )
        self.link: LinkClient | None = None
        self.membership: FleetMembership | None = None
        self._httpd = None
        # the emulated network between the device and its router, when one is configured:
        # [router → device (listen only), device → router]
        self.emulators: list[LinkEmulator] = []

    @property
    def device_id(self) -> str:
        return self.host.device_id

    def _router_credentials(self) -> grpc.ChannelCredentials | None:
        return None if self.config.insecure else self.config.tls.channel_credentials()

    @property
    def endpoint(self) -> str:
        """Where the router calls a listening device ('' when it does not listen)."""
        if not self.server:
            return ""
        if self.emulators and self.config.listen:
            return self.emulators[0].address
        return f"{self.config.advertise_host or self.config.host}:{self.port}"

    async def start(self, connect_timeout_s: float = 60.0) -> None:
        if self.config.metrics_port >= 0:
            self._httpd, self.host.metrics_port = serve_metrics(
                self.registry, self.config.host, self.config.metrics_port
            )
        if self.server is not None:
            await self.server.start()
            await mark_serving(self.health, WORKER_SERVICES)
        router = self.config.router
        if self.config.link != LinkProfile():
            if self.server is not None:
                inbound = LinkEmulator(f"{self.config.host}:{self.port}", self.config.link, self.config.host)
                self.emulators.append(await inbound.start())
            if router:
                outbound = await LinkEmulator(router, self.config.link, self.config.host).start()
                self.emulators.append(outbound)
                router = outbound.address
        log.info(
            "edge worker %s with %s%s%s",
            self.device_id,
            self.host.runner.decoder.execution_provider,
            f", serving the router on {self.endpoint}" if self.server else "",
            f", behind an emulated link ({self.config.link})" if self.emulators else "",
        )
        try:
            if router and self.server is not None:
                self.membership = FleetMembership(
                    router,
                    lambda: fleet_pb2.RegisterRequest(
                        info=self.host.info(), endpoint=self.endpoint, state=self.host.state()
                    ),
                    self.host.state,
                    self.token,
                    on_rtt=self.host.set_rtt,
                    channel_credentials=self._router_credentials(),
                )
                await self.membership.start(connect_timeout_s)
            elif router:
                self.link = LinkClient(
                    router,
                    self.token,
                    lambda: fleet_pb2.LinkHello(info=self.host.info(), state=self.host.state()),
                    self.host.state,
                    self.servicer,
                    self._router_credentials(),
                    on_view=self.decider.take,
                    usage=lambda: self.apps_service.usage if self.apps_service else None,
                )
                # a device serving its apps works offline: it does not wait for its router
                await self.link.start(connect_timeout_s, wait=not self.config.apps)
            if self.config.apps:
                await self._serve_apps(router)
        except BaseException:
            await self.stop()
            raise

    async def _serve_apps(self, router: str) -> None:
        """Serve Inference to apps on the device (edge_worker.apps), on its local address."""
        if router:
            credentials = self._router_credentials()
            self._router_channel = (
                grpc.aio.secure_channel(router, credentials)
                if credentials is not None
                else grpc.aio.insecure_channel(router)
            )
        service = self.apps_service = DeviceInference(
            self.device_id,
            self.servicer,
            self.host.state,
            self.decider,
            RouterMetrics(self.registry),
            lambda: self._router_channel,
            self.token,
            report=lambda outcome: self.link is not None and self.link.report(outcome),
        )
        self.apps_server = grpc.aio.server()
        inference_pb2_grpc.add_InferenceServicer_to_server(service, self.apps_server)
        add_health_and_reflection(self.apps_server, (APPS_SERVICE,))
        port = self.apps_server.add_insecure_port(self.config.apps)  # local only (EdgeConfig checks)
        if port == 0 and not self.config.apps.startswith("unix"):
            raise OSError(f"cannot bind the apps' address {self.config.apps}")
        await self.apps_server.start()
        host = self.config.apps.rpartition(":")[0]
        self.apps_address = self.config.apps if self.config.apps.startswith("unix") else f"{host}:{port}"
        log.info("serving apps on %s", self.apps_address)

    async def stop(self, grace_s: float = 2.0) -> None:
        if self.apps_server is not None:
            await self.apps_server.stop(grace_s)
            self.apps_server = None
        if self._router_channel is not None:
            await self._router_channel.close()
            self._router_channel = None
        if self.link is not None:
            await self.link.stop()
            self.link = None
        if self.membership is not None:
            await self.membership.stop()
            self.membership = None
        if self.server is not None:
            await mark_not_serving(self.health, WORKER_SERVICES)
            await self.server.stop(grace_s)
        for emulator in self.emulators:
            await emulator.stop()
        self.emulators = []
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


async def serve(
    config: EdgeConfig,
    profile: ModelProfile,
    ready: Callable[[dict], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Run an edge worker until `stop_event` is set (or the task is cancelled)."""
    worker = EdgeWorker(config, profile)
    await worker.start()
    if ready:
        ready(
            {
                "component": "edge",
                "port": worker.port,
                "endpoint": worker.endpoint,
                "metrics_port": worker.host.metrics_port,
                "device_id": worker.device_id,
                "apps": worker.apps_address,
                "execution_provider": worker.host.runner.decoder.execution_provider,
            }
        )
    try:
        await (stop_event or asyncio.Event()).wait()
    finally:
        await worker.stop()
