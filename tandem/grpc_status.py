"""The one place where Tandem errors meet gRPC status codes, in both directions.

Servers: wrap handlers with :func:`map_errors` (unary) / :func:`map_stream_errors` (server
streaming); a :class:`~tandem.errors.TandemError` becomes its status, with the field of an
``InvalidArgument`` in the trailing metadata key ``tandem-field``; any other exception becomes
INTERNAL (and is logged). Clients: :func:`from_rpc_error` turns a ``grpc.RpcError`` back into the
matching Tandem error.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc

from tandem import errors

log = logging.getLogger(__name__)

FIELD_METADATA_KEY = "tandem-field"

_BY_STATUS: dict[grpc.StatusCode, type[errors.TandemError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.CANCELLED: errors.Cancelled,
    grpc.StatusCode.INTERNAL: errors.Internal,
}


def status_code(exc: errors.TandemError) -> grpc.StatusCode:
    """The gRPC status code a Tandem error travels as."""
    return getattr(grpc.StatusCode, exc.status, grpc.StatusCode.UNKNOWN)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """Abort the call with the status matching `exc` (never returns)."""
    if isinstance(exc, errors.TandemError):
        if isinstance(exc, errors.InvalidArgument) and exc.field:
            context.set_trailing_metadata(((FIELD_METADATA_KEY, exc.field),))
        await context.abort(status_code(exc), exc.message)
    log.exception("unexpected error in handler", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def map_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorate an async unary(-response) handler ``(self, request, context)``."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never swallowed
            if _is_abort(exc):
                raise
            await abort(context, exc)

    return wrapper


def map_stream_errors(fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """Decorate an async-generator (server-streaming) handler ``(self, request, context)``."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in fn(self, request, context):
                yield item
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never swallowed
            if _is_abort(exc):
                raise
            await abort(context, exc)

    return wrapper


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError from context.abort(); let it pass through untouched.
    return type(exc).__name__ == "AbortError"


def from_rpc_error(err: grpc.RpcError) -> errors.TandemError:
    """The Tandem error matching a failed call (UNKNOWN and unmapped codes become Internal)."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    cls = _BY_STATUS.get(code, errors.Internal)  # type: ignore[arg-type]
    if cls is errors.InvalidArgument:
        field = ""
        trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
        for key, value in trailing or ():
            if key == FIELD_METADATA_KEY:
                field = value
        prefix = f"{field}: "
        message = details[len(prefix):] if field and details.startswith(prefix) else details
        return errors.InvalidArgument(field, message)
    exc = cls(details)
    if cls is errors.Internal and code is not None and code != grpc.StatusCode.INTERNAL:
        exc.message = f"{code.name}: {details}"
    return exc
