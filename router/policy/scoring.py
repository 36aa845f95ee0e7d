"""The score a candidate is ranked by (lower wins), and the prices a TANDEM round is chosen at.

score = cost_weight·cost/C + latency_weight·(time/T − 1) + battery_weight·pressure·energy/J, where
C is the cost of the cheapest plain-CLOUD run, T the fastest plain run's (CLOUD or EDGE, excluded
or not: the scales do not depend on who survived the rules) total time and J the energy of the
whole request on the device; pressure = ((100 − charge)/(100 − reserve))² clamped to [0, 1], 0 while
charging or without a battery. A TANDEM round is priced in the same units (per ms of its time, per
target pass, per drafted token), so the session's draft length keeps to the trade-off it was placed for.
"""

from __future__ import annotations

import dataclasses

from router.policy.config import PolicyConfig
from router.policy.costs import cloud_cost_usd
from router.policy.predict import DeviceEstimate, PoolEstimate, Prediction
from router.tandem.speculation import FASTEST, RoundPrices


def battery_pressure(device: DeviceEstimate, policy: PolicyConfig) -> float:
    """0 (full, charging or mains) … 1 (at or below the reserve): how much device energy matters.
    Quadratic in the share of the usable charge spent, so it stays low while the battery is full."""
    if device.charging or not device.has_battery:
        return 0.0
    room = 100.0 - policy.battery_reserve_percent
    return min(1.0, max(0.0, (100.0 - device.battery_percent) / room)) ** 2


@dataclasses.dataclass(frozen=True)
class Scales:
    """The score's units for one request: C (USD), T (ms), J (joules; 0: no device) and the
    battery pressure. Scales that do not hinge on one outlier and do not depend on which
    candidates survive."""

    n: int
    cost_ref: float
    time_ref: float
    energy_ref: float
    pressure: float

    @classmethod
    def of(
        cls,
        plain: list[Prediction],
        edge: Prediction | None,
        device: DeviceEstimate | None,
        policy: PolicyConfig,
        n: int,
    ) -> Scales:
        """From the plain runs' predictions (EDGE and each CLOUD pool); `edge` is the EDGE one."""
        return cls(
            n=n,
            cost_ref=min((p.cost_usd for p in plain if p.cost_usd > 0), default=0.0) or 1.0,
            time_ref=min((p.total_ms(n) for p in plain), default=0.0) or 1.0,
            energy_ref=edge.energy_j if edge else 0.0,
            pressure=battery_pressure(device, policy) if device else 0.0,
        )

    def terms(self, p: Prediction, policy: PolicyConfig) -> tuple[float, float, float]:
        """(cost, latency, battery) terms of `p`'s score."""
        return (
            policy.cost_weight * p.cost_usd / self.cost_ref,
            policy.latency_weight * (p.total_ms(self.n) / self.time_ref - 1.0),
            policy.battery_weight * self.pressure * p.energy_j / self.energy_ref
            if self.energy_ref > 0
            else 0.0,
        )

    def score(self, p: Prediction, policy: PolicyConfig) -> float:
        return sum(self.terms(p, policy))

    def round_prices(self, device: DeviceEstimate, pool: PoolEstimate, policy: PolicyConfig) -> RoundPrices:
        """A TANDEM round between `device` and `pool` in the score's units; time alone (FASTEST)
        when every weight that applies is 0."""
        prices = RoundPrices(
            per_ms=policy.latency_weight / self.time_ref,
            per_pass=policy.cost_weight
            * cloud_cost_usd(pool.pool, pool.compute_ms_per_verify, 0)
            / self.cost_ref,
            per_draft=policy.battery_weight * self.pressure * device.energy_per_token_j / self.energy_ref
            if self.energy_ref > 0
            else 0.0,
        )
        return prices if prices.per_ms or prices.per_pass or prices.per_draft else FASTEST
