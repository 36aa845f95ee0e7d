"""A fleet-simulator scenario: the fleet, its workload and the truth the simulator runs.

A scenario is a TOML file (``router/policy/sim/reference.toml``, shipped with the package) in which
every number the simulator uses is a key: loading it (``load_scenario``, through the one config
loader) rejects a missing or unknown key, a value of the wrong type, a negative or non-finite
number, and values that contradict each other, with an InvalidArgument naming the key
(``pools[1].token_ms``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router.fleet import PoolInfo
from runtime.configfile import ConfigError, build
from runtime.configfile import load as load_toml
from tandem.errors import InvalidArgument

REFERENCE = Path(__file__).resolve().parent / "reference.toml"  # package data


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise InvalidArgument(key, message)


def _non_negative(obj: Any) -> None:
    """Every number of a scenario table is finite and >= 0 (the loader checks finiteness)."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            _require(v >= 0, f.name, f"must be >= 0, got {v!r}")


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

    def __post_init__(self) -> None:
        _non_negative(self)
        shares = (self.local_only_share, self.small_ok_share, self.large_required_share)
        _require(
            abs(sum(shares) - 1.0) < 1e-6,
            "local_only_share",
            f"local_only_share + small_ok_share + large_required_share must be 1, got {sum(shares):g}",
        )
        _require(self.interactive_share <= 1, "interactive_share", "must be <= 1")
        _require(
            1 <= self.new_tokens_min <= self.new_tokens_max,
            "new_tokens_max",
            "need 1 <= new_tokens_min <= new_tokens_max",
        )
        _require(
            1 <= self.prompt_chars_min <= self.prompt_chars_max,
            "prompt_chars_max",
            "need 1 <= prompt_chars_min <= prompt_chars_max",
        )
        _require(self.chars_per_token > 0, "chars_per_token", "must be > 0")


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

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(
            self.battery_min_percent <= self.battery_max_percent <= 100,
            "battery_max_percent",
            "need battery_min_percent <= battery_max_percent <= 100",
        )
        _require(self.capacity_joules > 0, "capacity_joules", "must be > 0")
        _require(0 < self.charging_share < 1, "charging_share", "must be in (0, 1)")
        _require(self.charging_session_hours > 0, "charging_session_hours", "must be > 0")
        _require(
            self.energy_per_token_min_j <= self.energy_per_token_max_j,
            "energy_per_token_max_j",
            "must be >= energy_per_token_min_j",
        )
        _require(
            0 < self.token_ms_min <= self.token_ms_max,
            "token_ms_max",
            "need 0 < token_ms_min <= token_ms_max",
        )
        _require(self.draft_ratio > 0, "draft_ratio", "must be > 0")
        _require(
            self.thermal_serious_share + self.thermal_critical_share < 1,
            "thermal_critical_share",
            "thermal_serious_share + thermal_critical_share must be < 1",
        )
        _require(self.thermal_episode_minutes > 0, "thermal_episode_minutes", "must be > 0")
        _require(
            self.serious_slowdown >= 1 and self.critical_slowdown >= 1,
            "serious_slowdown",
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

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(0 < self.rtt_median_ms < self.tail_min_ms, "rtt_median_ms", "must be in (0, tail_min_ms)")
        _require(self.tail_min_ms <= self.tail_max_ms, "tail_max_ms", "must be >= tail_min_ms")
        _require(self.tail_share <= 1, "tail_share", "must be <= 1")


@dataclasses.dataclass(frozen=True)
class AcceptanceModel:
    """TANDEM's true acceptance. Each device has a mean α per pool (uniform in [alpha_min, alpha_max],
    ± pool_spread per pool); each request draws its own around it (± request_spread: some prompts
    are easier to draft); position i of a round is accepted with probability α·position_decay^(i−1)
    given the ones before it were (later drafted tokens are accepted less often)."""

    alpha_min: float
    alpha_max: float
    pool_spread: float
    request_spread: float
    position_decay: float

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(0 < self.alpha_min <= self.alpha_max < 1, "alpha_max", "need 0 < alpha_min <= alpha_max < 1")
        _require(
            self.alpha_min - self.pool_spread > 0 and self.alpha_max + self.pool_spread < 1,
            "pool_spread",
            "alpha ± pool_spread must stay inside (0, 1)",
        )
        _require(self.request_spread < 1, "request_spread", "must be < 1")
        _require(0 < self.position_decay <= 1, "position_decay", "must be in (0, 1]")

    def profile(self, alpha: float, positions: int) -> tuple[float, ...]:
        """β_1..β_positions of a request whose first-position acceptance is `alpha`."""
        return tuple(min(max(alpha * self.position_decay**i, 0.01), 0.99) for i in range(positions))


@dataclasses.dataclass(frozen=True)
class CloudModel:
    latency_k: float
    verify_compute_factor: float

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(self.verify_compute_factor > 0, "verify_compute_factor", "must be > 0")


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

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(bool(self.name), "name", "must not be empty")
        _require(self.replicas >= 1, "replicas", "must be >= 1")
        _require(self.slots_per_replica >= 1, "slots_per_replica", "must be >= 1")
        _require(self.token_ms > 0 and self.verify_ms > 0, "token_ms", "token_ms and verify_ms must be > 0")

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

    def __post_init__(self) -> None:
        _non_negative(self)
        _require(self.devices >= 1, "devices", "must be >= 1")
        _require(self.hours > 0, "hours", "must be > 0")
        _require(0 <= self.start_hour < 24, "start_hour", "must be in [0, 24)")
        _require(0 < self.peak_cloud_utilisation < 1, "peak_cloud_utilisation", "must be in (0, 1)")
        _require(len(self.diurnal) == 24, "diurnal", f"needs 24 hourly weights, got {len(self.diurnal)}")
        _require(min(self.diurnal) >= 0 and max(self.diurnal) > 0, "diurnal", "needs weights >= 0, one > 0")
        _require(len(self.pools) >= 1, "pools", "needs at least one [[pools]] table")
        names = [p.name for p in self.pools]
        _require(len(set(names)) == len(names), "pools", f"pool names must be unique, got {names}")


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build and validate a scenario: every key of every table given (InvalidArgument naming the
    bad key, e.g. ``pools[1].token_ms``)."""
    return build(Scenario, data, "", require_all=True)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file; InvalidArgument names the bad key and the file."""
    path = Path(path)
    data = load_toml(path)
    data.pop("__dir__", None)
    try:
        return scenario_from_dict(data)
    except InvalidArgument as e:
        raise ConfigError(f"{path}: {e.field}", e.detail) from e


def mean_log_uniform(lo: float, hi: float) -> float:
    return lo if hi == lo else (hi - lo) / math.log(hi / lo)
