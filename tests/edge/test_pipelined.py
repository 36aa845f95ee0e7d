"""Pipelined verification (edge_worker.tandem.pipelined_rounds) against in-memory fakes of the
device's run-ahead drafting and of the router's broker (pure logic): exact output, blocks sent
ahead, stale epochs dropped."""

from __future__ import annotations

import asyncio

from edge_worker.tandem import pipelined_rounds
from router.tandem.control import DraftControlConfig, DraftLengthController
from router.tandem.loop import Draft, TandemStats
from tandem.v1 import worker_pb2
from tests.router.tandem.test_loop import draft_next, target_next


class RunAhead:
    """The device's run-ahead drafting: a block continues `committed` with γ tokens and a guess."""

    def __init__(self, wrong_every: int) -> None:
        self.wrong_every = wrong_every
        self.wasted_energy_j = 0.0
        self.restarts = 0

    async def head(self, committed, n):
        return Draft([draft_next(list(committed), self.wrong_every)], energy_j=0.01)

    async def block(self, committed, gamma):
        ctx, out = list(committed), []
        for _ in range(gamma + 1):
            out.append(draft_next(ctx, self.wrong_every))
            ctx.append(out[-1])
        await asyncio.sleep(0)
        return Draft(out[:gamma], bonus_guess=out[gamma], energy_j=0.01 * gamma)

    async def settle(self, committed, hit):
        if not hit:
            self.restarts += 1


class Broker:
    """The router's broker over a perfect target: verifies in order, drops a stale epoch's blocks
    after a block that was not a hit, answers after `delay_s` (the link)."""

    def __init__(self, delay_s: float = 0.002) -> None:
        self.delay_s = delay_s
        self.queue: asyncio.Queue = asyncio.Queue()
        self.answers: asyncio.Queue = asyncio.Queue()
        self.committed: list[int] = []
        self.epoch = 0
        self.most_in_flight = 0
        self.dropped = 0
        self.worker = asyncio.ensure_future(self._run())

    async def send(self, context, draft, epoch, guess):
        if not self.committed:
            self.committed = list(context)
        self.queue.put_nowait((len(context), draft, epoch, guess))
        self.most_in_flight = max(self.most_in_flight, self.queue.qsize())

    async def _run(self):
        while True:
            length, draft, epoch, guess = await self.queue.get()
            await asyncio.sleep(self.delay_s)
            if epoch < self.epoch:
                self.dropped += 1
                continue
            self.epoch = epoch
            assert length == len(self.committed), "a block verified against another context"
            k, ctx = 0, list(self.committed)
            while k < len(draft.tokens) and draft.tokens[k] == target_next(ctx):
                ctx.append(draft.tokens[k])
                k += 1
            nxt = target_next(ctx)
            self.committed = [*ctx, nxt]
            hit = guess is not None and k == len(draft.tokens) and nxt == guess
            self.answers.put_nowait(
                worker_pb2.VerifyResponse(
                    accepted=k, next_token_id=nxt, forward_passes=1, worker_id="r1", epoch=epoch
                )
            )
            if guess is not None and not hit:
                self.epoch += 1

    async def verdict(self):
        return await self.answers.get()

    async def release(self):
        self.worker.cancel()


async def run(wrong_every: int, n: int = 200, gamma: int = 4):
    control = DraftLengthController(DraftControlConfig(fixed_gamma=gamma))
    drafts, broker, stats = RunAhead(wrong_every), Broker(), TandemStats()
    prompt = [5, 6, 7]
    out = []
    async for c in pipelined_rounds(prompt, n, 4096, -1, control, drafts, broker, stats):
        out += c.tokens
    await broker.release()
    want, ctx = [], list(prompt)
    for _ in range(len(out)):
        want.append(target_next(ctx))
        ctx.append(want[-1])
    return out, want, broker, stats, drafts


async def test_pipelined_rounds_commit_exactly_the_targets_tokens():
    for wrong_every in (0, 3, 7, 13):
        out, want, *_ = await run(wrong_every)
        assert out == want and len(out) == 200, wrong_every


async def test_blocks_go_ahead_of_their_verdicts_and_a_miss_drops_the_rest_of_its_epoch():
    out, want, broker, stats, drafts = await run(wrong_every=11)
    assert out == want
    assert broker.most_in_flight >= 2  # sent ahead, not one round trip per block
    assert broker.dropped > 0 and drafts.restarts > 0  # misses: stale blocks dropped, drafting restarted
    easy = await run(wrong_every=0)
    assert easy[0] == easy[1] and easy[3].rounds < stats.rounds and easy[2].dropped == 0  # all hits


def test_verification_is_pipelined_where_the_link_is_long_and_hits_are_likely():
    from edge_worker.tandem import pipelines, worth_sending_ahead
    from router.cloud_view import CloudView
    from router.policy.config import PolicyConfig
    from router.policy.placement import Decision
    from router.tandem.speculation import FASTEST, RoundModel, RoundPrices, constant
    from tests.router.policy.test_decide import device, pool

    def view(rtt_ms):
        return CloudView(
            1, PolicyConfig(), (pool("gpu", verify_ms=12.0),), {}, device(rtt_ms=rtt_ms), 0.0, {}, 15.0
        )

    def decision(alpha, prices=FASTEST, overlap=True):
        model = RoundModel(constant(alpha), 2.0, 30.0, 12.0, overlap=overlap)
        return Decision("tandem", "", pool="gpu", initial_draft_length=16, draft_model=model,
                        draft_prices=prices)  # fmt: skip

    energy = RoundPrices(per_ms=1.0, per_draft=5.0)  # a drafted token's energy as dear as 5 ms
    assert pipelines(view(30.0), decision(0.9))  # a long link, likely hits: pipelined
    assert pipelines(view(30.0), decision(0.9, energy))  # …even where drafts cost energy
    assert not pipelines(view(2.0), decision(0.9))  # a short link: the verify call dominates
    # unlikely hits: the blocks sent ahead would mostly be dropped, their drafting time wasted
    assert not pipelines(view(30.0), decision(0.2))
    assert not pipelines(view(30.0), decision(0.6, energy))
    assert not pipelines(view(30.0), decision(0.9, overlap=False))  # no drafting ahead at all
    # judged at each way's best draft length, not at the decision's (here 16, where hits are rare)
    assert worth_sending_ahead(decision(0.9).draft_model, 16, 30.0) is False
