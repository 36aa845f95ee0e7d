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

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import grpc

from router.chunks import Bill, ChunkBuilder, TextRenderer
from router.config import RouterConfig
from router.convert import GenerateSpec
from router.failover import ReplicaFailover
from router.fleet import FleetRegistry, WorkerRecord
from router.metrics import RouterMetrics
from router.placer import Placer
from router.policy.costs import cloud_cost_usd, priced
from router.policy.outcome import Outcome
from router.policy.placement import Decision, Placement
from router.tandem.control import DraftLengthController
from router.tandem.loop import CloudLost, DeviceLost, TandemStats, tandem_rounds
from router.tandem.pace import PaceGuard
from router.tandem_io import Deadline, GrpcVerifier, RequestedDrafts, StreamedDrafts, round_sampling
from router.worker_channels import WorkerChannels
from runtime.llm.tokenizer import Tokenizer
from runtime.params import check_context
from tandem.errors import Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, inference_pb2, worker_pb2


class TokenizerCache:
    """The fleet's tokenizers by id, fetched from a worker the first time they are needed."""

    def __init__(self, channels: WorkerChannels) -> None:
        self.channels = channels
        self._by_id: dict[str, Tokenizer] = {}

    async def get(self, worker: WorkerRecord, timeout: float) -> Tokenizer:
        tok = self._by_id.get(worker.tokenizer_id)
        if tok is None:
            resp = await self.channels.stub(worker.endpoint).GetTokenizer(
                worker_pb2.GetTokenizerRequest(), timeout=timeout
            )
            tok = Tokenizer(json_text=resp.tokenizer_json.decode("utf-8"))
            if tok.id != worker.tokenizer_id:
                raise Unavailable(
                    f"worker {worker.worker_id} sent tokenizer {tok.id}, registered {worker.tokenizer_id}"
                )
            self._by_id[tok.id] = tok
        return tok


def stats_to_pb(s: TandemStats) -> common_pb2.TandemStats:
    return common_pb2.TandemStats(
        rounds=s.rounds,
        drafted_tokens=s.drafted,
        accepted_tokens=s.accepted,
        correction_tokens=s.corrections,
        bonus_tokens=s.bonus,
        acceptance_rate=s.accepted / s.drafted if s.drafted else 0.0,
        mean_draft_length=s.gamma_sum / s.rounds if s.rounds else 0.0,
        last_draft_length=s.last_gamma,
        fallbacks=s.fallbacks,
        overlap_hits=s.overlap_hits,
        overlap_misses=s.overlap_misses,
    )


@dataclasses.dataclass
class _Session:
    """One TANDEM request's state in the router: the committed tokens are the state that every
    continuation resumes from."""

    spec: GenerateSpec
    decision: Decision
    edge: WorkerRecord
    deadline: Deadline
    sampling: common_pb2.SamplingParams  # the rounds' (stop strings are the router's)
    verifier: GrpcVerifier
    drafts: RequestedDrafts | StreamedDrafts
    control: DraftLengthController
    prompt: list[int]
    max_context: int
    text: TextRenderer
    guard: PaceGuard
    stats: TandemStats = dataclasses.field(default_factory=TandemStats)
    committed: list[int] = dataclasses.field(default_factory=list)
    extra_compute_ms: float = 0.0  # the pool decoding alone after a hand-over
    last: inference_pb2.GenerateChunk | None = None
    finish: str | None = None

    def __post_init__(self) -> None:
        self.committed = list(self.prompt)


class _Pace:
    """A TANDEM stream's pace: tokens committed since the first, the time since the first, and the
    time per token of the rounds (from the end of the first round: the wait for the device's head
    block is paid once)."""

    def __init__(self) -> None:
        self.commits = 0
        self.produced = 0
        self.first_at = self.rounds_from = 0.0
        self.rounds_base = 0

    def commit(self, tokens: int) -> bool:
        """Count a round's tokens; True once the rounds' pace can be judged."""
        now = time.perf_counter()
        self.commits += 1
        if self.commits == 1:
            self.first_at = now
            return False
        self.produced += tokens
        if self.commits == 2:
            self.rounds_from, self.rounds_base = now, self.produced
            return False
        return True

    def now(self) -> tuple[float, int, float]:
        """(ms since the first token, tokens since it, ms per token of the rounds after the first)."""
        t = time.perf_counter()
        paced = max(self.produced - self.rounds_base, 1)
        return (t - self.first_at) * 1e3, self.produced, (t - self.rounds_from) * 1e3 / paced


class TandemStreamer:
    def __init__(
        self,
        registry: FleetRegistry,
        channels: WorkerChannels,
        metrics: RouterMetrics,
        config: RouterConfig,
        placer: Placer,
    ) -> None:
        self.registry = registry
        self.placer = placer
        self.channels = channels
        self.metrics = metrics
        self.config = config
        self.tokenizers = TokenizerCache(channels)

    def _controller(
        self, spec: GenerateSpec, decision: Decision, edge: WorkerRecord
    ) -> DraftLengthController:
        """The session's draft-length controller, starting from the model the policy predicted with."""
        return DraftLengthController(
            decision.draft_control(
                self.placer.store.policy.max_draft_length,
                overlap=self.config.overlap and spec.route.overlap,
                fixed_gamma=spec.route.draft_length,
                speed_slack=self.config.draft_speed_slack,
            ),
            energy_per_token_j=edge.state.energy_per_token_joules,
            energy_budget_j=decision.energy_cap_j,
        )

    def _pace_guard(self, spec: GenerateSpec, decision: Decision, pool: str, prompt_tokens: int) -> PaceGuard:
        """The request's pace guard (router.tandem.pace) at the pool's estimated speeds."""
        est = self.placer.estimates.pool(pool)
        n = spec.sampling.max_new_tokens
        handover_ms = est["ttft_ms"] + est["prefill_ms_per_token"] * (prompt_tokens + n / 2)
        slo = spec.route.token_slo_ms or self.placer.store.policy.default_token_slo_ms
        guard = slo if self.config.pace_guard else 0.0
        return PaceGuard(guard, n, est["token_ms"], handover_ms, decision.predicted_token_ms)

    async def stream(
        self,
        spec: GenerateSpec,
        request_id: str,
        sampling: common_pb2.SamplingParams,
        decision: Decision,
        out: ChunkBuilder,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[inference_pb2.GenerateChunk]:
        """Stream a TANDEM request's chunks (module docstring): set the session up, run the rounds and
        any hand-over, then the final chunk with its bill; the device's and replicas' sessions are
        released however it ends."""
        s = await self._open(spec, request_id, sampling, decision, context)
        try:
            async for chunk in self._generate(s, out):
                yield chunk
            yield await self._finish(s, out)
        finally:
            await s.drafts.close()
            await s.verifier.release()

    async def _open(self, spec, request_id, sampling, decision: Decision, context) -> _Session:
        """The session: the replica (replaced if it died since its last heartbeat), the prompt's
        tokens, the draft-length controller, the draft source and the pace guard."""
        edge, cloud = self.registry.get(decision.edge_worker_id), self.registry.get(decision.cloud_worker_id)
        if edge is None or cloud is None:
            raise Unavailable("the device or the replica chosen for TANDEM left the fleet")
        deadline = Deadline(context.time_remaining(), self.config.round_timeout_s)
        rounds_sampling = round_sampling(sampling)
        failover = ReplicaFailover(self.registry, cloud, self.metrics.fallback)
        verifier = GrpcVerifier(self.channels, failover, request_id, rounds_sampling, deadline)
        prompt_input = common_pb2.PromptInput(
            text=spec.prompt, messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in spec.messages]
        )
        while True:
            try:
                tokenizer = await self.tokenizers.get(verifier.replica, deadline.timeout())
                tok_resp = await self.channels.stub(verifier.replica.endpoint).Tokenize(
                    worker_pb2.TokenizeRequest(input=prompt_input), timeout=deadline.timeout()
                )
                break
            except grpc.RpcError as err:
                verifier.replace_after(err, "no replica of the pool answered")
        prompt = list(tok_resp.token_ids)
        max_context = min(edge.max_context, verifier.replica.max_context)
        check_context(len(prompt), spec.sampling.max_new_tokens, max_context)
        control = self._controller(spec, decision, edge)
        tree = (
            (spec.route.draft_tree or self.config.draft_tree) if spec.sampling.greedy else ()
        )  # sampling: a chain
        args = (
            self.channels.stub(edge.endpoint),
            request_id,
            rounds_sampling,
            self.config.draft_support_size,
            deadline,
        )
        if control.overlap:
            drafts = StreamedDrafts(*args, blocks_ahead=control.blocks_ahead, branching=tree)
        else:
            drafts = RequestedDrafts(*args, branching=tree)
        return _Session(
            spec=spec,
            decision=decision,
            edge=edge,
            deadline=deadline,
            sampling=rounds_sampling,
            verifier=verifier,
            drafts=drafts,
            control=control,
            prompt=prompt,
            max_context=max_context,
            text=TextRenderer(tokenizer, prompt, spec.sampling.stop, spec.sampling.max_new_tokens),
            guard=self._pace_guard(spec, decision, verifier.replica.pool.name, len(prompt)),
        )

    async def _generate(self, s: _Session, out: ChunkBuilder) -> AsyncIterator[inference_pb2.GenerateChunk]:
        """The rounds, then — if the device was lost or the pace guard handed the request over — the
        pool alone, or — if the pool was lost — the device alone, from the committed tokens. Yields
        every chunk but the last, which it leaves in `s.last` with `s.finish`."""
        spec, stats = s.spec, s.stats
        pace, handover = _Pace(), ""
        rounds = tandem_rounds(
            s.prompt,
            spec.sampling.max_new_tokens,
            s.max_context,
            s.verifier.replica.eos_token_id,
            s.control,
            s.drafts,
            s.verifier,
            stats,
            head_start=self.config.head_start,
        )
        try:
            async with contextlib.aclosing(rounds):
                async for c in rounds:
                    s.committed += c.tokens
                    delta, s.finish = s.text.feed(c.tokens, eos=c.eos)
                    s.last = out.chunk(c.tokens, delta, "tandem", c.worker_id, accepted=c.accepted)
                    if s.finish:
                        return
                    yield s.last
                    if pace.commit(len(c.tokens)) and s.guard.behind(*pace.now()):
                        handover = "slo_pace"  # too slow for the SLO: the pool decodes the rest alone
                        break
        except DeviceLost as lost:
            handover = lost.cause
        except CloudLost as lost:
            if spec.route.large_only:
                raise Unavailable(
                    f"TANDEM lost its cloud pool and the request needs the large model: {lost}"
                ) from None
            self._fell_back(stats, "cloud_unavailable")
            async for chunk in self._continue(s, s.edge, "edge", out):
                yield chunk
        if handover:
            self._fell_back(stats, handover)
            async for chunk in self._continue(s, s.verifier.replica, "cloud", out, s.verifier):
                yield chunk

    def _fell_back(self, stats: TandemStats, cause: str) -> None:
        stats.fallbacks[cause] = stats.fallbacks.get(cause, 0) + 1
        self.metrics.fallbacks.labels(cause).inc()

    async def _finish(self, s: _Session, out: ChunkBuilder) -> inference_pb2.GenerateChunk:
        """The final chunk, with the request's statistics and bill; the policy's estimates learn
        from its outcome."""
        if s.last is None or not s.finish:
            raise Unavailable("TANDEM generation ended without finishing")
        stats, control = s.stats, s.control
        await s.drafts.close()  # counts the blocks drafted ahead and never used
        stats.overlap_misses = s.drafts.dropped
        stats.device_energy_j += s.drafts.wasted_energy_j
        compute_ms = stats.cloud_compute_ms + s.extra_compute_ms
        pool = s.verifier.replica.pool
        bill = Bill(
            pool=pool.name,
            cloud_usd=cloud_cost_usd(
                priced(pool, self.placer.store.policy.pool_prices), compute_ms, out.produced
            ),
            cloud_compute_ms=compute_ms,
            target_passes=stats.target_passes + (1 if s.extra_compute_ms else 0),
            device_energy_j=stats.device_energy_j,
        )
        s.last.tandem.CopyFrom(stats_to_pb(stats))
        final = out.finish(s.last, s.finish, len(s.prompt), bill)
        self.metrics.observe_tandem(stats)
        outcome = Outcome(
            placement=Placement.TANDEM,
            prompt_chars=s.spec.route.prompt_chars,
            prompt_tokens=len(s.prompt),
            tokens=out.produced,
            ttft_ms=out.ttft_ms,
            client_rtt_ms=s.edge.state.rtt_ms,  # the client sits on the device
            token_ms=out.token_ms,
            device_id=s.edge.worker_id,
            pool=pool.name,
            decode_compute_ms=stats.cloud_compute_ms - stats.first_verify_compute_ms,
            greedy=s.spec.sampling.greedy,
            drafted=stats.drafted,
            accepted=tuple(control.accepted),
            reached=tuple(control.reached),
            draft_ms=control.draft_ms,
            link_ms=control.link_ms,
            ahead_extra_ms=control.ahead_extra_ms,
            verify_ms=control.verify_ms,
            verify_passes=max(stats.target_passes - 1, 0),
            head_start=self.config.head_start,
        )
        self.placer.finished(s.decision, outcome)
        return final

    async def _continue(
        self,
        s: _Session,
        worker: WorkerRecord,
        placement: str,
        out: ChunkBuilder,
        verifier: GrpcVerifier | None = None,
    ) -> AsyncIterator[inference_pb2.GenerateChunk]:
        """Generate the rest on one worker from the committed tokens; yields every chunk but the
        last, which it leaves in `s.last` with `s.finish`.

        With `verifier` (the cloud case) a replica that fails is replaced by another of the pool,
        continuing from the tokens committed so far; UNAVAILABLE when none is left.
        """
        while True:
            rest = common_pb2.SamplingParams()
            rest.CopyFrom(s.sampling)
            rest.max_new_tokens = s.text.max_new - s.text.produced
            req = worker_pb2.WorkerGenerateRequest(
                session_id=f"{out.request_id}-{placement}",
                input=common_pb2.PromptInput(token_ids=s.committed),
                sampling=rest,
            )
            call = self.channels.stub(worker.endpoint).Generate(req, timeout=s.deadline.timeout())
            try:
                async for w in call:
                    tokens = list(w.token_ids)
                    s.committed += tokens
                    if placement == "cloud":
                        s.extra_compute_ms += w.compute_ms
                    delta, s.finish = s.text.feed(tokens, eos=w.finish_reason == common_pb2.FINISH_REASON_EOS)
                    s.last = out.chunk(tokens, delta, placement, worker.worker_id)
                    if s.finish:
                        return
                    yield s.last
                return
            except grpc.RpcError as err:
                if verifier is None:
                    raise from_rpc_error(err) from None
                worker = verifier.replace_after(
                    err, "the cloud pool lost every replica after the device left"
                )
            finally:
                call.cancel()
