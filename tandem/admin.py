"""The SDK's Admin client: the fleet, decisions explained, and the routing policy (get, set,
roll back, history). Needs only grpcio and protobuf.

    with tandem.AdminClient("127.0.0.1:50051", caller="alice") as admin:
        v = admin.set_policy({"latency_weight": 1.0}, note="favour speed")
        admin.rollback_policy(v.version - 1)

Failed calls raise the matching TandemError: InvalidArgument naming the field (``policy.<field>``),
Aborted on a stale expected_version, NotFound for an unknown version, Unauthenticated without the
router's admin token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from tandem.client import tls_credentials
from tandem.errors import InvalidArgument
from tandem.grpc_status import from_rpc_error
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2


@dataclasses.dataclass(frozen=True)
class PolicyVersion:
    version: int
    policy: dict[str, Any]
    caller: str
    created_unix_s: float
    note: str
    source: str
    restored_version: int = 0

    @classmethod
    def from_pb(cls, v: admin_pb2.PolicyVersion) -> PolicyVersion:
        policy = {f.name: getattr(v.policy, f.name) for f in admin_pb2.RoutingPolicy.DESCRIPTOR.fields}
        return cls(v.version, policy, v.caller, v.created_unix_s, v.note, v.source, v.restored_version)


POLICY_FIELDS = tuple(f.name for f in admin_pb2.RoutingPolicy.DESCRIPTOR.fields)


class AdminClient:
    """Blocking Admin client. `caller` is recorded with policy changes; `admin_token` is sent when
    the router requires one; `tls` / `root_certificates` / `credentials` as for `tandem.Client`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        caller: str = "",
        admin_token: str = "",
        timeout: float | None = 30.0,
        tls: bool = False,
        root_certificates: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        creds = tls_credentials(tls, root_certificates, credentials)
        self._channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)
        self.timeout = timeout
        md = []
        if caller:
            md.append(("x-tandem-caller", caller))
        if admin_token:
            md.append(("x-tandem-admin-token", admin_token))
        self._metadata: Sequence[tuple[str, str]] = tuple(md)

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def get_policy(self) -> PolicyVersion:
        return PolicyVersion.from_pb(self._call(self._stub.GetPolicy, admin_pb2.GetPolicyRequest()))

    def set_policy(
        self, changes: Mapping[str, Any], *, note: str = "", expected_version: int = 0
    ) -> PolicyVersion:
        """Change the named fields only; the rest keep their current values."""
        unknown = sorted(set(changes) - set(POLICY_FIELDS))
        if unknown:
            raise InvalidArgument(f"policy.{unknown[0]}", f"unknown field; known: {', '.join(POLICY_FIELDS)}")
        try:
            policy = admin_pb2.RoutingPolicy(**changes)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument("policy", str(exc)) from None
        req = admin_pb2.SetPolicyRequest(
            policy=policy,
            update_mask=field_mask_pb2.FieldMask(paths=list(changes)),
            note=note,
            expected_version=expected_version,
        )
        return PolicyVersion.from_pb(self._call(self._stub.SetPolicy, req))

    def rollback_policy(self, version: int, *, note: str = "") -> PolicyVersion:
        return PolicyVersion.from_pb(
            self._call(self._stub.RollbackPolicy, admin_pb2.RollbackPolicyRequest(version=version, note=note))
        )

    def policy_history(self, limit: int = 0) -> list[PolicyVersion]:
        resp = self._call(self._stub.ListPolicyHistory, admin_pb2.ListPolicyHistoryRequest(limit=limit))
        return [PolicyVersion.from_pb(v) for v in resp.versions]

    def list_fleet(self, *, id_prefix: str = "", page_size: int = 1000) -> list[admin_pb2.FleetMember]:
        """Every registered member (whose id starts with `id_prefix`), edge first, each kind sorted
        by id, fetched `page_size` at a time."""
        out: list[admin_pb2.FleetMember] = []
        for kind in (common_pb2.WORKER_KIND_EDGE, common_pb2.WORKER_KIND_CLOUD):
            after = ""
            while True:
                page = self._call(
                    self._stub.ListFleet,
                    admin_pb2.ListFleetRequest(kind=kind, id_prefix=id_prefix, limit=page_size, after=after),
                )
                out.extend(page.members)
                if page.matched <= len(page.members):
                    break
                after = page.members[-1].info.worker_id
        return out

    def ping_member(self, worker_id: str, *, timeout_ms: int = 0) -> admin_pb2.PingMemberResponse:
        """Ask one member to describe itself through the router (over its device link or on its
        port); the reply carries the round trip. NotFound for an unregistered id, the member's own
        error when it fails. Needs the admin token when the router requires one."""
        return self._call(
            self._stub.PingMember, admin_pb2.PingMemberRequest(worker_id=worker_id, timeout_ms=timeout_ms)
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
