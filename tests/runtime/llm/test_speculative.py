"""Speculative accept/reject maths: greedy exactness and the sampled distribution (statistical)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.llm.sampling import distribution
from runtime.llm.speculative import (
    SparseDist,
    expected_tokens_per_round,
    greedy_round,
    sampling_round,
    wire_distribution,
)
from runtime.params import SamplingConfig


def onehot_logits(tokens, vocab=8):
    out = np.full((len(tokens), vocab), -5.0, np.float32)
    for i, t in enumerate(tokens):
        out[i, t] = 5.0
    return out


def test_greedy_round_accepts_matching_prefix_then_corrects():
    target = onehot_logits([3, 1, 4, 1, 5])  # target's argmax after each prefix
    assert (greedy_round([3, 1, 4, 1], target).accepted, greedy_round([3, 1, 4, 1], target).next_token) == (
        4,
        5,
    )
    r = greedy_round([3, 1, 7, 1], target)
    assert (r.accepted, r.next_token) == (2, 4)  # correction at the first mismatch
    r = greedy_round([], target[:1])
    assert (r.accepted, r.next_token) == (0, 3)  # γ = 0: a plain target step


def test_wire_distribution_is_a_top_k_restriction():
    p = np.array([0.05, 0.5, 0.3, 0.15])
    q = wire_distribution(p, 2)
    assert list(q.ids) == [1, 2] and q.probs.dtype == np.float32
    np.testing.assert_allclose(q.dense(4), [0, 0.625, 0.375, 0])


def test_expected_tokens_per_round():
    assert expected_tokens_per_round(0.0, 4) == 1.0
    assert expected_tokens_per_round(1.0, 4) == 5.0
    assert abs(expected_tokens_per_round(0.7, 4) - (1 - 0.7**5) / 0.3) < 1e-12


@pytest.mark.parametrize("gamma", [1, 3])
def test_speculative_sampling_follows_the_target_distribution(gamma):
    """Two committed positions' joint distribution matches p, for a q that differs from p.

    Chi-square test on the first committed token (marginal p_1) over many seeded rounds, and a
    total-variation bound on the second token given the first was accepted.
    """
    vocab = 6
    rng_setup = np.random.default_rng(7)
    cfg = SamplingConfig(temperature=1.0)
    target_logits = rng_setup.normal(size=(gamma + 1, vocab)) * 1.5
    draft_logits = rng_setup.normal(size=(gamma, vocab)) * 1.5
    p = np.stack([distribution(row, cfg) for row in target_logits])  # [γ+1, vocab]
    qs = [wire_distribution(distribution(row, cfg), 4) for row in draft_logits]  # support 4 of 6 tokens
    rng = np.random.default_rng(123)
    n = 40_000
    first = np.zeros(vocab)
    for _ in range(n):
        drafted = [int(rng.choice(vocab, p=q.dense(vocab))) for q in qs]
        r = sampling_round(drafted, qs, p, rng)
        # first committed token: d_1 if accepted, else the correction
        tok = drafted[0] if r.accepted >= 1 else r.next_token
        first[tok] += 1
    expected = p[0] * n
    chi2 = float(((first - expected) ** 2 / expected).sum())
    # chi-square with 5 degrees of freedom: P(chi2 > 20.5) ≈ 0.001
    assert chi2 < 20.5, (first / n, p[0])
    assert 0.5 * np.abs(first / n - p[0]).sum() < 0.01


def test_sampling_round_needs_draft_probability():
    q = SparseDist(np.array([0]), np.array([1.0], np.float32))
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError):
        sampling_round([2], [q], p, np.random.default_rng(0))


def test_greedy_tree_round_commits_the_path_accepted_furthest():
    from runtime.llm.speculative import greedy_tree_round

    vocab = 6

    def rows(*argmaxes):  # logits whose row i peaks at argmaxes[i]
        out = np.zeros((len(argmaxes), vocab), np.float32)
        out[np.arange(len(argmaxes)), argmaxes] = 1.0
        return out

    target = rows(2, 3, 4)  # the target writes 2, 3, 4 after the context
    paths = [[1, 3], [2, 5], [2, 3]]
    path, rnd = greedy_tree_round(paths, [target] * 3)
    assert (path, rnd.accepted, rnd.next_token) == (2, 2, 4)  # the bonus after the full path
    path, rnd = greedy_tree_round([[2, 5], [2, 1]], [target] * 2)
    assert (path, rnd.accepted, rnd.next_token) == (0, 1, 3)  # a tie: the lowest index (the chain)
    path, rnd = greedy_tree_round([[0, 0]], [target])
    assert (path, rnd.accepted, rnd.next_token) == (0, 0, 2)
    with pytest.raises(ValueError):
        greedy_tree_round([[1], [2]], [target])
