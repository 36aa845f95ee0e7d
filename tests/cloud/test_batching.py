"""The replica's batch runner: duplicate sessions and failing passes (real runner, no Ray needed)."""

from __future__ import annotations

import numpy as np
import pytest

from cloud_worker.batching import PassBatcher, run_all
from runtime.llm.decoder import ContextOverflow, OnnxDecoder
from runtime.llm.runner import ModelRunner, Pass
from runtime.llm.tokenizer import Tokenizer


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


def test_a_pass_waits_for_company_only_while_other_sessions_are_active(target):
    batcher = PassBatcher(target, lambda fn, *args: None, max_batch_size=4, wait_ms=1.0)
    assert not batcher.joins_batch("a")  # nobody else: straight to the model
    assert not batcher.joins_batch("a")  # nor when the same session steps again
    assert batcher.joins_batch("b")  # a was active a moment ago: b's pass waits for company
    batcher.forget("a")  # a's session ended
    assert not batcher.joins_batch("b")
