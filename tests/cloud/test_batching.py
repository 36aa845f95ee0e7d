"""The replica's batch runner: duplicate sessions and failing passes (real runner, no Ray needed)."""

from __future__ import annotations

import numpy as np
import pytest

from cloud_worker.batching import run_all
from tandem.llm.decoder import ContextOverflow, OnnxDecoder
from tandem.llm.runner import ModelRunner, Pass
from tandem.llm.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def target(profile) -> ModelRunner:
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


def test_a_failing_pass_fails_alone_and_a_repeated_session_runs_after(target):
    too_long = list(range(1, target.spec.max_context + 2))
    passes = [Pass("a", [1, 2, 3]), Pass("bad", too_long), Pass("a", [1, 2, 3, 4]), Pass("b", [7, 8])]
    out = run_all(target, passes)
    assert isinstance(out[1], ContextOverflow)
    assert out[2].cached_tokens == 3  # after the first pass of its session, whose cache it reused
    ref = target.logits_after("ref", [7, 8]).logits
    assert np.abs(out[3].logits - ref).max() < 1e-4
