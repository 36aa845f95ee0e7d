"""The simulated world: devices (speeds, links, acceptance, and battery, charging and thermal
processes) and the requests they send (a diurnal Poisson workload of the scenario's mix)."""

from __future__ import annotations

import dataclasses
import math
import random

from router.fleet import DeviceState
from router.policy.placement import Privacy, Quality, RouteRequest
from router.policy.sim.scenario import Scenario, mean_log_uniform
from router.policy.sim.truth import DeviceSpeed, latency_multiplier


@dataclasses.dataclass(frozen=True)
class SimRequest:
    t: float  # arrival, s
    device: int  # index into the devices
    route: RouteRequest
    interactive: bool
    prompt_tokens: int  # the truth
    rtt_jitter: float  # multiplies the device's base round trip for this request
    seed: int = 0  # its own random draws (TANDEM rounds): the same whatever the strategy


class SimDevice:
    """A device's truth: speeds, energy, link, acceptance, and its battery, charging and thermal
    processes — advanced lazily to the time asked, from the device's own generator (so the processes
    do not depend on which strategy asks when)."""

    def __init__(self, index: int, sc: Scenario, seed: int) -> None:
        dm, lk, ac = sc.device, sc.link, sc.acceptance
        rng = self._rng = random.Random(seed)
        self.dm = dm
        self.id = f"dev-{index:05d}"
        self.token_ms = rng.uniform(dm.token_ms_min, dm.token_ms_max)
        self.draft_ms = self.token_ms * dm.draft_ratio
        self.prefill_ms_per_token = self.token_ms * dm.prefill_ratio
        self.energy_per_token_j = rng.uniform(dm.energy_per_token_min_j, dm.energy_per_token_max_j)
        if rng.random() < lk.tail_share:
            self.rtt_ms = rng.uniform(lk.tail_min_ms, lk.tail_max_ms)
        else:
            self.rtt_ms = lk.tail_min_ms
            while self.rtt_ms >= lk.tail_min_ms:
                self.rtt_ms = rng.lognormvariate(math.log(lk.rtt_median_ms), lk.rtt_sigma)
        base = rng.uniform(ac.alpha_min, ac.alpha_max)
        self.acceptance = ac
        self.alpha = {p.name: base + rng.uniform(-ac.pool_spread, ac.pool_spread) for p in sc.pools}
        self.battery = rng.uniform(dm.battery_min_percent, dm.battery_max_percent)
        self.charging = rng.random() < dm.charging_share
        self.thermal = "nominal"
        hot = dm.thermal_serious_share + dm.thermal_critical_share
        if rng.random() < hot:
            self.thermal = self._episode_level()
        self.t = sc.start_hour * 3600.0
        self._next_charge = self.t + self._charge_period()
        self._next_thermal = self.t + self._thermal_period()
        self.inflight = 0
        self.starts = 0  # requests started on it so far (to tell overlapping requests apart)

    # -- processes
    def _charge_period(self) -> float:
        on = self.dm.charging_session_hours * 3600.0
        s = self.dm.charging_share
        return self._rng.expovariate(1.0 / (on if self.charging else on * (1 - s) / s))

    def _thermal_period(self) -> float:
        ep = self.dm.thermal_episode_minutes * 60.0
        hot = self.dm.thermal_serious_share + self.dm.thermal_critical_share
        if hot <= 0:
            return math.inf
        return self._rng.expovariate(1.0 / (ep if self.thermal != "nominal" else ep * (1 - hot) / hot))

    def _episode_level(self) -> str:
        dm = self.dm
        p_crit = dm.thermal_critical_share / (dm.thermal_serious_share + dm.thermal_critical_share)
        return "critical" if self._rng.random() < p_crit else "serious"

    def _integrate(self, t: float) -> None:
        h = (t - self.t) / 3600.0
        if self.charging:
            self.battery = min(100.0, self.battery + self.dm.charge_percent_per_hour * h)
        else:
            self.battery = max(0.0, self.battery - self.dm.drain_percent_per_hour * h)
        self.t = t

    def advance(self, t: float) -> None:
        """Bring battery, charging and thermal state to time `t` (never backwards)."""
        while min(self._next_charge, self._next_thermal) <= t:
            if self._next_charge <= self._next_thermal:
                self._integrate(self._next_charge)
                self.charging = not self.charging
                self._next_charge = self.t + self._charge_period()
            else:
                self._integrate(self._next_thermal)
                self.thermal = self._episode_level() if self.thermal == "nominal" else "nominal"
                self._next_thermal = self.t + self._thermal_period()
        if t > self.t:
            self._integrate(t)

    def spend(self, energy_j: float) -> None:
        self.battery = max(0.0, self.battery - energy_j / self.dm.capacity_joules * 100.0)

    def speed(self, prefill_fraction: float) -> DeviceSpeed:
        """Its truth now, thermal slowdown included."""
        slow = self.slowdown
        return DeviceSpeed(
            self.token_ms * slow,
            self.draft_ms * slow,
            self.prefill_ms_per_token * slow,
            self.energy_per_token_j,
            prefill_fraction,
        )

    def betas(self, pool: str, rng: random.Random, positions: int) -> tuple[float, ...]:
        """A request's true acceptance profile with `pool`: drawn around the device's mean."""
        ac = self.acceptance
        alpha = min(max(self.alpha[pool] + rng.uniform(-ac.request_spread, ac.request_spread), 0.02), 0.98)
        return ac.profile(alpha, positions)

    @property
    def slowdown(self) -> float:
        return {"serious": self.dm.serious_slowdown, "critical": self.dm.critical_slowdown}.get(
            self.thermal, 1.0
        )

    def state(self) -> DeviceState:
        """What the device heartbeats: a modelled battery, its thermal state and its measured link."""
        return DeviceState(
            battery_percent=self.battery,
            charging=self.charging,
            battery_source="modelled",
            thermal=self.thermal,
            energy_per_token_joules=self.energy_per_token_j,
            queue_depth=self.inflight,
            active_sessions=self.inflight,
            rtt_ms=self.rtt_ms,
            battery_capacity_joules=self.dm.capacity_joules,
        )


def peak_arrival_rate(sc: Scenario) -> float:
    """Requests per second at the peak hour, such that running everything in the cloud would occupy
    `peak_cloud_utilisation` of its slots.

    Little's law per pool: occupied slots = λ_p·W_p, with W_p the mean slot-holding time of a CLOUD
    request at that load (latency multiplier m(ρ) included). Least-utilised routing balances ρ across
    pools, so λ_p = ρ·slots_p / W_p and λ = Σ λ_p.
    """
    rho = sc.peak_cloud_utilisation
    m = latency_multiplier(rho, sc.cloud.latency_k)
    r = sc.requests
    n = mean_log_uniform(r.new_tokens_min, r.new_tokens_max)
    prompt_tokens = (r.prompt_chars_min + r.prompt_chars_max) / 2 / r.chars_per_token
    rate = 0.0
    for p in sc.pools:
        hold_s = m * (p.ttft_ms + p.prefill_ms_per_token * prompt_tokens + (n - 1) * p.token_ms) / 1e3
        rate += rho * p.slots / hold_s
    return rate


def generate_requests(sc: Scenario, rng: random.Random) -> list[SimRequest]:
    """The workload: Poisson arrivals at peak_arrival_rate × the hour's diurnal weight ÷ the largest."""
    peak, top = peak_arrival_rate(sc), max(sc.diurnal)
    start = sc.start_hour * 3600.0
    end = start + sc.hours * 3600.0
    out: list[SimRequest] = []
    t = start
    while t < end:
        seg_end = min(end, (math.floor(t / 3600.0) + 1) * 3600.0)
        rate = peak * sc.diurnal[int(t // 3600) % 24] / top
        if rate <= 0:
            t = seg_end
            continue
        t += rng.expovariate(rate)
        if t >= seg_end:  # memoryless: restart the draw at the next hour's rate
            t = seg_end
            continue
        out.append(draw_request(sc, rng, t, rng.randrange(sc.devices)))
    return out


def draw_request(sc: Scenario, rng: random.Random, t: float, device: int) -> SimRequest:
    """One request of the scenario's mix from `device` at time `t`."""
    r = sc.requests
    u = rng.random()
    if u < r.local_only_share:
        privacy, quality = (
            Privacy.LOCAL_ONLY,
            Quality.SMALL_OK,
        )  # it must stay on the device: the small model it is
    elif u < r.local_only_share + r.small_ok_share:
        privacy, quality = Privacy.STANDARD, Quality.SMALL_OK
    else:
        privacy, quality = Privacy.STANDARD, Quality.LARGE_REQUIRED
    interactive = rng.random() < r.interactive_share
    n = max(1, round(math.exp(rng.uniform(math.log(r.new_tokens_min), math.log(r.new_tokens_max)))))
    chars = rng.randint(r.prompt_chars_min, r.prompt_chars_max)
    jitter = rng.lognormvariate(0.0, sc.link.jitter_sigma) if sc.link.jitter_sigma > 0 else 1.0
    seed = rng.getrandbits(32)
    route = RouteRequest(
        device_id=f"dev-{device:05d}",
        privacy=privacy,
        quality=quality,
        max_new_tokens=n,
        ttft_slo_ms=r.ttft_slo_ms if interactive else 0.0,
        token_slo_ms=r.token_slo_ms if interactive else 0.0,
        prompt_chars=chars,
    )
    return SimRequest(
        t=t,
        device=device,
        route=route,
        interactive=interactive,
        prompt_tokens=max(1, round(chars / r.chars_per_token)),
        rtt_jitter=jitter,
        seed=seed,
    )


# ====================================================================== strategies
