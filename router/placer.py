"""Decisions with live state: the policy in force, the fleet and the online estimates, glued to
the pure policy function; and what a finished request teaches the estimates."""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

from router.fleet import FleetRegistry
from router.metrics import RouterMetrics
from router.policy.config import PolicyConfig
from router.policy.decide import decide
from router.policy.estimates import Estimates
from router.policy.outcome import Outcome, learn
from router.policy.placement import Decision, RouteRequest
from router.policy.shadow import ShadowStats
from router.policy.snapshot import build_snapshot
from router.policy_store import PolicyStore, PolicyVersion
from tandem.errors import FailedPrecondition, ResourceExhausted

LOG_SIZE = 5000  # decisions kept for what-if replay


class Placer:
    """Decides with the live policy; beside it, an optional shadow policy whose decisions are only
    counted; and a log of the last LOG_SIZE requests decided (the dashboard's what-if trace)."""

    def __init__(
        self,
        registry: FleetRegistry,
        store: PolicyStore,
        estimates: Estimates,
        metrics: RouterMetrics,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.estimates = estimates
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.shadow: ShadowStats | None = None
        # (wall time, chars per token, route): plain references on the decision path, dicts on reading
        self._log: collections.deque[tuple[float, float, RouteRequest]] = collections.deque(maxlen=LOG_SIZE)
        store.on_change = self.policy_changed
        self.policy_changed(store.current)

    def policy_changed(self, v: PolicyVersion) -> None:
        self.estimates.policy = v.policy  # priors for workers not measured yet
        self.metrics.policy_version.set(v.version)

    def decide(self, route: RouteRequest, count: bool = True) -> Decision:
        """The decision for `route` now. Raises FailedPrecondition when nothing can serve, ResourceExhausted
        when only saturated pools could."""
        policy, version = self.store.policy, self.store.current.version
        snap = build_snapshot(self.registry, self.estimates, policy, route.device_id, route.greedy)
        now = self.registry.now()
        if count:
            self._log.append((self.wall_clock(), snap.chars_per_token, route))
        try:
            d = decide(route, snap, policy, now, version)
        except (FailedPrecondition, ResourceExhausted) as exc:
            if count:
                self.metrics.decisions.labels(
                    "none", "saturated" if isinstance(exc, ResourceExhausted) else "no_candidate"
                ).inc()
                self._shadow(route, snap, now, None)
            raise
        if count:
            self._shadow(route, snap, now, d)
            self.metrics.decisions.labels(d.placement, d.rule).inc()
            for c in d.candidates:
                if c.excluded:
                    self.metrics.exclusions.labels(c.placement, c.rule).inc()
        return d

    def decision_log(self) -> list[dict]:
        """The logged requests, oldest first, as router.policy.replay.entry_from_log reads them."""
        return [
            {"t_s": t, "chars_per_token": cpt, **dataclasses.asdict(route)} for t, cpt, route in self._log
        ]

    def _shadow(self, route: RouteRequest, snap, now: float, live: Decision | None) -> None:
        if self.shadow is None:
            return
        try:
            other = decide(route, snap, self.shadow.policy, now)
        except (FailedPrecondition, ResourceExhausted):
            other = None
        self.shadow.record(live, other)

    def start_shadow(self, policy: PolicyConfig, caller: str, note: str) -> ShadowStats:
        """Run `policy` beside the live one from now on (replacing a running shadow)."""
        self.shadow = ShadowStats(policy, note, caller, self.wall_clock())
        return self.shadow

    def stop_shadow(self) -> ShadowStats | None:
        stats, self.shadow = self.shadow, None
        return stats

    def finished(self, d: Decision, outcome: Outcome) -> None:
        """A request decided as `d` has finished: the estimates learn from its outcome
        (router.policy.outcome.learn, the one place) and the calibration metrics see it."""
        learn(self.estimates, outcome, d)
        self.observe_latency(d, outcome.ttft_ms + outcome.client_rtt_ms, outcome.token_ms)

    def observe_latency(self, d: Decision, ttft_ms: float, token_ms: float | None) -> None:
        """Actual (as the client sees it) ÷ predicted, for the dashboard's calibration view."""
        if d.predicted_ttft_ms > 0:
            self.metrics.predicted_ratio.labels(d.placement, "ttft").observe(ttft_ms / d.predicted_ttft_ms)
        if token_ms is not None and d.predicted_token_ms > 0:
            self.metrics.predicted_ratio.labels(d.placement, "token").observe(token_ms / d.predicted_token_ms)
