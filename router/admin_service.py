"""Admin servicer: the fleet as the router sees it, and decisions explained without running them."""

from __future__ import annotations

from router.convert import KINDS, decision_to_pb, member_to_pb, parse_generate
from router.fleet import FleetRegistry
from router.placement import decide
from tandem.grpc_status import map_errors
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, registry: FleetRegistry) -> None:
        self.registry = registry

    @map_errors
    async def ListFleet(self, request, context):
        kind = KINDS.get(request.kind) if request.kind != common_pb2.WORKER_KIND_UNSPECIFIED else None
        now = self.registry.now()
        members = sorted(self.registry.members(kind), key=lambda w: (w.kind, w.worker_id))
        return admin_pb2.ListFleetResponse(members=[member_to_pb(w, now) for w in members])

    @map_errors
    async def Explain(self, request, context):
        spec = parse_generate(request)
        return decision_to_pb(decide(spec.route, self.registry.members()))
