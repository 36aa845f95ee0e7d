"""Inference servicer: validate → decide → stream from the chosen worker → chunks with provenance."""

from __future__ import annotations

import hmac
import time
import uuid

import grpc

from router.config import RouterConfig
from router.convert import GenerateSpec, decision_to_pb, parse_generate
from router.policy.costs import cloud_cost_usd, priced
from router.fleet import CLOUD, FleetRegistry, WorkerRecord
from router.metrics import RouterMetrics
from router.policy.placement import Decision
from router.placer import Placer
from router.tandem_io import BUSY_S, replica_lost
from router.tandem_stream import TandemStreamer
from router.worker_channels import WorkerChannels
from tandem.convert import PLACEMENTS
from tandem.errors import FailedPrecondition, ResourceExhausted, Unauthenticated
from runtime.grpc_errors import map_stream_errors
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, inference_pb2, inference_pb2_grpc, worker_pb2


def worker_request(spec: GenerateSpec, session_id: str, sampling: common_pb2.SamplingParams) -> worker_pb2.WorkerGenerateRequest:
    prompt = common_pb2.PromptInput(
        text=spec.prompt,
        messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in spec.messages],
    )
    return worker_pb2.WorkerGenerateRequest(session_id=session_id, input=prompt, sampling=sampling)


class InferenceService(inference_pb2_grpc.InferenceServicer):
    def __init__(self, registry: FleetRegistry, channels: WorkerChannels, metrics: RouterMetrics,
                 config: RouterConfig, placer: Placer) -> None:
        self.registry = registry
        self.channels = channels
        self.metrics = metrics
        self.config = config
        self.placer = placer
        self.inflight = 0
        self.tandem = TandemStreamer(registry, channels, metrics, config, placer)

    def _authenticate(self, context) -> None:
        if not self.config.api_keys:
            return
        auth = next((v for k, v in (context.invocation_metadata() or ()) if k == "authorization"), "")
        key = auth[len("Bearer "):] if isinstance(auth, str) and auth.startswith("Bearer ") else ""
        if not any(hmac.compare_digest(key, k) for k in self.config.api_keys):
            raise Unauthenticated("this router needs an API key: `authorization: Bearer <key>` metadata "
                                  "(the SDK's api_key option)")

    @map_stream_errors
    async def Generate(self, request, context):
        t_start = time.perf_counter()
        self._authenticate(context)
        spec = parse_generate(request)
        request_id = spec.request_id or uuid.uuid4().hex
        if self.inflight >= self.config.max_inflight:
            self.metrics.requests.labels("none", "RESOURCE_EXHAUSTED").inc()
            raise ResourceExhausted(f"router busy: {self.inflight} requests in flight (limit {self.config.max_inflight})")
        self.inflight += 1
        self.metrics.inflight.inc()
        placement, status = "none", "OK"
        try:
            decision = self.placer.decide(spec.route)
            placement = decision.placement
            t_decided = time.perf_counter()
            if placement == "tandem":
                stream = self.tandem.stream(spec, request_id, request.sampling, decision, decision_to_pb(decision),
                                            context, t_start)
            else:
                stream = self._stream(spec, request_id, request.sampling, decision, context, t_start, t_decided)
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

    def _learn(self, spec: GenerateSpec, decision: Decision, record, ttft_ms: float, first_at: float, end: float,
               tokens: int, decode_compute_ms: float, prompt_tokens: int) -> None:
        """Feed a finished EDGE or CLOUD request's measurements to the estimates (`decode_compute_ms`:
        accelerator time after the first token, whose pass also prefilled the prompt)."""
        token_ms = (end - first_at) * 1e3 / (tokens - 1) if tokens > 1 else None
        est = self.placer.estimates
        est.observe_prompt(spec.route.prompt_chars, prompt_tokens)
        if decision.placement == "edge":
            rtt = record.state.rtt_ms if record else 0.0
            est.observe_edge(decision.edge_worker_id, max(ttft_ms - rtt, 0.0), token_ms, prompt_tokens)
        else:
            est.observe_cloud(decision.pool, ttft_ms, token_ms, decode_compute_ms / (tokens - 1) if tokens > 1 else 0.0,
                              prompt_tokens)
        device_id = spec.route.device_id
        device = self.registry.get(device_id) if device_id else None
        client_rtt = device.state.rtt_ms if device else 0.0  # the client sits on the device
        self.placer.observe_latency(decision, ttft_ms + client_rtt, token_ms)

    async def _stream(self, spec, request_id, sampling, decision: Decision, context, t_start, t_decided):
        """Stream from the worker the decision names (EDGE or CLOUD).

        CLOUD fails over: a replica that is lost (or refuses the call as overloaded) before or
        during the stream is replaced by another of the pool — or, before the first token, by
        what the policy decides now (another pool) — and the rest is generated from the tokens
        already streamed; nothing is repeated or lost. A lost replica is dropped from the fleet
        (a live one re-registers with its next heartbeat), an overloaded one avoided for a while.
        """
        on_edge = decision.placement == "edge"
        endpoint = decision.edge_endpoint if on_edge else decision.cloud_endpoint
        worker_id = decision.edge_worker_id if on_edge else decision.cloud_worker_id
        placement_pb = PLACEMENTS[decision.placement]
        decision_pb = decision_to_pb(decision)
        req = worker_request(spec, request_id, sampling)
        tried = {worker_id}
        generated: list[int] = []
        prompt_ids: list[int] | None = None  # tokenized once a continuation needs them
        first_at = last_at = None
        tokens = passes = 0
        compute_ms = energy = first_compute_ms = 0.0
        while True:
            record = self.registry.get(worker_id)
            call = self.channels.stub(endpoint).Generate(req, timeout=self._timeout(context))
            try:
                async for w in call:
                    now = time.perf_counter()
                    n = len(w.token_ids)
                    generated += w.token_ids
                    out = inference_pb2.GenerateChunk(request_id=request_id, text=w.text, token_ids=w.token_ids,
                                                      placement=placement_pb, worker_id=worker_id)
                    if first_at is None:
                        first_at = now
                        first_compute_ms = w.compute_ms  # includes the prompt's prefill
                        out.decision.CopyFrom(decision_pb)
                        self.metrics.ttft.labels(decision.placement).observe(now - t_start)
                    elif n:
                        self.metrics.token_latency.labels(decision.placement).observe((now - last_at) / n)
                    last_at = now
                    tokens += n
                    passes += w.forward_passes
                    compute_ms += w.compute_ms
                    energy += w.energy_joules
                    self.metrics.tokens.labels(decision.placement).inc(n)
                    if w.finish_reason:
                        out.final = True
                        out.finish_reason = w.finish_reason
                        out.usage.CopyFrom(w.usage)
                        if prompt_ids is not None:  # the last replica was given the streamed tokens as context
                            out.usage.prompt_tokens, out.usage.completion_tokens = len(prompt_ids), tokens
                        out.decision.CopyFrom(decision_pb)
                        if on_edge:
                            out.cost.device_energy_joules = energy
                            self.metrics.device_energy.inc(energy)
                        else:
                            usd = (cloud_cost_usd(priced(record.pool, self.placer.store.policy.pool_prices),
                                                  compute_ms, tokens) if record else 0.0)
                            out.cost.cloud_usd = usd
                            out.cost.target_forward_passes = passes
                            out.cost.cloud_compute_ms = compute_ms
                            pool_name = record.pool.name if record else decision.pool
                            self.metrics.cloud_cost.labels(pool_name).inc(usd)
                            self.metrics.pool_tokens.labels(pool_name).inc(tokens)
                        out.timing.ttft_ms = (first_at - t_start) * 1e3
                        out.timing.total_ms = (now - t_start) * 1e3
                        out.timing.decision_ms = (t_decided - t_start) * 1e3
                        self._learn(spec, decision, record, out.timing.ttft_ms, first_at, now, tokens,
                                    compute_ms - first_compute_ms, out.usage.prompt_tokens)
                    yield out
                return
            except grpc.RpcError as err:
                left = context.time_remaining()
                if on_edge or not replica_lost(err) or (left is not None and left <= 0):
                    raise from_rpc_error(err) from None
                nxt = self._replacement(spec, decision.pool, worker_id, err, tried, streamed=bool(generated))
                if nxt is None:
                    raise from_rpc_error(err) from None
                worker_id, endpoint = nxt.worker_id, nxt.endpoint
                tried.add(worker_id)
                if generated:
                    if prompt_ids is None:
                        resp = await self.channels.stub(endpoint).Tokenize(
                            worker_pb2.TokenizeRequest(input=req.input), timeout=self._timeout(context))
                        prompt_ids = list(resp.token_ids)
                    rest = common_pb2.SamplingParams()
                    rest.CopyFrom(sampling)
                    rest.max_new_tokens = spec.sampling.max_new_tokens - len(generated)
                    req = worker_pb2.WorkerGenerateRequest(
                        session_id=request_id, input=common_pb2.PromptInput(token_ids=prompt_ids + generated),
                        sampling=rest)
            finally:
                call.cancel()

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        return min(remaining, self.config.worker_timeout_s) if remaining is not None else self.config.worker_timeout_s

    def _replacement(self, spec: GenerateSpec, pool: str, failed: str, err: grpc.RpcError, tried: set[str],
                     streamed: bool) -> WorkerRecord | None:
        """Where a CLOUD stream goes after replica `failed` answered `err`: the least-loaded other
        replica of its pool; before any token was streamed, else what the policy decides now if that
        is CLOUD on a replica not tried yet; None when there is nowhere to go."""
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            self.registry.mark_busy(failed, BUSY_S)
            self.metrics.fallbacks.labels("replica_busy").inc()
        else:
            self.registry.deregister(failed)
            self.metrics.fallbacks.labels("replica_lost").inc()
        left = [r for r in self.registry.members(CLOUD)
                if r.pool.name == pool and r.worker_id not in tried and not self.registry.busy(r)]
        if left:
            return min(left, key=lambda r: (r.state.queue_depth, r.worker_id))
        if streamed:
            return None
        try:
            d = self.placer.decide(spec.route, count=False)
        except (FailedPrecondition, ResourceExhausted):
            return None
        if d.placement != "cloud" or d.cloud_worker_id in tried:
            return None
        return self.registry.get(d.cloud_worker_id)
