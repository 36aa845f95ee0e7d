"""A load-test scenario (a TOML file, see loadtest/scenarios/smoke.toml): arrivals, the requests and
their hints, the simulated device fleet and the SLOs goodput is counted against.

Typed and validated once when loaded (``load``); a bad key or value raises ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runtime.configfile import ConfigError, build
from runtime.configfile import load as load_toml
from runtime.link_emulator import LinkProfile

PROCESSES = ("poisson", "gamma", "constant")
CHARGING = ("never", "always", "cycle")


@dataclasses.dataclass(frozen=True)
class Arrivals:
    process: str = "poisson"  # poisson | gamma | constant
    rate: float = 2.0  # requests per second
    rates: tuple[float, ...] = ()  # a sweep: one run per rate (overrides `rate`)
    burstiness: float = 1.0  # gamma: squared coefficient of variation of the gaps (1 = Poisson; > 1 burstier)
    duration_s: float = 30.0  # sending stops after this long
    max_requests: int = 0  # and after this many (0: no bound but the duration)
    concurrency: int = (
        0  # requests in flight at most (0: no cap); a capped request still counts from its schedule
    )
    drain_s: float = (
        60.0  # after the last send, requests still running get this long before they are cancelled
    )

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise ValueError(f"process must be one of {', '.join(PROCESSES)}, got {self.process!r}")
        if self.rate <= 0 or any(r <= 0 for r in self.rates):
            raise ValueError("rate and every entry of rates must be > 0")
        if self.burstiness <= 0 or self.duration_s <= 0 or self.max_requests < 0 or self.concurrency < 0:
            raise ValueError("burstiness and duration_s must be > 0; max_requests and concurrency >= 0")

    @property
    def sweep(self) -> tuple[float, ...]:
        return self.rates or (self.rate,)


@dataclasses.dataclass(frozen=True)
class HintMix:
    """One class of requests, drawn with probability proportional to `weight`."""

    name: str = "auto"
    weight: float = 1.0
    placement: str = "auto"  # as the SDK's placement argument
    privacy: str = "standard"
    quality: str = "unspecified"
    ttft_slo_ms: float = 0.0
    token_slo_ms: float = 0.0
    max_cost_usd: float = 0.0
    on_device: bool = True  # the request comes from a simulated device (its device_id is sent)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"hints {self.name!r}: weight must be >= 0")


@dataclasses.dataclass(frozen=True)
class Requests:
    prompts: str = (
        "code"  # a built-in set ("code") or a text file, one prompt per paragraph (blank-line separated)
    )
    max_new_tokens: tuple[int, ...] = (16, 32, 48)  # drawn uniformly
    temperature: float = 0.0
    timeout_s: float = 60.0  # per-request deadline
    retries: int = 0  # the SDK's retries before the first token (0: every failure counts)
    # the share of the requests naming a device that an app on that device sends to its agent
    # (device first: the device decides) instead of to the router
    from_device: float = 0.0

    def __post_init__(self) -> None:
        if not self.max_new_tokens or min(self.max_new_tokens) < 1:
            raise ValueError("max_new_tokens needs at least one value, all >= 1")
        if not 0.0 <= self.from_device <= 1.0:
            raise ValueError(f"from_device must be in [0, 1], got {self.from_device}")
        if self.timeout_s <= 0 or self.retries < 0:
            raise ValueError("timeout_s must be > 0 and retries >= 0")


@dataclasses.dataclass(frozen=True)
class Link:
    """A link profile, given to a `weight` share of the devices."""

    weight: float = 1.0
    delay_ms: float = 0.0  # one-way
    jitter_ms: float = 0.0
    bandwidth_mbps: float = 0.0
    loss: float = 0.0

    def profile(self) -> LinkProfile:
        return LinkProfile(self.delay_ms, self.jitter_ms, self.bandwidth_mbps, self.loss)


@dataclasses.dataclass(frozen=True)
class Fleet:
    devices: int = 4  # simulated devices, run as real edge workers in one process (0: none)
    id_prefix: str = "sim"  # device ids: sim-000, sim-001, …
    battery_percent: tuple[float, float] = (20.0, 100.0)  # initial charge, uniform in [lo, hi]
    capacity_wh: float = 15.0
    energy_per_token_joules: float = 0.05
    charging: str = (
        "cycle"  # never | always | cycle (each device charges for `charging_share` of every period)
    )
    charging_share: float = 0.3
    charge_period_s: float = 60.0
    charge_watts: float = 10.0
    links: tuple[Link, ...] = (Link(),)

    def __post_init__(self) -> None:
        if self.devices < 0 or self.capacity_wh <= 0 or self.charge_period_s <= 0:
            raise ValueError("devices must be >= 0, capacity_wh and charge_period_s > 0")
        lo, hi = self.battery_percent if len(self.battery_percent) == 2 else (-1, -1)
        if not 0 <= lo <= hi <= 100:
            raise ValueError("battery_percent must be [lo, hi] with 0 <= lo <= hi <= 100")
        if self.charging not in CHARGING:
            raise ValueError(f"charging must be one of {', '.join(CHARGING)}, got {self.charging!r}")
        if not 0 <= self.charging_share <= 1:
            raise ValueError("charging_share must be in [0, 1]")
        if not self.links or sum(link.weight for link in self.links) <= 0:
            raise ValueError("links: at least one, with a positive total weight")


@dataclasses.dataclass(frozen=True)
class Slo:
    """What a good request meets (0: not checked) — goodput and SLO attainment count against these
    unless the request's own hints set tighter ones."""

    ttft_ms: float = 1000.0
    token_ms: float = 100.0


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str = "scenario"
    seed: int = 1
    arrivals: Arrivals = dataclasses.field(default_factory=Arrivals)
    requests: Requests = dataclasses.field(default_factory=Requests)
    hints: tuple[HintMix, ...] = (HintMix(),)
    fleet: Fleet = dataclasses.field(default_factory=Fleet)
    slo: Slo = dataclasses.field(default_factory=Slo)

    def __post_init__(self) -> None:
        if not self.hints or sum(h.weight for h in self.hints) <= 0:
            raise ValueError("hints: at least one class, with a positive total weight")


def load(path: Path | str) -> Scenario:
    """The scenario in `path`. Raises ConfigError naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "no such scenario file")
    return build(Scenario, load_toml(path), path.name, path.parent)


def prompt_set(spec: str, base: Path | None = None) -> list[str]:
    """The prompts a scenario names: a built-in set or a file of blank-line-separated prompts."""
    from runtime.prompts import CODE_PROMPTS

    if spec == "code":
        return list(CODE_PROMPTS)
    path = Path(spec) if base is None or Path(spec).is_absolute() else base / spec
    if not path.is_file():
        raise ConfigError("requests.prompts", f"neither a built-in set (code) nor a file: {spec}")
    prompts = [p.strip("\n") for p in path.read_text().split("\n\n") if p.strip()]
    if not prompts:
        raise ConfigError("requests.prompts", f"{path} holds no prompt")
    return prompts
