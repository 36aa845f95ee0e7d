"""Policy versions, rollback and hot reload of a policy file (plain data, a fake wall clock)."""

from __future__ import annotations

import os

import pytest

from router.policy.config import PolicyConfig
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
    assert w.poll() is not None and s.policy.cost_weight == 0.25
    assert s.policy.latency_weight == PolicyConfig().latency_weight


def test_estimates_start_at_priors_and_pair_related_figures():
    from router.policy.estimates import Estimates

    p = PolicyConfig()
    est = Estimates(p)
    assert est.pool("gpu")["compute_ms_per_verify"] == p.prior_compute_ms_per_verify
    for _ in range(20):
        est.observe_cloud("gpu", ttft_ms=10.0, token_ms=2.0, compute_ms_per_token=1.5)
    e = est.pool("gpu")
    assert abs(e["compute_ms_per_token"] - 1.5) < 1e-6 and abs(e["token_ms"] - 2.0) < 1e-6
    # verify figures not measured yet follow the measured per-token ones, not the (much larger) priors
    assert (
        abs(e["compute_ms_per_verify"] - 1.5 * p.prior_compute_ms_per_verify / p.prior_compute_ms_per_token)
        < 1e-6
    )
    est.observe_verify("gpu", call_ms=3.0, compute_ms=2.0)
    assert est.pool("gpu")["verify_ms"] < p.prior_verify_ms and est.observations("pool_verify", "gpu") == 1
    # acceptance: a pair's own counts, shrunk towards the fleet's, shrunk towards the prior
    assert est.acceptance("phone", "gpu", True)[:2] == (p.prior_acceptance, p.prior_acceptance)
    est.observe_acceptance("phone", "gpu", True, accepted=(90, 40), reached=(100, 50))
    first, second = est.acceptance("phone", "gpu", True)[:2]
    assert p.prior_acceptance < first < 0.9 and abs(first - 0.9) < 0.05  # 100 rounds: nearly its own rate
    assert abs(second - 0.8) < 0.1
    # sampled acceptance is learned apart; a pair never measured starts at the fleet's profile
    assert est.acceptance("phone", "gpu", False)[0] == p.prior_acceptance
    fleet = est.acceptance("tablet", "gpu", True)[0]
    assert p.prior_acceptance < fleet < first


def test_a_newcomer_starts_at_its_measured_peers_mean():
    from router.policy.estimates import Estimates

    est = Estimates(PolicyConfig())
    est.observe_cloud("asic", ttft_ms=10.0, token_ms=4.0, compute_ms_per_token=4.0)
    est.observe_cloud("tpu", ttft_ms=20.0, token_ms=2.0, compute_ms_per_token=2.0)
    assert est.pool("gpu")["token_ms"] == 3.0
    # a newcomer's time-to-first-token line is its peers' mean line
    asic, tpu, gpu = est.pool("asic"), est.pool("tpu"), est.pool("gpu")
    for key in ("ttft_ms", "prefill_ms_per_token"):
        assert gpu[key] == pytest.approx((asic[key] + tpu[key]) / 2)
    est.observe_edge("phone-1", ttft_ms=30.0, token_ms=9.0)
    assert est.device("phone-2")["token_ms"] == 9.0


def test_time_to_first_token_is_learnt_as_a_line_in_the_prompt_length():
    from router.policy.estimates import Estimates

    est = Estimates(PolicyConfig())
    for x in (50, 400, 900, 120, 700, 300) * 4:  # 20 ms plus 0.3 ms per prompt token
        est.observe_edge("phone", ttft_ms=20.0 + 0.3 * x, token_ms=10.0, prompt_tokens=x)
    e = est.device("phone")
    assert e["ttft_ms"] == pytest.approx(20.0, abs=1.0) and e["prefill_ms_per_token"] == pytest.approx(
        0.3, abs=0.01
    )
    # a constant time is a flat line; noise never turns the slope negative
    for x in (10, 500, 1000) * 5:
        est.observe_cloud_ttft("gpu", 80.0 - 0.001 * x, x)
    assert est.pool("gpu")["prefill_ms_per_token"] == 0.0 and est.pool("gpu")["ttft_ms"] == pytest.approx(
        79.5, abs=3
    )


def test_characters_per_prompt_token_are_measured():
    from router.policy.estimates import Estimates

    est = Estimates(PolicyConfig(prompt_chars_per_token=3.5))
    assert est.chars_per_token() == 3.5
    for _ in range(30):
        est.observe_prompt(chars=4000, tokens=1000)
    assert est.chars_per_token() == pytest.approx(4.0, abs=1e-3)
    est.observe_prompt(chars=0, tokens=0)  # nothing to learn from an empty prompt
    assert est.chars_per_token() == pytest.approx(4.0, abs=1e-3)


def test_requests_in_flight_hold_pool_slots_and_device_energy():
    from router.policy.estimates import Estimates
    from router.policy.placement import Decision

    est = Estimates(PolicyConfig())
    t = Decision(
        "tandem", "", edge_worker_id="phone", pool="asic", predicted_slot_share=0.3, predicted_energy_j=12.0
    )
    c = Decision("cloud", "", pool="asic", predicted_slot_share=1.0)
    est.begin(t)
    est.begin(c)
    assert est.inflight["asic"] == pytest.approx(1.3) and est.device_energy["phone"] == 12.0
    est.end(t)
    est.end(c)
    assert not est.inflight and not est.device_energy  # nothing left behind, not even float residue


def test_a_devices_tandem_link_is_learnt_from_its_sessions_and_used_by_the_model():
    from router.policy.estimates import Estimates

    est = Estimates(PolicyConfig())
    assert est.device_link("phone") == (None, 0.0)  # not measured: the policy uses its round trip
    est.observe_link("phone", link_ms=12.0, ahead_extra_ms=1.5)
    est.observe_link("phone", link_ms=14.0, ahead_extra_ms=0.5)
    link, extra = est.device_link("phone")
    assert 12.0 < link < 14.0 and 0.5 < extra < 1.5
    assert est.device_link("tablet") == (None, extra)  # a link is the device's own; the wait, its peers'
