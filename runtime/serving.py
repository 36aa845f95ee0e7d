"""What every Tandem gRPC server carries: grpc.health.v1, server reflection, a /metrics endpoint;
and the check that lets only the router call a worker."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, start_http_server

from runtime.credentials import bearer

# open to anyone who reaches the port: they tell nothing and serve nothing
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


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


class CallerCheck(grpc.aio.ServerInterceptor):
    """Admit a call only when it carries `token` (``authorization: Bearer``), compared in constant
    time; anything else is refused with UNAUTHENTICATED before the servicer sees it. Health and
    reflection stay open. A worker holds its own credential, which only it and the router know, so
    this lets the router alone call it."""

    def __init__(self, token: str, who: str) -> None:
        if not token:
            raise ValueError(f"{who}: a credential is needed to check callers against")
        self._token = token.encode()
        self._who = who

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        if hmac.compare_digest(bearer(details.invocation_metadata).encode(), self._token):
            return handler
        message = f"{self._who} serves the router alone: the call carries no router credential"

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        return kinds[handler.request_streaming, handler.response_streaming](
            deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


WORKER_SERVICES = ("tandem.v1.Worker",)


def worker_server(
    servicer, address: str, token: str, who: str, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """A server for a worker's Worker service (plus health and reflection) on `address`, open to
    callers with `token` alone, over TLS with `credentials` (None: plaintext). Returns (server,
    health servicer, bound port); OSError when the address cannot be bound."""
    from tandem.v1 import worker_pb2_grpc

    server = grpc.aio.server(interceptors=[CallerCheck(token, who)])
    worker_pb2_grpc.add_WorkerServicer_to_server(servicer, server)
    health_servicer = add_health_and_reflection(server, WORKER_SERVICES)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot bind {who}'s Worker service to {address}")
    return server, health_servicer, port
