"""Policy versions, rollback and hot reload of a policy file (plain data, a fake wall clock)."""

from __future__ import annotations

import os

import pytest

from router.policy_config import PolicyConfig
from router.policy_store import PolicyFileWatcher, PolicyStore
from tandem.errors import Aborted, InvalidArgument, NotFound


def store() -> PolicyStore:
    t = iter(range(1000, 2000))
    return PolicyStore(PolicyConfig(), wall_clock=lambda: float(next(t)))


def test_changes_are_versioned_with_caller_time_and_note():
    s = store()
    assert s.current.version == 1 and s.current.source == "config"
    seen = []
    s.on_change = seen.append
    v = s.set({"latency_weight": 2.0}, "alice", "favour speed")
    assert (v.version, v.caller, v.note, v.source) == (2, "alice", "favour speed", "admin")
    assert s.policy.latency_weight == 2.0 and s.policy.cost_weight == 1.0
    assert v.created_unix_s > s.history()[1].created_unix_s
    assert seen == [v]
    assert [h.version for h in s.history()] == [2, 1] and [h.version for h in s.history(1)] == [2]


def test_invalid_changes_name_the_field_and_change_nothing():
    s = store()
    with pytest.raises(InvalidArgument) as e:
        s.set({"battery_reserve_percent": 150}, "bob")
    assert e.value.field == "policy.battery_reserve_percent"
    assert s.current.version == 1


def test_stale_expected_version_is_aborted():
    s = store()
    s.set({"cost_weight": 2}, "a", expected_version=1)
    with pytest.raises(Aborted):
        s.set({"cost_weight": 3}, "b", expected_version=1)
    assert s.policy.cost_weight == 2


def test_rollback_restores_an_earlier_policy_as_a_new_version():
    s = store()
    s.set({"cost_weight": 5}, "a")
    v = s.rollback(1, "ops", "undo")
    assert (v.version, v.source, v.restored_version) == (3, "rollback", 1)
    assert s.policy == PolicyConfig()
    with pytest.raises(NotFound):
        s.rollback(99, "ops")


def test_policy_file_is_reloaded_on_change_and_a_bad_file_keeps_the_policy(tmp_path):
    s = store()
    path = tmp_path / "policy.toml"
    w = PolicyFileWatcher(path, s, PolicyConfig())
    assert w.poll() is None  # no file yet
    path.write_text("[policy]\nlatency_weight = 3.0\n")
    v = w.poll()
    assert v is not None and v.source == "file" and s.policy.latency_weight == 3.0
    assert w.poll() is None  # unchanged
    path.write_text("latency_weight = -1\n")
    os.utime(path, ns=(1, 10**18))  # a distinct mtime even on coarse clocks
    assert w.poll() is None and "policy.latency_weight" in w.last_error
    assert s.policy.latency_weight == 3.0
    path.write_text("cost_weight = 0.25\n")  # top-level keys work too; unnamed keys return to the base
    os.utime(path, ns=(1, 2 * 10**18))
    assert w.poll() is not None and s.policy.cost_weight == 0.25 and s.policy.latency_weight == 0.5


def test_estimates_start_at_priors_and_pair_related_figures():
    from router.estimates import Estimates

    p = PolicyConfig()
    est = Estimates(p)
    assert est.pool("gpu")["compute_ms_per_verify"] == p.prior_compute_ms_per_verify
    for _ in range(20):
        est.observe_cloud("gpu", ttft_ms=10.0, token_ms=2.0, compute_ms_per_token=1.5)
    e = est.pool("gpu")
    assert abs(e["compute_ms_per_token"] - 1.5) < 1e-6 and abs(e["token_ms"] - 2.0) < 1e-6
    # verify figures not measured yet follow the measured per-token ones, not the (much larger) priors
    assert abs(e["compute_ms_per_verify"] - 1.5 * p.prior_compute_ms_per_verify / p.prior_compute_ms_per_token) < 1e-6
    est.observe_verify("gpu", call_ms=3.0, compute_ms=2.0)
    assert est.pool("gpu")["verify_ms"] < p.prior_verify_ms and est.observations("pool_verify", "gpu") == 1
    est.observe_acceptance("phone", "gpu", 0.9)
    assert p.prior_acceptance < est.acceptance("phone", "gpu") <= 0.9


def test_a_newcomer_starts_at_its_measured_peers_mean():
    from router.estimates import Estimates

    est = Estimates(PolicyConfig())
    est.observe_cloud("asic", ttft_ms=10.0, token_ms=4.0, compute_ms_per_token=4.0)
    est.observe_cloud("tpu", ttft_ms=20.0, token_ms=2.0, compute_ms_per_token=2.0)
    assert est.pool("gpu")["token_ms"] == 3.0 and est.pool("gpu")["ttft_ms"] == 15.0
    est.observe_edge("phone-1", ttft_ms=30.0, token_ms=9.0)
    assert est.device("phone-2")["token_ms"] == 9.0
