"""Tandem's one exception hierarchy, shared by servers and the SDK.

Each class names the gRPC status it travels as (`status`, a ``grpc.StatusCode`` name); the mapping
to and from gRPC lives in exactly one place, :mod:`tandem.grpc_status`. This module imports
nothing from grpc, so pure code (policy, speculative maths, the decoder runtime) can raise these.
"""

from __future__ import annotations

__all__ = [
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "TandemError",
    "Unauthenticated",
    "Unavailable",
]


class TandemError(Exception):
    """Base of every Tandem error. `message` is for humans; `status` names the gRPC status code."""

    status = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(TandemError):
    """A request field is invalid. `field` is its dotted path (e.g. ``sampling.top_p``); `detail` is
    what is wrong with it (the message without the field)."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message


class FailedPrecondition(TandemError):
    """Nobody can serve the request under its constraints, or a worker is refused by the fleet."""

    status = "FAILED_PRECONDITION"


class ResourceExhausted(TandemError):
    """Overload: a queue is full. Retry later or elsewhere."""

    status = "RESOURCE_EXHAUSTED"


class Unauthenticated(TandemError):
    """Missing or bad credentials."""

    status = "UNAUTHENTICATED"


class PermissionDenied(TandemError):
    """The caller proved who it is but may not do this (e.g. join a pool the router's config does
    not name)."""

    status = "PERMISSION_DENIED"


class Unavailable(TandemError):
    """A server or worker could not be reached or failed; the call may be retried."""

    status = "UNAVAILABLE"


class DeadlineExceeded(TandemError):
    """The call's deadline passed."""

    status = "DEADLINE_EXCEEDED"


class NotFound(TandemError):
    """A named entity (worker, session, policy version) does not exist."""

    status = "NOT_FOUND"


class Aborted(TandemError):
    """A concurrent change won (e.g. SetPolicy with a stale expected_version); re-read and retry."""

    status = "ABORTED"


class Cancelled(TandemError):
    """The caller cancelled the call."""

    status = "CANCELLED"


class Internal(TandemError):
    """A bug or an unexpected failure inside Tandem."""

    status = "INTERNAL"
