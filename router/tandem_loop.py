"""The TANDEM loop: the device drafts, the cloud verifies, the router commits — until a stop.

Vocabulary (see :mod:`tandem.llm.speculative`): each *round* the device *drafts* γ tokens
continuing the *committed* context; the cloud verifies them in one forward pass and returns how
many it *accepted* plus one token of its own — the *correction* after a rejection, or the *bonus*
token when all were accepted. The round commits accepted + 1 tokens.

*Overlap*: while a verify is in flight the device pre-drafts the next block as if every drafted
token will be accepted, starting with its guess of the bonus token. When the guess holds (all
accepted and the bonus equals the guess) the next round skips its draft call; otherwise the block
is dropped (the device's cache rolls back by prefix reuse).

Workers are reached through :class:`Drafter` and :class:`Verifier`; a failing device raises
:class:`DeviceLost` and a pool with no replica left raises :class:`CloudLost`, so the caller can
continue elsewhere from the committed tokens. Pure orchestration: no gRPC here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import AsyncIterator, Callable, Protocol, Sequence

from router.draft_control import DraftLengthController


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
    call_ms: float = 0.0  # wall time of the draft call (link round trip + drafting)
    compute_ms: float = 0.0  # device time spent drafting
    energy_j: float = 0.0

    def head(self, n: int) -> "Draft":
        return dataclasses.replace(self, tokens=self.tokens[:n], dists=self.dists[:n])


EMPTY_DRAFT = Draft([])


@dataclasses.dataclass(frozen=True)
class Verdict:
    accepted: int  # drafted tokens accepted (a prefix)
    next_token: int  # the correction or the bonus token
    call_ms: float  # wall time of the verify call
    compute_ms: float  # cloud accelerator time
    forward_passes: int
    worker_id: str


class Drafter(Protocol):
    async def draft(self, context: Sequence[int], n: int) -> Draft: ...


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
    overlap_hits: int = 0
    overlap_misses: int = 0
    target_passes: int = 0
    cloud_compute_ms: float = 0.0
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
    drafter: Drafter,
    verifier: Verifier,
    stats: TandemStats,
    overlap: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[Commit]:
    """Run rounds until max_new_tokens, EOS or the context limit; yield each round's commit."""
    committed, produced = list(prompt), 0
    pre: tuple[int, asyncio.Task] | None = None  # (bonus guess position, pre-draft of the next block)
    try:
        while produced < max_new_tokens and len(committed) < max_context:
            room = min(max_new_tokens - produced, max_context - len(committed))
            gamma = control.next_gamma(room)
            draft, hit = await _take_predraft(pre, committed, gamma, stats)
            pre = None
            if not hit:
                draft = await drafter.draft(committed, gamma) if gamma else EMPTY_DRAFT
            gamma = len(draft.tokens)
            next_gamma = min(control.next_gamma(room - gamma - 1), room - gamma - 2) if overlap and gamma else 0
            if next_gamma > 0:  # guess: all accepted; pre-draft the bonus guess and the next block
                pre = (len(committed) + gamma,
                       asyncio.create_task(drafter.draft(committed + draft.tokens, next_gamma + 1)))
            t0 = clock()
            verdict = await verifier.verify(committed, draft)
            new = draft.tokens[: verdict.accepted] + [verdict.next_token]
            if verdict.accepted < gamma or (pre and not _guess_holds(pre, verdict, gamma)):
                pre = await _drop(pre, stats)
            eos = eos_token_id in new
            if eos:
                new = new[: new.index(eos_token_id) + 1]
            committed += new
            produced += len(new)
            _account(stats, gamma, verdict, draft)
            control.observe(gamma, verdict.accepted, draft.compute_ms, draft.call_ms - draft.compute_ms,
                            (clock() - t0) * 1e3, draft.energy_j, predrafted=hit)
            yield Commit(new, verdict.accepted, gamma, verdict.worker_id, eos)
            if eos:
                return
    finally:
        await _drop(pre, None)


def _guess_holds(pre: tuple[int, asyncio.Task], verdict: Verdict, gamma: int) -> bool:
    """The pre-draft is usable only if every drafted token was accepted and the bonus was guessed."""
    task = pre[1]
    if verdict.accepted != gamma:
        return False
    if not task.done():
        return True  # decided when it arrives (its first token is the guess)
    if task.cancelled() or task.exception() is not None:
        return False
    return bool(task.result().tokens) and task.result().tokens[0] == verdict.next_token


async def _take_predraft(pre, committed: list[int], gamma: int, stats: TandemStats) -> tuple[Draft, bool]:
    """Use the pre-drafted block if its guess (the bonus token) matches what was committed."""
    if pre is None:
        return EMPTY_DRAFT, False
    position, task = pre
    try:
        block = await task
    except DeviceLost:
        raise
    except Exception:  # noqa: BLE001 - a failed pre-draft is just a miss
        stats.overlap_misses += 1
        return EMPTY_DRAFT, False
    if len(committed) == position + 1 and block.tokens and block.tokens[0] == committed[-1] and gamma > 0:
        stats.overlap_hits += 1
        rest = dataclasses.replace(block, tokens=block.tokens[1:], dists=block.dists[1:], call_ms=block.compute_ms)
        return rest.head(gamma), True
    stats.overlap_misses += 1
    return EMPTY_DRAFT, False


async def _drop(pre, stats: TandemStats | None) -> None:
    if pre is None:
        return None
    task = pre[1]
    if stats is not None:
        stats.overlap_misses += 1
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return None


def _account(stats: TandemStats, gamma: int, verdict: Verdict, draft: Draft) -> None:
    stats.rounds += 1
    stats.drafted += gamma
    stats.accepted += verdict.accepted
    if gamma and verdict.accepted == gamma:
        stats.bonus += 1
    else:
        stats.corrections += 1
    stats.gamma_sum += gamma
    stats.last_gamma = gamma
    stats.target_passes += verdict.forward_passes
    stats.cloud_compute_ms += verdict.compute_ms
    stats.device_energy_j += draft.energy_j
