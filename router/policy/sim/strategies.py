"""Strategies that place the simulated requests: three baselines and the router's own policy."""

from __future__ import annotations

import random

from router.fleet import CLOUD, EDGE, DeviceState, FleetRegistry, WorkerRecord
from router.policy.config import PolicyConfig
from router.policy.decide import decide
from router.policy.estimates import Estimates
from router.policy.outcome import Outcome, learn
from router.policy.placement import Placement
from router.policy.sim.scenario import PoolModel
from router.policy.sim.state import Job, Plan, World
from router.policy.sim.world import SimDevice, SimRequest
from router.policy.snapshot import build_snapshot
from router.tandem.speculation import RoundModel, constant

TOKENIZER_ID = "sim-tokenizer-v1"  # one tokenizer for the whole fleet (the registry enforces it)


class Strategy:
    """Places requests. `plan` may raise FailedPrecondition or ResourceExhausted (a refusal)."""

    name = "strategy"

    def attach(self, sim: World) -> None:
        self.sim = sim

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        raise NotImplementedError

    def finished(self, job: Job) -> None:
        """A request it placed has finished (its measurements are in job.outcome)."""


class AlwaysCloud(Strategy):
    """Everything on the least-utilised pool (ignores privacy)."""

    name = "always-cloud"

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        pool = min(self.sim.pools.values(), key=lambda p: p.occupied / p.model.slots)
        return Plan("cloud", pool.model.name)


class AlwaysDevice(Strategy):
    """Everything EDGE on the caller's device (ignores quality and batteries)."""

    name = "always-device"

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        return Plan("edge")


def baseline_gamma(dev: SimDevice, pool: PoolModel, policy: PolicyConfig) -> int:
    """A baseline's draft length: the fastest at the policy's prior acceptance."""
    model = RoundModel(
        constant(policy.prior_acceptance), dev.draft_ms, dev.rtt_ms, pool.verify_ms, overlap=True
    )
    return model.best_gamma(policy.max_draft_length)


class RandomPlacement(Strategy):
    """EDGE, CLOUD[random pool] or TANDEM[random pool], uniformly."""

    name = "random"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.defaults = PolicyConfig()

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        placement = self.rng.choice(("edge", "cloud", "tandem"))
        if placement == "edge":
            return Plan("edge")
        pool = self.rng.choice(self.sim.scenario.pools)
        gamma = baseline_gamma(dev, pool, self.defaults) if placement == "tandem" else 0
        return Plan(placement, pool.name, gamma)


class RouterPolicy(Strategy):
    """The router's own code: FleetRegistry on the simulation clock, build_snapshot, decide, Estimates.

    Devices register as EDGE workers with a modelled battery and heartbeat their state before each of
    their decisions; each pool's replicas register as CLOUD workers. `estimates.inflight[pool]` counts
    requests from decision to finish, as the router's inference service does."""

    name = "policy"

    def __init__(self, policy: PolicyConfig | None = None, name: str = "policy") -> None:
        self.policy = policy or PolicyConfig()
        self.name = name
        self.estimates = Estimates(self.policy)

    def attach(self, sim: World) -> None:
        super().attach(sim)
        self.registry = FleetRegistry(clock=lambda: sim.now, lease_s=3600.0, tokenizer_id=TOKENIZER_ID)
        register_fleet(self.registry, [d.id for d in sim.devices], sim.scenario.pools)

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        self.registry.heartbeat(dev.id, dev.state())
        snap = build_snapshot(self.registry, self.estimates, self.policy, dev.id, req.route.greedy)
        d = decide(req.route, snap, self.policy, self.sim.now)
        self.estimates.begin(d)
        control = None
        if d.placement is Placement.TANDEM:
            control = d.draft_control(self.policy.max_draft_length, fixed_gamma=req.route.draft_length)
        return Plan(
            d.placement, d.pool, d.initial_draft_length, d.predicted_ttft_ms, d.predicted_token_ms, d, control
        )

    def finished(self, job: Job) -> None:
        plan, h = job.plan, job.outcome
        assert h is not None
        if plan.decision is not None:
            self.estimates.end(plan.decision)
        learn(self.estimates, outcome_of(job), plan.decision)


def outcome_of(job: Job) -> Outcome:
    """A finished simulated request as the router would have measured it (router.policy.outcome)."""
    plan, h, req, dev = job.plan, job.outcome, job.req, job.device
    assert h is not None
    n = req.route.max_new_tokens
    return Outcome(
        placement=Placement(plan.placement),
        prompt_chars=req.route.prompt_chars,
        prompt_tokens=req.prompt_tokens,
        tokens=n,
        ttft_ms=h.router_ttft_ms,  # the router sees the stream without the client's own link
        client_rtt_ms=h.ttft_ms - h.router_ttft_ms,
        token_ms=h.token_ms if n > 1 else None,
        device_id=dev.id,
        device_rtt_ms=dev.rtt_ms,  # what the device reports; the truth's round trip is jittered
        pool=plan.pool,
        decode_compute_ms=h.compute_ms - h.first_compute_ms - h.handed_compute_ms,
        greedy=req.route.greedy,
        drafted=h.drafted,
        accepted=h.accepted,
        reached=h.reached,
        draft_ms=h.draft_ms,
        link_ms=h.link_ms,
        verify_ms=h.verify_call_ms,
        verify_passes=h.rounds,
    )


def register_fleet(registry: FleetRegistry, device_ids: list[str], pools: tuple[PoolModel, ...]) -> None:
    """Register every device (EDGE, modelled battery) and every pool replica (CLOUD)."""
    common = {"model_name": "sim", "tokenizer_id": TOKENIZER_ID, "max_context": 4096, "eos_token_id": 0}
    for dev_id in device_ids:
        registry.register(
            WorkerRecord(
                worker_id=dev_id,
                kind=EDGE,
                endpoint=f"{dev_id}:50051",
                state=DeviceState(battery_source="modelled"),
                **common,
            )
        )
    for p in pools:
        for i in range(p.replicas):
            registry.register(
                WorkerRecord(
                    worker_id=f"{p.name}-{i}",
                    kind=CLOUD,
                    endpoint=f"{p.name}-{i}:50052",
                    pool=p.info,
                    **common,
                )
            )
