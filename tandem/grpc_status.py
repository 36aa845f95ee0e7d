"""Where Tandem errors meet gRPC status codes: the table of both, and the client side.

:func:`from_rpc_error` turns a failed call back into the matching Tandem error (the field of an
``InvalidArgument`` travels in the trailing metadata key ``tandem-field``). The server side, which
turns a raised error into its status, is :mod:`runtime.grpc_errors`, over this module's table.
"""

from __future__ import annotations

import grpc

from tandem import errors

FIELD_METADATA_KEY = "tandem-field"

_BY_STATUS: dict[grpc.StatusCode, type[errors.TandemError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
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
        message = details[len(prefix) :] if field and details.startswith(prefix) else details
        return errors.InvalidArgument(field, message)
    exc = cls(details)
    if cls is errors.Internal and code is not None and code != grpc.StatusCode.INTERNAL:
        exc.message = f"{code.name}: {details}"
    return exc
