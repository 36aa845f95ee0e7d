"""Per-session KV caches with longest-prefix reuse and an LRU byte budget.

A cache entry holds the tokens whose keys/values it stores, the arrays themselves and the logits
that followed the last token. Callers ask for the longest prefix of a context that an entry
holds; truncating an entry to a prefix is free (a view), which is how rollback after a rejected
draft works and why a lost cache only costs recomputation.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass
class CacheEntry:
    tokens: list[int]
    past: list[np.ndarray]  # 2 × layers arrays [1, kv_heads, len(tokens), head_dim]
    last_logits: np.ndarray | None  # [vocab]: logits after tokens[-1]
    # (a batch's present arrays, row): `past` is that row's end of them, viewed, not copied — the
    # next batch of the same sessions takes them as its past as they are (runtime.llm.runner)
    shared: tuple[list, int] | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.past)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclasses.dataclass
class CacheStats:
    hits: int = 0  # lookups that reused at least one token
    misses: int = 0  # lookups that reused nothing
    evictions: int = 0
    reused_tokens: int = 0


class SessionCache:
    """Session id → CacheEntry, least recently used evicted first when over `max_bytes`."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[str, CacheEntry] = collections.OrderedDict()
        self._bytes = 0  # held by the entries (kept as they come and go: put runs on every pass)
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def get(self, session_id: str) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is not None:
                self._entries.move_to_end(session_id)
            return entry

    def put(self, session_id: str, entry: CacheEntry) -> None:
        with self._lock:
            replaced = self._entries.get(session_id)
            self._bytes += entry.nbytes - (replaced.nbytes if replaced is not None else 0)
            self._entries[session_id] = entry
            self._entries.move_to_end(session_id)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
                self.stats.evictions += 1

    def record_lookup(self, reused: int) -> None:
        with self._lock:
            if reused:
                self.stats.hits += 1
                self.stats.reused_tokens += reused
            else:
                self.stats.misses += 1

    def pop(self, session_id: str) -> bool:
        with self._lock:
            old = self._entries.pop(session_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            return old is not None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes
