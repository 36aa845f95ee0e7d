"""Shadow mode: a candidate policy decides beside the live one on live traffic, without being
enforced, and the differences are counted (pure; the Placer feeds it every counted decision).

A shadow decision that refuses a request the live policy served (or the reverse) counts as a
difference with placement "refused".
"""

from __future__ import annotations

import collections
import dataclasses

from router.policy.config import PolicyConfig
from router.policy.placement import Decision


@dataclasses.dataclass
class ShadowStats:
    policy: PolicyConfig
    note: str
    caller: str
    started_unix_s: float
    decisions: int = 0
    same_placement: int = 0
    same_target: int = 0  # same placement, device and pool
    differences: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )  # (live, shadow)
    live_cost_usd: float = 0.0  # sums of the predictions, over the decisions both served
    shadow_cost_usd: float = 0.0
    live_ttft_ms: float = 0.0
    shadow_ttft_ms: float = 0.0
    live_token_ms: float = 0.0
    shadow_token_ms: float = 0.0
    both_served: int = 0

    def record(self, live: Decision | None, shadow: Decision | None) -> None:
        """One request's two decisions (None: that policy refused it)."""
        self.decisions += 1
        a = live.placement if live else "refused"
        b = shadow.placement if shadow else "refused"
        if a == b:
            self.same_placement += 1
            if live and shadow and (live.edge_worker_id, live.pool) == (shadow.edge_worker_id, shadow.pool):
                self.same_target += 1
        else:
            self.differences[(a, b)] += 1
        if live and shadow:
            self.both_served += 1
            self.live_cost_usd += live.predicted_cost_usd
            self.shadow_cost_usd += shadow.predicted_cost_usd
            self.live_ttft_ms += live.predicted_ttft_ms
            self.shadow_ttft_ms += shadow.predicted_ttft_ms
            self.live_token_ms += live.predicted_token_ms
            self.shadow_token_ms += shadow.predicted_token_ms

    def report(self) -> dict:
        """Plain data for the Admin API and the dashboard: rates, the placement differences, and the
        mean predicted cost and latency of each policy over the requests both would serve."""
        n = self.both_served

        def mean(x: float) -> float | None:
            return x / n if n else None

        return {
            "decisions": self.decisions,
            "same_placement": self.same_placement,
            "same_target": self.same_target,
            "agreement": self.same_placement / self.decisions if self.decisions else None,
            "differences": [
                {"live": a, "shadow": b, "count": c} for (a, b), c in self.differences.most_common()
            ],
            "live": {
                "cost_usd": mean(self.live_cost_usd),
                "ttft_ms": mean(self.live_ttft_ms),
                "token_ms": mean(self.live_token_ms),
            },
            "shadow": {
                "cost_usd": mean(self.shadow_cost_usd),
                "ttft_ms": mean(self.shadow_ttft_ms),
                "token_ms": mean(self.shadow_token_ms),
            },
            "note": self.note,
            "caller": self.caller,
            "started_unix_s": self.started_unix_s,
        }
