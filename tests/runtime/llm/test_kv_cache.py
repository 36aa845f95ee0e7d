"""The session caches' byte budget: least recently used evicted first, bytes kept exact."""

from __future__ import annotations

import numpy as np

from runtime.llm.kv_cache import CacheEntry, SessionCache


def entry(n_tokens: int) -> CacheEntry:
    past = [np.zeros((1, 2, n_tokens, 4), np.float32) for _ in range(2)]  # 64 bytes per token
    return CacheEntry(list(range(n_tokens)), past, None)


def test_least_recently_used_sessions_are_evicted_past_the_budget():
    cache = SessionCache(max_bytes=64 * 30)
    cache.put("a", entry(10))
    cache.put("b", entry(10))
    cache.put("c", entry(10))
    assert len(cache) == 3 and cache.nbytes == 64 * 30 and cache.stats.evictions == 0
    cache.get("a")  # a is used again: b is now the least recently used
    cache.put("d", entry(10))
    assert cache.get("b") is None and cache.get("a") is not None and cache.stats.evictions == 1
    assert cache.nbytes == 64 * 30


def test_bytes_follow_replacement_and_release_and_one_entry_always_stays():
    cache = SessionCache(max_bytes=64 * 30)
    cache.put("a", entry(10))
    cache.put("a", entry(20))  # a session's cache grows as it decodes
    assert cache.nbytes == 64 * 20 and len(cache) == 1
    assert cache.pop("a") and not cache.pop("a") and cache.nbytes == 0
    cache.put("huge", entry(100))  # larger than the budget: kept (the pass needs it), nothing else
    cache.put("next", entry(5))
    assert cache.get("huge") is None and cache.get("next") is not None and cache.nbytes == 64 * 5
