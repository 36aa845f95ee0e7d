"""Tandem: a hybrid edge-cloud LLM inference router — client SDK.

Imports with grpcio and protobuf alone::

    import tandem
    with tandem.Client("127.0.0.1:50051") as client:
        for chunk in client.generate("def fib(n):", max_new_tokens=32):
            print(chunk.text, end="")
        result = client.complete("import os", placement="prefer_device", device_id="my-phone")
        print(result.placement, result.decision.reason)
"""

from tandem.admin import AdminClient, PolicyVersion
from tandem.client import AsyncClient, Client
from tandem.errors import (
    Aborted,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TandemError,
    Unauthenticated,
    Unavailable,
)
from tandem.results import Candidate, Chunk, Decision, Result, TandemStats, Usage

__version__ = "0.1.0"

__all__ = [
    "Aborted",
    "AdminClient",
    "AsyncClient",
    "Cancelled",
    "Candidate",
    "Chunk",
    "Client",
    "DeadlineExceeded",
    "Decision",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PolicyVersion",
    "ResourceExhausted",
    "Result",
    "TandemError",
    "TandemStats",
    "Unauthenticated",
    "Unavailable",
    "Usage",
    "__version__",
]
