"""The speculation cost model (router.tandem.speculation): the formulas, and that the policy and
the session's controller price rounds with it alike."""

from __future__ import annotations

import math

import numpy as np

from router.tandem.control import DraftControlConfig, DraftLengthController
from router.tandem.speculation import RoundModel, RoundPrices, constant


def model(alpha=0.7, a=10.0, d=40.0, v=35.0, overlap=False, **kw) -> RoundModel:
    return RoundModel(constant(alpha), draft_ms=a, link_ms=d, verify_ms=v, overlap=overlap, **kw)


def test_constant_acceptance_gives_the_geometric_formulas():
    for alpha in (0.3, 0.7, 0.95):
        m = model(alpha)
        for g in (1, 4, 9):
            assert math.isclose(m.expected_tokens(g), (1 - alpha ** (g + 1)) / (1 - alpha))
            assert math.isclose(m.hit(g), alpha ** (g + 1))
    assert model(0.001).expected_tokens(5) < 1.01


def test_a_profile_reads_position_by_position_and_repeats_its_last_entry():
    m = RoundModel((0.9, 0.5), 1.0, 1.0, 1.0)
    assert m.beta(1) == 0.9 and m.beta(2) == 0.5 and m.beta(7) == 0.5
    assert math.isclose(m.expected_tokens(3), 1 + 0.9 + 0.45 + 0.225)
    assert math.isclose(m.hit(2), 0.9 * 0.5 * 0.5)


def test_the_expected_tokens_match_a_monte_carlo_of_rounds():
    rng = np.random.default_rng(3)
    betas = (0.9, 0.8, 0.6, 0.5)
    m = RoundModel(betas, 1.0, 1.0, 1.0)
    gamma, total, rounds = 5, 0, 20_000
    for _ in range(rounds):
        k = 0
        while k < gamma and rng.random() < m.beta(k + 1):
            k += 1
        total += k + 1
    assert abs(total / rounds - m.expected_tokens(gamma)) < 0.03


def test_round_time_without_and_with_overlap():
    m = model(overlap=False)
    assert m.round_ms(4) == 4 * 10 + 40 + 35
    o = model(overlap=True)
    h = o.hit(4)
    # after a hit only the verify call, plus whatever drafting outlasted it
    assert math.isclose(o.round_ms(4), (1 - h) * 115 + h * (35 + max(0.0, 40 - 35)))
    assert o.round_ms(4) < m.round_ms(4)
    waits = model(overlap=True, ahead_extra_ms=10.0)
    assert waits.round_ms(4) > o.round_ms(4)  # a measured extra wait makes hits dearer


def test_overlap_drops_drafts_past_blocks_that_miss():
    assert model(overlap=False).dropped_ahead(4) == 0.0
    o = model(overlap=True)
    assert 0 < o.dropped_ahead(4) <= (1 - o.hit(4)) * 5 * o.blocks_ahead(4)
    assert o.drafted_per_round(4) == 4 + o.dropped_ahead(4)
    assert model(d=1000.0, overlap=True).blocks_ahead(1) == 8  # capped


def test_best_gamma_minimises_the_price_per_committed_token():
    for alpha in (0.5, 0.7, 0.9):
        for d in (1.0, 10.0, 80.0):
            m = model(alpha, a=1.0, d=d, v=0.0)
            rates = [m.expected_tokens(g) / (g * 1.0 + d) for g in range(1, 65)]
            assert m.best_gamma(64) == int(np.argmax(rates)) + 1


def test_slow_links_want_long_drafts_and_the_asymptote_holds():
    assert model(0.8, a=1.0, d=100.0, v=0.0).best_gamma(32) > model(0.8, a=1.0, d=5.0, v=0.0).best_gamma(32)
    alpha, a, c = 0.8, 0.1, 100.0  # κ = 1000
    g = model(alpha, a=a, d=c, v=0.0).best_gamma(64)
    approx = math.log(c / a * math.log(1 / alpha)) / math.log(1 / alpha) - 1
    assert abs(g - approx) <= 2


def test_prices_trade_speed_for_cloud_passes_and_device_energy():
    m = model()
    fastest = m.best_gamma(16)
    assert m.best_gamma(16, RoundPrices(per_ms=1.0, per_pass=500.0)) > fastest  # a dear cloud: fewer passes
    assert m.best_gamma(16, RoundPrices(per_ms=1.0, per_draft=50.0)) < fastest  # a dear battery: fewer drafts


def test_slack_takes_a_longer_draft_for_little():
    m = model(0.8, a=0.5, d=30.0, v=3.0)
    g0, g1 = m.best_gamma(64), m.best_gamma(64, slack=0.02)
    assert g0 < g1 <= 2 * g0
    assert m.price_per_token(g1) * 0.98 <= m.price_per_token(g0)


def test_a_falling_profile_wants_shorter_drafts_than_its_first_position_suggests():
    flat = RoundModel((0.8,), 1.0, 30.0, 5.0)
    falling = RoundModel((0.8, 0.7, 0.6, 0.5, 0.4), 1.0, 30.0, 5.0)
    assert falling.best_gamma(16) < flat.best_gamma(16)


def test_the_controller_prices_rounds_with_the_same_model_as_the_policy():
    prior = RoundModel((0.8, 0.7, 0.6), 10.0, 40.0, 35.0, overlap=True)
    prices = RoundPrices(per_ms=1.0, per_pass=400.0)
    ctl = DraftLengthController(DraftControlConfig(prior=prior, prices=prices, max_gamma=16))
    # before any round the session's model is the policy's
    assert ctl.best_gamma() == ctl.model().best_gamma(16, prices)
    assert abs(ctl.model().expected_tokens(4) - prior.expected_tokens(4)) < 1e-9
