"""What every Tandem gRPC server carries: grpc.health.v1, server reflection, a /metrics endpoint."""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, start_http_server


def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Iterable[str]
) -> health.aio.HealthServicer:
    """Register health (every service SERVING, plus the overall "" entry) and reflection."""
    names = list(service_names)
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection(
        names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    return servicer


async def mark_serving(servicer: health.aio.HealthServicer, service_names: Iterable[str]) -> None:
    for name in ["", *service_names]:
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def mark_not_serving(servicer: health.aio.HealthServicer, service_names: Iterable[str]) -> None:
    for name in ["", *service_names]:
        await servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)


def serve_metrics(registry: CollectorRegistry, host: str, port: int):
    """Serve /metrics for `registry` on a daemon thread; returns (http_server, bound_port).

    port 0 picks a free port. Returns (None, 0) when port is negative (metrics disabled).
    """
    if port < 0:
        return None, 0
    httpd, _thread = start_http_server(port, addr=host, registry=registry)
    return httpd, httpd.server_port
