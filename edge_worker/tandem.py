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

import contextlib
from collections.abc import AsyncIterator, Callable

import grpc

from edge_worker.local_stub import LocalWorkerStub
from router.chunks import Bill, ChunkBuilder, TextRenderer
from router.cloud_view import CloudView
from router.convert import GenerateSpec
from router.policy.costs import cloud_cost_usd, priced
from router.policy.placement import Decision, Preference, Quality
from router.tandem.control import DraftLengthController
from router.tandem.loop import CloudLost, TandemStats, tandem_rounds
from router.tandem_io import Deadline, GrpcVerifier, RequestedDrafts, StreamedDrafts
from router.tandem_stream import stats_to_pb
from router.verify_broker import DEVICE_KEY, POOL_KEY
from runtime.params import check_context
from runtime.worker_servicer import WorkerServicer
from tandem.errors import Unavailable
from tandem.grpc_status import from_rpc_error
from tandem.v1 import common_pb2, fleet_pb2_grpc, inference_pb2, worker_pb2

ROUND_TIMEOUT_S = 5.0  # a draft or verify round slower than this counts as lost (the router's default)
SUPPORT_SIZE = 32  # sampling: tokens of q sent per drafted position


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


class DeviceTandem:
    """Runs a TANDEM request decided on the device (module docstring)."""

    def __init__(
        self,
        device_id: str,
        servicer: WorkerServicer,
        token: str,
        router: Callable[[], grpc.aio.Channel | None],
        state: Callable[[], common_pb2.WorkerState],
    ) -> None:
        self.device_id = device_id
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
        round_sampling = common_pb2.SamplingParams()
        round_sampling.CopyFrom(sampling)
        del round_sampling.stop[:]  # stop strings are matched here
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
        args = (self.stub, session, round_sampling, SUPPORT_SIZE, deadline)
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
        verifier = BrokeredVerifier(channel, metadata, session, round_sampling, deadline)
        text = TextRenderer(runner.tokenizer, prompt, spec.sampling.stop, max_new)
        stats = TandemStats()
        committed, last, finish = list(prompt), None, None
        eos = runner.spec.eos_token_id if runner.spec.eos_token_id is not None else -1
        rounds = tandem_rounds(
            prompt, max_new, runner.spec.max_context, eos, control, drafts, verifier, stats, head_start=True
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
                route = spec.route
                if route.preference is Preference.ONLY_CLOUD or route.quality is Quality.LARGE_REQUIRED:
                    raise Unavailable(
                        f"TANDEM lost the cloud and the request needs the large model: {lost}"
                    ) from None
                stats.fallbacks["cloud_unavailable"] = stats.fallbacks.get("cloud_unavailable", 0) + 1
                rest = common_pb2.SamplingParams()
                rest.CopyFrom(round_sampling)
                rest.max_new_tokens = max_new - text.produced
                req = worker_pb2.WorkerGenerateRequest(
                    session_id=f"{session}-edge",
                    input=common_pb2.PromptInput(token_ids=committed),
                    sampling=rest,
                )
                try:
                    async for w in self.stub.Generate(req, timeout=deadline.timeout_total()):
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
        stats.overlap_misses = drafts.dropped
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
