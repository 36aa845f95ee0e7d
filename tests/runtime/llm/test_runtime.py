"""The decoder runtime on the shipped fp32 models: caching, verify passes, rollback, limits."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from runtime.llm.decoder import ContextOverflow, OnnxDecoder, choose_providers
from runtime.llm.runner import ModelRunner, verify_pass
from runtime.llm.sampling import distribution
from runtime.llm.tokenizer import Tokenizer
from runtime.params import SamplingConfig
from tandem.errors import InvalidArgument
from tests.conftest import PROMPTS


@pytest.fixture(scope="module")
def target(profile) -> ModelRunner:
    return ModelRunner(OnnxDecoder(profile.target), Tokenizer(profile.tokenizer))


@pytest.fixture(scope="module")
def draft(profile) -> ModelRunner:
    return ModelRunner(OnnxDecoder(profile.draft), Tokenizer(profile.tokenizer))


def uncached(runner: ModelRunner, tokens: list[int]) -> np.ndarray:
    """Logits after every token, from one pass with no cache: [len(tokens), vocab]."""
    d = runner.decoder
    n = len(tokens)
    logits, _ = d.forward(
        np.asarray([tokens], np.int64),
        np.ones((1, n), np.int64),
        np.arange(n, dtype=np.int64)[None],
        d.empty_past(1),
    )
    return logits[0]


def greedy_tokens(runner: ModelRunner, prompt: list[int], n: int) -> list[int]:
    steps = list(runner.generate(None, prompt, SamplingConfig(max_new_tokens=n)))
    return [t for s in steps for t in s.token_ids]


@pytest.mark.parametrize("which", ["target", "draft"])
def test_cached_logits_match_uncached(which, target, draft):
    runner = target if which == "target" else draft
    tokens = runner.prompt_ids(text=PROMPTS[2])
    tokens = tokens + greedy_tokens(runner, tokens, 12)
    full = uncached(runner, tokens)
    sid = f"cache-{which}"
    got = [runner.logits_after(sid, tokens[:8], 8).logits]  # prefill
    for i in range(8, len(tokens)):  # then one token at a time from the cache
        res = runner.logits_after(sid, tokens[: i + 1], 1)
        assert res.cached_tokens == i and res.computed_tokens == 1
        got.append(res.logits)
    np.testing.assert_allclose(np.concatenate(got), full, atol=1e-4)
    runner.release(sid)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_verify_pass_argmax_equals_single_steps(target, draft, k):
    """A k-token verify pass on the fp32 target picks the same tokens as k single steps."""
    for p_i, prompt in enumerate(PROMPTS):
        context = target.prompt_ids(text=prompt)
        drafted = greedy_tokens(draft, context, k)  # realistic drafts, some of them wrong
        verify = target.logits_after(f"verify-{p_i}", context + drafted, k + 1).logits  # [k+1, vocab]
        for j in range(k + 1):
            single = target.logits_after(f"single-{p_i}-{j}", context + drafted[:j], 1).logits[-1]
            assert int(np.argmax(verify[j])) == int(np.argmax(single)), (prompt, j)
            np.testing.assert_allclose(verify[j], single, atol=1e-4)
            target.release(f"single-{p_i}-{j}")
        target.release(f"verify-{p_i}")


def test_prefix_reuse_after_rollback_matches_fresh_prefill(target):
    context = target.prompt_ids(text=PROMPTS[1])
    rejected = greedy_tokens(target, context, 6)
    target.logits_after("rb", context + rejected, 7)  # cache now holds the drafts
    correction = (rejected[0] + 1) % target.spec.vocab_size  # a different continuation
    res = target.logits_after("rb", context + [correction], 1)
    assert res.cached_tokens == len(context)  # reused exactly the common prefix
    fresh = target.logits_after("fresh", context + [correction], 1)
    assert fresh.cached_tokens == 0
    np.testing.assert_allclose(res.logits, fresh.logits, atol=1e-4)
    np.testing.assert_allclose(res.logits[-1], uncached(target, context + [correction])[-1], atol=1e-4)


def test_lost_cache_recomputes_same_logits(target):
    context = target.prompt_ids(text=PROMPTS[0]) + [11, 12, 13]
    a = target.logits_after("lost", context, 1).logits
    assert target.release("lost")
    b = target.logits_after("lost", context, 1)
    assert b.cached_tokens == 0
    np.testing.assert_allclose(a, b.logits, atol=1e-5)


def test_context_overflow_is_a_clear_error(target):
    limit = target.spec.max_context
    with pytest.raises(ContextOverflow) as err:
        target.logits_after("overflow", [1] * (limit + 1), 1)
    assert err.value.field == "context" and str(limit) in err.value.message
    with pytest.raises(InvalidArgument) as err:
        target.generate(None, [1] * (limit - 4), SamplingConfig(max_new_tokens=10))
    assert err.value.field == "sampling.max_new_tokens"
    assert "at most 4 fit" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        target.generate(None, [1] * limit, SamplingConfig(max_new_tokens=1))
    assert err.value.field == "prompt"


def test_batched_left_padded_pass_matches_single_sequences(target):
    """The exported graph honours attention_mask and position_ids (batching relies on it)."""
    a = target.prompt_ids(text=PROMPTS[0])
    b = target.prompt_ids(text=PROMPTS[2])
    n = max(len(a), len(b))
    ids = np.zeros((2, n), np.int64)
    mask = np.zeros((2, n), np.int64)
    pos = np.zeros((2, n), np.int64)
    for row, seq in enumerate((a, b)):
        ids[row, n - len(seq) :] = seq
        mask[row, n - len(seq) :] = 1
        pos[row, n - len(seq) :] = np.arange(len(seq))
    d = target.decoder
    logits, _ = d.forward(ids, mask, pos, d.empty_past(2))
    np.testing.assert_allclose(logits[0, -1], uncached(target, a)[-1], atol=1e-4)
    np.testing.assert_allclose(logits[1, -1], uncached(target, b)[-1], atol=1e-4)


def test_seeded_sampling_is_reproducible(target):
    prompt = target.prompt_ids(text=PROMPTS[3])
    cfg = SamplingConfig(temperature=1.0, top_k=50, top_p=0.9, seed=42, max_new_tokens=16)
    run = lambda c: [t for s in target.generate(None, prompt, c) for t in s.token_ids]  # noqa: E731
    first = run(cfg)
    assert run(cfg) == first
    others = {tuple(run(SamplingConfig(temperature=1.0, seed=s, max_new_tokens=16))) for s in range(1, 6)}
    assert len(others) > 1


def test_stop_string_cuts_text(target):
    prompt = target.prompt_ids(text=PROMPTS[1])
    full = "".join(s.text for s in target.generate(None, prompt, SamplingConfig(max_new_tokens=40)))
    stop = full.strip()[:3]
    assert stop, "the model produced only whitespace"
    cut = full.index(stop)
    steps = list(target.generate(None, prompt, SamplingConfig(max_new_tokens=40, stop=(stop,))))
    assert steps[-1].finish_reason == "stop_string"
    assert "".join(s.text for s in steps) == full[:cut]


def test_text_deltas_concatenate_to_decoded_text(target):
    prompt = target.prompt_ids(text="s = '")
    steps = list(target.generate(None, prompt, SamplingConfig(temperature=1.5, seed=3, max_new_tokens=48)))
    ids = [t for s in steps for t in s.token_ids]
    assert "".join(s.text for s in steps) == target.tokenizer.decode(ids)


def test_generation_keeps_then_releases_session(target):
    prompt = target.prompt_ids(text=PROMPTS[0])
    list(target.generate("keep", prompt, SamplingConfig(max_new_tokens=4)))
    entry = target.cache.get("keep")
    assert entry is not None and len(entry.tokens) == len(prompt) + 3  # the last token is not yet run
    assert target.release("keep") and not target.release("keep")


def test_release_during_a_draft_leaves_no_cache_behind(draft):
    """A pre-draft abandoned by the router must not re-create the session it released."""
    import threading

    reached, proceed = threading.Event(), threading.Event()

    class Gate:  # the draft loop polls `cancel` before each token: pause it after the first
        calls = 0

        def is_set(self) -> bool:
            self.calls += 1
            if self.calls == 2:
                reached.set()
                proceed.wait(10)
            return False

    ids = draft.prompt_ids(text=PROMPTS[0])
    result = {}
    t = threading.Thread(
        target=lambda: result.update(r=draft.draft("abandoned", ids, 16, SamplingConfig(), 8, Gate()))
    )
    t.start()
    assert reached.wait(10)
    assert draft.cache.get("abandoned") is not None  # the first drafted token is cached
    assert draft.release("abandoned")
    proceed.set()
    t.join(10)
    assert len(result["r"].token_ids) == 1  # stopped at the release
    assert draft.cache.get("abandoned") is None
    assert draft.draft("abandoned", ids, 2, SamplingConfig()).token_ids  # the id is usable again
    assert draft.cache.get("abandoned") is not None
    draft.release("abandoned")


def test_a_pass_given_up_by_its_caller_leaves_no_cache_behind(target):
    """A verify whose caller was cancelled while its pass waited for the model (its stream ended):
    the stream's release comes after the caller left the operation, and the pass, run later, must
    not re-create the released session."""
    ids = target.prompt_ids(text=PROMPTS[0])
    with pytest.raises(asyncio.CancelledError), target.operation("gone") as op:
        raise asyncio.CancelledError  # the awaiting coroutine is cancelled
    target.release("gone")  # the stream's finally: finds no operation in flight
    target.logits_after_many([verify_pass("gone", ids, [], op)])  # the pass ran on regardless
    assert target.cache.get("gone") is None
    with target.operation("kept") as op:  # a pass its caller waited for is kept
        target.logits_after_many([verify_pass("kept", ids, [], op)])
    assert target.cache.get("kept") is not None
    target.release("kept")


def test_choose_providers_prefers_npu_and_ends_with_cpu():
    pref = ["QNNExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(pref, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(pref, ["OpenVINOExecutionProvider", "CPUExecutionProvider"]) == [
        "OpenVINOExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert choose_providers([], ["QNNExecutionProvider"]) == ["CPUExecutionProvider"]


def test_prompt_ids_validation(target):
    with pytest.raises(InvalidArgument):
        target.prompt_ids()
    with pytest.raises(InvalidArgument) as err:
        target.prompt_ids(token_ids=[target.spec.vocab_size])
    assert err.value.field == "input.token_ids"
    with pytest.raises(InvalidArgument) as err:
        target.prompt_ids(messages=[("robot", "hi")])
    assert err.value.field == "messages[0].role"
    assert target.prompt_ids(messages=[("user", "hi")])


def check_rounds(target: ModelRunner, draft: ModelRunner, gamma: int, one_round, n: int = 30) -> None:
    """Per prompt, rounds of `one_round(prompt index, context, g)` → the tokens it commits, drafting
    g ≤ γ tokens (0 when one token is left), until n tokens: they must be the target's greedy ones."""
    for p_i, prompt in enumerate(PROMPTS[:4]):
        context = target.prompt_ids(text=prompt)
        want = greedy_tokens(target, context, n)
        committed: list[int] = []
        while len(committed) < n:
            committed += one_round(p_i, context + committed, min(gamma, n - len(committed) - 1))
        assert committed == want
        for runner in (draft, target):
            for kind in "dctu":  # the sessions the rounds use: f"{kind}{prompt index}"
                runner.release(f"{kind}{p_i}")


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_greedy_draft_and_verify_reproduce_target_greedy_output(target, draft, gamma):
    """Rounds of draft + verify commit exactly the target's greedy tokens (runtime level)."""

    def one_round(p_i, ctx, g):
        drafted = draft.draft(f"d{p_i}", ctx, g, SamplingConfig()).token_ids if g else []
        v = target.verify(f"t{p_i}", ctx, drafted, None, SamplingConfig())
        assert v.forward_passes == 1
        return drafted[: v.round.accepted] + [v.round.next_token]

    check_rounds(target, draft, gamma, one_round)


@pytest.mark.parametrize("branching,gamma", [((3, 2), 4), ((4,), 1), ((2, 2, 2), 3)])
def test_tree_draft_and_verify_reproduce_target_greedy_output(target, draft, branching, gamma):
    """A draft tree: its paths are distinct, all γ long, led by the plain greedy chain and holding
    the draft's top-k at each branching depth; verifying them in one pass commits exactly the
    target's greedy tokens, and never fewer than the chain alone would."""
    tree_won = 0

    def one_round(p_i, ctx, g):
        nonlocal tree_won
        if not g:
            return [target.verify(f"t{p_i}", ctx, [], None, SamplingConfig()).round.next_token]
        res = draft.draft(f"d{p_i}", ctx, g, SamplingConfig(), branching=branching)
        chain = draft.draft(f"c{p_i}", ctx, g, SamplingConfig()).token_ids
        paths = [res.token_ids] + res.alternatives
        assert res.token_ids == chain
        assert all(len(p) == g for p in paths) and len({tuple(p) for p in paths}) == len(paths)
        assert len(paths) == int(np.prod([branching[d] if d < len(branching) else 1 for d in range(g)]))
        top = np.argsort(-uncached(draft, ctx)[-1])[: branching[0]]
        assert sorted({p[0] for p in paths}) == sorted(top.tolist())
        v = target.verify(f"t{p_i}", ctx, res.token_ids, None, SamplingConfig(), res.alternatives)
        alone = target.verify(f"u{p_i}", ctx, chain, None, SamplingConfig())
        assert v.forward_passes == 1 and v.round.accepted >= alone.round.accepted
        tree_won += v.path > 0
        return paths[v.path][: v.round.accepted] + [v.round.next_token]

    check_rounds(target, draft, gamma, one_round)
    assert tree_won > 0  # some round committed a path the chain does not hold


def test_tree_verify_rejects_bad_alternatives(target):
    context = target.prompt_ids(text=PROMPTS[0])
    with pytest.raises(InvalidArgument) as err:
        target.verify("bad", context, [1, 2], None, SamplingConfig(), [[1]])
    assert err.value.field == "draft_alternatives[0]"
    with pytest.raises(InvalidArgument) as err:
        target.verify("bad", context, [1], [], SamplingConfig(temperature=0.7), [[2]])
    assert err.value.field in ("draft_alternatives", "draft_distributions")
    with pytest.raises(InvalidArgument) as err:
        target.draft("bad", context, 2, SamplingConfig(temperature=0.7), branching=(2,))
    assert err.value.field == "branching"
    assert target.cache.get("bad") is None


def test_sampled_draft_reports_its_distribution(draft):
    context = draft.prompt_ids(text=PROMPTS[0])
    cfg = SamplingConfig(temperature=0.8, seed=11)
    res = draft.draft("q", context, 4, cfg, support_size=16)
    assert len(res.token_ids) == len(res.dists) == 4
    for tok, q in zip(res.token_ids, res.dists):
        assert len(q.ids) <= 16 and tok in set(q.ids.tolist())
    again = draft.draft("q2", context, 4, cfg, support_size=16)
    assert again.token_ids == res.token_ids  # seeded: reproducible


def test_tandem_sampling_follows_the_target_distribution(target, draft):
    """Statistical: the first two tokens committed by draft + verify rounds (sampling, seeded runs)
    follow the target's own joint distribution p(x1) p(x2 | x1). Chi-square over all 25 outcomes."""
    cfg_for = lambda seed: SamplingConfig(temperature=1.0, top_k=5, seed=seed)  # noqa: E731
    context = target.prompt_ids(text="x = ")
    p1 = distribution(target.logits_after("exact", context, 1).logits[-1], cfg_for(0))
    support = np.nonzero(p1)[0]
    joint = {}
    for a in support:
        p2 = distribution(target.logits_after("exact", context + [int(a)], 1).logits[-1], cfg_for(0))
        for b in np.nonzero(p2)[0]:
            joint[(int(a), int(b))] = p1[a] * p2[b]
    n = 2000
    counts: dict[tuple[int, int], int] = {}
    for seed in range(n):
        cfg = cfg_for(seed)
        committed: list[int] = []
        while len(committed) < 2:
            d = draft.draft("sd", context + committed, 2, cfg, support_size=3)  # q: the draft's top 3 only
            v = target.verify("st", context + committed, d.token_ids, d.dists, cfg)
            committed += d.token_ids[: v.round.accepted] + [v.round.next_token]
        key = (committed[0], committed[1])
        assert key in joint, f"TANDEM produced {key}, which the target never would"
        counts[key] = counts.get(key, 0) + 1
    expected = np.array([joint[k] * n for k in joint])
    observed = np.array([counts.get(k, 0) for k in joint])
    big = expected >= 5  # pool sparse outcomes into one bin
    exp_bins = np.append(expected[big], expected[~big].sum())
    obs_bins = np.append(observed[big], observed[~big].sum())
    keep = exp_bins > 0
    chi2 = float(((obs_bins[keep] - exp_bins[keep]) ** 2 / exp_bins[keep]).sum())
    dof = int(keep.sum()) - 1
    # critical values of chi-square at p = 0.001
    critical = {
        1: 10.8,
        2: 13.8,
        3: 16.3,
        4: 18.5,
        5: 20.5,
        6: 22.5,
        7: 24.3,
        8: 26.1,
        9: 27.9,
        10: 29.6,
        11: 31.3,
        12: 32.9,
        13: 34.5,
        14: 36.1,
        15: 37.7,
        16: 39.3,
        17: 40.8,
        18: 42.3,
        19: 43.8,
        20: 45.3,
        21: 46.8,
        22: 48.3,
        23: 49.7,
        24: 51.2,
    }[dof]
    assert chi2 < critical, (chi2, dof, dict(zip(joint, observed)), dict(zip(joint, expected)))
    tv = 0.5 * np.abs(observed / n - expected / n).sum()
    assert tv < 0.05
