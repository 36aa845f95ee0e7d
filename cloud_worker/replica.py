"""A target-model replica: a Ray Serve deployment that serves the Worker service itself.

Ray Serve places, restarts (and later scales) replicas; it is not on the data path. In its async
constructor each replica loads the target model, starts its own grpc.aio server on a free port and
registers that endpoint with the router's Fleet service, as an edge worker does. The router then
calls replicas directly (≈8× the call rate of going through Serve's handles on this kind of machine).
"""

from __future__ import annotations

import logging
import socket

from prometheus_client import CollectorRegistry
from ray import serve

import tandem
from cloud_worker.autoscale import OCCUPANCY, QUEUE
from cloud_worker.batching import PassBatcher
from cloud_worker.config import CloudConfig, PoolConfig
from runtime.fleet_client import FleetMembership
from runtime.llm.decoder import OnnxDecoder
from runtime.llm.kv_cache import SessionCache
from runtime.llm.runner import ModelRunner
from runtime.llm.tokenizer import Tokenizer
from runtime.profiles import ModelProfile
from runtime.serving import WORKER_SERVICES, mark_not_serving, mark_serving, serve_metrics, worker_server
from runtime.worker_metrics import WorkerMetrics
from runtime.worker_servicer import WorkerServicer
from tandem.v1 import common_pb2, fleet_pb2

log = logging.getLogger("tandem.cloud.replica")


def _replica_id(pool: str) -> str:
    ctx = serve.get_replica_context()
    rid = getattr(getattr(ctx, "replica_id", None), "unique_id", None) or ctx.replica_tag
    return f"{pool}-{rid}"


class ReplicaHost:
    """Identity and live state of this replica (the servicer's WorkerHost)."""

    def __init__(self, worker_id: str, pool: PoolConfig, runner: ModelRunner) -> None:
        self.worker_id = worker_id
        self.pool = pool
        self.runner = runner
        self.metrics_port = 0
        self.rtt_ms = 0.0
        self.servicer: WorkerServicer | None = None

    def info(self) -> common_pb2.WorkerInfo:
        spec = self.runner.spec
        return common_pb2.WorkerInfo(
            worker_id=self.worker_id,
            kind=common_pb2.WORKER_KIND_CLOUD,
            model_name=spec.name,
            tokenizer_id=self.runner.tokenizer.id,
            vocab_size=spec.vocab_size,
            max_context=spec.max_context,
            execution_provider=self.runner.decoder.execution_provider,
            pool=self.pool.name,
            metrics_port=self.metrics_port,
            version=tandem.__version__,
            eos_token_id=spec.eos_token_id if spec.eos_token_id is not None else -1,
        )

    def state(self) -> common_pb2.WorkerState:
        return common_pb2.WorkerState(
            battery_source=common_pb2.BATTERY_SOURCE_NONE,
            thermal=common_pb2.THERMAL_STATE_NOMINAL,
            queue_depth=self.servicer.inflight if self.servicer else 0,
            active_sessions=len(self.runner.cache),
            rtt_ms=self.rtt_ms,
            kv_cache_bytes=self.runner.cache.nbytes,
        )

    def profile(self) -> common_pb2.PoolProfile:
        p = self.pool
        return common_pb2.PoolProfile(
            name=p.name,
            replicas=p.replicas,
            slots_per_replica=p.slots_per_replica,
        )

    def spend_energy(self, prefill_tokens: int, generated_tokens: int) -> float:
        return 0.0  # mains-powered; its cost is accelerator time, accounted by the router

    def set_rtt(self, ms: float) -> None:
        self.rtt_ms = ms


@serve.deployment(
    max_ongoing_requests=1000,
    health_check_period_s=5,
    health_check_timeout_s=10,
    graceful_shutdown_timeout_s=5,
)
class TargetReplica:
    """One replica of a pool. Serve calls are control-plane only (endpoint, health)."""

    async def __init__(self, cloud: CloudConfig, pool: PoolConfig, profile: ModelProfile) -> None:
        logging.basicConfig(level=logging.INFO)
        self.worker_id = _replica_id(pool.name)
        decoder = OnnxDecoder(
            profile.target, threads=pool.threads, name=f"{profile.name}-target", slowdown=pool.slowdown
        )
        runner = ModelRunner(decoder, Tokenizer(profile.tokenizer), SessionCache(pool.kv_cache_mb * 2**20))
        self.registry = CollectorRegistry()
        self.host = ReplicaHost(self.worker_id, pool, runner)
        metrics = WorkerMetrics(self.registry, "cloud")
        self.servicer = WorkerServicer(runner, self.host, metrics, pool.max_inflight)
        self.batcher: PassBatcher | None = None
        if pool.max_batch_size > 1:
            self.batcher = PassBatcher(
                runner,
                self.servicer.run_on_model_thread,
                pool.max_batch_size,
                pool.batch_wait_ms,
                metrics.batch_size.observe,
            )
            self.servicer.forward = self.batcher
            self.servicer.released = self.batcher.forget
        self.host.servicer = self.servicer
        # pool.token: CloudPools resolved the pool's credential before deploying
        self.server, self.health, self.port = worker_server(
            self.servicer,
            f"{cloud.host}:0",
            pool.token,
            f"replica {self.worker_id}",
            None if cloud.insecure else cloud.tls.server_credentials(require_client_auth=True),
        )
        advertise = cloud.advertise_host or (
            cloud.host if cloud.host not in ("0.0.0.0", "::") else _node_ip()
        )
        self.endpoint = f"{advertise}:{self.port}"
        self._httpd = None
        if cloud.metrics:
            self._httpd, self.host.metrics_port = serve_metrics(self.registry, cloud.host, 0)
        await self.server.start()
        await mark_serving(self.health, WORKER_SERVICES)
        self.membership = FleetMembership(
            cloud.router,
            lambda: fleet_pb2.RegisterRequest(
                info=self.host.info(),
                endpoint=self.endpoint,
                state=self.host.state(),
                pool=self.host.profile(),
            ),
            self.host.state,
            pool.token,
            on_rtt=self.host.set_rtt,
            channel_credentials=None if cloud.insecure else cloud.tls.channel_credentials(),
        )
        await self.membership.start()
        log.info("replica %s of pool %s serving on %s", self.worker_id, pool.name, self.endpoint)

    async def describe(self) -> dict:
        return {
            "worker_id": self.worker_id,
            "endpoint": self.endpoint,
            "metrics_port": self.host.metrics_port,
        }

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """This replica's load for the pool's autoscaling policy (cloud_worker.autoscale): Serve
        does not see the calls, which come straight to the replica's own gRPC server."""
        return {
            QUEUE: float(self.servicer.inflight),
            OCCUPANCY: self.batcher.occupancy() if self.batcher else min(1.0, float(self.servicer.inflight)),
        }

    async def check_health(self) -> None:
        """Serve restarts the replica when this raises."""
        if self.servicer is None or self.membership is None:
            raise RuntimeError("replica not initialised")

    async def __del__(self) -> None:
        await mark_not_serving(self.health, WORKER_SERVICES)
        await self.membership.stop()
        await self.server.stop(1.0)
        if self._httpd:
            self._httpd.shutdown()


def _node_ip() -> str:
    import ray

    try:
        return ray.util.get_node_ip_address()
    except Exception:
        return socket.gethostbyname(socket.gethostname())
