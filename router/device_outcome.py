"""A device's report of a request it decided and served itself (fleet.proto DeviceOutcome), both
ways: the device describes what it measured as the router's own :class:`Outcome`, and the router
checks the report where it enters before its estimates learn from it (router.policy.outcome.learn).

A device-driven TANDEM session drafts in process and verifies across its link, so its verify
calls' times hold the link as well as the pool's pass: the report leaves them (and the draft call's
overhead, which is nil) out, and the router keeps measuring those on its own traffic. Its time to
first token is the device's own (observe_edge's for EDGE), not compared with the decision's
prediction, which the policy makes for the way through the router.
"""

from __future__ import annotations

import math

from router.cloud_view import checked_number
from router.policy.outcome import Outcome
from router.policy.placement import Decision, Placement
from router.tandem.speculation import MAX_PROFILE
from tandem.errors import InvalidArgument
from tandem.v1 import fleet_pb2

REPORTED = (Placement.EDGE, Placement.TANDEM)
MAX_TOKENS = 10_000_000  # a request's prompt or output, in tokens or characters: far above any context
MAX_MS = 86_400_000.0  # a day, in ms


def outcome_to_pb(o: Outcome, d: Decision) -> fleet_pb2.DeviceOutcome:
    """The report of `o`, a request the device decided (`d`) and served."""
    return fleet_pb2.DeviceOutcome(
        placement=o.placement.value,
        prompt_chars=o.prompt_chars,
        prompt_tokens=o.prompt_tokens,
        tokens=o.tokens,
        ttft_ms=o.ttft_ms,
        token_ms=o.token_ms or 0.0,
        pool=o.pool,
        greedy=o.greedy,
        drafted=o.drafted,
        reached=[int(r) for r in o.reached],
        accepted=[int(a) for a in o.accepted],
        draft_ms=o.draft_ms,
        predicted_token_ms=d.predicted_token_ms,
        predicted_token_var=d.predicted_token_var,
    )


def outcome_from_pb(
    msg: fleet_pb2.DeviceOutcome, device_id: str, pools: set[str]
) -> tuple[Outcome, Decision]:
    """What the router learns from `device_id`'s report, as an outcome and the decision it was
    predicted with. Raises InvalidArgument naming the field at fault (`pools`: the fleet's)."""
    at = "outcome"
    if msg.placement not in {p.value for p in REPORTED}:
        raise InvalidArgument(f"{at}.placement", f"must be edge or tandem, got {msg.placement[:40]!r}")
    placement = Placement(msg.placement)
    for name in ("prompt_chars", "prompt_tokens", "tokens", "drafted"):
        checked_number(getattr(msg, name), f"{at}.{name}", 0, MAX_TOKENS)
    if msg.tokens < 1:
        raise InvalidArgument(f"{at}.tokens", "a finished request made at least one token")
    for name in ("ttft_ms", "token_ms", "draft_ms", "predicted_token_ms"):
        checked_number(getattr(msg, name), f"{at}.{name}", 0.0, MAX_MS)
    checked_number(msg.predicted_token_var, f"{at}.predicted_token_var", 0.0, 100.0)
    tandem = placement is Placement.TANDEM
    if tandem and msg.pool not in pools:
        raise InvalidArgument(f"{at}.pool", f"no pool {msg.pool[:40]!r} in the fleet")
    if len(msg.reached) != len(msg.accepted) or len(msg.reached) > MAX_PROFILE + 1:
        raise InvalidArgument(
            f"{at}.reached", f"reached and accepted: as many positions each, at most {MAX_PROFILE + 1}"
        )
    for i, (r, a) in enumerate(zip(msg.reached, msg.accepted)):
        if not 0 <= a <= r <= MAX_TOKENS:
            raise InvalidArgument(f"{at}.accepted[{i}]", f"need 0 <= accepted <= reached, got {a} of {r}")
    outcome = Outcome(
        placement=placement,
        prompt_chars=msg.prompt_chars,
        prompt_tokens=msg.prompt_tokens,
        tokens=msg.tokens,
        ttft_ms=msg.ttft_ms,
        client_rtt_ms=0.0,  # the app sits on the device, which measured from its arrival
        token_ms=msg.token_ms if msg.tokens > 1 else None,
        device_id=device_id,
        pool=msg.pool if tandem else "",
        greedy=msg.greedy,
        drafted=msg.drafted if tandem else 0,
        accepted=tuple(float(a) for a in msg.accepted) if tandem else (),
        reached=tuple(float(r) for r in msg.reached) if tandem else (),
        draft_ms=msg.draft_ms if tandem and math.isfinite(msg.draft_ms) else 0.0,
        head_start=False,  # its first token's time holds the device's link: not the pool's alone
    )
    decision = Decision(
        placement=placement,
        reason="decided on the device",
        edge_worker_id=device_id,
        pool=outcome.pool,
        # 0: no time-to-first-token spread — the policy predicted it through the router, where an
        # app on the device waits for no link
        predicted_token_ms=msg.predicted_token_ms,
        predicted_token_var=msg.predicted_token_var,
    )
    return outcome, decision
