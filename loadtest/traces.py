"""Recorded TANDEM sessions: the Verify calls a greedy session on a real draft/target pair makes,
to replay against a replica (bench/cloud.py, the pool tests) without a device on the clock."""

from __future__ import annotations

import dataclasses

from runtime.llm.runner import ModelRunner
from runtime.params import SamplingConfig


@dataclasses.dataclass(frozen=True)
class VerifyCall:
    context: list[int]  # the committed tokens the round continues
    drafted: list[int]
    accepted: int  # the verdict the target must give
    next_token: int


def greedy_tandem_trace(
    target: ModelRunner, draft: ModelRunner, prompt: list[int], n: int, gamma: int
) -> list[VerifyCall]:
    """The rounds of a greedy TANDEM session of `n` new tokens drafting `gamma` per round (fewer in
    the last, so that it commits exactly `n`), computed with the two runners in this process."""
    committed, calls, sid = list(prompt), [], f"trace-{len(prompt)}-{prompt[:4]}"
    greedy = SamplingConfig(max_new_tokens=1)
    while len(committed) - len(prompt) < n:
        g = min(gamma, n - (len(committed) - len(prompt)) - 1)
        drafted = draft.draft(sid, committed, g, greedy).token_ids if g > 0 else []
        v = target.verify(sid, committed, drafted, None, greedy)
        calls.append(VerifyCall(list(committed), drafted, v.round.accepted, v.round.next_token))
        committed += drafted[: v.round.accepted] + [v.round.next_token]
    target.release(sid)
    draft.release(sid)
    return calls
