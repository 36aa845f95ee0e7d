"""Fleet registry: tokenizer agreement, heartbeats and expiry, with an injected clock."""

from __future__ import annotations

import dataclasses

import pytest

from router.fleet import CLOUD, EDGE, DeviceState, FleetRegistry, WorkerRecord
from tandem.errors import FailedPrecondition


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def rec(worker_id, kind=EDGE, tok="aaa") -> WorkerRecord:
    return WorkerRecord(worker_id, kind, f"{worker_id}:1", "m", tok, 512, 0)


def test_first_worker_sets_the_tokenizer_and_mismatch_is_refused():
    reg = FleetRegistry(Clock(), lease_s=5)
    reg.register(rec("pool-1", CLOUD, "aaa"))
    with pytest.raises(FailedPrecondition) as err:
        reg.register(rec("phone", EDGE, "bbb"))
    msg = str(err.value)
    assert "tokenizer mismatch" in msg and "bbb" in msg and "aaa" in msg and "pool-1" in msg
    assert [w.worker_id for w in reg.members()] == ["pool-1"]


def test_pinned_tokenizer_applies_to_the_first_worker():
    reg = FleetRegistry(Clock(), lease_s=5, tokenizer_id="aaa")
    with pytest.raises(FailedPrecondition, match="configuration"):
        reg.register(rec("phone", tok="zzz"))


def test_reregistration_replaces_and_keeps_registration_time():
    clock = Clock()
    reg = FleetRegistry(clock, lease_s=5)
    reg.register(rec("phone"))
    clock.t += 2
    again = reg.register(dataclasses.replace(rec("phone"), endpoint="phone:9"))
    assert again.registered_at == 100.0 and again.last_seen == 102.0 and len(reg.members()) == 1


def test_heartbeats_keep_workers_and_silence_expires_them():
    clock = Clock()
    reg = FleetRegistry(clock, lease_s=5)
    reg.register(rec("a"))
    reg.register(rec("b"))
    clock.t += 4
    assert reg.heartbeat("a", DeviceState(battery_percent=50))
    clock.t += 2
    gone = reg.expire()
    assert [w.worker_id for w in gone] == ["b"]
    assert reg.get("a").state.battery_percent == 50
    assert not reg.heartbeat("b", DeviceState())  # unknown: it must register again


def test_empty_fleet_accepts_a_new_tokenizer():
    reg = FleetRegistry(Clock(), lease_s=5)
    reg.register(rec("a", tok="aaa"))
    reg.deregister("a")
    reg.register(rec("b", tok="bbb"))
    assert reg.tokenizer_id == "bbb"


def test_the_policy_can_override_a_pools_reported_price():
    from router.fleet import PoolInfo
    from router.policy.config import PolicyConfig, policy_from_dict
    from router.policy.costs import cloud_cost_usd, priced
    from router.policy.estimates import Estimates
    from router.policy.snapshot import build_snapshot

    reg = FleetRegistry(Clock(), lease_s=5)
    for name, price in (("asic", 1.0), ("gpu", 3.0)):
        reg.register(dataclasses.replace(rec(f"{name}-1", CLOUD), pool=PoolInfo(name, name, price)))
    policy = policy_from_dict({"pool_prices": {"gpu": 0.5}})
    pools = {
        p.name: p.pool.price_per_replica_hour_usd
        for p in build_snapshot(reg, Estimates(policy), policy, "").pools
    }
    assert pools == {"asic": 1.0, "gpu": 0.5}  # gpu at the override, asic as it reports
    gpu = reg.get("gpu-1").pool
    assert cloud_cost_usd(priced(gpu, policy.pool_prices), 3.6e6, 0) == 0.5 and priced(gpu, ()) is gpu
    assert PolicyConfig().pool_prices == ()


def test_members_known_present_by_other_means_do_not_expire():
    clock = Clock()
    reg = FleetRegistry(clock, lease_s=5)
    reg.register(rec("linked"))
    reg.register(rec("silent"))
    clock.t += 60
    gone = reg.expire(present=lambda w: w.worker_id == "linked")  # its link is up
    assert [w.worker_id for w in gone] == ["silent"] and reg.get("linked") is not None
    assert [w.worker_id for w in reg.expire()] == ["linked"]  # once its link is gone, the lease applies
