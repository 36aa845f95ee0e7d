"""The draft build's replay of greedy speculative decoding (models/smollm2_draft.py, pure logic):
the figures its model card quotes for chains and draft trees."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def draft_module():
    spec = importlib.util.spec_from_file_location("smollm2_draft", ROOT / "models" / "smollm2_draft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_chain_and_tree_replays_count_rounds():
    m = draft_module()
    ranks = [np.array([0, 0, 1, 0, 2, 0])]
    # chain, γ=2: rounds accept [0, 0] (+ the bonus), [0] (+ the correction at rank 2), [0]:
    # 6 tokens, 3 passes
    assert m.tokens_per_pass(ranks, 2) == 6 / 3
    assert m.tokens_per_pass([r == 0 for r in ranks], 2) == 6 / 3  # hit sequences replay alike
    # a top-3 first branch: the rank-1 token that starts a round is accepted there
    assert m.tokens_per_pass([np.array([1, 0, 1, 0])], 2) == 4 / 3
    assert m.tokens_per_pass([np.array([1, 0, 1, 0])], 2, (3,)) == 4 / 2
    # the tree only widens the depths it names: rank 2 at depth 1 is a miss with (3,), a hit with (3, 3)
    assert m.tokens_per_pass([np.array([0, 2, 0])], 2, (3,)) == 3 / 2
    assert m.tokens_per_pass([np.array([0, 2, 0])], 2, (3, 3)) == 3 / 1


def test_ranks_report_shapes():
    m = draft_module()
    rep = m.ranks_report([np.array([0, 1, 0, 3]), np.array([2, 0])])
    assert rep["held_out_agreement_torch"] == 0.5
    assert rep["held_out_top_k"] == {"1": 0.5, "2": 4 / 6, "3": 5 / 6, "4": 1.0}
    assert set(rep["held_out_tree_tokens_per_pass"]) == {"3x2", "4x2"}
    # γ=1 with a top-4 first token: only the rank-0..3 runs' first positions matter
    assert rep["held_out_tree_tokens_per_pass"]["4x2"]["1"] == 6 / 3
