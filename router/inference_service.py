"""Inference servicer: validate → decide → stream from the chosen worker → chunks with provenance."""

from __future__ import annotations

import hmac
import time
import uuid

import grpc

from router.chunks import Bill, ChunkBuilder
from router.config import RouterConfig
from router.convert import GenerateSpec, decision_to_pb, parse_generate
from router.failover import ReplicaFailover
from router.fleet import FleetRegistry
from router.identity import FleetIdentity
from router.metrics import RouterMetrics
from router.placer import Placer
from router.policy.costs import cloud_cost_usd, priced
from router.policy.outcome import Outcome
from router.policy.placement import Decision, Placement
from router.tandem_io import overloaded, replica_lost
from router.tandem_stream import TandemStreamer
from router.worker_channels import WorkerChannels
from runtime.grpc_errors import map_stream_errors
from tandem.convert import FINISH_NAMES
from tandem.errors import FailedPrecondition, ResourceExhausted, Unauthenticated, Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, inference_pb2_grpc, worker_pb2


def worker_request(
    spec: GenerateSpec, session_id: str, sampling: common_pb2.SamplingParams
) -> worker_pb2.WorkerGenerateRequest:
    prompt = common_pb2.PromptInput(
        text=spec.prompt,
        messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in spec.messages],
    )
    return worker_pb2.WorkerGenerateRequest(session_id=session_id, input=prompt, sampling=sampling)


class InferenceService(inference_pb2_grpc.InferenceServicer):
    def __init__(
        self,
        registry: FleetRegistry,
        channels: WorkerChannels,
        metrics: RouterMetrics,
        config: RouterConfig,
        placer: Placer,
        identity: FleetIdentity | None = None,
    ) -> None:
        """`identity` lets devices call under their own credential (the requests their apps' agents
        forward, edge_worker.apps), beside the API keys."""
        self.registry = registry
        self.identity = identity
        self.channels = channels
        self.metrics = metrics
        self.config = config
        self.placer = placer
        self.inflight = 0
        self.tandem = TandemStreamer(registry, channels, metrics, config, placer)

    def _authenticate(self, context, device_id: str) -> None:
        """An API key, or the credential of the device the request names (`hints.device_id`)."""
        if not self.config.api_keys:
            return
        auth = next((v for k, v in (context.invocation_metadata() or ()) if k == "authorization"), "")
        key = auth[len("Bearer ") :] if isinstance(auth, str) and auth.startswith("Bearer ") else ""
        if any(hmac.compare_digest(key, k) for k in self.config.api_keys):
            return
        if self.identity is not None and self.identity.is_device(device_id, key):
            return
        raise Unauthenticated(
            "this router needs an API key (or the credential of the device in hints.device_id): "
            "`authorization: Bearer <key>` metadata (the SDK's api_key option)"
        )

    @map_stream_errors
    async def Generate(self, request, context):
        t_start = time.perf_counter()
        self._authenticate(context, request.hints.device_id)
        spec = parse_generate(request)
        request_id = spec.request_id or uuid.uuid4().hex
        if self.inflight >= self.config.max_inflight:
            self.metrics.requests.labels("none", "RESOURCE_EXHAUSTED").inc()
            raise ResourceExhausted(
                f"router busy: {self.inflight} requests in flight (limit {self.config.max_inflight})"
            )
        self.inflight += 1
        self.metrics.inflight.inc()
        placement, status = "none", "OK"
        try:
            decision = self.placer.decide(spec.route)
            placement = decision.placement
            out = ChunkBuilder(
                request_id, decision_to_pb(decision), self.metrics, t_start, time.perf_counter()
            )
            if placement is Placement.TANDEM:
                stream = self.tandem.stream(spec, request_id, request.sampling, decision, out, context)
            else:
                stream = self._stream(spec, request_id, request.sampling, decision, out, context)
            self.placer.estimates.begin(decision)
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                self.placer.estimates.end(decision)
        except BaseException as exc:
            status = getattr(exc, "status", "CANCELLED" if isinstance(exc, GeneratorExit) else "INTERNAL")
            raise
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
            self.metrics.requests.labels(placement, status).inc()

    async def _stream(
        self, spec: GenerateSpec, request_id, sampling, decision: Decision, out: ChunkBuilder, context
    ):
        """Stream from the worker the decision names (EDGE or CLOUD).

        CLOUD fails over (router.failover): a replica that is lost (or refuses the call as
        overloaded) before or during the stream is replaced by another of the pool — or, before the
        first token, by what the policy decides now (another pool) — and the rest is generated from
        the tokens already streamed; nothing is repeated or lost.
        """
        on_edge = decision.placement is Placement.EDGE
        worker = self.registry.get(decision.edge_worker_id if on_edge else decision.cloud_worker_id)
        if worker is None:
            raise Unavailable(f"the {decision.placement.upper()} worker chosen left the fleet")
        failover = None if on_edge else ReplicaFailover(self.registry, worker, self.metrics.fallback)
        req = worker_request(spec, request_id, sampling)
        generated: list[int] = []
        prompt_ids: list[int] | None = None  # tokenized once a continuation needs them
        bill = Bill(pool="" if on_edge else worker.pool.name)
        first_compute_ms = 0.0
        while True:
            call = self.channels.stub(worker.endpoint).Generate(req, timeout=self._timeout(context))
            try:
                async for w in call:
                    tokens = list(w.token_ids)
                    if not generated:
                        first_compute_ms = w.compute_ms  # its pass also prefilled the prompt
                    generated += tokens
                    bill.target_passes += w.forward_passes
                    bill.cloud_compute_ms += w.compute_ms
                    bill.device_energy_j += w.energy_joules
                    chunk = out.chunk(tokens, w.text, decision.placement, worker.worker_id)
                    if not w.finish_reason:
                        yield chunk
                        continue
                    # the last replica may have been given the streamed tokens as context
                    prompt_tokens = len(prompt_ids) if prompt_ids is not None else w.usage.prompt_tokens
                    if not on_edge:
                        price = priced(worker.pool, self.placer.store.policy.pool_prices)
                        bill.pool = worker.pool.name
                        bill.cloud_usd = cloud_cost_usd(price, bill.cloud_compute_ms, out.produced)
                    final = out.finish(chunk, FINISH_NAMES[w.finish_reason], prompt_tokens, bill)
                    self._finished(
                        spec,
                        decision,
                        out,
                        prompt_tokens,
                        worker.worker_id if on_edge else "",
                        bill,
                        first_compute_ms,
                    )
                    yield final
                return
            except grpc.RpcError as err:
                left = context.time_remaining()
                if on_edge or not replica_lost(err) or (left is not None and left <= 0):
                    raise from_rpc_error(err) from None
                worker = failover.failed(overloaded(err)) or self._redecide(spec, failover, bool(generated))
                if worker is None:
                    raise from_rpc_error(err) from None
                if generated:
                    if prompt_ids is None:
                        resp = await self.channels.stub(worker.endpoint).Tokenize(
                            worker_pb2.TokenizeRequest(input=req.input), timeout=self._timeout(context)
                        )
                        prompt_ids = list(resp.token_ids)
                    rest = common_pb2.SamplingParams()
                    rest.CopyFrom(sampling)
                    rest.max_new_tokens = spec.sampling.max_new_tokens - len(generated)
                    req = worker_pb2.WorkerGenerateRequest(
                        session_id=request_id,
                        input=common_pb2.PromptInput(token_ids=prompt_ids + generated),
                        sampling=rest,
                    )
            finally:
                call.cancel()

    def _finished(self, spec, decision, out, prompt_tokens, device_id, bill, first_compute_ms) -> None:
        """An EDGE or CLOUD request's outcome, to the placer (the one place it is learned from)."""
        device = self.registry.get(spec.route.device_id) if spec.route.device_id else None
        edge = self.registry.get(device_id) if device_id else None
        outcome = Outcome(
            placement=decision.placement,
            prompt_chars=spec.route.prompt_chars,
            prompt_tokens=prompt_tokens,
            tokens=out.produced,
            ttft_ms=out.ttft_ms,
            # the client sits on the device: its link is part of what the client sees
            client_rtt_ms=device.state.rtt_ms if device else 0.0,
            token_ms=out.token_ms,
            device_id=device_id,
            device_rtt_ms=edge.state.rtt_ms if edge else 0.0,
            pool=bill.pool,
            decode_compute_ms=bill.cloud_compute_ms - first_compute_ms,
        )
        self.placer.finished(decision, outcome)

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        return (
            min(remaining, self.config.worker_timeout_s)
            if remaining is not None
            else self.config.worker_timeout_s
        )

    def _redecide(self, spec: GenerateSpec, failover: ReplicaFailover, streamed: bool):
        """Before any token was streamed, a CLOUD request whose pool has no replica left goes where
        the policy decides now, if that is CLOUD on a replica not tried yet; None otherwise."""
        if streamed:
            return None
        try:
            d = self.placer.decide(spec.route, count=False)
        except (FailedPrecondition, ResourceExhausted):
            return None
        if d.placement is not Placement.CLOUD or d.cloud_worker_id in failover.tried:
            return None
        nxt = self.registry.get(d.cloud_worker_id)
        if nxt is not None:
            failover.move_to(nxt)
        return nxt
