"""The TANDEM loop's orchestration, with plain in-memory draft/target functions (pure logic)."""

from __future__ import annotations

import asyncio

import pytest

from router.tandem.control import DraftControlConfig, DraftLengthController
from router.tandem.loop import DeviceLost, Draft, TandemStats, Verdict, tandem_rounds

EOS = 0


def target_next(context) -> int:
    return (sum(context) * 31 + len(context)) % 97 + 1  # never EOS unless forced


def draft_next(context, wrong_every: int) -> int:
    t = target_next(context)
    if wrong_every and len(context) % wrong_every == 0:
        t = t % 97 + 1  # a wrong guess
    return t


class RequestedSource:
    """Drafts on request, like one Draft call per round."""

    def __init__(self, wrong_every: int = 5, fail_after: int | None = None) -> None:
        self.wrong_every, self.fail_after = wrong_every, fail_after
        self.calls = 0
        self.wasted_energy_j = 0.0

    async def block(self, committed, gamma):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise DeviceLost("device_unavailable")
        ctx, out = list(committed), []
        for _ in range(gamma):
            out.append(draft_next(ctx, self.wrong_every))
            ctx.append(out[-1])
        return Draft(out, compute_ms=0.1 * gamma, energy_j=0.01 * gamma)

    async def head(self, committed, n):
        self.heads = getattr(self, "heads", 0) + 1
        ctx, out = list(committed), []
        for _ in range(n):
            out.append(draft_next(ctx, self.wrong_every))
            ctx.append(out[-1])
        return Draft(out, compute_ms=5.0, energy_j=0.01 * n)

    async def settle(self, committed, hit):
        pass


class AheadSource(RequestedSource):
    """Drafts ahead with a bonus guess, like the DraftStream: after a hit the next block is ready."""

    def __init__(self, wrong_every: int = 5) -> None:
        super().__init__(wrong_every)
        self.chain: list[int] | None = None
        self.restarts = 0

    async def block(self, committed, gamma):
        ahead = self.chain is not None and self.chain == list(committed)
        if not ahead:
            self.restarts += 1
        ctx, out = list(committed), []
        for _ in range(gamma + 1):
            out.append(draft_next(ctx, self.wrong_every))
            ctx.append(out[-1])
        self.pending = ctx
        return Draft(out[:gamma], bonus_guess=out[gamma], ahead=ahead)

    async def settle(self, committed, hit):
        self.chain = self.pending if hit else None
        assert not hit or self.pending == list(committed)


class Verifier:
    def __init__(self, eos_at: int | None = None) -> None:
        self.eos_at = eos_at

    def truth(self, ctx):
        return EOS if self.eos_at is not None and len(ctx) == self.eos_at else target_next(ctx)

    async def verify(self, context, draft):
        ctx, k = list(context), 0
        while k < len(draft.tokens) and draft.tokens[k] == self.truth(ctx):
            ctx.append(draft.tokens[k])
            k += 1
        return Verdict(k, self.truth(ctx), 1.0, 0.5, 1, "replica-1")


def run(prompt, n, source, verifier, gamma=4, max_context=512, head_start=False):
    stats = TandemStats()
    control = DraftLengthController(DraftControlConfig(fixed_gamma=gamma))

    async def go():
        return [
            c
            async for c in tandem_rounds(
                prompt, n, max_context, EOS, control, source, verifier, stats, head_start=head_start
            )
        ]

    return asyncio.run(go()), stats


def truth_sequence(prompt, n, eos_at=None):
    ctx = list(prompt)
    v = Verifier(eos_at)
    while len(ctx) - len(prompt) < n:
        t = v.truth(ctx)
        ctx.append(t)
        if t == EOS:
            break
    return ctx[len(prompt) :]


@pytest.mark.parametrize("head_start", [False, True])
@pytest.mark.parametrize("gamma", [1, 2, 4, 7])
@pytest.mark.parametrize("source", [RequestedSource, AheadSource])
def test_commits_exactly_the_target_sequence(gamma, source, head_start):
    commits, stats = run([5, 6, 7], 60, source(), Verifier(), gamma, head_start=head_start)
    tokens = [t for c in commits for t in c.tokens]
    assert tokens == truth_sequence([5, 6, 7], 60)
    assert stats.accepted + stats.rounds == 60
    assert stats.corrections + stats.bonus == stats.rounds
    assert all(len(c.tokens) == c.accepted + 1 for c in commits)
    assert stats.drafted <= gamma * stats.rounds
    assert stats.head_hits + stats.head_misses == (1 if head_start else 0)


def test_head_start_sends_the_targets_first_token_before_any_draft():
    seen = []

    class Watch(Verifier):
        async def verify(self, context, draft):
            seen.append(len(draft.tokens))
            return await super().verify(context, draft)

    source = RequestedSource(wrong_every=0)
    commits, stats = run([4], 30, source, Watch(), 4, head_start=True)
    assert seen[0] == 0 and commits[0].tokens == truth_sequence([4], 1) and commits[0].drafted == 0
    # the head block (5 tokens from the prompt) matched: its last 4 were the second round's draft
    assert stats.head_hits == 1 and seen[1] == 4 and source.heads == 1 and source.calls == len(seen) - 2
    assert [t for c in commits for t in c.tokens] == truth_sequence([4], 30)


def test_a_head_block_that_missed_is_dropped_and_its_energy_counted():
    source = RequestedSource(wrong_every=2)  # the prompt [4] has length 1, so the first guess is right…
    _, stats = run([4, 4], 30, source, Verifier(), 3, head_start=True)  # … with length 2 it is wrong
    assert stats.head_misses == 1 and stats.head_hits == 0
    assert stats.device_energy_j == pytest.approx(0.01 * (4 + stats.drafted))


def test_head_start_with_one_token_or_a_lost_device():
    commits, stats = run([4], 1, RequestedSource(), Verifier(), 4, head_start=True)
    assert [t for c in commits for t in c.tokens] == truth_sequence([4], 1) and stats.rounds == 1

    class Lost(RequestedSource):
        async def head(self, committed, n):
            raise DeviceLost("device_unavailable")

    got = []

    async def go():
        control = DraftLengthController(DraftControlConfig(fixed_gamma=3))
        async for c in tandem_rounds(
            [1], 50, 512, EOS, control, Lost(), Verifier(), TandemStats(), head_start=True
        ):
            got.extend(c.tokens)

    with pytest.raises(DeviceLost):
        asyncio.run(go())
    assert got == truth_sequence([1], 1)  # the cloud's first token was committed; the caller goes on from it


def test_hits_reuse_blocks_drafted_ahead():
    perfect = AheadSource(wrong_every=0)
    _, stats = run([1], 40, perfect, Verifier(), 4)
    assert perfect.restarts == 1  # every block after the first was drafted ahead and used
    assert stats.overlap_hits == stats.rounds - 1
    flawed = AheadSource(wrong_every=3)
    _, stats = run([1], 40, flawed, Verifier(), 4)
    assert flawed.restarts > 1 and stats.overlap_hits < stats.rounds - 1


def test_eos_ends_the_stream_and_is_committed():
    commits, _ = run([3], 100, RequestedSource(), Verifier(eos_at=12), 4)
    tokens = [t for c in commits for t in c.tokens]
    assert tokens[-1] == EOS and commits[-1].eos and len(tokens) == 12  # 11 tokens, then EOS
    assert tokens == truth_sequence([3], 100, eos_at=12)


def test_never_commits_past_max_new_tokens_or_context():
    commits, _ = run([1, 2], 13, RequestedSource(wrong_every=0), Verifier(), 8)
    assert sum(len(c.tokens) for c in commits) == 13
    commits, _ = run([1, 2], 100, AheadSource(wrong_every=0), Verifier(), 8, max_context=20)
    assert sum(len(c.tokens) for c in commits) == 18


def test_device_loss_propagates_after_committed_rounds():
    got = []

    async def go():
        control = DraftLengthController(DraftControlConfig(fixed_gamma=3))
        async for c in tandem_rounds(
            [1], 50, 512, EOS, control, RequestedSource(fail_after=3), Verifier(), TandemStats()
        ):
            got.extend(c.tokens)

    with pytest.raises(DeviceLost):
        asyncio.run(go())
    assert got and got == truth_sequence([1], 50)[: len(got)]  # what was committed is right


def test_a_caller_that_stops_after_the_first_token_cancels_the_head_block():
    cancelled = []

    class Slow(RequestedSource):
        async def head(self, committed, n):
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

    class Unhurried(Verifier):
        async def verify(self, context, draft):
            await asyncio.sleep(0.01)  # the device's head block is under way meanwhile
            return await super().verify(context, draft)

    async def go():
        control = DraftLengthController(DraftControlConfig(fixed_gamma=3))
        rounds = tandem_rounds(
            [1], 50, 512, EOS, control, Slow(), Unhurried(), TandemStats(), head_start=True
        )
        async for _c in rounds:
            break  # the caller has what it wanted
        await rounds.aclose()

    asyncio.run(go())
    assert cancelled == [True]


class TreeSource(RequestedSource):
    """Drafts a chain that goes wrong at every `wrong_every`-th position, plus one alternative path
    holding the right token there (what a draft's second guess gives a tree)."""

    def _paths(self, committed, n):
        ctx, chain, alt = list(committed), [], []
        for _ in range(n):
            chain.append(draft_next(ctx, self.wrong_every))
            alt.append(target_next(ctx))
            ctx.append(alt[-1])
        return chain, ([alt] if alt != chain else [])

    async def block(self, committed, gamma):
        chain, alts = self._paths(committed, gamma)
        return Draft(chain, alternatives=alts)

    async def head(self, committed, n):
        chain, alts = self._paths(committed, n)
        return Draft(chain, alternatives=alts)


class TreeVerifier(Verifier):
    async def verify(self, context, draft):
        best = (-1, 0, 0)
        for i, path in enumerate([draft.tokens, *draft.alternatives]):
            ctx, k = list(context), 0
            while k < len(path) and path[k] == self.truth(ctx):
                ctx.append(path[k])
                k += 1
            if k > best[0]:
                best = (k, i, self.truth(ctx))
        return Verdict(best[0], best[2], 1.0, 0.5, 1, "replica-1", path=best[1])


@pytest.mark.parametrize("head_start", [False, True])
def test_a_tree_commits_the_path_the_verifier_chose(head_start):
    """The loop commits the winning path's tokens (not the chain's), and a head block whose
    alternative — not its chain — starts with the target's first token still serves round two."""
    commits, stats = run([5, 6, 7], 60, TreeSource(wrong_every=2), TreeVerifier(), 4, head_start=head_start)
    assert [t for c in commits for t in c.tokens] == truth_sequence([5, 6, 7], 60)
    assert stats.accepted + stats.rounds == 60
    chain_only, _ = run([5, 6, 7], 60, RequestedSource(wrong_every=2), Verifier(), 4, head_start=head_start)
    assert stats.rounds < len(chain_only)  # the alternatives were committed
    if head_start:
        assert stats.head_hits == 1


def test_draft_paths_cut_short_and_after_a_token():
    d = Draft([1, 2, 3], alternatives=[[1, 2, 4], [5, 6, 7], [5, 6, 8]])
    assert d.head(2).alternatives == [[5, 6]]  # cut to two, [1, 2] repeats the chain
    assert d.path(2) == [5, 6, 7]
    after = d.after(5)
    assert after.tokens == [6, 7] and after.alternatives == [[6, 8]]
    assert d.after(9) is None


async def test_blocks_dropped_past_a_miss_count_against_the_sessions_energy():
    """Run-ahead blocks that were drafted and dropped spent the device's energy: the controller's
    budget counts them, so a capped session stops drafting sooner."""

    class Wasteful(AheadSource):
        async def settle(self, committed, hit):
            await super().settle(committed, hit)
            if not hit:
                self.wasted_energy_j += 1.0  # a block drafted ahead and dropped

    control = DraftLengthController(
        DraftControlConfig(fixed_gamma=3), energy_per_token_j=0.01, energy_budget_j=3.5
    )
    stats = TandemStats()
    rounds = tandem_rounds(
        list(range(5)), 60, 1000, -1, control, Wasteful(wrong_every=2), Verifier(), stats, head_start=False
    )
    async for _ in rounds:
        pass
    assert stats.rounds > 10 and control.energy_left_j < 0.05  # the dropped blocks used the budget up
    assert control.next_gamma(10) == 0  # no drafting left: the cloud decodes alone
