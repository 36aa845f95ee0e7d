"""TANDEM requests end to end in the router: set up the loop, render text, fail over, report.

The router renders TANDEM text itself (with the fleet's tokenizer, fetched once from a worker) so
that text deltas and stop strings stay correct whatever produced each token — drafted and
accepted, a target correction, or a worker that took over after a failure.

Failover, nothing lost or repeated: the committed tokens are the state. A device that fails mid-
stream → the rest is generated in the cloud from the committed tokens (placement CLOUD for those
chunks); a pool with no replica left → the rest on the device when the request allows device
output, else UNAVAILABLE.
"""

from __future__ import annotations

import time
from typing import AsyncIterator

import grpc

from router.config import RouterConfig
from router.convert import GenerateSpec
from router.policy.costs import cloud_cost_usd, priced
from router.tandem.control import DraftControlConfig, DraftLengthController
from router.fleet import CLOUD, FleetRegistry, WorkerRecord
from router.metrics import RouterMetrics
from router.policy.placement import ONLY_CLOUD, Decision
from router.placer import Placer
from router.tandem_io import BUSY_S, Deadline, GrpcVerifier, RequestedDrafts, StreamedDrafts
from router.tandem.loop import CloudLost, DeviceLost, TandemStats, tandem_rounds
from router.worker_channels import WorkerChannels
from tandem.convert import FINISH_REASONS, PLACEMENTS
from tandem.errors import Unavailable
from tandem.grpc_status import from_rpc_error
from runtime.llm.stopping import StopMatcher
from runtime.llm.tokenizer import Detokenizer, Tokenizer
from runtime.params import check_context
from tandem.v1 import common_pb2, inference_pb2, worker_pb2


class TokenizerCache:
    """The fleet's tokenizers by id, fetched from a worker the first time they are needed."""

    def __init__(self, channels: WorkerChannels) -> None:
        self.channels = channels
        self._by_id: dict[str, Tokenizer] = {}

    async def get(self, worker: WorkerRecord, timeout: float) -> Tokenizer:
        tok = self._by_id.get(worker.tokenizer_id)
        if tok is None:
            resp = await self.channels.stub(worker.endpoint).GetTokenizer(worker_pb2.GetTokenizerRequest(),
                                                                          timeout=timeout)
            tok = Tokenizer(json_text=resp.tokenizer_json.decode("utf-8"))
            if tok.id != worker.tokenizer_id:
                raise Unavailable(f"worker {worker.worker_id} sent tokenizer {tok.id}, registered {worker.tokenizer_id}")
            self._by_id[tok.id] = tok
        return tok


class ChunkBuilder:
    """Committed tokens → GenerateChunk messages: text rendering, stop strings, final-chunk totals."""

    def __init__(self, request_id: str, decision_pb: common_pb2.Decision, tokenizer: Tokenizer, prompt: list[int],
                 spec: GenerateSpec, metrics: RouterMetrics, t_start: float, t_decided: float) -> None:
        self.request_id = request_id
        self.decision_pb = decision_pb
        self.detok = Detokenizer(tokenizer, prompt)
        self.stops = StopMatcher(spec.sampling.stop)
        self.max_new = spec.sampling.max_new_tokens
        self.prompt_len = len(prompt)
        self.metrics = metrics
        self.t_start, self.t_decided = t_start, t_decided
        self.produced = 0
        self.first_at: float | None = None
        self.last_at = 0.0

    def add(self, tokens: list[int], placement: str, worker_id: str, accepted: int = 0,
            eos: bool = False) -> inference_pb2.GenerateChunk:
        now = time.perf_counter()
        self.produced += len(tokens)
        text = self.stops.feed(self.detok.add(tokens))
        finish = None
        if eos:
            finish = "eos"
        elif self.stops.stopped:
            finish = "stop_string"
        elif self.produced >= self.max_new:
            finish = "length"
        if finish and finish != "stop_string":
            text += self.stops.feed(self.detok.flush()) + self.stops.flush()
        out = inference_pb2.GenerateChunk(request_id=self.request_id, text=text, token_ids=tokens,
                                          placement=PLACEMENTS[placement], worker_id=worker_id,
                                          accepted_draft_tokens=accepted)
        if self.first_at is None:
            self.first_at = now
            out.decision.CopyFrom(self.decision_pb)
            self.metrics.ttft.labels(placement).observe(now - self.t_start)
        elif tokens:
            self.metrics.token_latency.labels(placement).observe((now - self.last_at) / len(tokens))
        self.last_at = now
        self.metrics.tokens.labels(placement).inc(len(tokens))
        if finish:
            out.final = True
            out.finish_reason = FINISH_REASONS[finish]
            out.usage.prompt_tokens = self.prompt_len
            out.usage.completion_tokens = self.produced
            out.decision.CopyFrom(self.decision_pb)
            out.timing.ttft_ms = (self.first_at - self.t_start) * 1e3
            out.timing.total_ms = (now - self.t_start) * 1e3
            out.timing.decision_ms = (self.t_decided - self.t_start) * 1e3
        return out


def stats_to_pb(s: TandemStats) -> common_pb2.TandemStats:
    return common_pb2.TandemStats(
        rounds=s.rounds, drafted_tokens=s.drafted, accepted_tokens=s.accepted, correction_tokens=s.corrections,
        bonus_tokens=s.bonus, acceptance_rate=s.accepted / s.drafted if s.drafted else 0.0,
        mean_draft_length=s.gamma_sum / s.rounds if s.rounds else 0.0, last_draft_length=s.last_gamma,
        fallbacks=s.fallbacks, overlap_hits=s.overlap_hits, overlap_misses=s.overlap_misses,
    )


class TandemStreamer:
    def __init__(self, registry: FleetRegistry, channels: WorkerChannels, metrics: RouterMetrics,
                 config: RouterConfig, placer: Placer) -> None:
        self.registry = registry
        self.placer = placer
        self.channels = channels
        self.metrics = metrics
        self.config = config
        self.tokenizers = TokenizerCache(channels)
        # (device, pool, greedy?) → (α, draft ms/token, draft overhead ms, verify ms, β_i) of its last
        # session: the next one starts there (greedy and sampled acceptance differ a lot)
        self._priors: dict[tuple[str, str, bool], tuple] = {}

    def _pool(self, pool: str) -> list[WorkerRecord]:
        return [r for r in self.registry.members(CLOUD) if r.pool.name == pool and not self.registry.busy(r)]

    def _replica_failed(self, replica: WorkerRecord, err: grpc.RpcError) -> None:
        """A replica overloaded is avoided for a while; one lost is dropped (it re-registers if alive)."""
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            self.registry.mark_busy(replica.worker_id, BUSY_S)
        else:
            self.registry.deregister(replica.worker_id)

    async def stream(self, spec: GenerateSpec, request_id: str, sampling: common_pb2.SamplingParams,
                     decision: Decision, decision_pb: common_pb2.Decision, context: grpc.aio.ServicerContext,
                     t_start: float) -> AsyncIterator[inference_pb2.GenerateChunk]:
        edge, cloud = self.registry.get(decision.edge_worker_id), self.registry.get(decision.cloud_worker_id)
        if edge is None or cloud is None:
            raise Unavailable("the device or the replica chosen for TANDEM left the fleet")
        deadline = Deadline(context.time_remaining(), self.config.round_timeout_s)
        round_sampling = common_pb2.SamplingParams()
        round_sampling.CopyFrom(sampling)
        del round_sampling.stop[:]  # the router matches stop strings itself
        pool_name = cloud.pool.name
        verifier = GrpcVerifier(self.channels, cloud, lambda: self._pool(pool_name), request_id,
                                round_sampling, deadline, on_failed=self._replica_failed)
        prompt_input = common_pb2.PromptInput(
            text=spec.prompt, messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in spec.messages])
        while True:  # a replica that died since its last heartbeat is replaced like in a round
            try:
                tokenizer = await self.tokenizers.get(verifier.replica, deadline.timeout())
                tok_resp = await self.channels.stub(verifier.replica.endpoint).Tokenize(
                    worker_pb2.TokenizeRequest(input=prompt_input), timeout=deadline.timeout())
                break
            except grpc.RpcError as err:
                verifier.replace_after(err, "no replica of the pool answered")
        cloud = verifier.replica
        prompt = list(tok_resp.token_ids)
        max_context = min(edge.max_context, cloud.max_context)
        check_context(len(prompt), spec.sampling.max_new_tokens, max_context)
        overlap = self.config.overlap and spec.route.overlap and decision.overlap
        key = (edge.worker_id, cloud.pool.name, spec.sampling.greedy)
        alpha, draft_ms, overhead_ms, verify_ms, betas = self._priors.get(
            key, (0.6, 1.0, max(1.0, edge.state.rtt_ms), 3.0, ()))
        control = DraftLengthController(
            DraftControlConfig(fixed_gamma=spec.route.draft_length, max_gamma=self.config.max_draft_length,
                               prior_alpha=alpha, prior_draft_ms=draft_ms, prior_draft_overhead_ms=overhead_ms,
                               prior_verify_ms=verify_ms, overlap=overlap, prior_positions=betas,
                               speed_slack=self.config.draft_speed_slack, prices=decision.draft_prices),
            energy_per_token_j=edge.state.energy_per_token_joules,
            energy_budget_j=spec.route.max_device_energy_joules,
        )
        tree = (spec.route.draft_tree or self.config.draft_tree) if spec.sampling.greedy else ()  # sampling: one chain
        if overlap:
            drafts = StreamedDrafts(self.channels, edge, request_id, round_sampling, self.config.draft_support_size,
                                    deadline, blocks_ahead=control.blocks_ahead, branching=tree)
        else:
            drafts = RequestedDrafts(self.channels, edge, request_id, round_sampling,
                                     self.config.draft_support_size, deadline, branching=tree)
        out = ChunkBuilder(request_id, decision_pb, tokenizer, prompt, spec, self.metrics, t_start, time.perf_counter())
        stats = TandemStats()
        committed = list(prompt)
        extra_compute_ms = 0.0
        last = None
        try:
            try:
                async for c in tandem_rounds(prompt, spec.sampling.max_new_tokens, max_context, cloud.eos_token_id,
                                             control, drafts, verifier, stats, head_start=self.config.head_start):
                    committed += c.tokens
                    last = out.add(c.tokens, "tandem", c.worker_id, accepted=c.accepted, eos=c.eos)
                    if last.final:
                        break
                    yield last
            except DeviceLost as lost:
                stats.fallbacks[lost.cause] = stats.fallbacks.get(lost.cause, 0) + 1
                self.metrics.fallbacks.labels(lost.cause).inc()
                async for chunk, ms in self._continue(verifier.replica, "cloud", committed, out, round_sampling,
                                                      deadline, verifier):
                    extra_compute_ms += ms
                    last = chunk
                    if chunk.final:
                        break
                    yield chunk
            except CloudLost as lost:
                if spec.route.preference == ONLY_CLOUD or spec.route.quality == "large_required":
                    raise Unavailable(f"TANDEM lost its cloud pool and the request needs the large model: {lost}") from None
                stats.fallbacks["cloud_unavailable"] = stats.fallbacks.get("cloud_unavailable", 0) + 1
                self.metrics.fallbacks.labels("cloud_unavailable").inc()
                async for chunk, _ in self._continue(edge, "edge", committed, out, round_sampling, deadline):
                    last = chunk
                    if chunk.final:
                        break
                    yield chunk
            if last is None or not last.final:
                raise Unavailable("TANDEM generation ended without finishing")
            await drafts.close()  # counts the blocks drafted ahead and never used
            stats.overlap_misses = drafts.dropped
            stats.device_energy_j += drafts.wasted_energy_j
            compute_ms = stats.cloud_compute_ms + extra_compute_ms
            pool = verifier.replica.pool
            last.tandem.CopyFrom(stats_to_pb(stats))
            last.cost.cloud_usd = cloud_cost_usd(priced(pool, self.placer.store.policy.pool_prices), compute_ms,
                                                 out.produced)
            last.cost.device_energy_joules = stats.device_energy_j
            last.cost.target_forward_passes = stats.target_passes + (1 if extra_compute_ms else 0)
            last.cost.cloud_compute_ms = compute_ms
            self.metrics.cloud_cost.labels(pool.name).inc(last.cost.cloud_usd)
            self.metrics.pool_tokens.labels(pool.name).inc(out.produced)
            self.metrics.device_energy.inc(stats.device_energy_j)
            self.metrics.observe_tandem(stats)
            self._learn(spec, decision, edge, pool.name, stats, control, last.timing.ttft_ms, out)
            yield last
        finally:
            if stats.rounds:
                self._priors.pop(key, None)
                self._priors[key] = (control.alpha, control.draft_ms, control.draft_overhead_ms, control.verify_ms,
                                     tuple(control.position_acceptance()))
                while len(self._priors) > 100_000:
                    self._priors.pop(next(iter(self._priors)))
            await drafts.close()
            await verifier.release()

    def _learn(self, spec: GenerateSpec, decision: Decision, edge: WorkerRecord, pool: str, stats: TandemStats,
               control: DraftLengthController, ttft_ms: float, out: ChunkBuilder) -> None:
        """Feed a finished TANDEM request's measurements to the policy's estimates."""
        est = self.placer.estimates
        est.observe_prompt(spec.route.prompt_chars, out.prompt_len)
        if self.config.head_start:  # the first token was the pool's: a CLOUD time to first token
            est.observe_cloud_ttft(pool, ttft_ms, out.prompt_len)
        if stats.drafted:
            # the per-token α of the geometric model E(γ) (accepted ÷ drafted would understate it
            # whenever long drafts are cut short by one rejection)
            est.observe_acceptance(edge.worker_id, pool, control.alpha)
            est.observe_draft(edge.worker_id, control.draft_ms)
        if stats.target_passes > 1:  # per pass after the first, which also prefilled the prompt
            est.observe_verify(pool, control.verify_ms, (stats.cloud_compute_ms - stats.first_verify_compute_ms)
                               / (stats.target_passes - 1))
        token_ms = ((out.last_at - out.first_at) * 1e3 / (out.produced - 1)
                    if out.first_at is not None and out.produced > 1 else None)
        self.placer.observe_latency(decision, ttft_ms + edge.state.rtt_ms, token_ms)

    async def _continue(self, worker: WorkerRecord, placement: str, committed: list[int], out: ChunkBuilder,
                        sampling: common_pb2.SamplingParams, deadline: Deadline,
                        verifier: GrpcVerifier | None = None):
        """Generate the rest on one worker from the committed tokens; yields (chunk, compute_ms).

        With `verifier` (the cloud case) a replica that fails is replaced by another of the pool,
        continuing from the tokens committed so far; UNAVAILABLE when none is left.
        """
        while True:
            rest = common_pb2.SamplingParams()
            rest.CopyFrom(sampling)
            rest.max_new_tokens = out.max_new - out.produced
            req = worker_pb2.WorkerGenerateRequest(session_id=f"{out.request_id}-{placement}",
                                                   input=common_pb2.PromptInput(token_ids=committed), sampling=rest)
            call = self.channels.stub(worker.endpoint).Generate(req, timeout=deadline.timeout())
            try:
                async for w in call:
                    committed += w.token_ids
                    yield out.add(list(w.token_ids), placement, worker.worker_id,
                                  eos=w.finish_reason == common_pb2.FINISH_REASON_EOS), w.compute_ms
                return
            except grpc.RpcError as err:
                if verifier is None:
                    raise from_rpc_error(err) from None
                worker = verifier.replace_after(err, "the cloud pool lost every replica after the device left")
            finally:
                call.cancel()
