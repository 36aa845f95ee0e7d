"""The cloud view: what a device decides its apps' requests with (fleet.proto `CloudView`).

The router sends each linked device the part of a decision's snapshot (router.policy.snapshot)
that only the router knows — the pools with their prices, loads and measured speeds, this device's
acceptance profiles with each pool and the router's measurements of the device, the latency spreads,
and the policy in force with its version. The device puts its own live state (battery, charging,
thermal) beside it and runs the same pure policy, so its decision is the router's for the same
request and state. A view is good for `ttl_ms` after it arrives; without a fresh one the device
decides with no cloud candidates (offline).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable

from router.convert import policy_changes_from_pb, policy_to_pb
from router.fleet import DeviceState, FleetRegistry, PoolInfo
from router.policy.config import PolicyConfig, policy_from_dict
from router.policy.estimates import SPREAD_QUANTILES, Estimates, Spread
from router.policy.predict import DeviceEstimate, PoolEstimate
from router.policy.snapshot import FleetSnapshot, build_snapshot, measured_device, with_live_state
from tandem.errors import InvalidArgument
from tandem.v1 import common_pb2, fleet_pb2

MAX_AHEAD_EXTRA_MS = 3_600_000.0  # an hour: anything beyond is not a measurement
SPREAD_KEYS = tuple((p, f) for p in ("edge", "cloud", "tandem") for f in ("ttft", "token"))


@dataclasses.dataclass(frozen=True)
class CloudView:
    """A view as the device holds it: the policy, and the snapshot parts that are not its own state."""

    policy_version: int
    policy: PolicyConfig
    pools: tuple[PoolEstimate, ...]
    acceptance: dict[tuple[str, bool], tuple[float, ...]]  # (pool, greedy) → β profile
    device: DeviceEstimate  # the router's measurements (its live fields are replaced on use)
    chars_per_token: float
    spreads: dict[tuple[str, str], Spread]
    ttl_s: float

    def snapshot(self, state: DeviceState, now: float, greedy: bool, online: bool = True) -> FleetSnapshot:
        """The snapshot a decision on the device works from: this view with the device's live state
        (`online` False: the device's own figures but no pools — the cloud is unreachable)."""
        pools = self.pools if online else ()
        return FleetSnapshot(
            device=with_live_state(self.device, state, now),
            pools=pools,
            acceptance={p.name: self.acceptance[(p.name, greedy)] for p in pools},
            chars_per_token=self.chars_per_token,
            spread=self._spread,
        )

    def _spread(self, placement: str, what: str) -> Spread:
        return self.spreads.get((placement, what)) or Spread(self.policy.prior_latency_spread)


def offline_snapshot(device_id: str, state: DeviceState, policy: PolicyConfig, now: float) -> FleetSnapshot:
    """What a device that never had a cloud view decides with: itself at the policy's priors, no pools."""
    prior = measured_device(
        device_id,
        policy,
        rtt_ms=policy.prior_rtt_ms,
        ttft_ms=policy.prior_device_ttft_ms,
        prefill_ms_per_token=policy.prior_device_prefill_ms_per_token,
        token_ms=policy.prior_device_token_ms,
        draft_ms=policy.prior_draft_ms,
    )
    return FleetSnapshot(device=with_live_state(prior, state, now), pools=())


def view_to_pb(
    registry: FleetRegistry,
    est: Estimates,
    policy: PolicyConfig,
    version: int,
    device_id: str,
    ttl_ms: float,
) -> fleet_pb2.CloudView | None:
    """The view for `device_id` now (None when it is not registered as a device)."""
    greedy = build_snapshot(registry, est, policy, device_id, greedy=True)
    if greedy.device is None:
        return None
    sampled = build_snapshot(registry, est, policy, device_id, greedy=False)
    d = greedy.device
    msg = fleet_pb2.CloudView(
        policy_version=version,
        policy=policy_to_pb(policy),
        device=fleet_pb2.DeviceView(
            ttft_ms=d.ttft_ms,
            prefill_ms_per_token=d.prefill_ms_per_token,
            token_ms=d.token_ms,
            draft_ms=d.draft_ms,
            link_ms=d.link_ms,
            ahead_extra_ms=d.ahead_extra_ms,
            inflight_energy_joules=d.inflight_energy_j,
            rtt_ms=d.rtt_ms,
        ),
        chars_per_token=greedy.chars_per_token,
        ttl_ms=ttl_ms,
    )
    for p in greedy.pools:
        info = p.pool
        msg.pools.add(
            profile=common_pb2.PoolProfile(
                name=info.name,
                accelerator=info.accelerator,
                price_per_replica_hour_usd=info.price_per_replica_hour_usd,
                price_per_1k_tokens_usd=info.price_per_1k_tokens_usd,
                replicas=info.replicas,
                slots_per_replica=info.slots_per_replica,
            ),
            replica_id=p.replica_id,
            replicas=p.replicas,
            utilisation=p.utilisation,
            ttft_ms=p.ttft_ms,
            prefill_ms_per_token=p.prefill_ms_per_token,
            token_ms=p.token_ms,
            verify_ms=p.verify_ms,
            compute_ms_per_token=p.compute_ms_per_token,
            compute_ms_per_verify=p.compute_ms_per_verify,
            observations=p.observations,
            acceptance_greedy=greedy.acceptance[p.name],
            acceptance_sampled=sampled.acceptance[p.name],
        )
    for placement, figure in SPREAD_KEYS:
        s = est.spread(placement, figure)
        msg.spreads.add(placement=placement, figure=figure, base=s.base, quantiles=s.q, count=s.count)
    return msg


def checked_number(v: float, field: str, lo: float = 0.0, hi: float = math.inf) -> float:
    """`v` if it is finite and in [lo, hi], else InvalidArgument naming `field`."""
    if not math.isfinite(v) or not lo <= v <= hi:
        raise InvalidArgument(field, f"must be in [{lo:g}, {hi:g}], got {v!r}")
    return v


def _profile(values, field: str) -> tuple[float, ...]:
    if not values or len(values) > 64:
        raise InvalidArgument(field, f"an acceptance profile has 1 to 64 positions, got {len(values)}")
    return tuple(checked_number(b, field, 0.0, 1.0) for b in values)


def view_from_pb(msg: fleet_pb2.CloudView, device_id: str) -> CloudView:
    """The view as the device holds it. Raises InvalidArgument naming the field at fault: a device
    checks what its router sends as the router checks what devices send."""
    policy = policy_from_dict(policy_changes_from_pb(msg.policy, []))
    pools = []
    acceptance: dict[tuple[str, bool], tuple[float, ...]] = {}
    for i, p in enumerate(msg.pools):
        at = f"cloud_view.pools[{i}]"
        if not p.profile.name:
            raise InvalidArgument(f"{at}.profile.name", "required")
        for name in ("utilisation", "ttft_ms", "prefill_ms_per_token", "token_ms", "verify_ms",
                     "compute_ms_per_token", "compute_ms_per_verify"):  # fmt: skip
            checked_number(getattr(p, name), f"{at}.{name}")
        prof = p.profile
        pools.append(
            PoolEstimate(
                name=prof.name,
                pool=PoolInfo(
                    name=prof.name,
                    accelerator=prof.accelerator,
                    price_per_replica_hour_usd=checked_number(
                        prof.price_per_replica_hour_usd, f"{at}.profile.price"
                    ),
                    price_per_1k_tokens_usd=checked_number(
                        prof.price_per_1k_tokens_usd, f"{at}.profile.price"
                    ),
                    replicas=prof.replicas,
                    slots_per_replica=prof.slots_per_replica,
                ),
                replica_id=p.replica_id,
                endpoint="",
                replicas=max(p.replicas, 0),
                utilisation=p.utilisation,
                ttft_ms=p.ttft_ms,
                token_ms=p.token_ms,
                verify_ms=p.verify_ms,
                compute_ms_per_token=p.compute_ms_per_token,
                compute_ms_per_verify=p.compute_ms_per_verify,
                observations=max(p.observations, 0),
                prefill_ms_per_token=p.prefill_ms_per_token,
            )
        )
        acceptance[(prof.name, True)] = _profile(p.acceptance_greedy, f"{at}.acceptance_greedy")
        acceptance[(prof.name, False)] = _profile(p.acceptance_sampled, f"{at}.acceptance_sampled")
    d = msg.device
    for name in ("ttft_ms", "prefill_ms_per_token", "token_ms", "draft_ms", "link_ms",
                 "inflight_energy_joules", "rtt_ms"):  # fmt: skip
        checked_number(getattr(d, name), f"cloud_view.device.{name}")
    # below 0 where blocks drafted ahead come sooner than the model's overlap says
    checked_number(
        d.ahead_extra_ms, "cloud_view.device.ahead_extra_ms", -MAX_AHEAD_EXTRA_MS, MAX_AHEAD_EXTRA_MS
    )
    device = measured_device(
        device_id,
        policy,
        rtt_ms=d.rtt_ms,
        ttft_ms=d.ttft_ms,
        prefill_ms_per_token=d.prefill_ms_per_token,
        token_ms=d.token_ms,
        draft_ms=d.draft_ms,
        link_ms=d.link_ms,
        ahead_extra_ms=d.ahead_extra_ms,
        inflight_energy_j=d.inflight_energy_joules,
    )
    spreads = {}
    for s in msg.spreads:
        if len(s.quantiles) != len(SPREAD_QUANTILES) or (s.placement, s.figure) not in SPREAD_KEYS:
            raise InvalidArgument(
                "cloud_view.spreads", f"unknown or malformed spread {s.placement}/{s.figure}"
            )
        spread = Spread(checked_number(s.base, "cloud_view.spreads.base"))
        spread.q = [checked_number(q, "cloud_view.spreads.quantiles", -50.0, 50.0) for q in s.quantiles]
        spread.count = max(s.count, 0)
        spreads[(s.placement, s.figure)] = spread
    return CloudView(
        policy_version=msg.policy_version,
        policy=policy,
        pools=tuple(pools),
        acceptance=acceptance,
        device=device,
        chars_per_token=checked_number(msg.chars_per_token, "cloud_view.chars_per_token"),
        spreads=spreads,
        ttl_s=checked_number(msg.ttl_ms, "cloud_view.ttl_ms") / 1e3,
    )


class ViewSender:
    """Sends each linked device its view: once soon after it links, then every `interval_s`, and to
    every device at once when `version` changes (the policy's version, the pools' membership).
    `tick()` is called on the router's housekeeping tick."""

    def __init__(
        self,
        view_for: Callable[[str], fleet_pb2.CloudView | None],
        version: Callable[[], Hashable],
        interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.view_for = view_for
        self.version = version
        self.interval_s = interval_s
        self.clock = clock
        self._sent: dict[object, tuple[float, Hashable]] = {}  # link → (when, version)

    def send(self, link) -> bool:
        """Send `link` its view now (a device that just linked: it decides with it at once)."""
        view = self.view_for(link.device_id)
        if view is None:
            return False
        link.send_nowait(fleet_pb2.LinkDown(cloud_view=view))
        self._sent[link] = (self.clock(), self.version())
        return True

    def refresh(self, link) -> None:
        """Send `link` its view at the next tick, whatever its version (the router learnt something
        from the device: the view it holds is behind)."""
        self._sent.pop(link, None)

    def tick(self, links) -> int:
        """Send the views that are due over `links` (DeviceLink objects); returns how many went out."""
        now, version, sent = self.clock(), self.version(), 0
        live = set()
        for link in links:
            live.add(link)  # a device that linked again has a new link: it gets a view at once
            last = self._sent.get(link)
            if last is not None and last[1] == version and now - last[0] < self.interval_s:
                continue
            sent += self.send(link)
        for gone in self._sent.keys() - live:
            del self._sent[gone]
        return sent
