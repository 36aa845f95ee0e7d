"""Adaptive draft length: pure unit tests."""

from __future__ import annotations

import math

import numpy as np

from router.tandem.control import DraftControlConfig, DraftLengthController
from router.policy.predict import RoundPrices, best_gamma
from runtime.llm.speculative import expected_tokens_per_round


def brute_force(alpha, a, c, max_gamma=64):
    rates = [expected_tokens_per_round(alpha, g) / (g * a + c) for g in range(1, max_gamma + 1)]
    return int(np.argmax(rates)) + 1


def test_gamma_maximises_committed_tokens_per_ms():
    for alpha in (0.5, 0.7, 0.9):
        for c in (1.0, 10.0, 80.0):
            ctl = DraftLengthController(DraftControlConfig(prior_alpha=alpha, prior_draft_ms=1.0, prior_draft_overhead_ms=c,
                                                           prior_verify_ms=0.0, max_gamma=64))
            assert ctl.best_gamma() == brute_force(alpha, 1.0, c)


def test_gamma_grows_with_round_trip_and_acceptance():
    gammas_by_c = [DraftLengthController(DraftControlConfig(prior_draft_overhead_ms=c, prior_alpha=0.8)).best_gamma()
                   for c in (1, 5, 20, 80)]
    assert gammas_by_c == sorted(gammas_by_c) and gammas_by_c[-1] > gammas_by_c[0]
    gammas_by_a = [DraftLengthController(DraftControlConfig(prior_draft_overhead_ms=20, prior_alpha=al)).best_gamma()
                   for al in (0.3, 0.6, 0.9)]
    assert gammas_by_a == sorted(gammas_by_a) and gammas_by_a[-1] > gammas_by_a[0]


def test_large_kappa_matches_the_asymptotic_formula():
    alpha, a, c = 0.8, 0.1, 100.0  # κ = 1000
    g = DraftLengthController(DraftControlConfig(prior_alpha=alpha, prior_draft_ms=a, prior_draft_overhead_ms=c,
                                                 prior_verify_ms=0.0, max_gamma=64)).best_gamma()
    kappa = c / a
    approx = math.log(kappa * math.log(1 / alpha)) / math.log(1 / alpha) - 1
    assert abs(g - approx) <= 2


def test_acceptance_estimate_converges():
    rng = np.random.default_rng(0)
    ctl = DraftLengthController(DraftControlConfig(prior_alpha=0.3, fixed_gamma=4))
    for _ in range(300):
        k = 0
        while k < 4 and rng.random() < 0.85:
            k += 1
        ctl.observe(4, k, draft_ms=4.0, draft_overhead_ms=7.0, verify_ms=3.0)
    assert abs(ctl.alpha - 0.85) < 0.08
    assert abs(ctl.draft_ms - 1.0) < 1e-6 and abs(ctl.round_ms - 10.0) < 1e-3


def test_room_energy_and_fixed_caps():
    ctl = DraftLengthController(DraftControlConfig(fixed_gamma=6))
    assert ctl.next_gamma(room=100) == 6
    assert ctl.next_gamma(room=3) == 2  # a round commits up to γ + 1
    assert ctl.next_gamma(room=1) == 0
    ctl = DraftLengthController(DraftControlConfig(fixed_gamma=6), energy_per_token_j=0.5, energy_budget_j=2.0)
    assert ctl.next_gamma(room=100) == 4
    ctl.observe(4, 4, 4.0, 3.0, 2.0, energy_j=1.9)
    assert ctl.next_gamma(room=100) == 0  # budget spent: the cloud decodes alone


def test_overlap_favours_drafts_that_are_wholly_accepted():
    kw = dict(prior_alpha=0.8, prior_draft_ms=0.5, prior_draft_overhead_ms=30.0, prior_verify_ms=3.0, max_gamma=32)
    plain = DraftLengthController(DraftControlConfig(**kw))
    overlapped = DraftLengthController(DraftControlConfig(overlap=True, **kw))
    g = plain.best_gamma()
    # with overlap the draft call is skipped after a hit, so rounds are cheaper and shorter drafts pay
    assert overlapped.round_time_ms(g) < plain.round_time_ms(g)
    assert overlapped.best_gamma() <= g
    rate = lambda c, gamma: expected_tokens_per_round(0.8, gamma) / c.round_time_ms(gamma)  # noqa: E731
    assert rate(overlapped, overlapped.best_gamma()) >= rate(overlapped, g)


def test_predrafted_rounds_do_not_update_the_draft_call_overhead():
    ctl = DraftLengthController(DraftControlConfig(prior_draft_overhead_ms=30.0))
    ctl.observe(4, 4, 2.0, 0.0, 3.0, predrafted=True)
    assert ctl.draft_overhead_ms == 30.0
    ctl.observe(4, 4, 2.0, 10.0, 3.0)
    assert ctl.draft_overhead_ms < 30.0


def test_speed_slack_trades_a_little_speed_for_fewer_cloud_passes():
    kw = dict(prior_alpha=0.8, prior_draft_ms=0.5, prior_draft_overhead_ms=30.0, prior_verify_ms=3.0, max_gamma=64)
    fastest = DraftLengthController(DraftControlConfig(**kw))
    frugal = DraftLengthController(DraftControlConfig(speed_slack=0.02, **kw))
    g0, g1 = fastest.best_gamma(), frugal.best_gamma()
    assert g0 < g1 <= 2 * g0
    rate = lambda c, g: c.expected_tokens(g) / c.round_time_ms(g)  # noqa: E731
    assert rate(frugal, g1) >= 0.98 * rate(fastest, g0)
    assert frugal.expected_tokens(g1) > fastest.expected_tokens(g0)  # more tokens per target pass


def test_round_prices_trade_speed_for_cloud_passes_and_device_energy():
    kw = dict(prior_alpha=0.7, prior_draft_ms=10.0, prior_draft_overhead_ms=40.0, prior_verify_ms=35.0)
    fastest = DraftLengthController(DraftControlConfig(**kw)).best_gamma()
    thrifty = DraftLengthController(DraftControlConfig(prices=RoundPrices(per_ms=1.0, per_pass=400.0), **kw))
    frugal = DraftLengthController(DraftControlConfig(prices=RoundPrices(per_ms=1.0, per_draft=40.0), **kw))
    assert thrifty.best_gamma() > fastest > frugal.best_gamma()
    # the same prices, the same figures: the session keeps to the γ the policy predicted with
    prices = RoundPrices(per_ms=1.0, per_pass=400.0)
    assert thrifty.best_gamma() == best_gamma(0.7, 10.0, 40.0, 35.0, 16, prices=prices)


def test_a_round_drafted_with_the_prompts_prefill_teaches_acceptance_not_speed():
    ctl = DraftLengthController(DraftControlConfig(prior_draft_ms=2.0))
    alpha = ctl.alpha
    ctl.observe(4, 4, draft_ms=400.0, draft_overhead_ms=0.0, verify_ms=3.0, predrafted=True, timed=False)
    assert ctl.draft_ms == 2.0 and ctl.alpha > alpha
