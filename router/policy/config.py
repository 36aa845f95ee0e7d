"""The routing policy's tunables: weights, battery reserve, SLO defaults, ceilings and priors.

One frozen dataclass, validated on construction (errors name the field); ``policy_from_dict`` builds
it from a TOML table or the Admin API's values, raising InvalidArgument that names the offending key
(``policy.<key>``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from runtime.configfile import build
from tandem.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    # score = cost_weight·cost + latency_weight·slowdown + battery_weight·pressure·energy (see
    # router.policy.scoring for the scales); lower wins. The defaults buy cost within the SLOs, which guard
    # latency: twice a request's fastest time weighs as 7% of its cheapest cloud cost; a device's
    # whole request, at its battery reserve, as 40%. Measured on the reference fleet (bench/policy.py).
    cost_weight: float = 1.0
    latency_weight: float = 0.07
    battery_weight: float = 0.4
    # a device below this charge (and not charging) gets no EDGE work and no drafting, and no
    # placement may take a device below it (unless the request insists on the device)
    battery_reserve_percent: float = 20.0
    energy_margin: float = 1.5  # predicted device energy × this must fit above the reserve
    default_battery_capacity_joules: float = 54_000.0  # 15 Wh, when a device does not report one
    # SLOs for requests that set none (0: none)
    default_ttft_slo_ms: float = 0.0
    default_token_slo_ms: float = 0.0
    # a candidate meets an SLO when it is predicted to with this probability: its prediction, the
    # spread the model knows of (TANDEM's rounds) and the spread measured beyond it (links, loads)
    slo_confidence: float = 0.9
    # quality: with QUALITY_UNSPECIFIED, the small model suffices up to this many new tokens (0: never)
    small_ok_max_new_tokens: int = 0
    allow_tandem: bool = True
    max_cost_usd: float = 0.0  # per-request ceiling (0: none); the request's own hint can only lower it
    max_pool_price_per_hour_usd: float = 0.0  # pools dearer than this are excluded (0: none)
    max_pool_utilisation: float = 0.95  # pools busier than this are excluded
    max_draft_length: int = 16
    max_device_state_age_s: float = 30.0  # a device whose last heartbeat is older gets no work
    # priors for workers and pairs with no measurements yet
    prior_acceptance: float = 0.6
    prior_device_ttft_ms: float = 60.0  # time to first token of a one-token prompt…
    prior_device_prefill_ms_per_token: float = 0.5  # … plus this per prompt token
    prior_device_token_ms: float = 25.0
    prior_draft_ms: float = 10.0
    prior_rtt_ms: float = 50.0
    prior_cloud_ttft_ms: float = 150.0
    prior_cloud_prefill_ms_per_token: float = 0.1
    prior_cloud_token_ms: float = 20.0
    prior_verify_ms: float = 30.0
    prior_compute_ms_per_token: float = 20.0
    prior_compute_ms_per_verify: float = 24.0
    prior_latency_spread: float = 0.15  # std of log(actual ÷ predicted) latency before any is measured
    prompt_chars_per_token: float = (
        3.5  # prompt length estimate before tokenizing (prior: the router learns it)
    )
    prefill_energy_fraction: float = 0.2  # a prompt token costs the device this share of a generated one
    # per pool: the price per replica-hour the router prices and bills it at, instead of the one its
    # replicas report (a renegotiated or spot price); (name, USD) pairs sorted by name
    pool_prices: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name, price in self.pool_prices:
            if not isinstance(name, str) or not name:
                raise InvalidArgument("pool_prices", f"pool names must be non-empty, got {name!r}")
            if (
                isinstance(price, bool)
                or not isinstance(price, (int, float))
                or not math.isfinite(price)
                or price < 0
            ):
                raise InvalidArgument(f"pool_prices.{name}", f"must be a finite price >= 0, got {price!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or f.name == "pool_prices":
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidArgument(f.name, f"must be a finite number >= 0, got {v!r}")
        if self.battery_reserve_percent >= 100:
            raise InvalidArgument(
                "battery_reserve_percent", f"must be < 100, got {self.battery_reserve_percent}"
            )
        if not 0 < self.prior_acceptance < 1:
            raise InvalidArgument("prior_acceptance", f"must be in (0, 1), got {self.prior_acceptance}")
        if not 1 <= self.max_draft_length <= 64:
            raise InvalidArgument("max_draft_length", f"must be in [1, 64], got {self.max_draft_length}")
        if self.energy_margin < 1:
            raise InvalidArgument("energy_margin", f"must be >= 1, got {self.energy_margin}")
        if self.max_pool_utilisation <= 0:
            raise InvalidArgument("max_pool_utilisation", "must be > 0")
        if not 0.5 <= self.slo_confidence < 1:
            raise InvalidArgument("slo_confidence", f"must be in [0.5, 1), got {self.slo_confidence}")
        if self.prompt_chars_per_token <= 0:
            raise InvalidArgument("prompt_chars_per_token", "must be > 0")
        if self.cost_weight + self.latency_weight + self.battery_weight <= 0:
            raise InvalidArgument("cost_weight", "at least one weight must be > 0")


def policy_from_dict(data: Mapping[str, Any], base: PolicyConfig | None = None) -> PolicyConfig:
    """`base` (default: the defaults) with the keys of `data` replaced (runtime.configfile, the one
    loader). Unknown keys, wrongly typed or refused values raise InvalidArgument naming
    ``policy.<key>``; `pool_prices` is a {pool: price} table."""
    return build(PolicyConfig, data, "policy", base=base or PolicyConfig())


def policy_to_dict(p: PolicyConfig) -> dict[str, Any]:
    d = dataclasses.asdict(p)
    d["pool_prices"] = dict(p.pool_prices)
    return d


def pool_price(p: PolicyConfig, pool: str, reported: float) -> float:
    """The price per replica-hour a pool is counted at: the policy's override, else what it reports."""
    return next((price for name, price in p.pool_prices if name == pool), reported)
