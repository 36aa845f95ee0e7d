"""The device as the entry point for its apps: the Inference service on a local address.

An app on the device calls the agent as it would call the router (the same SDK, the same
messages). The agent decides with the router's own policy (router.policy.decide) over its exact
live state and the latest cloud view the router pushed (router.cloud_view), and says so in the
decision (`decided_at = "device"`, with the policy version the view carried):

- EDGE (and with it every LOCAL_ONLY and ONLY_DEVICE request) runs on the device's own model, in
  process: no byte of the prompt, its tokens or the decision leaves the device;
- CLOUD goes to the router under the device's identity, which checks it again (auth, limits, its
  policy) and streams the answer back through the device;
- TANDEM is driven from the device (edge_worker.tandem): it drafts in process and verifies on a
  stream the router brokers;
- with the link down, or no fresh view, the device decides with no cloud candidates: EDGE where
  the request allows it, otherwise UNAVAILABLE saying that the cloud is unreachable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

import grpc

from edge_worker.tandem import DeviceTandem
from router.chunks import Bill, ChunkBuilder
from router.cloud_view import CloudView, offline_snapshot, view_from_pb
from router.convert import decision_to_pb, parse_generate, state_from_pb
from router.device_outcome import outcome_to_pb
from router.inference_service import worker_request
from router.metrics import RouterMetrics
from router.policy.config import PolicyConfig
from router.policy.decide import decide
from router.policy.outcome import Outcome
from router.policy.placement import Decision, Placement, RouteRequest
from runtime.grpc_errors import map_stream_errors
from runtime.worker_servicer import WorkerServicer
from tandem.convert import FINISH_NAMES
from tandem.errors import FailedPrecondition, InvalidArgument, TandemError, Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, fleet_pb2, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)


class DeviceDecider:
    """The router's policy, run on the device: over the latest cloud view while it is fresh and the
    link is up, else over the device alone."""

    def __init__(
        self,
        device_id: str,
        fallback_policy: PolicyConfig,
        online: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`fallback_policy`: what a device that never had a view decides with (its config's);
        `online`: whether the link to the router is up."""
        self.device_id = device_id
        self.fallback_policy = fallback_policy
        self.online = online
        self.clock = clock
        self.view: CloudView | None = None
        self.view_at = 0.0

    def take(self, msg: fleet_pb2.CloudView) -> None:
        """A view from the router; one that fails its checks is dropped (the last good one stays)."""
        try:
            view = view_from_pb(msg, self.device_id)
        except TandemError as exc:
            log.warning("dropped a cloud view from the router: %s", exc)
            return
        self.view, self.view_at = view, self.clock()

    def fresh(self) -> bool:
        """Whether the cloud may be decided with: the link is up and the view is within its TTL."""
        v = self.view
        return v is not None and self.online() and self.clock() - self.view_at <= v.ttl_s

    def offline_reason(self) -> str:
        if self.view is None:
            return "no cloud view from the router yet"
        if not self.online():
            return "the link to the router is down"
        return f"the last cloud view is {self.clock() - self.view_at:.0f} s old"

    def decide(self, route: RouteRequest, state: common_pb2.WorkerState) -> Decision:
        """The decision for `route` now. Raises FailedPrecondition or ResourceExhausted as the router
        does; offline, Unavailable when only the cloud could serve the request."""
        now, live = self.clock(), state_from_pb(state)
        online = self.fresh()
        if self.view is not None:
            snap = self.view.snapshot(live, now, route.greedy, online)
            policy, version = self.view.policy, self.view.policy_version
        else:
            snap = offline_snapshot(self.device_id, live, self.fallback_policy, now)
            policy, version = self.fallback_policy, 0
        try:
            return decide(route, snap, policy, now, version)
        except FailedPrecondition as exc:
            if online:
                raise
            raise Unavailable(
                f"the cloud is unreachable ({self.offline_reason()}) and the device cannot serve this "
                f"request on its own: {exc.message}"
            ) from None


class Usage:
    """What the device's apps asked of it, as counts (fleet.proto DeviceUsage): per placement and
    status, requests, completion tokens and device energy."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[float]] = {}

    @property
    def version(self) -> int:
        """Moves with every request counted: the requests so far."""
        return int(sum(c[0] for c in self._counts.values()))

    def add(self, placement: str, status: str, tokens: int, energy_j: float) -> None:
        c = self._counts.setdefault((placement, status), [0, 0, 0.0])
        c[0] += 1
        c[1] += tokens
        c[2] += energy_j

    def to_pb(self) -> fleet_pb2.DeviceUsage:
        return fleet_pb2.DeviceUsage(
            counts=[
                fleet_pb2.UsageCount(
                    placement=p, status=s, requests=int(n), completion_tokens=int(t), device_energy_joules=e
                )
                for (p, s), (n, t, e) in sorted(self._counts.items())
            ]
        )


class DeviceInference(inference_pb2_grpc.InferenceServicer):
    """Inference for apps on the device (module docstring)."""

    def __init__(
        self,
        device_id: str,
        servicer: WorkerServicer,
        state: Callable[[], common_pb2.WorkerState],
        decider: DeviceDecider,
        metrics: RouterMetrics,
        router: Callable[[], grpc.aio.Channel | None],
        token: str,
        request_timeout_s: float = 600.0,
        report: Callable[[fleet_pb2.DeviceOutcome], object] = lambda outcome: None,
    ) -> None:
        """`router`: the channel to the router's Inference service (None: no router configured);
        `token`: the device's credential, which forwarded requests travel under; `report`: sends the
        router what a request the device served itself measured (router.device_outcome), so that
        the figures its views carry follow the device's own traffic."""
        self.device_id = device_id
        self.servicer = servicer
        self.state = state
        self.decider = decider
        self.metrics = metrics
        self.router = router
        self.token = token
        self.request_timeout_s = request_timeout_s
        self.report = report
        self.tandem = DeviceTandem(device_id, servicer, token, router, state, report)
        self.usage = Usage()

    @map_stream_errors
    async def Generate(self, request, context):
        t_start = time.perf_counter()
        placement, status, tokens, energy_j = "none", "OK", 0, 0.0
        try:
            spec = parse_generate(request)
            if spec.route.device_id and spec.route.device_id != self.device_id:
                raise InvalidArgument(
                    "hints.device_id", f"this is device {self.device_id!r}, not {spec.route.device_id!r}"
                )
            spec = dataclasses.replace(spec, route=dataclasses.replace(spec.route, device_id=self.device_id))
            request_id = spec.request_id or uuid.uuid4().hex
            decision = self.decider.decide(spec.route, self.state())
            placement = decision.placement
            out = ChunkBuilder(
                request_id, decision_to_pb(decision, "device"), self.metrics, t_start, time.perf_counter()
            )
            if decision.placement is Placement.EDGE:
                stream = self._edge(spec, request_id, request.sampling, out, decision, context)
            elif decision.placement is Placement.TANDEM and self.decider.view is not None:
                stream = self.tandem.stream(
                    spec,
                    request_id,
                    request.sampling,
                    decision,
                    self.decider.view,
                    out,
                    context.time_remaining(),
                )
            else:
                stream = self._forward(request, request_id, decision, context)
            async for chunk in stream:
                tokens += len(chunk.token_ids)
                energy_j = chunk.cost.device_energy_joules if chunk.final else energy_j
                yield chunk
        except BaseException as exc:
            status = getattr(exc, "status", "CANCELLED" if isinstance(exc, GeneratorExit) else "INTERNAL")
            raise
        finally:
            self.metrics.requests.labels(placement, status).inc()
            self.usage.add(placement, status, tokens, energy_j)

    async def _edge(self, spec, request_id: str, sampling, out: ChunkBuilder, decision: Decision, context):
        """Generate on the device's own model, in process; the router learns its speed."""
        remaining = context.time_remaining()
        timeout = remaining if remaining is not None else self.request_timeout_s
        bill = Bill()
        replies = self.tandem.stub.Generate(worker_request(spec, request_id, sampling), timeout)
        try:
            async with contextlib.aclosing(replies):  # ended at once: the session is released now
                async for w in replies:
                    bill.device_energy_j += w.energy_joules
                    chunk = out.chunk(list(w.token_ids), w.text, Placement.EDGE, self.device_id)
                    if not w.finish_reason:
                        yield chunk
                        continue
                    yield out.finish(chunk, FINISH_NAMES[w.finish_reason], w.usage.prompt_tokens, bill)
                    outcome = Outcome(
                        placement=Placement.EDGE,
                        prompt_chars=spec.route.prompt_chars,
                        prompt_tokens=w.usage.prompt_tokens,
                        tokens=out.produced,
                        ttft_ms=out.ttft_ms,
                        client_rtt_ms=0.0,
                        token_ms=out.token_ms,
                        device_id=self.device_id,
                    )
                    self.report(outcome_to_pb(outcome, decision))
                    return
        except grpc.RpcError as err:  # the in-process servicer's status, as a call would end
            raise from_rpc_error(err) from None

    async def _forward(self, request, request_id: str, decision: Decision, context):
        """CLOUD: the router serves it, under the device's identity. The request goes as the app
        sent it, pinned to what the device decided (ONLY_CLOUD), and the router checks it again
        (auth, limits, its policy) and picks the replica. The chunks carry the device's decision,
        with the pool and replica the router used."""
        channel = self.router()
        if channel is None or not self.decider.fresh():
            raise Unavailable(f"the cloud is unreachable ({self.decider.offline_reason()})")
        fwd = inference_pb2.GenerateRequest()
        fwd.CopyFrom(request)
        fwd.request_id = request_id
        fwd.hints.device_id = self.device_id
        fwd.hints.placement = common_pb2.PLACEMENT_PREFERENCE_ONLY_CLOUD
        remaining = context.time_remaining()
        call = inference_pb2_grpc.InferenceStub(channel).Generate(
            fwd,
            timeout=remaining if remaining is not None else self.request_timeout_s,
            metadata=(("authorization", f"Bearer {self.token}"),),
        )
        mine = decision_to_pb(decision, "device")
        try:
            async for chunk in call:
                if chunk.HasField("decision"):
                    pool, replica = chunk.decision.pool, chunk.decision.cloud_worker_id
                    chunk.decision.CopyFrom(mine)
                    chunk.decision.pool, chunk.decision.cloud_worker_id = pool, replica
                yield chunk
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()
