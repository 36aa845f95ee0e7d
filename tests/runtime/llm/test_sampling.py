"""Sampling maths and stop strings: pure unit tests."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.llm.sampling import distribution, make_rng, pick, sample_from
from runtime.llm.stopping import StopMatcher
from runtime.params import SamplingConfig, validate_sampling
from tandem.errors import InvalidArgument


def test_greedy_takes_argmax_lowest_id_on_ties():
    logits = np.array([0.1, 3.0, 3.0, -1.0], np.float32)
    assert pick(logits, SamplingConfig(), make_rng(0)) == 1


def test_top_k_and_top_p_restrict_support():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = distribution(logits, SamplingConfig(temperature=1.0, top_k=2))
    np.testing.assert_allclose(p, [0.625, 0.375, 0, 0])
    p = distribution(logits, SamplingConfig(temperature=1.0, top_p=0.8))
    np.testing.assert_allclose(p, [0.625, 0.375, 0, 0])
    p = distribution(logits, SamplingConfig(temperature=1.0, top_p=0.81))
    np.testing.assert_allclose(p, [0.5, 0.3, 0.15, 0] / np.float64(0.95))


def test_sampling_follows_distribution():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rng = make_rng(1)
    counts = np.bincount([sample_from(p, rng) for _ in range(20000)], minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), p, atol=0.015)


@pytest.mark.parametrize(
    "cfg,field",
    [
        (SamplingConfig(temperature=-0.1), "sampling.temperature"),
        (SamplingConfig(temperature=float("nan")), "sampling.temperature"),
        (SamplingConfig(top_k=-1), "sampling.top_k"),
        (SamplingConfig(top_p=0.0), "sampling.top_p"),
        (SamplingConfig(top_p=1.5), "sampling.top_p"),
        (SamplingConfig(max_new_tokens=0), "sampling.max_new_tokens"),
        (SamplingConfig(max_new_tokens=-3), "sampling.max_new_tokens"),
        (SamplingConfig(stop=("",)), "sampling.stop"),
        (SamplingConfig(stop=tuple("abcdefghi")), "sampling.stop"),
    ],
)
def test_validation_names_the_field(cfg, field):
    with pytest.raises(InvalidArgument) as err:
        validate_sampling(cfg)
    assert err.value.field == field


def test_stop_matcher_withholds_possible_prefix_and_cuts():
    m = StopMatcher(["STOP"])
    assert m.feed("hello S") == "hello "
    assert m.feed("T") == ""
    assert m.feed("x") == "STx"
    assert m.feed(" and ST") == " and "
    assert m.feed("OP more") == ""
    assert m.stopped


def test_stop_matcher_flushes_unmatched_tail():
    m = StopMatcher(["\n\n"])
    assert m.feed("a\n") == "a"
    assert m.flush() == "\n"
    assert StopMatcher([]).feed("abc") == "abc"
