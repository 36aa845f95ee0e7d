"""A discrete-event simulator of a device fleet and cloud pools, routed by a strategy.

One run replays a scenario (``loadtest/scenarios/*.toml``): requests arrive from a diurnal
non-homogeneous Poisson process, each from one of the devices; a strategy places it (EDGE, CLOUD on
a pool, TANDEM on the device with a pool) or refuses it; truth models give what actually happens —
latency, cloud accelerator time and cost, device energy — and the device's battery pays that energy
when the request finishes. The ``policy`` strategy is the router's real code: a FleetRegistry on the
simulator's clock, build_snapshot, decide, and the online Estimates fed from the simulated
measurements exactly where the router feeds them.

Determinism: everything random comes from the injected generator (by default seeded with the
scenario's seed) — the workload first, then one seed per device for its charging and thermal
processes — so every strategy sees the same requests and the same charging sessions, and a seed
reproduces a run exactly. The random baseline draws from its own generator.

TANDEM's truth follows router.tandem.loop as the router runs it: the head start (the pool's first
token while the device prefills), rounds with or without overlap (as decided) and the blocks a
run-ahead device drops. The draft length is the decision's for the whole request (the router's
controller adapts it to what it measures; here the estimates it starts from are already right).

Simplifications (deliberate): a device serves concurrent requests without slowing down; acceptance
is its expectation (E(γ) tokens per round, no sampling); a request holds its cloud share from start
to finish; a request's device energy leaves the battery when it finishes; the router's own decision
time is not on the clock.

Besides the headline metrics, a run's summary carries diagnostics: SLO misses by kind and the share
no allowed placement could have avoided (the truth models asked for every option at that moment),
refusal causes, why a device went below the reserve, and actual ÷ predicted latency.

Units: the clock is in seconds; latencies in ms; energy in J; battery charge in percent.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import math
import random
import statistics
import time
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from router.fleet import CLOUD, EDGE, DeviceState, FleetRegistry, PoolInfo, WorkerRecord
from router.policy.config import PolicyConfig
from router.policy.costs import cloud_cost_usd
from router.policy.decide import decide
from router.policy.estimates import Estimates
from router.policy.placement import Decision, Privacy, RouteRequest
from router.policy.snapshot import build_snapshot
from router.tandem.speculation import RoundModel, constant
from tandem.errors import FailedPrecondition, InvalidArgument, ResourceExhausted

TOKENIZER_ID = "sim-tokenizer-v1"  # one tokenizer for the whole fleet (the registry enforces it)
PLACEMENTS = ("edge", "cloud", "tandem", "refused")

# ====================================================================== scenario


@dataclasses.dataclass(frozen=True)
class RequestMix:
    local_only_share: float
    small_ok_share: float
    large_required_share: float
    interactive_share: float
    ttft_slo_ms: float
    token_slo_ms: float
    new_tokens_min: int
    new_tokens_max: int
    prompt_chars_min: int
    prompt_chars_max: int
    chars_per_token: float

    def check(self, at: str) -> None:
        shares = (self.local_only_share, self.small_ok_share, self.large_required_share)
        _require(
            abs(sum(shares) - 1.0) < 1e-6,
            f"{at}local_only_share",
            f"local_only_share + small_ok_share + large_required_share must be 1, got {sum(shares):g}",
        )
        _require(self.interactive_share <= 1, f"{at}interactive_share", "must be <= 1")
        _require(
            1 <= self.new_tokens_min <= self.new_tokens_max,
            f"{at}new_tokens_max",
            "need 1 <= new_tokens_min <= new_tokens_max",
        )
        _require(
            1 <= self.prompt_chars_min <= self.prompt_chars_max,
            f"{at}prompt_chars_max",
            "need 1 <= prompt_chars_min <= prompt_chars_max",
        )
        _require(self.chars_per_token > 0, f"{at}chars_per_token", "must be > 0")


@dataclasses.dataclass(frozen=True)
class DeviceModel:
    battery_min_percent: float
    battery_max_percent: float
    capacity_joules: float
    charging_share: float
    charging_session_hours: float
    charge_percent_per_hour: float
    drain_percent_per_hour: float
    energy_per_token_min_j: float
    energy_per_token_max_j: float
    prefill_energy_fraction: float
    token_ms_min: float
    token_ms_max: float
    draft_ratio: float
    prefill_ratio: float
    thermal_serious_share: float
    thermal_critical_share: float
    thermal_episode_minutes: float
    serious_slowdown: float
    critical_slowdown: float

    def check(self, at: str) -> None:
        _require(
            self.battery_min_percent <= self.battery_max_percent <= 100,
            f"{at}battery_max_percent",
            "need battery_min_percent <= battery_max_percent <= 100",
        )
        _require(self.capacity_joules > 0, f"{at}capacity_joules", "must be > 0")
        _require(0 < self.charging_share < 1, f"{at}charging_share", "must be in (0, 1)")
        _require(self.charging_session_hours > 0, f"{at}charging_session_hours", "must be > 0")
        _require(
            self.energy_per_token_min_j <= self.energy_per_token_max_j,
            f"{at}energy_per_token_max_j",
            "must be >= energy_per_token_min_j",
        )
        _require(
            0 < self.token_ms_min <= self.token_ms_max,
            f"{at}token_ms_max",
            "need 0 < token_ms_min <= token_ms_max",
        )
        _require(self.draft_ratio > 0, f"{at}draft_ratio", "must be > 0")
        _require(
            self.thermal_serious_share + self.thermal_critical_share < 1,
            f"{at}thermal_critical_share",
            "thermal_serious_share + thermal_critical_share must be < 1",
        )
        _require(self.thermal_episode_minutes > 0, f"{at}thermal_episode_minutes", "must be > 0")
        _require(
            self.serious_slowdown >= 1 and self.critical_slowdown >= 1,
            f"{at}serious_slowdown",
            "slowdowns must be >= 1",
        )


@dataclasses.dataclass(frozen=True)
class LinkModel:
    rtt_median_ms: float
    rtt_sigma: float
    tail_share: float
    tail_min_ms: float
    tail_max_ms: float
    jitter_sigma: float

    def check(self, at: str) -> None:
        _require(
            0 < self.rtt_median_ms < self.tail_min_ms, f"{at}rtt_median_ms", "must be in (0, tail_min_ms)"
        )
        _require(self.tail_min_ms <= self.tail_max_ms, f"{at}tail_max_ms", "must be >= tail_min_ms")
        _require(self.tail_share <= 1, f"{at}tail_share", "must be <= 1")


@dataclasses.dataclass(frozen=True)
class AcceptanceModel:
    alpha_min: float
    alpha_max: float
    pool_spread: float

    def check(self, at: str) -> None:
        _require(
            0 < self.alpha_min <= self.alpha_max < 1, f"{at}alpha_max", "need 0 < alpha_min <= alpha_max < 1"
        )
        _require(
            self.alpha_min - self.pool_spread > 0 and self.alpha_max + self.pool_spread < 1,
            f"{at}pool_spread",
            "alpha ± pool_spread must stay inside (0, 1)",
        )


@dataclasses.dataclass(frozen=True)
class CloudModel:
    latency_k: float
    verify_compute_factor: float

    def check(self, at: str) -> None:
        _require(self.verify_compute_factor > 0, f"{at}verify_compute_factor", "must be > 0")


@dataclasses.dataclass(frozen=True)
class PoolModel:
    name: str
    accelerator: str
    price_per_replica_hour_usd: float
    replicas: int
    slots_per_replica: int
    ttft_ms: float
    prefill_ms_per_token: float
    token_ms: float
    verify_ms: float
    compute_ms_per_token: float

    def check(self, at: str) -> None:
        _require(bool(self.name), f"{at}name", "must not be empty")
        _require(self.replicas >= 1, f"{at}replicas", "must be >= 1")
        _require(self.slots_per_replica >= 1, f"{at}slots_per_replica", "must be >= 1")
        _require(
            self.token_ms > 0 and self.verify_ms > 0, f"{at}token_ms", "token_ms and verify_ms must be > 0"
        )

    @property
    def slots(self) -> int:
        return self.replicas * self.slots_per_replica

    @property
    def info(self) -> PoolInfo:
        return PoolInfo(
            name=self.name,
            accelerator=self.accelerator,
            price_per_replica_hour_usd=self.price_per_replica_hour_usd,
            replicas=self.replicas,
            slots_per_replica=self.slots_per_replica,
        )


@dataclasses.dataclass(frozen=True)
class Scenario:
    seed: int
    devices: int
    hours: float
    start_hour: int
    peak_cloud_utilisation: float
    diurnal: tuple[float, ...]
    requests: RequestMix
    device: DeviceModel
    link: LinkModel
    acceptance: AcceptanceModel
    cloud: CloudModel
    pools: tuple[PoolModel, ...]

    def check(self, at: str = "") -> None:
        _require(self.devices >= 1, f"{at}devices", "must be >= 1")
        _require(self.hours > 0, f"{at}hours", "must be > 0")
        _require(0 <= self.start_hour < 24, f"{at}start_hour", "must be in [0, 24)")
        _require(0 < self.peak_cloud_utilisation < 1, f"{at}peak_cloud_utilisation", "must be in (0, 1)")
        _require(len(self.diurnal) == 24, f"{at}diurnal", f"needs 24 hourly weights, got {len(self.diurnal)}")
        _require(max(self.diurnal) > 0, f"{at}diurnal", "needs a weight > 0")
        _require(len(self.pools) >= 1, f"{at}pools", "needs at least one [[pools]] table")
        names = [p.name for p in self.pools]
        _require(len(set(names)) == len(names), f"{at}pools", f"pool names must be unique, got {names}")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise InvalidArgument(key, message)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """`value` as type `tp` (float, int, str, tuple[X, ...] or a scenario dataclass) or InvalidArgument."""
    if dataclasses.is_dataclass(tp):
        return _from_table(tp, value, key + ".")
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list):
            raise InvalidArgument(key, f"must be an array, got {value!r}")
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is str:
        if not isinstance(value, str):
            raise InvalidArgument(key, f"must be a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(key, f"must be a number, got {value!r}")
    if tp is int:
        if value != int(value):
            raise InvalidArgument(key, f"must be an integer, got {value!r}")
        value = int(value)
    if value < 0:
        raise InvalidArgument(key, f"must be >= 0, got {value!r}")
    return tp(value)


def _from_table(cls: type, table: Any, at: str) -> Any:
    if not isinstance(table, Mapping):
        raise InvalidArgument(at.rstrip(".") or "scenario", f"must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in hints:
            raise InvalidArgument(at + key, f"unknown key; known: {', '.join(names)}")
    missing = [n for n in names if n not in table]
    if missing:
        raise InvalidArgument(at + missing[0], "missing (every number of a scenario is a key in its file)")
    obj = cls(**{n: _coerce(hints[n], table[n], at + n) for n in names})
    obj.check(at)
    return obj


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build and validate a scenario. Raises InvalidArgument naming the bad key (e.g. ``pools[1].token_ms``)."""
    data = dict(data)
    pools = data.get("pools")
    if isinstance(pools, list):  # pools are an array of tables: check each with its index in the key
        data["pools"] = [
            dataclasses.asdict(_from_table(PoolModel, p, f"pools[{i}].")) for i, p in enumerate(pools)
        ]
    return _from_table(Scenario, data, "")


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file; InvalidArgument names the bad key and the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(str(path), f"not valid TOML: {e}") from e
    try:
        return scenario_from_dict(data)
    except InvalidArgument as e:
        raise InvalidArgument(f"{path}: {e.field}", e.message.split(": ", 1)[-1]) from e


# ====================================================================== truth models


def latency_multiplier(rho: float, k: float) -> float:
    """m(ρ) = 1 + k·ρ/(1 − min(ρ, 0.95)): how much a pool at utilisation ρ slows a request down."""
    return 1.0 + k * rho / (1.0 - min(rho, 0.95))


def mean_log_uniform(lo: float, hi: float) -> float:
    return lo if hi == lo else (hi - lo) / math.log(hi / lo)


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


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What actually happened to a served request (times as the client sees them)."""

    ttft_ms: float
    token_ms: float
    total_ms: float  # arrival → last token (a queue wait is inside ttft)
    energy_j: float  # device energy
    compute_ms: float  # accelerator time billed
    share: float  # cloud slots held while it runs (CLOUD 1; TANDEM its verify passes' share)
    # what the router measures and feeds its estimates
    router_ttft_ms: float = 0.0  # EDGE: with the device link; CLOUD: queue + pool
    accept_rate: float = 0.0  # TANDEM per-token acceptance α, as the router's draft controller estimates it
    draft_ms: float = 0.0
    verify_call_ms: float = 0.0
    rounds: int = 0


def edge_truth(
    n: int,
    prompt_tokens: int,
    rtt_ms: float,
    token_ms: float,
    prefill_ms_per_token: float,
    energy_per_token_j: float,
    prefill_fraction: float,
) -> Outcome:
    """EDGE: the client calls the router and the router the device (2 round trips); the device prefills
    then generates every token."""
    dev_ttft = prompt_tokens * prefill_ms_per_token + token_ms
    ttft = 2 * rtt_ms + dev_ttft
    energy = n * energy_per_token_j + prompt_tokens * energy_per_token_j * prefill_fraction
    return Outcome(
        ttft_ms=ttft,
        token_ms=token_ms,
        total_ms=ttft + (n - 1) * token_ms,
        energy_j=energy,
        compute_ms=0.0,
        share=0.0,
        router_ttft_ms=rtt_ms + dev_ttft,
    )


def cloud_truth(
    n: int, prompt_tokens: int, rtt_ms: float, pool: PoolModel, m: float, wait_ms: float
) -> Outcome:
    """CLOUD: one client round trip; the pool's time to first token and per token stretched by m(ρ);
    a queue wait when every slot was taken. Bills n tokens of accelerator time."""
    pool_ttft = (pool.ttft_ms + pool.prefill_ms_per_token * prompt_tokens) * m
    token = pool.token_ms * m
    ttft = rtt_ms + wait_ms + pool_ttft
    return Outcome(
        ttft_ms=ttft,
        token_ms=token,
        total_ms=ttft + (n - 1) * token,
        energy_j=0.0,
        compute_ms=n * pool.compute_ms_per_token,
        share=1.0,
        router_ttft_ms=wait_ms + pool_ttft,
    )


def tandem_truth(
    n: int,
    prompt_tokens: int,
    rtt_ms: float,
    alpha: float,
    gamma: int,
    draft_ms: float,
    device_token_ms: float,
    prefill_ms_per_token: float,
    energy_per_token_j: float,
    prefill_fraction: float,
    pool: PoolModel,
    m: float,
    wait_ms: float,
    verify_compute_factor: float,
    overlap: bool = True,
) -> Outcome:
    """TANDEM as router.tandem.loop runs it, in expectation. Head start: the pool prefills and
    sends the first token while the device prefills and drafts γ + 1 tokens; that block is the
    second round's draft when its first token was the target's (probability α), else the device
    drafts anew. Then rounds of γ drafts and a verify call across the device link, committing E(γ)
    each; with overlap, a round after a hit (probability α^(γ+1)) waits only for the verify or
    for the drafting that outlasted it, and the device pays for the blocks it drafted ahead past a
    miss. The cloud is busy for its prefill and the verify passes,
    so the request holds that share of a slot; the device pays every drafted token."""
    model = RoundModel(constant(alpha), draft_ms, rtt_ms, pool.verify_ms * m, overlap)
    e = model.expected_tokens(gamma)
    rest = max(n - 1, 0)
    rounds = math.ceil(rest / e)
    verify = pool.verify_ms * m
    full = gamma * draft_ms + rtt_ms + verify
    hit = alpha ** (gamma + 1) if overlap else 0.0
    per_round = (1 - hit) * full + hit * max(verify, gamma * draft_ms)
    pool_ttft = (pool.ttft_ms + pool.prefill_ms_per_token * prompt_tokens) * m
    dev_ttft = prompt_tokens * prefill_ms_per_token + device_token_ms
    ttft = rtt_ms + wait_ms + pool_ttft
    stall = max(0.0, rtt_ms + dev_ttft + (gamma + 1) * draft_ms - pool_ttft)
    after = stall + rounds * per_round - (alpha * (gamma * draft_ms + rtt_ms) if rounds else 0.0)
    total = ttft + after
    drafted = gamma + 1 + max(rounds - alpha, 0.0) * gamma
    if overlap:  # what the device drafts ahead past blocks that miss, and drops
        drafted += rounds * model.dropped_ahead(gamma)
    energy = drafted * energy_per_token_j + prompt_tokens * energy_per_token_j * prefill_fraction
    share = min(1.0, (pool_ttft + rounds * verify) / max(total - wait_ms, 1e-9))
    # the router feeds its draft controller's geometric estimate of α (accepted ÷ drafted would
    # understate it whenever a long draft is cut short by one rejection); in expectation that is α
    return Outcome(
        ttft_ms=ttft,
        token_ms=after / rest if rest else 0.0,
        total_ms=total,
        energy_j=energy,
        compute_ms=pool.compute_ms_per_token * (1 + rounds * verify_compute_factor),
        share=share,
        router_ttft_ms=wait_ms + pool_ttft,
        accept_rate=alpha,
        draft_ms=draft_ms,
        verify_call_ms=verify,
        rounds=rounds,
    )


# ====================================================================== the world


@dataclasses.dataclass(frozen=True)
class SimRequest:
    t: float  # arrival, s
    device: int  # index into the devices
    route: RouteRequest
    interactive: bool
    prompt_tokens: int  # the truth
    rtt_jitter: float  # multiplies the device's base round trip for this request


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
        privacy, quality = Privacy.LOCAL_ONLY, "small_ok"  # it must stay on the device: the small model it is
    elif u < r.local_only_share + r.small_ok_share:
        privacy, quality = Privacy.STANDARD, "small_ok"
    else:
        privacy, quality = Privacy.STANDARD, "large_required"
    interactive = rng.random() < r.interactive_share
    n = max(1, round(math.exp(rng.uniform(math.log(r.new_tokens_min), math.log(r.new_tokens_max)))))
    chars = rng.randint(r.prompt_chars_min, r.prompt_chars_max)
    jitter = rng.lognormvariate(0.0, sc.link.jitter_sigma) if sc.link.jitter_sigma > 0 else 1.0
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
    )


# ====================================================================== strategies


@dataclasses.dataclass(frozen=True)
class Plan:
    placement: str  # edge | cloud | tandem
    pool: str = ""
    gamma: int = 0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    decision: Decision | None = None  # the policy's, when the policy made the plan


class Strategy:
    """Places requests. `plan` may raise FailedPrecondition or ResourceExhausted (a refusal)."""

    name = "strategy"

    def attach(self, sim: Simulation) -> None:
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
    """A baseline's draft length: rate-optimal at the policy's prior acceptance."""
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

    def attach(self, sim: Simulation) -> None:
        super().attach(sim)
        self.registry = FleetRegistry(clock=lambda: sim.now, lease_s=3600.0, tokenizer_id=TOKENIZER_ID)
        register_fleet(self.registry, [d.id for d in sim.devices], sim.scenario.pools)

    def plan(self, req: SimRequest, dev: SimDevice) -> Plan:
        self.registry.heartbeat(dev.id, dev.state())
        snap = build_snapshot(self.registry, self.estimates, self.policy, dev.id)
        d = decide(req.route, snap, self.policy, self.sim.now)
        self.estimates.begin(d)
        return Plan(d.placement, d.pool, d.initial_draft_length, d.predicted_ttft_ms, d.predicted_token_ms, d)

    def finished(self, job: Job) -> None:
        plan, o, est = job.plan, job.outcome, self.estimates
        assert o is not None
        if plan.decision is not None:
            est.end(plan.decision)
        n, prompt = job.req.route.max_new_tokens, job.req.prompt_tokens
        token = o.token_ms if n > 1 else None
        est.observe_prompt(job.req.route.prompt_chars, prompt)
        if plan.placement == "edge":
            # the router subtracts the device's reported round trip from what it measured
            est.observe_edge(job.device.id, max(o.router_ttft_ms - job.device.rtt_ms, 0.0), token, prompt)
        elif plan.placement == "cloud":
            # the router sees the client's stream without the client link: ttft − rtt, token as is
            est.observe_cloud(plan.pool, o.router_ttft_ms, token, o.compute_ms / n, prompt)
        else:
            est.observe_cloud_ttft(plan.pool, o.router_ttft_ms, prompt)  # the head start's first token
            if plan.gamma:
                est.observe_acceptance(job.device.id, plan.pool, True, constant(o.accept_rate))
                est.observe_draft(job.device.id, o.draft_ms)
            if o.rounds:  # per pass after the first, which prefilled the prompt (as the router measures)
                first = self.sim.pools[plan.pool].model.compute_ms_per_token
                est.observe_verify(plan.pool, o.verify_call_ms, (o.compute_ms - first) / o.rounds)


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


# ====================================================================== the event loop


@dataclasses.dataclass
class Job:
    req: SimRequest
    device: SimDevice
    plan: Plan
    queued_at: float
    share: float = 0.0  # cloud slots it holds (or asks for while queued)
    outcome: Outcome | None = None
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


@dataclasses.dataclass
class Tally:
    """Running totals of one run."""

    requests: int = 0
    placements: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    by_pool: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    cost_usd: float = 0.0
    cost_by_placement: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    by_class: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )  # "quality[ interactive]: placement"
    compute_ms: float = 0.0
    energy_j: float = 0.0
    interactive: int = 0
    interactive_met: int = 0
    misses_by_placement: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    missed: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # "edge ttft", …
    privacy_violations: int = 0
    quality_violations: int = 0
    pushed_below_events: int = 0
    pushed_below_devices: set = dataclasses.field(default_factory=set)
    ttfts: list = dataclasses.field(default_factory=list)
    queue_waits: int = 0
    refusal_examples: list = dataclasses.field(default_factory=list)
    refusal_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # interactive misses that no placement the request allows would have avoided, by placement
    infeasible_misses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    tandem_shares: list = dataclasses.field(default_factory=list)
    pushed_below_examples: list = dataclasses.field(default_factory=list)
    pushed_below_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    ttft_ratio: collections.defaultdict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    token_ratio: collections.defaultdict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    gammas: list = dataclasses.field(default_factory=list)
    # cloud occupancy seen by arrivals, per hour of the run (Poisson arrivals see time averages)
    util_sum: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    util_n: collections.Counter = dataclasses.field(default_factory=collections.Counter)


class Simulation:
    """One run of one strategy over one scenario. `run()` returns the summary dict."""

    def __init__(
        self,
        scenario: Scenario,
        strategy: Strategy,
        rng: random.Random | None = None,
        progress: Callable[[str], None] | None = None,
        requests: list[SimRequest] | None = None,
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
        self._events: list[tuple[float, int, Job]] = []
        self._seq = 0
        strategy.attach(self)

    # -- truth
    def _outcome(self, job: Job, wait_ms: float) -> Outcome:
        req, dev, plan, sc = job.req, job.device, job.plan, self.scenario
        n, rtt, slow = req.route.max_new_tokens, dev.rtt_ms * req.rtt_jitter, dev.slowdown
        if plan.placement == "edge":
            return edge_truth(
                n,
                req.prompt_tokens,
                rtt,
                dev.token_ms * slow,
                dev.prefill_ms_per_token * slow,
                dev.energy_per_token_j,
                sc.device.prefill_energy_fraction,
            )
        pool = self.pools[plan.pool]
        m = latency_multiplier(pool.occupied / pool.model.slots, sc.cloud.latency_k)
        if plan.placement == "cloud":
            return cloud_truth(n, req.prompt_tokens, rtt, pool.model, m, wait_ms)
        return tandem_truth(
            n,
            req.prompt_tokens,
            rtt,
            dev.alpha[plan.pool],
            plan.gamma,
            dev.draft_ms * slow,
            dev.token_ms * slow,
            dev.prefill_ms_per_token * slow,
            dev.energy_per_token_j,
            sc.device.prefill_energy_fraction,
            pool.model,
            m,
            wait_ms,
            sc.cloud.verify_compute_factor,
            plan.decision.overlap if plan.decision else req.route.overlap,
        )

    def _slo_feasible(self, req: SimRequest, dev: SimDevice) -> bool:
        """Would any placement the request's privacy and quality allow have met its SLOs, by the truth
        models at this moment (no queue wait, the best draft length)? A diagnostic for misses."""
        r = req.route
        options = [Plan("edge")] if r.quality != "large_required" else []
        if r.privacy != Privacy.LOCAL_ONLY:
            for p in self.scenario.pools:
                options.append(Plan("cloud", p.name))
                options += [Plan("tandem", p.name, g) for g in range(1, 17)]
        for plan in options:
            o = self._outcome(Job(req, dev, plan, self.now), 0.0)
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
            t.tandem_shares.append(job.share)
        if req.route.privacy == Privacy.LOCAL_ONLY and plan.placement != "edge":
            t.privacy_violations += 1
        if req.route.quality == "large_required" and plan.placement == "edge":
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
        return self.summary(end - sc.start_hour * 3600.0)

    # -- results
    def summary(self, span_s: float) -> dict[str, Any]:
        t = self.tally
        total = max(t.requests, 1)
        ttfts = sorted(t.ttfts)
        out: dict[str, Any] = {
            "strategy": self.strategy.name,
            "requests": t.requests,
            "cloud_cost_usd": round(t.cost_usd, 4),
            "slo_attainment": round(t.interactive_met / t.interactive, 4) if t.interactive else 1.0,
            "device_energy_j": round(t.energy_j, 1),
            "devices_pushed_below_reserve": len(t.pushed_below_devices),
            "pushed_below_reserve_events": t.pushed_below_events,
            "pushed_below_reserve_causes": dict(t.pushed_below_causes),
            "privacy_violations": t.privacy_violations,
            "quality_violations": t.quality_violations,
            "refused": t.placements["refused"],
            "share": {p: round(t.placements[p] / total, 4) for p in PLACEMENTS},
            "by_pool": dict(sorted(t.by_pool.items())),
            "cost_by_placement": {k: round(v, 4) for k, v in sorted(t.cost_by_placement.items())},
            "placements_by_class": dict(sorted(t.by_class.items())),
            "ttft_mean_ms": round(statistics.fmean(ttfts), 1) if ttfts else 0.0,
            "ttft_p95_ms": round(percentile(ttfts, 0.95), 1) if ttfts else 0.0,
            "interactive": t.interactive,
            "slo_misses_by_placement": dict(t.misses_by_placement),
            # of those, the ones no placement the request allows would have met (truth, at that moment)
            "slo_misses_infeasible": dict(t.infeasible_misses),
            "slo_missed_by_kind": dict(sorted(t.missed.items())),  # a request may miss both
            # the best any placement the requests allow could have done (1 − infeasible ÷ interactive)
            "slo_attainment_ceiling": round(1 - sum(t.infeasible_misses.values()) / t.interactive, 4)
            if t.interactive
            else 1.0,
            "cloud_utilisation_mean": {
                n: round(p.busy_integral / (p.model.slots * span_s), 4) for n, p in self.pools.items()
            },
            "cloud_utilisation_peak_hour": round(
                max((t.util_sum[h] / t.util_n[h] for h in t.util_n), default=0.0), 4
            ),
            "queued_requests": t.queue_waits,
            "mean_gamma": round(statistics.fmean(t.gammas), 2) if t.gammas else 0.0,
            # the share of a slot a TANDEM request really holds (the router counts it as a whole one)
            "tandem_mean_slot_share": round(statistics.fmean(t.tandem_shares), 3) if t.tandem_shares else 0.0,
            "refusal_causes": dict(t.refusal_causes),
            "refusal_examples": t.refusal_examples,
            "pushed_below_examples": t.pushed_below_examples,
        }
        if t.ttft_ratio:  # calibration: actual ÷ predicted (the policy's predictions only)
            out["actual_over_predicted"] = {
                pl: {
                    "ttft_p50": round(percentile(sorted(t.ttft_ratio[pl]), 0.5), 3),
                    "token_p50": round(percentile(sorted(t.token_ratio[pl]), 0.5), 3)
                    if t.token_ratio[pl]
                    else None,
                }
                for pl in sorted(t.ttft_ratio)
            }
        return out


REFUSAL_PHRASES = {
    "saturated": "pool saturated",
    "thermally critical": "thermal critical",
    "reserve and not charging": "battery below reserve",
    "would take the battery": "battery energy",
    "may not leave the device": "local only",
}


def refusal_cause(message: str) -> str:
    """A short key for a refusal from decide: the hard rules its message names."""
    return " + ".join(sorted({v for k, v in REFUSAL_PHRASES.items() if k in message})) or "other"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in [0, 1])."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def simulate(
    scenario: Scenario,
    strategy: Strategy,
    rng: random.Random | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `strategy` over `scenario` (the world drawn from `rng`, default Random(scenario.seed))."""
    return Simulation(scenario, strategy, rng, progress).run()


# ====================================================================== decision timing


def time_decisions(
    scenario: Scenario,
    devices: int = 10_000,
    decisions: int = 5_000,
    policy: PolicyConfig | None = None,
    rng: random.Random | None = None,
) -> dict[str, float]:
    """p50/p99 wall time (ms) of build_snapshot + decide with `devices` registered EDGE workers and
    the scenario's pools, over random requests from random devices in random states."""
    policy = policy or PolicyConfig()
    rng = rng or random.Random(scenario.seed)
    now = 1_000.0
    registry = FleetRegistry(clock=lambda: now, lease_s=3600.0, tokenizer_id=TOKENIZER_ID)
    ids = [f"dev-{i:05d}" for i in range(devices)]
    register_fleet(registry, ids, scenario.pools)
    dm = scenario.device
    for dev_id in ids:
        registry.heartbeat(
            dev_id,
            DeviceState(
                battery_percent=rng.uniform(dm.battery_min_percent, dm.battery_max_percent),
                charging=rng.random() < dm.charging_share,
                battery_source="modelled",
                thermal=rng.choice(("nominal",) * 20 + ("serious", "critical")),
                energy_per_token_joules=rng.uniform(dm.energy_per_token_min_j, dm.energy_per_token_max_j),
                rtt_ms=rng.lognormvariate(math.log(scenario.link.rtt_median_ms), scenario.link.rtt_sigma),
                battery_capacity_joules=dm.capacity_joules,
            ),
        )
    est = Estimates(policy)
    for dev_id in ids:  # every device measured, as in a fleet that has been running
        est.observe_edge(dev_id, rng.uniform(50.0, 500.0), rng.uniform(dm.token_ms_min, dm.token_ms_max))
        est.observe_draft(dev_id, rng.uniform(dm.token_ms_min, dm.token_ms_max) * dm.draft_ratio)
        for p in scenario.pools:
            est.observe_acceptance(dev_id, p.name, True, constant(rng.uniform(0.4, 0.8)))
    for p in scenario.pools:
        est.observe_cloud(p.name, p.ttft_ms, p.token_ms, p.compute_ms_per_token)
        est.observe_verify(p.name, p.verify_ms, p.compute_ms_per_token * scenario.cloud.verify_compute_factor)
    reqs = [draw_request(scenario, rng, now, rng.randrange(devices)) for _ in range(decisions)]
    times = []
    for r in reqs:
        t0 = time.perf_counter()
        try:
            snap = build_snapshot(registry, est, policy, r.route.device_id)
            decide(r.route, snap, policy, now)
        except (FailedPrecondition, ResourceExhausted):
            pass
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "devices": devices,
        "decisions": decisions,
        "p50_ms": round(percentile(times, 0.5), 4),
        "p99_ms": round(percentile(times, 0.99), 4),
        "mean_ms": round(statistics.fmean(times), 4),
    }


__all__ = [
    "AcceptanceModel",
    "AlwaysCloud",
    "AlwaysDevice",
    "CloudModel",
    "DeviceModel",
    "Job",
    "LinkModel",
    "Outcome",
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
