"""Inference servicer: validate → decide → stream from the chosen worker → chunks with provenance."""

from __future__ import annotations

import time
import uuid

import grpc

from router.config import RouterConfig
from router.convert import GenerateSpec, decision_to_pb, parse_generate
from router.costs import cloud_cost_usd
from router.fleet import FleetRegistry
from router.metrics import RouterMetrics
from router.placement import Decision
from router.placer import Placer
from router.tandem_stream import TandemStreamer
from router.worker_channels import WorkerChannels
from tandem.convert import PLACEMENTS
from tandem.errors import ResourceExhausted
from tandem.grpc_status import from_rpc_error, map_stream_errors
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

    @map_stream_errors
    async def Generate(self, request, context):
        t_start = time.perf_counter()
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
        """Stream from the worker the decision names (EDGE or CLOUD)."""
        on_edge = decision.placement == "edge"
        endpoint = decision.edge_endpoint if on_edge else decision.cloud_endpoint
        worker_id = decision.edge_worker_id if on_edge else decision.cloud_worker_id
        record = self.registry.get(worker_id)
        placement_pb = PLACEMENTS[decision.placement]
        decision_pb = decision_to_pb(decision)
        remaining = context.time_remaining()
        timeout = min(remaining, self.config.worker_timeout_s) if remaining is not None else self.config.worker_timeout_s
        call = self.channels.stub(endpoint).Generate(worker_request(spec, request_id, sampling), timeout=timeout)
        first_at = last_at = None
        tokens = passes = 0
        compute_ms = energy = first_compute_ms = 0.0
        try:
            async for w in call:
                now = time.perf_counter()
                n = len(w.token_ids)
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
                    out.decision.CopyFrom(decision_pb)
                    if on_edge:
                        out.cost.device_energy_joules = energy
                        self.metrics.device_energy.inc(energy)
                    else:
                        usd = cloud_cost_usd(record.pool, compute_ms, tokens) if record else 0.0
                        out.cost.cloud_usd = usd
                        out.cost.target_forward_passes = passes
                        out.cost.cloud_compute_ms = compute_ms
                        self.metrics.cloud_cost.labels(decision.pool).inc(usd)
                    out.timing.ttft_ms = (first_at - t_start) * 1e3
                    out.timing.total_ms = (now - t_start) * 1e3
                    out.timing.decision_ms = (t_decided - t_start) * 1e3
                    self._learn(spec, decision, record, out.timing.ttft_ms, first_at, now, tokens,
                                compute_ms - first_compute_ms, w.usage.prompt_tokens)
                yield out
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()
