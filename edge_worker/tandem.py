"""TANDEM driven from the device, for its own apps' requests.

The same loop as the router's (router.tandem.loop, with the same draft-length controller built from
the decision): the device drafts in process (edge_worker.local_stub: no Draft call, and with
overlap it keeps drafting ahead while a verify is in flight) and verifies on the stream the router
brokers (router.verify_broker), which relays each round to a replica of the decided pool and fails
over between replicas by itself. Exactness is the loop's: greedy output is the target's token for
token, sampling follows the target's distribution.

If the cloud is lost mid-stream (no replica left, or the link to the router gone), the device
finishes the request on its own model when the request allows the small model's output; otherwise
the stream ends with the tokens so far and UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import grpc

from edge_worker.local_stub import LocalWorkerStub
from router.chunks import Bill, ChunkBuilder, TextRenderer
from router.cloud_view import CloudView
from router.config import DRAFT_SUPPORT_SIZE, ROUND_TIMEOUT_S
from router.convert import GenerateSpec
from router.device_outcome import outcome_to_pb
from router.policy.costs import cloud_cost_usd, priced
from router.policy.outcome import Outcome
from router.policy.placement import Decision, Placement
from router.tandem.control import DraftLengthController
from router.tandem.loop import (
    EMPTY_DRAFT,
    CloudLost,
    Commit,
    DeviceLost,
    Draft,
    TandemStats,
    Verdict,
    account_round,
    is_hit,
    tandem_rounds,
)
from router.tandem.speculation import RoundModel, blocks_ahead
from router.tandem_io import (
    Deadline,
    GrpcVerifier,
    RequestedDrafts,
    StreamedDrafts,
    replica_lost,
    round_sampling,
    verify_message,
)
from router.tandem_stream import stats_to_pb
from router.verify_broker import DEVICE_KEY, POOL_KEY
from runtime.params import check_context
from runtime.worker_servicer import WorkerServicer
from tandem.errors import DeadlineExceeded, Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc, inference_pb2, worker_pb2


class BrokeredVerifier(GrpcVerifier):
    """Verifies on the router's broker (Fleet.VerifyStream). The broker moves the session between
    replicas itself, so a lost stream here is a lost cloud (CloudLost)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: tuple[tuple[str, str], ...],
        session_id: str,
        sampling: common_pb2.SamplingParams,
        deadline: Deadline,
    ) -> None:
        super().__init__(None, None, session_id, sampling, deadline)  # type: ignore[arg-type]
        self.channel = channel
        self.metadata = metadata

    def _replica_id(self) -> str:
        return ""

    def _open(self):
        return fleet_pb2_grpc.FleetStub(self.channel).VerifyStream(
            timeout=self.deadline.timeout_total(), metadata=self.metadata
        )

    def _lost(self, err: grpc.RpcError) -> None:
        raise CloudLost(f"the cloud verify stream was lost: {err.code().name} {err.details()}")

    async def release(self) -> None:
        if self._call is not None:
            self._call.cancel()  # the broker releases the replica's session when the stream ends
            self._call = None


class PipelinedVerifier:
    """Verification pipelined over the broker's stream (Fleet.VerifyStream with epochs): blocks go
    out as soon as they are drafted, each continuing the one before as if it were a hit; verdicts
    come back in order; after a block that was not a hit the broker drops the rest of its epoch and
    so does this side. Any failure of the stream is a lost cloud (the broker fails over between
    replicas itself)."""

    def __init__(self, channel, metadata, session_id: str, sampling, deadline: Deadline) -> None:
        self.call = fleet_pb2_grpc.FleetStub(channel).VerifyStream(
            timeout=deadline.timeout_total(), metadata=metadata
        )
        self.session_id, self.sampling, self.deadline = session_id, sampling, deadline
        self.opened = False

    async def send(self, context, draft: Draft, epoch: int, guess: int | None) -> None:
        msg = verify_message(context, draft)
        msg.epoch = epoch
        if guess is not None:
            msg.bonus_guess = guess
        if not self.opened:  # the first message opens the session with the whole context
            self.opened = True
            msg.session_id, msg.context[:] = self.session_id, list(context)
            msg.sampling.CopyFrom(self.sampling)
        try:
            await self.call.write(msg)
        except (grpc.RpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as err:
            raise CloudLost(f"the cloud verify stream was lost: {err}") from None

    async def verdict(self) -> worker_pb2.VerifyResponse:
        try:
            resp = await asyncio.wait_for(self.call.read(), self.deadline.timeout())
        except TimeoutError:
            raise CloudLost("no verdict within the round timeout") from None
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and self.deadline.expired():
                raise DeadlineExceeded("the request's deadline passed while verifying") from None
            if not replica_lost(err):
                raise from_rpc_error(err) from None
            raise CloudLost(f"the cloud verify stream was lost: {err.code().name} {err.details()}") from None
        if resp is grpc.aio.EOF:
            raise CloudLost("the broker ended the verify stream")
        return resp

    async def release(self) -> None:
        self.call.cancel()  # the broker releases the replica's session when the stream ends


def pipeline_depth(
    control: DraftLengthController, gamma: int, round_trip_ms: float, hit_gap_ms: float
) -> int:
    """Blocks to keep in flight: enough to cover a verdict's way back (router.tandem.speculation
    .blocks_ahead) when a block sent ahead is worth it — its chance of a hit times the round trip it
    saves beats the drafting it wastes otherwise — else one at a time."""
    if not gamma or not worth_sending_ahead(control.model(), gamma, round_trip_ms):
        return 1
    return blocks_ahead(gamma, control.draft_ms, round_trip_ms, hit_gap_ms)


def worth_sending_ahead(model: RoundModel, gamma: int, round_trip_ms: float) -> bool:
    """Whether a block drafted ahead pays: its chance of a hit times the round trip it saves beats
    the drafting it wastes otherwise."""
    h = model.hit(gamma)
    return h * round_trip_ms > (1 - h) * gamma * model.draft_ms


async def pipelined_rounds(
    prompt: list[int],
    max_new_tokens: int,
    max_context: int,
    eos_token_id: int,
    control: DraftLengthController,
    drafts: StreamedDrafts,
    verifier: PipelinedVerifier,
    stats: TandemStats,
) -> AsyncIterator[Commit]:
    """TANDEM rounds with verification pipelined (PipelinedVerifier): the first verdict is the
    target's first token (the device prefills meanwhile), then blocks drafted ahead on the device
    keep up to `depth` in flight — enough to cover a verdict's way back over the link, so a run of
    hits does not wait for it. Commits come from verdicts alone, in order, so the output is the
    target's: a block is verified only when every block before it in its epoch was a hit, i.e.
    against exactly the context it continues."""
    warm = asyncio.ensure_future(drafts.head(prompt, 1))  # the device prefills while the cloud does
    rounds = _pipelined(
        prompt, max_new_tokens, max_context, eos_token_id, control, drafts, verifier, stats, warm
    )
    try:
        async with contextlib.aclosing(rounds):
            async for commit in rounds:
                yield commit
    finally:
        warm.cancel()


async def _pipelined(
    prompt, max_new_tokens, max_context, eos_token_id, control, drafts, verifier, stats, warm
) -> AsyncIterator[Commit]:
    committed, produced = list(prompt), 0
    await verifier.send(committed, EMPTY_DRAFT, 0, None)
    resp = await verifier.verdict()
    new = [resp.next_token_id]
    committed += new
    produced += 1
    verdict = Verdict(0, resp.next_token_id, 0.0, resp.compute_ms, resp.forward_passes, resp.worker_id)
    account_round(stats, 0, verdict, EMPTY_DRAFT)
    eos = eos_token_id in new
    yield Commit(new, 0, 0, resp.worker_id, eos)  # the first token does not wait for the device
    with contextlib.suppress(DeviceLost):  # a failed warm-up shows again in the first block
        stats.device_energy_j += (await warm).energy_j
    epoch, inflight = 0, collections.deque()
    # the context the next block continues: committed, plus the blocks in flight as hits
    assumed = list(committed)
    # the pool's verify call as the router measures it (the decision's model): what a run of hits
    # waits per block when enough are in flight. Not the gaps seen here, which follow the depth
    # (too few in flight → long gaps → fewer in flight).
    hit_gap_ms = control.config.prior.verify_ms
    round_trip_ms = control.link_ms + hit_gap_ms  # a block's way there and back, measured below
    last_verdict = time.perf_counter()
    wasted = drafts.wasted_energy_j
    budget = min(max_new_tokens, max_context - len(prompt))  # tokens the request may commit

    def room() -> int:  # … of which not committed or in flight
        return budget - (len(assumed) - len(prompt))

    while not eos and produced < max_new_tokens and len(committed) < max_context:
        gamma = control.next_gamma(room())
        depth = pipeline_depth(control, gamma, round_trip_ms, hit_gap_ms)
        # nothing goes ahead of a block sent without a guess: the next one waits for its verdict
        while gamma and len(inflight) < depth and room() > 1 and not (inflight and inflight[-1][1] is None):
            draft = (await drafts.block(assumed, gamma)).head(gamma)
            guess = draft.bonus_guess if len(draft.tokens) == gamma and not draft.alternatives else None
            ahead = bool(inflight)
            await verifier.send(assumed, draft, epoch, guess)
            inflight.append((draft, guess, time.perf_counter(), ahead))
            if guess is None:
                break
            assumed += [*draft.tokens, guess]
            await drafts.settle(assumed, True)  # the device keeps drafting from there meanwhile
            gamma = min(gamma, max(room() - 1, 0))
        if not inflight:  # no drafting (energy, or the last token): a plain verify step
            await verifier.send(committed, EMPTY_DRAFT, epoch, None)
            inflight.append((EMPTY_DRAFT, None, time.perf_counter(), False))
        resp = await verifier.verdict()
        draft, guess, sent_at, ahead = inflight.popleft()
        now = time.perf_counter()
        g = len(draft.tokens)
        path = draft.path(resp.path)
        new = [*path[: resp.accepted], resp.next_token_id]
        hit = is_hit(g, guess, resp.accepted, resp.next_token_id, resp.path)
        eos = eos_token_id in new
        if eos:
            new = new[: new.index(eos_token_id) + 1]
        committed += new
        produced += len(new)
        verdict = Verdict(
            resp.accepted, resp.next_token_id, (now - sent_at) * 1e3, resp.compute_ms, resp.forward_passes,
            resp.worker_id, resp.path,
        )  # fmt: skip
        account_round(stats, g, verdict, draft)
        if not ahead:  # sent after the previous verdict: the whole way there and back
            round_trip_ms = 0.7 * round_trip_ms + 0.3 * (now - sent_at) * 1e3
        # The controller's round model as the router-driven loop feeds it: the verify call is the
        # pool's, the link the rest of a block's way there and back; a block sent ahead is a hit
        # round's, which waited its gap since the previous verdict — beyond the verify call, what
        # the model's overlap says (the ahead extra learns the difference).
        gap_ms = (now - (last_verdict if ahead else sent_at)) * 1e3
        overhead = gap_ms - hit_gap_ms - (draft.compute_ms if ahead else 0.0)
        control.observe(
            g, resp.accepted, draft.compute_ms, overhead, hit_gap_ms, draft.energy_j,
            predrafted=ahead,
            guessed=None if guess is None or resp.path or resp.accepted < g else hit,
        )  # fmt: skip
        last_verdict = now
        if not hit:  # the broker drops the rest of this epoch; so does this side
            epoch += 1
            dropped_j = sum(d.energy_j for d, *_ in inflight)  # drafted all the same
            stats.device_energy_j += dropped_j
            stats.overlap_misses += len(inflight)
            control.spend(dropped_j)
            inflight.clear()
            assumed = list(committed)
            if g:
                await drafts.settle(committed, False)
        control.spend(drafts.wasted_energy_j - wasted)
        wasted = drafts.wasted_energy_j
        yield Commit(new, resp.accepted, g, resp.worker_id, eos)


def pipelines(view: CloudView, decision: Decision) -> bool:
    """Whether to pipeline verification: where the decision's round model prices a token lower
    with blocks sent ahead (a run of hits waits for the pool's verify calls, not the link; a miss
    drops the blocks in flight) than with one block at a time (every round crosses the link and
    back, while the device drafts ahead locally) — each at its best draft length, and with every
    drafted token also charged its drafting time: blocks drafted and dropped cost the device (and,
    on a device sharing a machine with its cloud, the cloud) that time. Never over a link shorter
    than a verify call, where the blocks sent ahead were measured not to pay."""
    m = decision.draft_model
    rtt = view.device.rtt_ms
    verify_ms = next((p.verify_ms for p in view.pools if p.name == decision.pool), 0.0)
    if m is None or not m.overlap or rtt < verify_ms:
        return False
    ahead = dataclasses.replace(m, link_ms=rtt)  # the link paid on misses only
    one_at_a_time = dataclasses.replace(m, link_ms=0.0, verify_ms=m.verify_ms + rtt)
    p = decision.draft_prices
    prices = dataclasses.replace(p, per_draft=p.per_draft + p.per_ms * m.draft_ms)
    max_gamma = max(view.policy.max_draft_length, 1)
    return min(ahead.prices_per_token(max_gamma, prices)) < min(
        one_at_a_time.prices_per_token(max_gamma, prices)
    )


class DeviceTandem:
    """Runs a TANDEM request decided on the device (module docstring)."""

    def __init__(
        self,
        device_id: str,
        servicer: WorkerServicer,
        token: str,
        router: Callable[[], grpc.aio.Channel | None],
        state: Callable[[], common_pb2.WorkerState],
        report: Callable[[fleet_pb2.DeviceOutcome], object] = lambda outcome: None,
    ) -> None:
        """`report`: sends the router what a finished session measured (router.device_outcome)."""
        self.device_id = device_id
        self.report = report
        self.servicer = servicer
        self.stub = LocalWorkerStub(servicer)
        self.token = token
        self.router = router
        self.state = state

    async def stream(
        self,
        spec: GenerateSpec,
        request_id: str,
        sampling: common_pb2.SamplingParams,
        decision: Decision,
        view: CloudView,
        out: ChunkBuilder,
        remaining_s: float | None,
    ) -> AsyncIterator[inference_pb2.GenerateChunk]:
        channel = self.router()
        if channel is None:
            raise Unavailable("the cloud is unreachable: no router configured")
        runner = self.servicer.runner
        deadline = Deadline(remaining_s, ROUND_TIMEOUT_S)
        rounds_sampling = round_sampling(sampling)
        prompt = runner.prompt_ids(text=spec.prompt or None, messages=list(spec.messages) or None)
        max_new = spec.sampling.max_new_tokens
        check_context(len(prompt), max_new, runner.spec.max_context)
        control = DraftLengthController(
            decision.draft_control(
                view.policy.max_draft_length, overlap=spec.route.overlap, fixed_gamma=spec.route.draft_length
            ),
            energy_per_token_j=self.state().energy_per_token_joules,
            energy_budget_j=decision.energy_cap_j,
        )
        session = f"device-{request_id}"
        tree = spec.route.draft_tree if spec.sampling.greedy else ()
        args = (self.stub, session, rounds_sampling, DRAFT_SUPPORT_SIZE, deadline)
        drafts = (
            StreamedDrafts(*args, blocks_ahead=control.blocks_ahead, branching=tree)
            if control.overlap
            else RequestedDrafts(*args, branching=tree)
        )
        metadata = (
            ("authorization", f"Bearer {self.token}"),
            (DEVICE_KEY, self.device_id),
            (POOL_KEY, decision.pool),
        )
        text = TextRenderer(runner.tokenizer, prompt, spec.sampling.stop, max_new)
        stats = TandemStats()
        committed, last, finish = list(prompt), None, None
        eos = runner.spec.eos_token_id if runner.spec.eos_token_id is not None else -1
        if control.overlap and pipelines(view, decision):  # blocks drafted ahead are verified ahead too
            verifier = PipelinedVerifier(channel, metadata, session, rounds_sampling, deadline)
            rounds = pipelined_rounds(
                prompt, max_new, runner.spec.max_context, eos, control, drafts, verifier, stats
            )
        else:
            verifier = BrokeredVerifier(channel, metadata, session, rounds_sampling, deadline)
            rounds = tandem_rounds(
                prompt,
                max_new,
                runner.spec.max_context,
                eos,
                control,
                drafts,
                verifier,
                stats,
                head_start=True,
            )
        try:
            try:
                async with contextlib.aclosing(rounds):
                    async for c in rounds:
                        committed += c.tokens
                        delta, finish = text.feed(c.tokens, eos=c.eos)
                        last = out.chunk(c.tokens, delta, "tandem", c.worker_id, accepted=c.accepted)
                        if finish:
                            break
                        yield last
            except CloudLost as lost:
                if spec.route.large_only:
                    raise Unavailable(
                        f"TANDEM lost the cloud and the request needs the large model: {lost}"
                    ) from None
                stats.fallbacks["cloud_unavailable"] = stats.fallbacks.get("cloud_unavailable", 0) + 1
                rest = common_pb2.SamplingParams()
                rest.CopyFrom(rounds_sampling)
                rest.max_new_tokens = max_new - text.produced
                req = worker_pb2.WorkerGenerateRequest(
                    session_id=f"{session}-edge",
                    input=common_pb2.PromptInput(token_ids=committed),
                    sampling=rest,
                )
                replies = self.stub.Generate(req, timeout=deadline.timeout_total())
                try:
                    async with contextlib.aclosing(replies):
                        async for w in replies:
                            committed += list(w.token_ids)
                            stats.device_energy_j += w.energy_joules
                            done = w.finish_reason == common_pb2.FINISH_REASON_EOS
                            delta, finish = text.feed(list(w.token_ids), eos=done)
                            last = out.chunk(list(w.token_ids), delta, "edge", self.device_id)
                            if finish:
                                break
                            yield last
                except grpc.RpcError as err:
                    raise from_rpc_error(err) from None
        finally:
            await drafts.close()
            await verifier.release()
        if last is None or not finish:
            raise Unavailable("TANDEM generation ended without finishing")
        stats.overlap_misses += drafts.dropped
        stats.device_energy_j += drafts.wasted_energy_j
        pool = next((p.pool for p in view.pools if p.name == decision.pool), None)
        usd = (
            cloud_cost_usd(priced(pool, view.policy.pool_prices), stats.cloud_compute_ms, out.produced)
            if pool
            else 0.0
        )
        bill = Bill(
            pool=decision.pool,
            cloud_usd=usd,
            cloud_compute_ms=stats.cloud_compute_ms,
            target_passes=stats.target_passes,
            device_energy_j=stats.device_energy_j,
        )
        last.tandem.CopyFrom(stats_to_pb(stats))
        yield out.finish(last, finish, len(prompt), bill)
        if not stats.fallbacks:  # a session finished on the device alone measured no round's end
            outcome = Outcome(
                placement=Placement.TANDEM,
                prompt_chars=spec.route.prompt_chars,
                prompt_tokens=len(prompt),
                tokens=out.produced,
                ttft_ms=out.ttft_ms,
                client_rtt_ms=0.0,
                token_ms=out.token_ms,
                device_id=self.device_id,
                pool=decision.pool,
                greedy=spec.sampling.greedy,
                drafted=stats.drafted,
                accepted=tuple(control.accepted),
                reached=tuple(control.reached),
                draft_ms=control.draft_ms,
            )
            self.report(outcome_to_pb(outcome, decision))
