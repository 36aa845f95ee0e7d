"""The simulator's event loop: requests arrive, a strategy places them, pools queue what does not
fit, the truth says how each goes, devices pay their energy when it finishes, and the tally counts.

Determinism: everything random comes from the injected generator (by default seeded with the
scenario's seed) — the workload first (each request with a seed of its own for its TANDEM
rounds), then one seed per device for its charging and thermal processes — so every strategy sees
the same requests, the same rounds and the same charging sessions, and a seed reproduces a run
exactly. The random baseline draws from its own generator.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from typing import Any

from router.policy.config import PolicyConfig
from router.policy.costs import cloud_cost_usd
from router.policy.placement import Privacy, Quality
from router.policy.sim.scenario import Scenario
from router.policy.sim.state import Job, Plan, PoolState, fixed_gamma
from router.policy.sim.strategies import Strategy
from router.policy.sim.tally import Tally, refusal_cause, summary
from router.policy.sim.truth import Happened, cloud_truth, edge_truth, latency_multiplier, tandem_truth
from router.policy.sim.world import SimDevice, SimRequest, generate_requests
from router.tandem.control import DraftLengthController
from tandem.errors import FailedPrecondition, ResourceExhausted


class Simulation:
    """One run of one strategy over one scenario. `run()` returns the summary dict."""

    def __init__(
        self,
        scenario: Scenario,
        strategy: Strategy,
        rng: random.Random | None = None,
        progress: Callable[[str], None] | None = None,
        requests: list[SimRequest] | None = None,
        pace_guard: bool = True,
    ) -> None:
        """`requests`: a recorded workload to replay (router.policy.replay) instead of the scenario's own."""
        self.scenario = scenario
        self.strategy = strategy
        self.progress = progress
        rng = rng or random.Random(scenario.seed)
        self.requests = requests if requests is not None else generate_requests(scenario, rng)
        self.devices = [SimDevice(i, scenario, rng.getrandbits(64)) for i in range(scenario.devices)]
        self.pools = {p.name: PoolState(p) for p in scenario.pools}
        self.total_slots = sum(p.slots for p in scenario.pools)
        self.reserve = (
            PolicyConfig().battery_reserve_percent
        )  # the default policy's, whatever a run overrides
        self.now = scenario.start_hour * 3600.0
        self.tally = Tally()
        self.pace_guard = pace_guard  # TANDEM requests behind their token SLO continue in the cloud
        self._events: list[tuple[float, int, Job]] = []
        self._seq = 0
        strategy.attach(self)

    # -- truth
    def _outcome(self, job: Job, wait_ms: float, rng: random.Random | None = None) -> Happened:
        """What happens to `job` started now after `wait_ms` in a queue (router.policy.sim.truth);
        a TANDEM request's rounds are drawn from its own seed unless `rng` is given."""
        req, dev, plan, sc = job.req, job.device, job.plan, self.scenario
        n, rtt = req.route.max_new_tokens, dev.rtt_ms * req.rtt_jitter
        speed = dev.speed(sc.device.prefill_energy_fraction)
        if plan.placement == "edge":
            return edge_truth(n, req.prompt_tokens, rtt, speed)
        pool = self.pools[plan.pool]
        m = latency_multiplier(pool.occupied / pool.model.slots, sc.cloud.latency_k)
        if plan.placement == "cloud":
            return cloud_truth(n, req.prompt_tokens, rtt, pool.model, m, wait_ms)
        rng = rng or random.Random(req.seed)
        control = plan.control or fixed_gamma(plan.gamma, req.route.overlap)
        return tandem_truth(
            n,
            req.prompt_tokens,
            rtt,
            dev.betas(plan.pool, rng, control.max_gamma + 1),
            DraftLengthController(
                control,
                speed.energy_per_token_j,
                plan.decision.energy_cap_j if plan.decision else req.route.max_device_energy_joules,
            ),
            speed,
            pool.model,
            m,
            wait_ms,
            sc.cloud.verify_compute_factor,
            rng,
            req.route.token_slo_ms if self.pace_guard else 0.0,
            plan.predicted_token_ms,
        )

    def _slo_feasible(self, req: SimRequest, dev: SimDevice) -> bool:
        """Would any placement the request's privacy and quality allow have met its SLOs, by the truth
        models at this moment (no queue wait, the best draft length)? A diagnostic for misses."""
        r = req.route
        options = [Plan("edge")] if r.quality is not Quality.LARGE_REQUIRED else []
        if r.privacy is not Privacy.LOCAL_ONLY:
            for p in self.scenario.pools:
                options.append(Plan("cloud", p.name))
                options += [Plan("tandem", p.name, g) for g in range(1, 17)]
        for plan in options:
            o = self._outcome(Job(req, dev, plan, self.now), 0.0)  # the request's own random draws
            if o.ttft_ms <= r.ttft_slo_ms and (r.max_new_tokens <= 1 or o.token_ms <= r.token_slo_ms):
                return True
        return False

    # -- events
    def _start(self, job: Job) -> None:
        wait_ms = (self.now - job.queued_at) * 1e3
        if wait_ms > 0:
            self.tally.queue_waits += 1
        o = job.outcome = self._outcome(job, wait_ms)
        if job.plan.pool:
            pool = self.pools[job.plan.pool]
            pool.account(self.now)
            job.share = o.share
            pool.occupied += o.share
        job.overlapped = job.device.inflight > 0
        job.device.inflight += 1
        job.device.starts += 1
        job.start_seq = job.device.starts
        self._seq += 1
        heapq.heappush(self._events, (job.queued_at + o.total_ms / 1e3, self._seq, job))

    def _arrive(self, req: SimRequest) -> None:
        t = self.tally
        t.requests += 1
        dev = self.devices[req.device]
        dev.advance(self.now)
        hour = int(req.t // 3600)
        t.util_sum[hour] += (
            sum(min(p.occupied, p.model.slots) for p in self.pools.values()) / self.total_slots
        )
        t.util_n[hour] += 1
        if req.interactive:
            t.interactive += 1
        try:
            plan = self.strategy.plan(req, dev)
        except (FailedPrecondition, ResourceExhausted) as e:
            t.placements["refused"] += 1
            if req.interactive:
                t.misses_by_placement["refused"] += 1
                t.infeasible_misses["refused"] += not self._slo_feasible(req, dev)
            t.refusal_causes[refusal_cause(str(e))] += 1
            if len(t.refusal_examples) < 3:
                t.refusal_examples.append(str(e))
            return
        job = Job(req, dev, plan, queued_at=self.now)
        if plan.pool:
            pool = self.pools[plan.pool]
            job.share = 1.0 if plan.placement == "cloud" else self._outcome(job, 0.0).share
            if pool.queue or not pool.fits(job.share):
                pool.queue.append(job)
                return
        self._start(job)

    def _finish(self, job: Job) -> None:
        o, req, dev, plan, t = job.outcome, job.req, job.device, job.plan, self.tally
        assert o is not None
        dev.advance(self.now)
        dev.inflight -= 1
        before = dev.battery
        dev.spend(o.energy_j)
        if not dev.charging and before >= self.reserve > dev.battery:
            t.pushed_below_events += 1
            t.pushed_below_devices.add(dev.id)
            # why the policy's energy rule did not stop it: the request insists on the device, or the
            # battery it checked did not yet show the energy of the device's other requests in flight
            overlapping = job.overlapped or dev.starts != job.start_seq
            cause = (
                "insists on the device"
                if req.route.privacy == Privacy.LOCAL_ONLY
                else "overlapping requests"
                if overlapping
                else "alone"
            )
            t.pushed_below_causes[cause] += 1
            if len(t.pushed_below_examples) < 5:
                t.pushed_below_examples.append(
                    f"{dev.id} {plan.placement} {req.route.privacy}/{req.route.quality} ({cause}): "
                    f"{before:.3f}% → {dev.battery:.3f}% ({o.energy_j:.1f} J)"
                )
        n = req.route.max_new_tokens
        pool_info = self.pools[plan.pool].model.info if plan.pool else None
        cost = cloud_cost_usd(pool_info, o.compute_ms, n) if pool_info else 0.0
        t.placements[plan.placement] += 1
        t.by_pool[f"{plan.placement}:{plan.pool}" if plan.pool else plan.placement] += 1
        t.cost_usd += cost
        t.cost_by_placement[plan.placement] += cost
        t.by_class[f"{req.route.quality}{' interactive' if req.interactive else ''}: {plan.placement}"] += 1
        t.compute_ms += o.compute_ms
        t.energy_j += o.energy_j
        t.ttfts.append(o.ttft_ms)
        if plan.placement == "tandem":
            t.gammas.append(plan.gamma)
            t.pace_handovers += o.handed > 0
            t.tandem_shares.append(job.share)
        if req.route.privacy == Privacy.LOCAL_ONLY and plan.placement != "edge":
            t.privacy_violations += 1
        if req.route.quality is Quality.LARGE_REQUIRED and plan.placement == "edge":
            t.quality_violations += 1
        if req.interactive:
            met = o.ttft_ms <= req.route.ttft_slo_ms and (n <= 1 or o.token_ms <= req.route.token_slo_ms)
            t.interactive_met += met
            if not met:
                t.misses_by_placement[plan.placement] += 1
                t.missed[f"{plan.placement} ttft"] += o.ttft_ms > req.route.ttft_slo_ms
                t.missed[f"{plan.placement} token"] += n > 1 and o.token_ms > req.route.token_slo_ms
                t.infeasible_misses[plan.placement] += not self._slo_feasible(req, dev)
        if plan.predicted_ttft_ms > 0:
            t.ttft_ratio[plan.placement].append(o.ttft_ms / plan.predicted_ttft_ms)
        if plan.predicted_token_ms > 0 and n > 1:
            t.token_ratio[plan.placement].append(o.token_ms / plan.predicted_token_ms)
        self.strategy.finished(job)
        if plan.pool:
            pool = self.pools[plan.pool]
            pool.account(self.now)
            pool.occupied = max(0.0, pool.occupied - job.share)
            while pool.queue and pool.fits(pool.queue[0].share):
                self._start(pool.queue.popleft())

    def _run_events_until(self, t: float) -> None:
        while self._events and self._events[0][0] <= t:
            when, _, job = heapq.heappop(self._events)
            self.now = when
            self._finish(job)

    def run(self) -> dict[str, Any]:
        sc = self.scenario
        hour = None
        wall = time.perf_counter()
        for req in self.requests:
            self._run_events_until(req.t)
            self.now = req.t
            h = int(req.t // 3600)
            if self.progress and h != hour:
                hour = h
                self.progress(
                    f"{self.strategy.name}: hour {h % 24:02d}, {self.tally.requests} requests so far, "
                    f"{time.perf_counter() - wall:.1f} s"
                )
            self._arrive(req)
        self._run_events_until(math.inf)
        end = max(self.now, sc.start_hour * 3600.0 + sc.hours * 3600.0)
        for p in self.pools.values():
            p.account(end)
        return summary(self.tally, self.strategy.name, self.pools, end - sc.start_hour * 3600.0)


def simulate(
    scenario: Scenario,
    strategy: Strategy,
    rng: random.Random | None = None,
    progress: Callable[[str], None] | None = None,
    pace_guard: bool = True,
) -> dict[str, Any]:
    """Run `strategy` over `scenario` (the world drawn from `rng`, default Random(scenario.seed));
    `pace_guard` False: TANDEM requests never hand over to the cloud (router config pace_guard)."""
    return Simulation(scenario, strategy, rng, progress, pace_guard=pace_guard).run()
