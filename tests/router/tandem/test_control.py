"""Adaptive draft length (router.tandem.control): what the controller measures and how it starts."""

from __future__ import annotations

import numpy as np

from router.tandem.control import DraftControlConfig, DraftLengthController
from router.tandem.speculation import RoundModel, RoundPrices, constant


def controller(alpha=0.6, a=1.0, d=2.0, v=3.0, overlap=False, **kw) -> DraftLengthController:
    prior = RoundModel(constant(alpha), draft_ms=a, link_ms=d, verify_ms=v, overlap=overlap)
    return DraftLengthController(DraftControlConfig(prior=prior, **kw))


def test_it_starts_from_the_policys_model_and_picks_its_best_gamma():
    prior = RoundModel((0.85, 0.7, 0.5), draft_ms=2.0, link_ms=30.0, verify_ms=10.0)
    ctl = DraftLengthController(DraftControlConfig(prior=prior, max_gamma=16))
    assert ctl.position_acceptance()[:4] == (0.85, 0.7, 0.5, 0.5)
    assert ctl.best_gamma() == prior.best_gamma(16)


def test_acceptance_estimate_converges():
    rng = np.random.default_rng(0)
    ctl = controller(alpha=0.3, fixed_gamma=4)
    for _ in range(300):
        k = 0
        while k < 4 and rng.random() < 0.85:
            k += 1
        ctl.observe(4, k, draft_ms=4.0, draft_overhead_ms=7.0, verify_ms=3.0)
    assert abs(ctl.alpha - 0.85) < 0.08
    assert (
        abs(ctl.draft_ms - 1.0) < 1e-6 and abs(ctl.link_ms - 7.0) < 1e-3 and abs(ctl.verify_ms - 3.0) < 1e-3
    )


def test_per_position_acceptance_is_learned_where_it_falls():
    rng = np.random.default_rng(1)
    truth = (0.95, 0.8, 0.5, 0.3)
    ctl = controller(alpha=0.6, fixed_gamma=4)
    for _ in range(400):
        k = 0
        while k < 4 and rng.random() < truth[k]:
            k += 1
        ctl.observe(4, k, 4.0, 5.0, 3.0)
    betas = ctl.position_acceptance()
    assert betas[0] > betas[1] > betas[2] > betas[3]
    assert abs(betas[0] - 0.95) < 0.06 and abs(betas[2] - 0.5) < 0.15


def test_room_energy_and_fixed_caps():
    ctl = controller(fixed_gamma=6)
    assert ctl.next_gamma(room=100) == 6
    assert ctl.next_gamma(room=3) == 2  # a round commits up to γ + 1
    assert ctl.next_gamma(room=1) == 0
    ctl = controller(fixed_gamma=6)
    ctl.energy_per_token_j, ctl.energy_left_j = 0.5, 2.0
    assert ctl.next_gamma(room=100) == 4
    ctl.observe(4, 4, 4.0, 3.0, 2.0, energy_j=1.9)
    assert ctl.next_gamma(room=100) == 0  # budget spent: the cloud decodes alone
    budgeted = DraftLengthController(
        DraftControlConfig(fixed_gamma=6), energy_per_token_j=0.5, energy_budget_j=2.0
    )
    assert budgeted.next_gamma(room=100) == 4


def test_overlap_favours_drafts_that_are_wholly_accepted():
    plain = controller(alpha=0.8, a=0.5, d=30.0, v=3.0, max_gamma=32)
    overlapped = controller(alpha=0.8, a=0.5, d=30.0, v=3.0, overlap=True, max_gamma=32)
    g = plain.best_gamma()
    # with overlap the draft call is skipped after a hit, so rounds are cheaper and shorter drafts pay
    assert overlapped.model().round_ms(g) < plain.model().round_ms(g)
    assert overlapped.best_gamma() <= g


def test_a_block_drafted_ahead_teaches_the_extra_wait_not_the_link():
    ctl = controller(d=30.0, overlap=True)
    ctl.observe(4, 4, 2.0, 0.0, 3.0, predrafted=True)
    assert ctl.link_ms == 30.0
    # drafting 4 × 0.5 ms during a 3 ms verify is modelled as no wait; it waited 2 ms: an extra wait
    assert ctl.ahead_extra_ms > 0
    ctl.observe(4, 4, 2.0, 10.0, 3.0)
    assert ctl.link_ms < 30.0


def test_speed_slack_trades_a_little_speed_for_fewer_cloud_passes():
    fastest = controller(alpha=0.8, a=0.5, d=30.0, v=3.0, max_gamma=64)
    frugal = controller(alpha=0.8, a=0.5, d=30.0, v=3.0, max_gamma=64, speed_slack=0.02)
    g0, g1 = fastest.best_gamma(), frugal.best_gamma()
    assert g0 < g1 <= 2 * g0
    assert frugal.model().expected_tokens(g1) > fastest.model().expected_tokens(g0)  # more tokens per pass


def test_round_prices_set_the_sessions_draft_length():
    kw = dict(alpha=0.7, a=10.0, d=40.0, v=35.0)
    fastest = controller(**kw).best_gamma()
    assert controller(**kw, prices=RoundPrices(per_ms=1.0, per_pass=400.0)).best_gamma() > fastest
    assert controller(**kw, prices=RoundPrices(per_ms=1.0, per_draft=40.0)).best_gamma() < fastest


def test_a_round_drafted_with_the_prompts_prefill_teaches_acceptance_not_speed():
    ctl = controller(a=2.0)
    alpha = ctl.alpha
    ctl.observe(4, 4, draft_ms=400.0, draft_overhead_ms=0.0, verify_ms=3.0, predrafted=True, timed=False)
    assert ctl.draft_ms == 2.0 and ctl.alpha > alpha
    assert not any(ctl.reached)  # nor the policy's profile: the head start is the session's alone


def test_the_hit_probability_follows_the_bonus_guesses():
    """A session drafting γ learns position γ + 1 only from its run-ahead blocks' bonus guesses:
    wholly accepted blocks whose guess is wrong make a hit (h(γ) = reach(γ + 1)) unlikely, where
    without them the estimate there stays at the level of the positions before it."""

    def hit_after(guessed: bool | None) -> float:
        ctl = controller(alpha=0.9, overlap=True, fixed_gamma=2)
        for _ in range(40):
            ctl.observe(2, 2, 1.0, 0.0, 3.0, predrafted=True, guessed=guessed)
        return ctl.model().hit(2)

    assert hit_after(None) > 0.9
    assert hit_after(False) < 0.2
    assert hit_after(True) > 0.9


def test_a_wrong_guess_counts_as_a_failure_at_the_next_position():
    ctl = controller(alpha=0.9, overlap=True)
    ctl.observe(3, 3, 1.5, 0.0, 3.0, predrafted=True, guessed=False)
    assert ctl.reached[:4] == [1, 1, 1, 1] and ctl.accepted[:4] == [1, 1, 1, 0]
    ctl.observe(3, 2, 1.5, 0.0, 3.0, predrafted=True, guessed=None)  # a rejection: no guess judged
    assert ctl.reached[:4] == [2, 2, 2, 1]


def test_positions_a_short_draft_no_longer_sees_are_explored():
    """After a hard stretch (position 3 failing) a session drafts γ = 1 and sees positions 1 and 2
    only; the text turns easy. The hopeful profile tries a long draft again sooner than the plain
    estimates, which wait for the old failures to decay away."""

    def rounds_until_long(hopeful: bool) -> int:
        ctl = controller(alpha=0.9, a=0.5, d=12.0, v=4.0, overlap=True, max_gamma=16)
        for _ in range(10):
            ctl.observe(4, 2, 2.0, 12.0, 4.0)
        for n in range(100):
            g = ctl.best_gamma() if hopeful else ctl.model().best_gamma(16)
            if g >= 4:
                return n
            ctl.observe(g, g, 0.5 * g, 0.0, 4.0, predrafted=True, guessed=True)
        return 100

    assert rounds_until_long(hopeful=True) < rounds_until_long(hopeful=False)


def test_exploring_stays_rare_where_the_later_positions_do_fail():
    ctl = controller(alpha=0.9, a=0.5, d=12.0, v=4.0, overlap=True, max_gamma=16)
    drafted = []
    for _ in range(60):
        g = ctl.next_gamma(room=100)
        k = min(g, 2)  # the third drafted token is always wrong
        whole = k == g
        guessed = g < 2 if whole else None  # the guess is token g + 1
        ctl.observe(g, k, 0.5 * g, 0.0 if whole else 12.0, 4.0, predrafted=whole, guessed=guessed)
        drafted.append(g)
    assert sum(g > 2 for g in drafted[10:]) <= 0.2 * 50
