"""The TANDEM loop's orchestration, with plain in-memory draft/target functions (pure logic)."""

from __future__ import annotations

import asyncio

import pytest

from router.draft_control import DraftControlConfig, DraftLengthController
from router.tandem_loop import DeviceLost, Draft, TandemStats, Verdict, tandem_rounds

EOS = 0


def target_next(context) -> int:
    return (sum(context) * 31 + len(context)) % 97 + 1  # never EOS unless forced


class Drafter:
    def __init__(self, wrong_every: int = 5, fail_after: int | None = None, delay: float = 0.0) -> None:
        self.wrong_every, self.fail_after, self.delay = wrong_every, fail_after, delay
        self.calls = 0

    async def draft(self, context, n):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise DeviceLost("device_unavailable")
        await asyncio.sleep(self.delay)
        ctx, out = list(context), []
        for _ in range(n):
            t = target_next(ctx)
            if self.wrong_every and len(ctx) % self.wrong_every == 0:
                t = t % 97 + 1 if t != 97 else 1  # a wrong guess
            out.append(t)
            ctx.append(t)
        return Draft(out, compute_ms=0.1 * n, call_ms=0.2 * n)


class Verifier:
    def __init__(self, eos_at: int | None = None, delay: float = 0.0) -> None:
        self.eos_at, self.delay = eos_at, delay

    def truth(self, ctx):
        return EOS if self.eos_at is not None and len(ctx) == self.eos_at else target_next(ctx)

    async def verify(self, context, draft):
        await asyncio.sleep(self.delay)
        ctx, k = list(context), 0
        while k < len(draft.tokens) and draft.tokens[k] == self.truth(ctx):
            ctx.append(draft.tokens[k])
            k += 1
        return Verdict(k, self.truth(ctx), 1.0, 0.5, 1, "replica-1")


def run(prompt, n, drafter, verifier, gamma=4, overlap=False, max_context=512):
    stats = TandemStats()
    control = DraftLengthController(DraftControlConfig(fixed_gamma=gamma))

    async def go():
        return [c async for c in tandem_rounds(prompt, n, max_context, EOS, control, drafter, verifier, stats,
                                              overlap=overlap)]

    return asyncio.run(go()), stats


def truth_sequence(prompt, n, eos_at=None):
    ctx = list(prompt)
    v = Verifier(eos_at)
    while len(ctx) - len(prompt) < n:
        t = v.truth(ctx)
        ctx.append(t)
        if t == EOS:
            break
    return ctx[len(prompt):]


@pytest.mark.parametrize("gamma", [1, 2, 4, 7])
@pytest.mark.parametrize("overlap", [False, True])
def test_commits_exactly_the_target_sequence(gamma, overlap):
    commits, stats = run([5, 6, 7], 60, Drafter(), Verifier(), gamma, overlap)
    tokens = [t for c in commits for t in c.tokens]
    assert tokens == truth_sequence([5, 6, 7], 60)
    assert stats.accepted + stats.rounds == 60
    assert stats.corrections + stats.bonus == stats.rounds
    assert all(len(c.tokens) == c.accepted + 1 for c in commits)
    assert stats.drafted <= gamma * stats.rounds


def test_overlap_hits_when_drafts_are_right_and_misses_otherwise():
    _, perfect = run([1], 40, Drafter(wrong_every=0), Verifier(), 4, overlap=True)
    assert perfect.overlap_hits > 0 and perfect.overlap_misses == 0
    assert perfect.bonus == perfect.rounds
    _, flawed = run([1], 40, Drafter(wrong_every=3), Verifier(), 4, overlap=True)
    assert flawed.overlap_misses > 0


def test_overlap_drafts_while_verifying():
    drafter = Drafter(wrong_every=0, delay=0.01)
    _, with_overlap = run([1], 30, drafter, Verifier(delay=0.01), 4, overlap=True)
    calls_overlap = drafter.calls
    drafter = Drafter(wrong_every=0, delay=0.01)
    _, without = run([1], 30, drafter, Verifier(delay=0.01), 4, overlap=False)
    assert with_overlap.rounds == without.rounds
    assert with_overlap.overlap_hits >= with_overlap.rounds - 2  # every round after the first reuses a pre-draft
    assert calls_overlap == drafter.calls  # the same number of draft calls, moved off the critical path


def test_eos_ends_the_stream_and_is_committed():
    commits, _ = run([3], 100, Drafter(), Verifier(eos_at=12), 4)
    tokens = [t for c in commits for t in c.tokens]
    assert tokens[-1] == EOS and commits[-1].eos and len(tokens) == 12 - 1 + 1  # 11 tokens, then EOS
    assert tokens == truth_sequence([3], 100, eos_at=12)


def test_never_commits_past_max_new_tokens_or_context():
    commits, _ = run([1, 2], 13, Drafter(wrong_every=0), Verifier(), 8)
    assert sum(len(c.tokens) for c in commits) == 13
    commits, _ = run([1, 2], 100, Drafter(wrong_every=0), Verifier(), 8, max_context=20)
    assert sum(len(c.tokens) for c in commits) == 18


def test_device_loss_propagates_after_committed_rounds():
    got = []

    async def go():
        control = DraftLengthController(DraftControlConfig(fixed_gamma=3))
        async for c in tandem_rounds([1], 50, 512, EOS, control, Drafter(fail_after=3), Verifier(), TandemStats(),
                                     overlap=True):
            got.extend(c.tokens)

    with pytest.raises(DeviceLost):
        asyncio.run(go())
    assert got and got == truth_sequence([1], 50)[: len(got)]  # what was committed is right
