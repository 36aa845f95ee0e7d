"""A finished request's outcome, and what the policy's estimates learn from it — in one place.

The router (every placement, failover included) and the fleet simulator both describe a finished
request as an :class:`Outcome` and hand it to :func:`learn`; nothing else feeds the estimates
from finished requests.
"""

from __future__ import annotations

import dataclasses

from router.policy.estimates import Estimates
from router.policy.placement import Decision, Placement


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a finished request measured, as the router sees it (the client's own link excluded)."""

    placement: Placement  # what made its tokens in the end (a TANDEM request stays TANDEM)
    prompt_chars: int
    prompt_tokens: int
    tokens: int  # generated
    ttft_ms: float  # the request's arrival at the router → its first token there
    client_rtt_ms: float  # the client's own round trip to the router (it sees ttft_ms plus this)
    token_ms: float | None  # mean time per token after the first (None: one token)
    device_id: str = ""  # EDGE and TANDEM: the device
    device_rtt_ms: float = 0.0  # EDGE: the router ↔ device round trip inside ttft_ms
    pool: str = ""  # CLOUD and TANDEM: the pool that served it (after any failover)
    decode_compute_ms: float = 0.0  # cloud accelerator time after the first token's pass (which prefilled)
    # TANDEM
    greedy: bool = True
    drafted: int = 0  # tokens drafted in rounds
    # the session's acceptance counts, per drafted position: rounds that reached it, and accepted it
    accepted: tuple[float, ...] = ()
    reached: tuple[float, ...] = ()
    draft_ms: float = 0.0  # device time per drafted token
    link_ms: float = 0.0  # the draft call's overhead the session measured (0: not measured)
    ahead_extra_ms: float = 0.0  # what run-ahead blocks kept its rounds waiting beyond the model
    verify_ms: float = 0.0  # per verify call
    verify_passes: int = 0  # target passes after the first
    head_start: bool = True  # the first token was the pool's (a CLOUD time to first token)


def learn(est: Estimates, o: Outcome, d: Decision) -> None:
    """Feed a finished request's measurements to the estimates the policy predicts from, and its
    latency, as the client saw it, against the prediction `d` was made with."""
    est.observe_prompt(o.prompt_chars, o.prompt_tokens)
    est.observe_latency(d.placement, "ttft", o.ttft_ms + o.client_rtt_ms, d.predicted_ttft_ms, 0.0)
    if o.token_ms is not None:
        est.observe_latency(d.placement, "token", o.token_ms, d.predicted_token_ms, d.predicted_token_var)
    if o.placement is Placement.EDGE:
        est.observe_edge(o.device_id, max(o.ttft_ms - o.device_rtt_ms, 0.0), o.token_ms, o.prompt_tokens)
    elif o.placement is Placement.CLOUD:
        per_token = o.decode_compute_ms / (o.tokens - 1) if o.tokens > 1 else 0.0
        est.observe_cloud(o.pool, o.ttft_ms, o.token_ms, per_token, o.prompt_tokens)
    else:
        if o.head_start:
            est.observe_cloud_ttft(o.pool, o.ttft_ms, o.prompt_tokens)
        if o.drafted:
            est.observe_acceptance(o.device_id, o.pool, o.greedy, o.accepted, o.reached)
            est.observe_draft(o.device_id, o.draft_ms)
            if o.link_ms > 0:
                est.observe_link(o.device_id, o.link_ms, o.ahead_extra_ms)
        if o.verify_passes:
            est.observe_verify(o.pool, o.verify_ms, o.decode_compute_ms / o.verify_passes)
