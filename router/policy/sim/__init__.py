"""A discrete-event simulator of a device fleet and cloud pools, routed by a strategy.

One run replays a scenario (:mod:`router.policy.sim.scenario`; the reference one ships as
``reference.toml``): requests arrive from a diurnal non-homogeneous Poisson process, each from one of
the devices (:mod:`~router.policy.sim.world`); a strategy places it — EDGE, CLOUD on a pool, TANDEM
on the device with a pool — or refuses it (:mod:`~router.policy.sim.strategies`); the truth says
what actually happens (:mod:`~router.policy.sim.truth`: latency, cloud accelerator time and cost,
device energy), and the device's battery pays that energy when the request finishes
(:mod:`~router.policy.sim.engine`); the tally sums it up (:mod:`~router.policy.sim.tally`). The
``policy`` strategy is the router's real code: a FleetRegistry on the simulator's clock,
build_snapshot, decide, and the online Estimates fed from each finished request's outcome through
router.policy.outcome.learn, the router's one learning path.

The truth is not the policy's model: it plays TANDEM out round by round with random, per-position,
per-request acceptance, jitters the links, slows hot devices and loaded pools (truth's docstring
names every difference), so the policy is measured against a world it only estimates.

Units: the clock is in seconds; latencies in ms; energy in J; battery charge in percent.
"""

from router.policy.sim.engine import Simulation, simulate
from router.policy.sim.scenario import (
    REFERENCE,
    AcceptanceModel,
    CloudModel,
    DeviceModel,
    LinkModel,
    PoolModel,
    RequestMix,
    Scenario,
    load_scenario,
    scenario_from_dict,
)
from router.policy.sim.state import Job, Plan, World
from router.policy.sim.strategies import (
    AlwaysCloud,
    AlwaysDevice,
    RandomPlacement,
    RouterPolicy,
    Strategy,
    baseline_gamma,
    register_fleet,
)
from router.policy.sim.tally import percentile, refusal_cause
from router.policy.sim.timing import time_decisions
from router.policy.sim.truth import Happened, cloud_truth, edge_truth, latency_multiplier, tandem_truth
from router.policy.sim.world import SimDevice, SimRequest, draw_request, generate_requests, peak_arrival_rate

__all__ = [
    "REFERENCE",
    "AcceptanceModel",
    "AlwaysCloud",
    "AlwaysDevice",
    "CloudModel",
    "DeviceModel",
    "Happened",
    "Job",
    "LinkModel",
    "Plan",
    "PoolModel",
    "RandomPlacement",
    "RequestMix",
    "RouterPolicy",
    "Scenario",
    "SimDevice",
    "SimRequest",
    "Simulation",
    "Strategy",
    "World",
    "baseline_gamma",
    "cloud_truth",
    "draw_request",
    "edge_truth",
    "generate_requests",
    "latency_multiplier",
    "load_scenario",
    "peak_arrival_rate",
    "percentile",
    "refusal_cause",
    "register_fleet",
    "scenario_from_dict",
    "simulate",
    "tandem_truth",
    "time_decisions",
]
