"""The server side of Tandem's errors: a raised error becomes its gRPC status, in one place.

Wrap handlers with :func:`map_errors` (unary) or :func:`map_stream_errors` (server streaming): a
:class:`~tandem.errors.TandemError` becomes its status (:func:`tandem.grpc_status.status_code`),
with an ``InvalidArgument``'s field in the trailing metadata key ``tandem-field``; any other
exception becomes INTERNAL and is logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from tandem import errors
from tandem.grpc_status import FIELD_METADATA_KEY, status_code

log = logging.getLogger(__name__)


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
        except Exception as exc:
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
        except Exception as exc:
            if _is_abort(exc):
                raise
            await abort(context, exc)

    return wrapper


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError from context.abort(); let it pass through untouched.
    return type(exc).__name__ == "AbortError"
