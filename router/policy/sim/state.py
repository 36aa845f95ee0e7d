"""The simulation's moving parts, as plain data: a request's plan, a placed request (a job), a
pool's occupancy and queue, and what a strategy may see of the running simulation."""

from __future__ import annotations

import collections
import dataclasses
from typing import Protocol

from router.policy.placement import Decision
from router.policy.sim.scenario import PoolModel, Scenario
from router.policy.sim.truth import Happened
from router.policy.sim.world import SimDevice, SimRequest
from router.tandem.control import DraftControlConfig


@dataclasses.dataclass(frozen=True)
class Plan:
    placement: str  # edge | cloud | tandem
    pool: str = ""
    gamma: int = 0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    decision: Decision | None = None  # the policy's, when the policy made the plan
    # TANDEM: the session's draft-length control, as the router builds it from the decision
    # (None: a fixed γ = gamma)
    control: DraftControlConfig | None = None


def fixed_gamma(gamma: int, overlap: bool = True) -> DraftControlConfig:
    """Draft-length control that always drafts `gamma` (baselines, what-ifs)."""
    config = DraftControlConfig(fixed_gamma=gamma, max_gamma=gamma)
    return dataclasses.replace(config, prior=dataclasses.replace(config.prior, overlap=overlap))


@dataclasses.dataclass
class Job:
    req: SimRequest
    device: SimDevice
    plan: Plan
    queued_at: float
    share: float = 0.0  # cloud slots it holds (or asks for while queued)
    outcome: Happened | None = None  # the truth, once it started
    start_seq: int = 0  # the device's start counter when it started
    overlapped: bool = False  # another request of its device was in flight when it started


class PoolState:
    def __init__(self, model: PoolModel) -> None:
        self.model = model
        self.occupied = 0.0
        self.queue: collections.deque[Job] = collections.deque()
        self.busy_integral = 0.0  # slot-seconds, for the mean utilisation
        self._t = 0.0

    def account(self, now: float) -> None:
        self.busy_integral += min(self.occupied, self.model.slots) * (now - self._t)
        self._t = now

    def fits(self, share: float) -> bool:
        return self.occupied <= 1e-9 or self.occupied + share <= self.model.slots + 1e-9


class World(Protocol):
    """What a strategy sees of the simulation it places requests in."""

    scenario: Scenario
    devices: list[SimDevice]
    pools: dict[str, PoolState]
    now: float
