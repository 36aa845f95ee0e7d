"""Start and stop cloud pools on Ray Serve: a local Ray by default, or an existing cluster."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from prometheus_client import CollectorRegistry, Gauge

from cloud_worker.config import CloudConfig, PoolConfig
from runtime.profiles import ModelProfile
from runtime.serving import serve_metrics

log = logging.getLogger(__name__)


def autoscaling_options(pool: PoolConfig) -> dict:
    """Deployment options for the pool's replica count: fixed, or Serve's autoscaler within the
    pool's bounds with Tandem's policy over the replicas' own load figures (cloud_worker.autoscale)."""
    if not pool.autoscales:
        return {"num_replicas": pool.replicas}
    from ray.serve.config import AutoscalingConfig, AutoscalingPolicy

    lo, hi = pool.replica_bounds
    return {
        "autoscaling_config": AutoscalingConfig(
            min_replicas=lo,
            max_replicas=hi,
            initial_replicas=pool.replicas,
            metrics_interval_s=1.0,
            look_back_period_s=5.0,
            upscale_delay_s=3.0,
            downscale_delay_s=30.0,
            policy=AutoscalingPolicy(
                policy_function="cloud_worker.autoscale:ServePolicy",
                policy_kwargs={"target_queue_per_replica": pool.target_queue_per_replica},
            ),
        )
    }


class CloudPools:
    """The pools of one `tandem cloud` process. ``start()`` blocks until every replica is up."""

    def __init__(self, config: CloudConfig, profile: ModelProfile) -> None:
        self.config = config
        self.profile = profile
        self._started_ray = False
        self.replicas: list[dict] = []
        self.registry = CollectorRegistry()
        self._configured = Gauge(
            "tandem_cloud_pool_replicas_configured",
            "Replicas each pool is configured to run",
            ["pool", "resource"],
            registry=self.registry,
        )
        self.metrics_port = 0
        self._httpd = None

    def start(self) -> None:
        import ray
        from ray import serve
        from ray.serve.config import ProxyLocation

        from cloud_worker.replica import TargetReplica

        # first, so a missing credential fails before Ray starts; the replicas get the credential
        # itself (a token file is the driver's to read)
        pools = [dataclasses.replace(p, token=p.credential(), token_file=None) for p in self.config.pools]
        t0 = time.monotonic()
        for p in self.config.pools:
            self._configured.labels(p.name, p.resource).set(p.replicas)
        self._httpd, self.metrics_port = serve_metrics(
            self.registry, self.config.host, self.config.metrics_port
        )
        if self.config.ray_address:
            ray.init(address=self.config.ray_address, log_to_driver=self.config.log_to_driver)
        else:
            resources: dict[str, float] = {}
            for p in self.config.pools:
                if p.resource:
                    resources[p.resource] = resources.get(p.resource, 0) + p.replica_bounds[1]
            ray.init(
                num_cpus=self.config.num_cpus or os.cpu_count(),
                resources=resources,
                include_dashboard=False,
                log_to_driver=self.config.log_to_driver,
                configure_logging=False,
            )
            self._started_ray = True
        log.info(
            "ray ready in %.1fs (%s)",
            time.monotonic() - t0,
            self.config.ray_address or "local, resources declared for the pools",
        )
        # Serve's HTTP/gRPC proxies are not needed: replicas serve gRPC themselves.
        serve.start(proxy_location=ProxyLocation.Disabled)
        for pool in pools:
            actor_options: dict = {"num_cpus": pool.num_cpus}
            if pool.resource:
                actor_options["resources"] = {pool.resource: 1}
            scaling = autoscaling_options(pool)
            app = TargetReplica.options(
                name=f"target-{pool.name}", ray_actor_options=actor_options, **scaling
            ).bind(self.config, pool, self.profile)
            handle = serve.run(app, name=pool.name, route_prefix=None, blocking=False)
            info = handle.describe.remote().result(timeout_s=120)
            self.replicas.append(info)
            log.info("pool %s ready: %d replica(s), e.g. %s", pool.name, pool.replicas, info["endpoint"])
        log.info("cloud pools ready in %.1fs", time.monotonic() - t0)

    def stop(self) -> None:
        import ray
        from ray import serve

        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if not ray.is_initialized():
            return
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
