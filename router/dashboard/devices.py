"""The dashboard's device view, sized for a fleet of thousands: a summary (count, charging, thermal
states, the battery and RTT distributions), the devices doing the most work, and a search by id.

Pure functions over the device rows LiveView builds: dicts with ``id``, ``battery_percent``,
``charging``, ``thermal``, ``rtt_ms``, ``queue``, ``tokens``, ``tokens_since_last`` and ``share``.
Everything is one pass over the rows (top N and a search's first results by a bounded heap), and
what goes to the page has a size bounded by the number of bins and N, not by the fleet.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence

from tandem.errors import InvalidArgument

BATTERY_EDGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # ten bins of 10 %; 100 % falls in the last
RTT_EDGES_MS = (5, 10, 20, 50, 100, 200)
THERMAL_STATES = ("nominal", "fair", "serious", "critical", "unknown")  # router.fleet.DeviceState
TOP_N = 10
SEARCH_LIMIT = 50
SEARCH_MAX_LIMIT = 500
SEARCH_MAX_QUERY = 128


def bin_labels(edges: Sequence[float], lo: float | None = None, hi: float | None = None) -> list[str]:
    """Labels of the len(edges) + 1 bins `edges` cut: "lo–e0" (or "<e0" without `lo`), "e0–e1", …,
    "eN–hi" (or "≥eN" without `hi`)."""
    first = f"{lo:g}–{edges[0]:g}" if lo is not None else f"<{edges[0]:g}"
    last = f"{edges[-1]:g}–{hi:g}" if hi is not None else f"≥{edges[-1]:g}"
    return [first, *(f"{a:g}–{b:g}" for a, b in zip(edges, edges[1:])), last]


def histogram(values: Iterable[float], edges: Sequence[float], labels: Sequence[str]) -> list[dict]:
    """How many `values` fall in each bin `edges` cut, as ``[{"label", "count"}]``: bin i holds
    edges[i-1] <= v < edges[i]; below the first edge is bin 0, at or above the last the last bin.
    `labels` names the len(edges) + 1 bins."""
    assert len(labels) == len(edges) + 1, "one label per bin"
    counts = [0] * len(labels)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    return [{"label": label, "count": n} for label, n in zip(labels, counts)]


BATTERY_LABELS = bin_labels(BATTERY_EDGES, 0, 100)
RTT_LABELS = bin_labels(RTT_EDGES_MS)


def top_by_share(rows: Iterable[dict], n: int = TOP_N) -> list[dict]:
    """The `n` rows with the largest share of the work, largest first; equal shares by id. Every
    row when there are at most `n`."""
    return heapq.nsmallest(n, rows, key=lambda d: (-d["share"], d["id"]))


def summary(rows: Sequence[dict], top_n: int = TOP_N) -> dict:
    """The fleet at a glance: ``count``, ``charging`` (how many), ``thermal`` (count by state: the
    known states in THERMAL_STATES order, then any other, each present even at 0), ``battery`` and
    ``rtt_ms`` (histograms, see `histogram`), and ``top`` (`top_by_share`)."""
    thermal = dict.fromkeys(THERMAL_STATES, 0)
    charging = 0
    for d in rows:
        thermal[d["thermal"]] = thermal.get(d["thermal"], 0) + 1
        charging += bool(d["charging"])
    return {
        "count": len(rows),
        "charging": charging,
        "thermal": thermal,
        "battery": histogram((d["battery_percent"] for d in rows), BATTERY_EDGES, BATTERY_LABELS),
        "rtt_ms": histogram((d["rtt_ms"] for d in rows), RTT_EDGES_MS, RTT_LABELS),
        "top": top_by_share(rows, top_n),
    }


def search_params(query: Mapping[str, str]) -> tuple[str, int]:
    """The search's ``q`` (default "", at most SEARCH_MAX_QUERY characters) and ``limit`` (default
    SEARCH_LIMIT, a whole number from 1 to SEARCH_MAX_LIMIT) from a request's query string. Raises
    InvalidArgument naming the parameter."""
    q = query.get("q", "")
    if len(q) > SEARCH_MAX_QUERY:
        raise InvalidArgument("q", f"at most {SEARCH_MAX_QUERY} characters, got {len(q)}")
    raw = query.get("limit", "")
    if raw == "":
        return q, SEARCH_LIMIT
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= SEARCH_MAX_LIMIT:
        raise InvalidArgument(
            "limit", f"must be a whole number from 1 to {SEARCH_MAX_LIMIT}, got {raw[:20]!r}"
        )
    return q, int(raw)


def search(rows: Iterable[dict], q: str, limit: int = SEARCH_LIMIT) -> dict:
    """The rows whose id contains `q` (case-insensitive; "" matches all): ``matches`` (how many) and
    ``devices`` (the first `limit` of them by id), with ``q`` and ``limit`` echoed."""
    needle = q.casefold()
    found = [d for d in rows if needle in d["id"].casefold()]
    return {
        "q": q,
        "limit": limit,
        "matches": len(found),
        "devices": heapq.nsmallest(limit, found, key=lambda d: d["id"]),
    }
