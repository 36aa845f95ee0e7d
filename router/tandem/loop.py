"""The TANDEM loop: the device drafts, the cloud verifies, the router commits — until a stop.

Vocabulary (see :mod:`runtime.llm.speculative`): each *round* the device *drafts* γ tokens
continuing the *committed* context; the cloud verifies them in one forward pass and returns how
many it *accepted* plus one token of its own — the *correction* after a rejection, or the *bonus*
token when all were accepted. The round commits accepted + 1 tokens.

Drafts come from a :class:`DraftSource`: one Draft call per round, or (*overlap*) a stream on which
the device keeps drafting ahead — each block continuing the previous one as if it will be wholly
accepted, followed by the device's guess of the bonus token. A block is a *hit* when that guess
holds (all accepted and the bonus equals the guess): the next block is then already drafted, often
already here, so the round does not wait for the device's link. Otherwise the source restarts the
device from the committed context.

*Head start*: the first round verifies no draft — the replica prefills the prompt and sends the
first token, so TANDEM's time to first token is CLOUD's — while the device prefills the prompt too
and drafts γ + 1 tokens from it (one Draft call, :meth:`DraftSource.head`). When that block's first
token is the target's first token, the rest of it continues the committed context and is the
second round's draft (exactness is kept: each drafted token was drawn from the draft model given
the committed tokens before it); otherwise it is dropped and the second round drafts anew, from a
device whose cache already holds the prompt.

*Trees* (greedy): a draft may carry alternative paths beside its chain (Draft.alternatives, all
as long); the verifier scores all in one pass and names the path it committed (Verdict.path), whose
accepted prefix and next token the round commits. A round that committed an alternative is never
a hit (the device ran ahead on its chain). A head block serves round two through whichever of its
paths starts with the target's first token.

A failing device raises :class:`DeviceLost` and a pool with no replica left raises
:class:`CloudLost`, so the caller can continue elsewhere from the committed tokens.
Pure orchestration: no gRPC here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from router.tandem.control import DraftLengthController


class DeviceLost(Exception):
    """The edge worker failed or its link broke; `cause` says how."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class CloudLost(Exception):
    """No cloud replica could verify."""


@dataclasses.dataclass(frozen=True)
class Draft:
    tokens: list[int]  # drafted tokens d_1..d_γ
    dists: list = dataclasses.field(default_factory=list)  # sampling: q_i, opaque to the loop
    bonus_guess: int | None = None  # the device's guess of the bonus token (run-ahead blocks)
    compute_ms: float = 0.0  # device time spent drafting
    energy_j: float = 0.0
    ahead: bool = False  # drafted ahead, before the router asked for it
    # greedy tree drafts: the tree's other root-to-leaf paths, each as long as `tokens` (the chain)
    alternatives: list[list[int]] = dataclasses.field(default_factory=list)

    def head(self, n: int) -> Draft:
        if n >= len(self.tokens):
            return self
        return dataclasses.replace(
            self,
            tokens=self.tokens[:n],
            dists=self.dists[:n],
            bonus_guess=None,
            alternatives=distinct_paths(self.tokens[:n], [a[:n] for a in self.alternatives]),
        )

    def path(self, i: int) -> list[int]:
        """Path `i` of the tree: 0 the chain, i its alternative i − 1."""
        return self.tokens if i == 0 else self.alternatives[i - 1]

    def after(self, first: int) -> Draft | None:
        """What continues the committed token `first`: the paths that start with it, without it
        (led by the chain when it does), or None when no path does."""
        paths = [p[1:] for p in [self.tokens, *self.alternatives] if p[:1] == [first] and len(p) > 1]
        if not paths:
            return None
        keep_dists = self.tokens[:1] == [first]
        return dataclasses.replace(
            self,
            tokens=paths[0],
            dists=self.dists[1:] if keep_dists else [],
            bonus_guess=None,
            alternatives=distinct_paths(paths[0], paths[1:]),
        )


def distinct_paths(chain: list[int], paths: list[list[int]]) -> list[list[int]]:
    """`paths` without repeats and without `chain` (cutting a tree short merges paths)."""
    seen, out = {tuple(chain)}, []
    for p in paths:
        if tuple(p) not in seen:
            seen.add(tuple(p))
            out.append(p)
    return out


EMPTY_DRAFT = Draft([])


@dataclasses.dataclass(frozen=True)
class Verdict:
    accepted: int  # drafted tokens accepted (a prefix)
    next_token: int  # the correction or the bonus token
    call_ms: float  # wall time of the verify call
    compute_ms: float  # cloud accelerator time
    forward_passes: int
    worker_id: str
    path: int = 0  # the tree path committed (Draft.path)


class DraftSource(Protocol):
    wasted_energy_j: float  # device energy of the blocks drafted and dropped so far (stale run-ahead)

    async def block(self, committed: Sequence[int], gamma: int) -> Draft:
        """Drafts continuing exactly `committed` (about `gamma` of them)."""
        ...

    async def head(self, committed: Sequence[int], n: int) -> Draft:
        """Exactly `n` drafts continuing `committed`, in one call that leaves block()'s state alone."""
        ...

    async def settle(self, committed: Sequence[int], hit: bool) -> None:
        """The round is committed; `hit`: its block was wholly accepted and the bonus guessed."""
        ...


class Verifier(Protocol):
    async def verify(self, context: Sequence[int], draft: Draft) -> Verdict: ...


@dataclasses.dataclass
class TandemStats:
    rounds: int = 0
    drafted: int = 0
    accepted: int = 0
    corrections: int = 0
    bonus: int = 0
    gamma_sum: int = 0
    last_gamma: int = 0
    overlap_hits: int = 0  # rounds whose block was drafted ahead, while an earlier block was verified
    overlap_misses: int = 0  # blocks drafted ahead and then dropped (a rejection or a wrong bonus guess)
    target_passes: int = 0
    cloud_compute_ms: float = 0.0
    first_verify_compute_ms: float = 0.0  # the first pass also prefills the prompt
    head_hits: int = 0  # head-start blocks that continued the target's first token (and served round two)
    head_misses: int = 0  # … that did not, and were dropped
    device_energy_j: float = 0.0
    fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Commit:
    tokens: list[int]  # accepted drafted tokens, then the correction or bonus (cut after EOS)
    accepted: int
    drafted: int
    worker_id: str  # the replica that verified
    eos: bool


async def tandem_rounds(
    prompt: Sequence[int],
    max_new_tokens: int,
    max_context: int,
    eos_token_id: int,
    control: DraftLengthController,
    drafts: DraftSource,
    verifier: Verifier,
    stats: TandemStats,
    clock: Callable[[], float] = time.perf_counter,
    head_start: bool = False,
) -> AsyncIterator[Commit]:
    """Run rounds until max_new_tokens, EOS or the context limit; yield each round's commit.
    With `head_start` the first token is the cloud's while the device prefills (module docstring)."""
    committed, produced = list(prompt), 0
    pending: Draft | None = None  # the head-start block's continuation: round two's draft
    if head_start and max_new_tokens > 0 and len(committed) < max_context:
        room = min(max_new_tokens, max_context - len(committed))
        gamma = control.next_gamma(room)
        head = asyncio.ensure_future(drafts.head(tuple(committed), gamma + 1)) if gamma and room > 1 else None
        try:  # the head block is cancelled however this ends early (an error, the caller stopping)
            verdict = await verifier.verify(committed, EMPTY_DRAFT)
            new = [verdict.next_token]
            eos = eos_token_id in new
            committed += new
            produced += 1
            account_round(stats, 0, verdict, EMPTY_DRAFT)
            yield Commit(new, 0, 0, verdict.worker_id, eos)
            if eos or produced >= max_new_tokens or len(committed) >= max_context or head is None:
                return
            block = await head  # DeviceLost propagates: the caller continues from the committed tokens
        finally:
            await _cancel(head)
        pending = block.after(new[0])
        if pending is not None:
            stats.head_hits += 1
        else:
            stats.head_misses += 1
            stats.device_energy_j += block.energy_j
            control.spend(block.energy_j)
    wasted = drafts.wasted_energy_j
    while produced < max_new_tokens and len(committed) < max_context:
        room = min(max_new_tokens - produced, max_context - len(committed))
        gamma = control.next_gamma(room)  # a round commits at most γ + 1 tokens
        t0 = clock()
        if pending is not None:  # drafted with the prompt's prefill: its timing says nothing about drafting
            draft, pending, timed = pending.head(gamma) if gamma else EMPTY_DRAFT, None, False
        else:
            draft = (await drafts.block(committed, gamma)).head(gamma) if gamma else EMPTY_DRAFT
            timed = True
        t1 = clock()
        verdict = await verifier.verify(committed, draft)
        gamma = len(draft.tokens)
        new = draft.path(verdict.path)[: verdict.accepted] + [
            verdict.next_token
        ]  # accepted, then correction/bonus
        hit = is_hit(gamma, draft.bonus_guess, verdict.accepted, verdict.next_token, verdict.path)
        eos = eos_token_id in new
        if eos:
            new = new[: new.index(eos_token_id) + 1]
        committed += new
        produced += len(new)
        await drafts.settle(committed, hit and not eos)
        # blocks drafted ahead and dropped spent the device's energy all the same: an energy cap
        # counts them
        control.spend(drafts.wasted_energy_j - wasted)
        wasted = drafts.wasted_energy_j
        account_round(stats, gamma, verdict, draft)
        control.observe(
            gamma,
            verdict.accepted,
            draft.compute_ms,
            (t1 - t0) * 1e3 - draft.compute_ms,
            (clock() - t1) * 1e3,
            draft.energy_j,
            predrafted=draft.ahead,
            timed=timed,
            # a run-ahead block's bonus guess, judged when every drafted token was accepted: the
            # hit event itself, and the only look at position γ + 1 a session drafting γ gets
            guessed=None
            if draft.bonus_guess is None or verdict.path or verdict.accepted < gamma
            else verdict.next_token == draft.bonus_guess,
        )
        yield Commit(new, verdict.accepted, gamma, verdict.worker_id, eos)
        if eos:
            return


async def _cancel(task: asyncio.Future | None) -> None:
    if task is not None and not task.done():
        task.cancel()
    if task is not None:
        try:
            await task
        except BaseException:
            pass


def is_hit(drafted: int, guess: int | None, accepted: int, next_token: int, path: int = 0) -> bool:
    """Whether a block was a *hit*: its chain wholly accepted and the device's guess of the bonus
    token the target's — so a block drafted ahead of it continues the committed context. The one
    rule for the router's loop, the device's pipelined loop and the router's verify broker."""
    return drafted > 0 and guess is not None and path == 0 and accepted == drafted and next_token == guess


def account_round(stats: TandemStats, gamma: int, verdict: Verdict, draft: Draft) -> None:
    """Count a verified round of `gamma` drafted tokens in `stats`."""
    stats.rounds += 1
    stats.drafted += gamma
    stats.accepted += verdict.accepted
    if gamma and verdict.accepted == gamma:
        stats.bonus += 1
    else:
        stats.corrections += 1
    stats.gamma_sum += gamma
    stats.last_gamma = gamma
    stats.overlap_hits += 1 if draft.ahead else 0
    stats.target_passes += verdict.forward_passes
    stats.cloud_compute_ms += verdict.compute_ms
    if stats.rounds == 1:
        stats.first_verify_compute_ms = verdict.compute_ms
    stats.device_energy_j += draft.energy_j
