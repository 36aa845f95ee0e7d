"""Decisions with live state: the policy in force, the fleet and the online estimates, glued to
the pure policy function; and what a finished request teaches the estimates."""

from __future__ import annotations

from router.estimates import Estimates
from router.fleet import FleetRegistry
from router.metrics import RouterMetrics
from router.placement import Decision, RouteRequest
from router.policy import decide
from router.policy_store import PolicyStore, PolicyVersion
from router.snapshot import build_snapshot
from tandem.errors import FailedPrecondition, ResourceExhausted


class Placer:
    def __init__(self, registry: FleetRegistry, store: PolicyStore, estimates: Estimates,
                 metrics: RouterMetrics) -> None:
        self.registry = registry
        self.store = store
        self.estimates = estimates
        self.metrics = metrics
        store.on_change = self.policy_changed
        self.policy_changed(store.current)

    def policy_changed(self, v: PolicyVersion) -> None:
        self.estimates.policy = v.policy  # priors for workers not measured yet
        self.metrics.policy_version.set(v.version)

    def decide(self, route: RouteRequest, count: bool = True) -> Decision:
        """The decision for `route` now. Raises FailedPrecondition when nothing can serve, ResourceExhausted
        when only saturated pools could."""
        policy, version = self.store.policy, self.store.current.version
        snap = build_snapshot(self.registry, self.estimates, policy, route.device_id)
        try:
            d = decide(route, snap, policy, self.registry.now(), version)
        except (FailedPrecondition, ResourceExhausted) as exc:
            if count:
                self.metrics.decisions.labels("none", "saturated" if isinstance(exc, ResourceExhausted)
                                              else "no_candidate").inc()
            raise
        if count:
            self.metrics.decisions.labels(d.placement, d.rule).inc()
            for c in d.candidates:
                if c.excluded:
                    self.metrics.exclusions.labels(c.placement, c.rule).inc()
        return d

    def observe_latency(self, d: Decision, ttft_ms: float, token_ms: float | None) -> None:
        """Actual ÷ predicted, for the dashboard's calibration view."""
        if d.predicted_ttft_ms > 0:
            self.metrics.predicted_ratio.labels(d.placement, "ttft").observe(ttft_ms / d.predicted_ttft_ms)
        if token_ms is not None and d.predicted_token_ms > 0:
            self.metrics.predicted_ratio.labels(d.placement, "token").observe(token_ms / d.predicted_token_ms)
