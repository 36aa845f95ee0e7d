"""The Worker gRPC service over a ModelRunner — the same for edge workers and cloud replicas.

Thin: each handler converts the message, admits the call (bounded in-flight count → RESOURCE_EXHAUSTED),
runs the runner's plain-data operation on the model executor thread and converts the result back.
What differs between an edge worker and a replica (identity, live state, energy) comes in through
a :class:`WorkerHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from runtime.convert import messages_from_pb, sampling_from_pb
from runtime.grpc_errors import map_errors, map_stream_errors
from runtime.llm.runner import ForwardResult, ModelRunner, Pass, check_verify, finish_verify, verify_pass
from runtime.llm.speculative import SparseDist
from runtime.params import MAX_PATHS, SamplingConfig, tree_problem
from runtime.worker_metrics import WorkerMetrics
from tandem.convert import FINISH_REASONS
from tandem.errors import InvalidArgument, ResourceExhausted
from tandem.v1 import common_pb2, worker_pb2, worker_pb2_grpc

_GREEDY = SamplingConfig(max_new_tokens=1)


def _round_sampling(request) -> SamplingConfig:
    """Sampling of a Draft/Verify round: the request's, where max_new_tokens does not apply."""
    if not request.HasField("sampling"):
        return _GREEDY
    msg = type(request.sampling)()
    msg.CopyFrom(request.sampling)
    msg.max_new_tokens = msg.max_new_tokens or 1
    return sampling_from_pb(msg)


def check_branching(branching, cfg: SamplingConfig) -> list[int]:
    """A draft tree's shape (DraftRequest.branching), validated; [] for a chain."""
    problem = tree_problem(branching, cfg.greedy)
    if problem:
        raise InvalidArgument("branching", problem)
    return list(branching)


class _RunAhead:
    """Device-side state of a DraftStream: the epoch's committed context plus the blocks (and bonus
    guesses) drafted on top of it, and how many of those the router has confirmed."""

    def __init__(self) -> None:
        self.session_id = ""
        self.sampling = _GREEDY
        self.support = 32
        self.epoch = -1
        self.base: list[int] = []
        self.drafted: list[int] = []  # blocks and guesses of this epoch, in order
        self.produced = 0  # blocks sent in this epoch
        self.verified = 0
        self.gamma = 4
        self.branching: list[int] = []
        self.max_ahead = 1
        self.closed = False
        self.error: Exception | None = None
        self.cancel = threading.Event()  # set when a new epoch makes the running draft stale

    def apply(self, msg, vocab: int) -> None:
        try:
            if msg.session_id:
                self.session_id = msg.session_id
            if msg.HasField("sampling"):
                self.sampling = _round_sampling(msg)
            if msg.support_size:
                self.support = msg.support_size
            if msg.branching:
                self.branching = check_branching(msg.branching, self.sampling)
            if msg.num_tokens:
                if not 1 <= msg.num_tokens <= 64:
                    raise InvalidArgument("num_tokens", f"must be in [1, 64], got {msg.num_tokens}")
                self.gamma = msg.num_tokens
            if msg.max_blocks_ahead:
                self.max_ahead = max(1, min(msg.max_blocks_ahead, 8))
            if msg.context:
                ids = list(msg.context)
                if any(not 0 <= t < vocab for t in ids):
                    raise InvalidArgument("context", f"token ids must be in [0, {vocab})")
                self.cancel.set()
                self.cancel = threading.Event()
                self.epoch, self.base, self.drafted = msg.epoch, ids, []
                self.produced = self.verified = 0
            elif msg.epoch == self.epoch:
                self.verified = max(self.verified, msg.verified_blocks)
            if not self.session_id:
                raise InvalidArgument("session_id", "required in the first message")
        except InvalidArgument as exc:
            self.error = exc

    def can_draft(self) -> bool:
        return self.epoch >= 0 and not self.closed and self.produced - self.verified < self.max_ahead

    def chain(self) -> list[int]:
        return self.base + self.drafted

    def extend(self, tokens: list[int]) -> None:
        self.drafted.extend(tokens)
        self.produced += 1


class WorkerHost(Protocol):
    """What the process hosting the servicer provides."""

    def info(self) -> common_pb2.WorkerInfo: ...

    def state(self) -> common_pb2.WorkerState: ...

    def spend_energy(self, prefill_tokens: int, generated_tokens: int) -> float:
        """Account the energy of computing; returns joules spent (0 for mains-powered replicas)."""
        ...


Forward = Callable[[Pass], Awaitable[ForwardResult]]


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    def __init__(
        self,
        runner: ModelRunner,
        host: WorkerHost,
        metrics: WorkerMetrics,
        max_inflight: int = 64,
        executor: ThreadPoolExecutor | None = None,
        forward: Forward | None = None,
    ) -> None:
        """`forward` runs the target passes of Verify and Generate (a cloud replica batches them
        across sessions: cloud_worker.batching); by default each runs alone on the model thread."""
        self.runner = runner
        self.host = host
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.inflight = 0
        # One model thread: onnxruntime already uses its intra-op threads; steps of different
        # sessions interleave at token granularity.
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.forward: Forward = forward or self._forward_alone
        self.released: Callable[[str], None] = lambda session_id: None  # hears of every session released
        metrics.watch_cache(runner.cache)

    async def _forward_alone(self, p: Pass) -> ForwardResult:
        return (await self._run(self.runner.logits_after_many, [p]))[0]

    def run_on_model_thread(self, fn, *args):
        """Await `fn(*args)` on the model thread (where every onnxruntime call of this worker runs)."""
        return self._run(fn, *args)

    @contextlib.contextmanager
    def _admit(self, method: str):
        if self.inflight >= self.max_inflight:
            self.metrics.count(method, "RESOURCE_EXHAUSTED")
            raise ResourceExhausted(
                f"worker busy: {self.inflight} calls in flight (limit {self.max_inflight})"
            )
        self.inflight += 1
        self.metrics.inflight.inc()
        status = "OK"
        try:
            yield
        except BaseException as exc:
            status = getattr(
                exc, "status", "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "INTERNAL"
            )
            raise
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
            self.metrics.count(method, status)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _prompt(self, msg: common_pb2.PromptInput) -> list[int]:
        return self.runner.prompt_ids(
            text=msg.text or None,
            messages=messages_from_pb(msg.messages) or None,
            token_ids=list(msg.token_ids) or None,
        )

    @map_errors
    async def Describe(self, request, context):
        return worker_pb2.DescribeResponse(info=self.host.info(), state=self.host.state())

    @map_errors
    async def Tokenize(self, request, context):
        return worker_pb2.TokenizeResponse(token_ids=await self._run(self._prompt, request.input))

    @map_stream_errors
    async def Generate(self, request, context) -> AsyncIterator[worker_pb2.WorkerGenerateChunk]:
        cfg = sampling_from_pb(request.sampling)
        sid = request.session_id or f"anon-{uuid.uuid4().hex}"
        with self._admit("Generate"), self.runner.operation(sid) as op:
            prompt = await self._run(self._prompt, request.input)
            gen = self.runner.generation(sid, prompt, cfg)  # validates the context length up front
            produced = 0
            # the next token's pass is submitted before this token's chunk is sent, so the model
            # (and a batch this session is part of) never waits for the stream's write
            ahead = asyncio.ensure_future(self.forward(gen.next_pass(op))) if not gen.done else None
            try:
                while ahead is not None:
                    step = gen.advance(await ahead)
                    ahead = asyncio.ensure_future(self.forward(gen.next_pass(op))) if not gen.done else None
                    produced += len(step.token_ids)
                    prefill = len(prompt) - step.cached_tokens if produced == len(step.token_ids) else 0
                    self.metrics.tokens.inc(len(step.token_ids))
                    if step.forward_passes:
                        self.metrics.forward_seconds.labels(self.metrics.kind, "Generate").observe(
                            step.compute_ms / 1e3
                        )
                    chunk = worker_pb2.WorkerGenerateChunk(
                        token_ids=step.token_ids,
                        text=step.text,
                        energy_joules=self.host.spend_energy(prefill, len(step.token_ids)),
                        compute_ms=step.compute_ms,
                        forward_passes=step.forward_passes,
                        cached_tokens=step.cached_tokens,
                    )
                    if step.finish_reason:
                        chunk.finish_reason = FINISH_REASONS[step.finish_reason]
                        chunk.usage.prompt_tokens = len(prompt)
                        chunk.usage.completion_tokens = produced
                    yield chunk
            finally:
                if ahead is not None and not ahead.done():
                    ahead.cancel()  # the caller left: its pass is not wanted
                if not request.keep_session:
                    # a pass still in flight (a cancelled call can leave one) sees the release and
                    # does not re-create the cache
                    self.runner.release(sid)
                    self.released(sid)

    def _context(self, ids, field: str = "context") -> list[int]:
        ids = list(ids)
        if not ids:
            raise InvalidArgument(field, "must not be empty")
        vocab = self.runner.spec.vocab_size
        bad = next((t for t in ids if not 0 <= t < vocab), None)
        if bad is not None:
            raise InvalidArgument(field, f"token id {bad} outside the vocabulary [0, {vocab})")
        return ids

    @map_errors
    async def Draft(self, request, context):
        if not request.session_id:
            raise InvalidArgument("session_id", "required")
        cfg = _round_sampling(request)
        ctx = self._context(request.context)
        n = request.num_tokens
        limit = self.runner.spec.max_context
        if not 1 <= n <= 64:
            raise InvalidArgument("num_tokens", f"must be in [1, 64], got {n}")
        if len(ctx) + n - 1 > limit:
            raise InvalidArgument(
                "num_tokens", f"{len(ctx)} context tokens plus {n} drafted exceed the context of {limit}"
            )
        support = request.support_size or 32
        branching = check_branching(request.branching, cfg)
        cancel = threading.Event()  # a pre-draft the router no longer wants stops at the next token
        with self._admit("Draft"):
            try:
                res = await self._run(
                    self.runner.draft, request.session_id, ctx, n, cfg, support, cancel, branching
                )
            except asyncio.CancelledError:
                cancel.set()
                raise
        self.metrics.tokens.inc(n)
        if res.forward_passes:
            self.metrics.forward_seconds.labels(self.metrics.kind, "Draft").observe(
                res.compute_ms / 1e3 / res.forward_passes
            )
        energy = self.host.spend_energy(*_draft_work(ctx, res))
        out = worker_pb2.DraftResponse(
            token_ids=res.token_ids,
            cached_tokens=res.cached_tokens,
            compute_ms=res.compute_ms,
            energy_joules=energy,
        )
        for q in res.dists or ():
            out.distributions.add(token_ids=q.ids.tolist(), probs=q.probs.tolist())
        for alt in res.alternatives:
            out.alternatives.add(token_ids=alt)
        return out

    @map_stream_errors
    async def DraftStream(self, request_iterator, context):
        """Run-ahead drafting: see worker.proto. One model call per block (γ drafted + the bonus guess)."""
        state = _RunAhead()
        wake = asyncio.Event()

        async def read_control() -> None:
            try:
                async for msg in request_iterator:
                    state.apply(msg, self.runner.spec.vocab_size)
                    wake.set()
            finally:
                state.closed = True
                wake.set()

        reader = asyncio.create_task(read_control())
        try:
            while True:
                if state.error:
                    raise state.error
                if state.closed:
                    return
                if not state.can_draft():
                    wake.clear()
                    if not (state.can_draft() or state.closed or state.error):
                        await wake.wait()
                    continue
                epoch, ctx, gamma = state.epoch, state.chain(), state.gamma
                if len(ctx) + gamma > self.runner.spec.max_context:
                    wake.clear()  # no room to run further ahead; wait for the router
                    await wake.wait()
                    continue
                with self._admit("DraftStream"):
                    res = await self._run(
                        self.runner.draft,
                        state.session_id,
                        ctx,
                        gamma + 1,
                        state.sampling,
                        state.support,
                        state.cancel,
                        state.branching[:gamma],
                    )
                energy = self.host.spend_energy(*_draft_work(ctx, res))
                self.metrics.tokens.inc(len(res.token_ids))
                if epoch != state.epoch or len(res.token_ids) < gamma + 1:
                    continue  # the router restarted drafting meanwhile: this block is stale
                block = worker_pb2.DraftBlock(
                    epoch=epoch,
                    index=state.produced,
                    start_length=len(ctx),
                    token_ids=res.token_ids[:gamma],
                    bonus_guess=res.token_ids[gamma],
                    compute_ms=res.compute_ms,
                    energy_joules=energy,
                )
                for q in (res.dists or [])[:gamma]:
                    block.distributions.add(token_ids=q.ids.tolist(), probs=q.probs.tolist())
                for alt in res.alternatives:  # paths that differ within the block (not only in the guess)
                    if alt[:gamma] != res.token_ids[:gamma]:
                        block.alternatives.add(token_ids=alt[:gamma])
                state.extend(res.token_ids[: gamma + 1])
                yield block
        finally:
            state.cancel.set()
            reader.cancel()

    @map_errors
    async def Verify(self, request, context):
        t_arrived = time.perf_counter()
        if not request.session_id:
            raise InvalidArgument("session_id", "required")
        resp, _ = await self._verify(
            request.session_id,
            self._context(request.context),
            request.draft_token_ids,
            request.draft_distributions,
            _round_sampling(request),
            t_arrived,
            request.draft_alternatives,
        )
        return resp

    @map_stream_errors
    async def VerifyStream(self, request_iterator, context):
        """A session's rounds on one stream: see worker.proto. The stream's context is extended by
        each verdict; its session's cache is released when the stream ends, however it ends."""
        sid, cfg, ctx = "", _GREEDY, []
        try:
            async for msg in request_iterator:
                t_arrived = time.perf_counter()
                if not sid:
                    if not msg.session_id:
                        raise InvalidArgument("session_id", "required in the first message")
                    if not msg.context:
                        raise InvalidArgument("context", "required in the first message")
                    sid, cfg = msg.session_id, _round_sampling(msg)
                if msg.context:
                    ctx = self._context(msg.context)
                if msg.context_length and msg.context_length != len(ctx):
                    raise InvalidArgument(
                        "context_length",
                        f"the stream's context holds {len(ctx)} tokens, not {msg.context_length}",
                    )
                resp, path = await self._verify(
                    sid,
                    ctx,
                    msg.draft_token_ids,
                    msg.draft_distributions,
                    cfg,
                    t_arrived,
                    msg.draft_alternatives,
                )
                ctx = ctx + path[: resp.accepted] + [resp.next_token_id]
                yield resp
        finally:
            if sid:
                self.runner.release(sid)
                self.released(sid)

    async def _verify(
        self,
        session_id: str,
        ctx: list[int],
        draft_ids,
        draft_dists,
        cfg: SamplingConfig,
        t_arrived: float,
        draft_alternatives=(),
    ) -> tuple[worker_pb2.VerifyResponse, list[int]]:
        """One verification round of `draft_ids` (and a tree's other paths) continuing `ctx`
        (validated); the verdict and the path it commits. Raises InvalidArgument naming the field at
        fault, ResourceExhausted when the worker is full."""
        drafted = list(draft_ids)
        if drafted:
            self._context(drafted, "draft_token_ids")
        alternatives = [list(a.token_ids) for a in draft_alternatives]
        if len(alternatives) >= MAX_PATHS:
            raise InvalidArgument(
                "draft_alternatives", f"at most {MAX_PATHS - 1} alternatives, got {len(alternatives)}"
            )
        for i, alt in enumerate(alternatives):
            if alt:
                self._context(alt, f"draft_alternatives[{i}]")
        if len(drafted) > 64:
            raise InvalidArgument("draft_token_ids", f"at most 64 drafted tokens, got {len(drafted)}")
        limit = self.runner.spec.max_context
        if len(ctx) + len(drafted) > limit:
            raise InvalidArgument(
                "draft_token_ids",
                f"{len(ctx)} context plus {len(drafted)} drafted tokens exceed the context of {limit}",
            )
        dists = None
        if not cfg.greedy:
            if len(draft_dists) != len(drafted):
                raise InvalidArgument(
                    "draft_distributions",
                    f"sampling needs one per drafted token: got {len(draft_dists)} for {len(drafted)} tokens",
                )
            dists = []
            for i, d in enumerate(draft_dists):
                if (
                    len(d.token_ids) != len(d.probs)
                    or not d.token_ids
                    or min(d.probs) < 0
                    or sum(d.probs) <= 0
                ):
                    raise InvalidArgument(
                        f"draft_distributions[{i}]",
                        "needs matching, non-empty token_ids and non-negative probs with a positive sum",
                    )
                if drafted[i] not in d.token_ids:
                    raise InvalidArgument(
                        f"draft_distributions[{i}]", f"drafted token {drafted[i]} is not in its support"
                    )
                dists.append(SparseDist(np.asarray(d.token_ids, np.int64), np.asarray(d.probs, np.float32)))
        check_verify(drafted, dists, cfg, alternatives)
        with self._admit("Verify"):
            t_start = time.perf_counter()
            with self.runner.operation(session_id) as op:
                fwd = await self.forward(verify_pass(session_id, ctx, drafted, op, alternatives))
            res = finish_verify(fwd, ctx, drafted, dists, cfg, alternatives)
        if res.forward_passes:
            self.metrics.forward_seconds.labels(self.metrics.kind, "Verify").observe(res.compute_ms / 1e3)
        return worker_pb2.VerifyResponse(
            accepted=res.round.accepted,
            next_token_id=res.round.next_token,
            all_accepted=res.round.accepted == len(drafted),
            cached_tokens=res.cached_tokens,
            compute_ms=res.compute_ms,
            forward_passes=res.forward_passes,
            queue_ms=(t_start - t_arrived) * 1e3,
            path=res.path,
        ), ([drafted] + alternatives)[res.path]

    @map_errors
    async def GetTokenizer(self, request, context):
        tok = self.runner.tokenizer
        return worker_pb2.GetTokenizerResponse(
            tokenizer_id=tok.id, tokenizer_json=tok.json_text.encode("utf-8")
        )

    @map_errors
    async def Release(self, request, context):
        if not request.session_id:
            raise InvalidArgument("session_id", "required")
        self.released(request.session_id)
        return worker_pb2.ReleaseResponse(released=self.runner.release(request.session_id))


def _draft_work(ctx: list[int], res) -> tuple[int, int]:
    """(prefill, generated) tokens a draft computed, for its energy: the first pass's uncached
    context (its last position yields the first drafted token), then the drafted tokens — of
    every path, for a tree."""
    prefill = max(0, len(ctx) - res.cached_tokens - 1)
    if not res.alternatives:
        return prefill, len(res.token_ids)
    return prefill, max(len(res.token_ids), res.computed_tokens - prefill - 1)
