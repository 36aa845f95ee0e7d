"""Batched forward passes on the shipped target: each session computes what it would alone."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.llm.decoder import ContextOverflow, OnnxDecoder
from runtime.llm.runner import ModelRunner, Pass
from runtime.llm.tokenizer import Tokenizer
from tests.conftest import PROMPTS


@pytest.fixture(scope="module")
def target(profile) -> ModelRunner:
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


@pytest.mark.parametrize("steady", [False, True])
def test_greedy_decoding_in_a_batch_equals_each_session_alone(target, steady):
    prompts = [target.prompt_ids(text=p) for p in PROMPTS[:8]]
    alone = []
    for i, p in enumerate(prompts):
        toks = list(p)
        for _ in range(24):
            toks.append(int(np.argmax(target.logits_after(f"alone-{i}", toks).logits[-1])))
        alone.append(toks)
    ctx = [list(p) for p in prompts]
    for _step in range(24):
        # sessions at different lengths, some verifying several tokens at once: one padded pass
        # steady: the caches stay in the batch's arrays, and each step takes the last one's whole
        res = target.logits_after_many(
            [Pass(f"batch-{steady}-{i}", c, steady=steady) for i, c in enumerate(ctx)]
        )
        for c, r in zip(ctx, res):
            c.append(int(np.argmax(r.logits[-1])))
    assert ctx == alone
    # logits match the unbatched pass to float rounding; the caches stored are the same tokens
    if steady:
        assert target.cache.get(f"batch-{steady}-0").shared is not None
    res = target.logits_after_many([Pass(f"batch-{steady}-{i}", c[:-3], 3) for i, c in enumerate(ctx)])
    for i, (c, r) in enumerate(zip(ctx, res)):
        ref = target.logits_after(f"alone-{i}", c[:-3], 3).logits
        assert r.logits.shape == ref.shape and np.abs(r.logits - ref).max() < 1e-4
        entry = target.cache.get(f"batch-{steady}-{i}")
        assert entry.tokens == c[:-3] and entry.shared is None  # a verify's cache is its own copy


def test_a_batch_reuses_each_sessions_cache_and_pads_prefills_apart(target):
    a = target.prompt_ids(text=PROMPTS[0])
    b = target.prompt_ids(text=PROMPTS[1] * 3)  # a long prefill
    target.logits_after("warm", a)
    res = target.logits_after_many([Pass("warm", a + [5]), Pass("cold", b)])
    assert res[0].cached_tokens == len(a) and res[0].computed_tokens == 1
    assert res[1].cached_tokens == 0 and res[1].computed_tokens == len(b)


def test_a_batch_checks_every_row_before_computing(target):
    with pytest.raises(ValueError, match="once"):
        target.logits_after_many([Pass("s", [1, 2]), Pass("s", [1, 2, 3])])
    too_long = list(range(1, target.spec.max_context + 2))
    with pytest.raises(ContextOverflow):
        target.logits_after_many([Pass("ok", [1, 2, 3]), Pass("long", too_long)])
    assert target.cache.get("ok") is None  # nothing was computed
