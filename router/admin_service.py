"""Admin servicer: the fleet as the router sees it, decisions explained without running them, and
the routing policy — read, changed, rolled back — live."""

from __future__ import annotations

import hmac
import time

import grpc

from router.convert import (
    KINDS,
    decision_to_pb,
    member_to_pb,
    parse_generate,
    policy_changes_from_pb,
    policy_version_to_pb,
    shadow_to_pb,
)
from router.fleet import FleetRegistry
from router.placer import Placer
from router.policy.config import policy_from_dict
from router.worker_channels import WorkerChannels
from runtime.credentials import check_id
from runtime.grpc_errors import map_errors
from tandem.errors import InvalidArgument, NotFound, Unauthenticated
from tandem.grpc_status import from_rpc_error
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2, worker_pb2

PING_TIMEOUT_MS = 5000
MAX_PING_TIMEOUT_MS = 60_000

CALLER_KEY = "x-tandem-caller"
TOKEN_KEY = "x-tandem-admin-token"


def _metadata(context) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _changes(request: admin_pb2.SetPolicyRequest) -> dict:
    """A SetPolicyRequest's changes (policy field → value); InvalidArgument naming the field at fault."""
    if not request.HasField("policy"):
        raise InvalidArgument("policy", "required")
    return policy_changes_from_pb(request.policy, list(request.update_mask.paths))


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(
        self, registry: FleetRegistry, placer: Placer, channels: WorkerChannels, admin_token: str = ""
    ) -> None:
        self.registry = registry
        self.placer = placer
        self.channels = channels
        self.admin_token = admin_token

    def _caller(self, context) -> str:
        """Who changes the policy: the x-tandem-caller metadata, else the peer. Checks the admin
        token when the router requires one."""
        md = _metadata(context)
        if self.admin_token and not hmac.compare_digest(md.get(TOKEN_KEY, ""), self.admin_token):
            raise Unauthenticated(f"policy changes need the router's admin token in {TOKEN_KEY} metadata")
        return md.get(CALLER_KEY) or context.peer() or "unknown"

    @map_errors
    async def ListFleet(self, request, context):
        kind = KINDS.get(request.kind) if request.kind != common_pb2.WORKER_KIND_UNSPECIFIED else None
        if len(request.id_prefix) > 128:
            raise InvalidArgument("id_prefix", f"at most 128 characters, got {len(request.id_prefix)}")
        if request.after:
            check_id("after", request.after)
        now = self.registry.now()
        members = sorted(
            (
                w
                for w in self.registry.members(kind)
                if w.worker_id.startswith(request.id_prefix) and w.worker_id > request.after
            ),
            key=lambda w: (w.kind, w.worker_id),
        )
        page = members[: request.limit] if request.limit else members
        return admin_pb2.ListFleetResponse(members=[member_to_pb(w, now) for w in page], matched=len(members))

    @map_errors
    async def PingMember(self, request, context):
        self._caller(context)
        check_id("worker_id", request.worker_id)
        if request.timeout_ms > MAX_PING_TIMEOUT_MS:
            raise InvalidArgument("timeout_ms", f"at most {MAX_PING_TIMEOUT_MS}, got {request.timeout_ms}")
        member = self.registry.get(request.worker_id)
        if member is None:
            raise NotFound(f"no member {request.worker_id!r} is registered")
        t0 = time.perf_counter()
        try:
            described = await self.channels.stub(member.endpoint).Describe(
                worker_pb2.DescribeRequest(), timeout=(request.timeout_ms or PING_TIMEOUT_MS) / 1e3
            )
        except grpc.RpcError as err:  # the member's own status, said as the member's
            raise from_rpc_error(err) from None
        return admin_pb2.PingMemberResponse(
            describe=described, round_trip_ms=(time.perf_counter() - t0) * 1e3, endpoint=member.endpoint
        )

    @map_errors
    async def Explain(self, request, context):
        spec = parse_generate(request)
        return decision_to_pb(self.placer.decide(spec.route, count=False))

    @map_errors
    async def GetPolicy(self, request, context):
        return policy_version_to_pb(self.placer.store.current)

    @map_errors
    async def SetPolicy(self, request, context):
        caller = self._caller(context)
        v = self.placer.store.set(_changes(request), caller, request.note, request.expected_version)
        return policy_version_to_pb(v)

    @map_errors
    async def RollbackPolicy(self, request, context):
        caller = self._caller(context)
        if request.version <= 0:
            raise InvalidArgument("version", f"must be > 0, got {request.version}")
        return policy_version_to_pb(self.placer.store.rollback(request.version, caller, request.note))

    @map_errors
    async def SetShadowPolicy(self, request, context):
        caller = self._caller(context)
        stats = self.placer.start_shadow(
            policy_from_dict(_changes(request), self.placer.store.policy), caller, request.note
        )
        return shadow_to_pb(stats)

    @map_errors
    async def GetShadowReport(self, request, context):
        return shadow_to_pb(self.placer.shadow)

    @map_errors
    async def ClearShadowPolicy(self, request, context):
        self._caller(context)
        stats = self.placer.stop_shadow()
        report = shadow_to_pb(stats)
        report.active = False
        return report

    @map_errors
    async def ListPolicyHistory(self, request, context):
        if request.limit < 0:
            raise InvalidArgument("limit", f"must be >= 0, got {request.limit}")
        return admin_pb2.ListPolicyHistoryResponse(
            versions=[policy_version_to_pb(v) for v in self.placer.store.history(request.limit)]
        )
