"""A device's report of a request it served itself (router.device_outcome): both ways, and the
checks where it enters the router."""

from __future__ import annotations

import pytest

from router.device_outcome import outcome_from_pb, outcome_to_pb
from router.policy.config import PolicyConfig
from router.policy.estimates import Estimates
from router.policy.outcome import Outcome, learn
from router.policy.placement import Decision, Placement
from tandem.errors import InvalidArgument

TANDEM = Outcome(
    placement=Placement.TANDEM,
    prompt_chars=400,
    prompt_tokens=100,
    tokens=64,
    ttft_ms=12.0,
    client_rtt_ms=0.0,
    token_ms=1.8,
    device_id="phone",
    pool="asic",
    greedy=True,
    drafted=80,
    accepted=(9.0, 7.0, 5.0),
    reached=(10.0, 9.0, 7.0),
    draft_ms=0.4,
    link_ms=3.0,  # measured by the device's loop, but not reported: its verify calls hold its link
    verify_ms=5.0,
    verify_passes=12,
)
DECIDED = Decision(placement=Placement.TANDEM, reason="score", predicted_ttft_ms=20.0, predicted_token_ms=2.0,
                   predicted_token_var=0.01)  # fmt: skip


def test_a_report_comes_back_as_what_the_router_learns_from():
    outcome, decision = outcome_from_pb(outcome_to_pb(TANDEM, DECIDED), "phone", {"asic"})
    assert outcome.placement is Placement.TANDEM and outcome.device_id == "phone" and outcome.pool == "asic"
    assert (outcome.tokens, outcome.prompt_tokens, outcome.prompt_chars) == (64, 100, 400)
    assert outcome.accepted == TANDEM.accepted and outcome.reached == TANDEM.reached
    assert outcome.draft_ms == pytest.approx(0.4) and outcome.token_ms == pytest.approx(1.8)
    # what the device's loop cannot tell apart from its link is left to the router's own traffic
    assert outcome.link_ms == 0.0 and outcome.verify_passes == 0 and not outcome.head_start
    assert decision.placement is Placement.TANDEM and decision.predicted_token_ms == 2.0
    assert decision.predicted_ttft_ms == 0.0  # predicted for the way through the router: not compared
    est = Estimates(PolicyConfig())
    learn(est, outcome, decision)
    assert est.device("phone")["draft_ms"] < PolicyConfig().prior_draft_ms
    assert (
        est.spread(Placement.TANDEM, "ttft").count == 0 and est.spread(Placement.TANDEM, "token").count == 1
    )


def test_one_token_has_no_time_per_token():
    one = outcome_to_pb(Outcome(Placement.EDGE, 10, 3, 1, 5.0, 0.0, None, "phone"), DECIDED)
    outcome, _ = outcome_from_pb(one, "phone", set())
    assert outcome.token_ms is None and outcome.pool == "" and outcome.drafted == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"placement": "cloud"}, "outcome.placement"),
        ({"tokens": 0}, "outcome.tokens"),
        ({"prompt_tokens": -1}, "outcome.prompt_tokens"),
        ({"ttft_ms": float("inf")}, "outcome.ttft_ms"),
        ({"draft_ms": -0.1}, "outcome.draft_ms"),
        ({"predicted_token_var": float("nan")}, "outcome.predicted_token_var"),
        ({"pool": "nowhere"}, "outcome.pool"),
    ],
)
def test_a_report_that_does_not_check_out_names_its_field(change, field):
    msg = outcome_to_pb(TANDEM, DECIDED)
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(InvalidArgument) as err:
        outcome_from_pb(msg, "phone", {"asic"})
    assert err.value.field == field


def test_acceptance_counts_must_pair_up_and_never_accept_more_than_they_reached():
    msg = outcome_to_pb(TANDEM, DECIDED)
    msg.accepted.append(1)
    with pytest.raises(InvalidArgument) as err:
        outcome_from_pb(msg, "phone", {"asic"})
    assert err.value.field == "outcome.reached"
    msg = outcome_to_pb(TANDEM, DECIDED)
    msg.accepted[1] = 10
    with pytest.raises(InvalidArgument) as err:
        outcome_from_pb(msg, "phone", {"asic"})
    assert err.value.field == "outcome.accepted[1]"
    msg = outcome_to_pb(TANDEM, DECIDED)
    del msg.reached[:]
    del msg.accepted[:]
    msg.reached.extend([1] * 70)
    msg.accepted.extend([1] * 70)
    with pytest.raises(InvalidArgument):
        outcome_from_pb(msg, "phone", {"asic"})
