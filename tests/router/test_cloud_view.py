"""The cloud view: a device deciding with it and its own state decides as the router does."""

from __future__ import annotations

import pytest

from router.cloud_view import ViewSender, offline_snapshot, view_from_pb, view_to_pb
from router.convert import decision_to_pb
from router.fleet import DeviceState, FleetRegistry
from router.policy.config import PolicyConfig
from router.policy.decide import decide
from router.policy.estimates import Estimates
from router.policy.outcome import Outcome, learn
from router.policy.placement import Placement, RouteRequest
from router.policy.sim import REFERENCE, load_scenario
from router.policy.sim.strategies import TOKENIZER_ID, register_fleet
from router.policy.snapshot import build_snapshot
from tandem.errors import FailedPrecondition, InvalidArgument, TandemError
from tandem.v1 import fleet_pb2

DEVICE = "phone"
POOLS = load_scenario(REFERENCE).pools


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def fleet(policy: PolicyConfig) -> tuple[FleetRegistry, Estimates, Clock]:
    clock = Clock()
    registry = FleetRegistry(clock=clock, lease_s=3600.0, tokenizer_id=TOKENIZER_ID)
    register_fleet(registry, [DEVICE], POOLS)
    est = Estimates(policy)
    # something measured, so that the view carries more than priors
    registry.heartbeat(DEVICE, STATES["full"])
    for ttft in (120.0, 90.0):
        route = RouteRequest(device_id=DEVICE, preference="only_cloud", prompt_chars=400)
        d = decide(route, build_snapshot(registry, est, policy, DEVICE), policy, clock())
        outcome = Outcome(
            placement=Placement.CLOUD, prompt_chars=400, prompt_tokens=100, tokens=64, ttft_ms=ttft,
            client_rtt_ms=20.0, token_ms=18.0, pool=d.pool, decode_compute_ms=63 * 15.0,
        )  # fmt: skip
        learn(est, outcome, d)
        route = RouteRequest(device_id=DEVICE, preference="prefer_tandem", max_new_tokens=300)
        d = decide(route, build_snapshot(registry, est, policy, DEVICE), policy, clock())
        outcome = Outcome(
            placement=d.placement, prompt_chars=400, prompt_tokens=100, tokens=300, ttft_ms=ttft,
            client_rtt_ms=20.0, token_ms=9.0, device_id=DEVICE, pool=d.pool, decode_compute_ms=60 * 20.0,
            drafted=200, accepted=(40, 30, 20, 10), reached=(50, 40, 30, 20), draft_ms=8.0, link_ms=30.0,
            verify_ms=25.0, verify_passes=60,
        )  # fmt: skip
        learn(est, outcome, d)
    return registry, est, clock


STATES = {
    "full": DeviceState(battery_percent=90.0, battery_source="modelled", thermal="nominal",
                        energy_per_token_joules=0.05, battery_capacity_joules=54_000.0),
    "low": DeviceState(battery_percent=12.0, battery_source="modelled", thermal="nominal",
                       energy_per_token_joules=0.05, battery_capacity_joules=54_000.0),
    "hot": DeviceState(battery_percent=70.0, battery_source="modelled", thermal="critical",
                       energy_per_token_joules=0.05, battery_capacity_joules=54_000.0),
    "charging": DeviceState(battery_percent=30.0, charging=True, battery_source="modelled",
                            energy_per_token_joules=0.05, battery_capacity_joules=54_000.0),
}  # fmt: skip

ROUTES = {
    "auto": RouteRequest(device_id=DEVICE, prompt_chars=800, max_new_tokens=200),
    "short": RouteRequest(device_id=DEVICE, prompt_chars=100, max_new_tokens=8),
    "prefer device": RouteRequest(device_id=DEVICE, preference="prefer_device", max_new_tokens=100),
    "only device": RouteRequest(device_id=DEVICE, preference="only_device", max_new_tokens=100),
    "local only": RouteRequest(device_id=DEVICE, privacy="local_only", max_new_tokens=100),
    "local only, large": RouteRequest(device_id=DEVICE, privacy="local_only", quality="large_required"),
    "only cloud": RouteRequest(device_id=DEVICE, preference="only_cloud", max_new_tokens=100),
    "prefer tandem": RouteRequest(device_id=DEVICE, preference="prefer_tandem", max_new_tokens=300),
    "large, sampled": RouteRequest(device_id=DEVICE, quality="large_required", greedy=False,
                                   max_new_tokens=300),
    "tight slo": RouteRequest(device_id=DEVICE, ttft_slo_ms=50.0, token_slo_ms=5.0, max_new_tokens=100),
    "no budget": RouteRequest(device_id=DEVICE, quality="large_required", max_cost_usd=1e-9,
                              max_new_tokens=300),
    "tiny energy": RouteRequest(device_id=DEVICE, max_device_energy_joules=0.01, max_new_tokens=300),
}  # fmt: skip


def outcome_of(route, snap, policy, now):
    try:
        return decision_to_pb(decide(route, snap, policy, now, 7))
    except TandemError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("route", list(ROUTES))
def test_the_device_decides_as_the_router_does_for_the_same_request_and_state(route, state):
    policy = PolicyConfig()
    registry, est, clock = fleet(policy)
    registry.heartbeat(DEVICE, STATES[state])
    req = ROUTES[route]
    router = outcome_of(req, build_snapshot(registry, est, policy, DEVICE, req.greedy), policy, clock())
    wire = view_to_pb(registry, est, policy, 7, DEVICE, ttl_ms=10_000).SerializeToString()
    view = view_from_pb(fleet_pb2.CloudView.FromString(wire), DEVICE)
    assert view.policy == policy and view.policy_version == 7
    device = outcome_of(req, view.snapshot(STATES[state], clock(), req.greedy), view.policy, clock())
    assert device == router


def test_the_table_covers_every_placement_and_a_refusal():
    policy = PolicyConfig()
    registry, est, clock = fleet(policy)
    seen = set()
    for state in STATES.values():
        registry.heartbeat(DEVICE, state)
        for req in ROUTES.values():
            got = outcome_of(req, build_snapshot(registry, est, policy, DEVICE, req.greedy), policy, clock())
            seen.add(got[0] if isinstance(got, tuple) else got.placement)
    assert {"FailedPrecondition", 1, 2, 3} <= seen  # PLACEMENT_EDGE, _CLOUD, _TANDEM


def test_offline_a_device_decides_with_no_cloud_candidates():
    policy = PolicyConfig()
    registry, est, clock = fleet(policy)
    view = view_from_pb(view_to_pb(registry, est, policy, 3, DEVICE, 10_000), DEVICE)
    state = STATES["full"]
    for snap in (
        view.snapshot(state, clock(), True, online=False),
        offline_snapshot(DEVICE, state, policy, clock()),
    ):
        assert decide(ROUTES["local only"], snap, policy, clock()).placement is Placement.EDGE
        with pytest.raises(FailedPrecondition):
            decide(ROUTES["only cloud"], snap, policy, clock())


def test_a_view_is_checked_where_it_enters():
    policy = PolicyConfig()
    registry, est, _ = fleet(policy)
    good = view_to_pb(registry, est, policy, 3, DEVICE, 10_000)
    for mutate, field in (
        (lambda v: v.pools[0].acceptance_greedy.__setitem__(0, float("nan")), "acceptance_greedy"),
        (lambda v: v.pools[0].acceptance_greedy.__setitem__(0, 1.5), "acceptance_greedy"),
        (lambda v: setattr(v.pools[0], "ttft_ms", -1.0), "ttft_ms"),
        (lambda v: setattr(v.device, "draft_ms", float("inf")), "draft_ms"),
        (lambda v: setattr(v.device, "ahead_extra_ms", float("nan")), "ahead_extra_ms"),
        (lambda v: v.pools[0].profile.ClearField("name"), "profile.name"),
        (lambda v: setattr(v.policy, "slo_confidence", 2.0), "slo_confidence"),
    ):
        bad = fleet_pb2.CloudView()
        bad.CopyFrom(good)
        mutate(bad)
        with pytest.raises(InvalidArgument) as err:
            view_from_pb(bad, DEVICE)
        assert field in err.value.field
    # blocks drafted ahead may come sooner than the model says: a measured figure below 0 is one
    early = fleet_pb2.CloudView()
    early.CopyFrom(good)
    early.device.ahead_extra_ms = -0.56
    assert view_from_pb(early, DEVICE).device.ahead_extra_ms == pytest.approx(-0.56)


class FakeLink:
    def __init__(self, device_id):
        self.device_id = device_id
        self.sent = []

    def send_nowait(self, msg):
        self.sent.append(msg)


def test_views_go_out_when_a_device_links_every_interval_and_at_once_after_a_policy_change():
    clock, version = Clock(), [1]
    sender = ViewSender(
        lambda d: fleet_pb2.CloudView(policy_version=version[0]), lambda: version[0], 5.0, clock
    )
    a, b = FakeLink("a"), FakeLink("b")
    assert sender.tick([a]) == 1 and sender.tick([a]) == 0
    assert sender.tick([a, b]) == 1 and len(b.sent) == 1  # b just linked
    clock.t += 5.0
    assert sender.tick([a, b]) == 2
    version[0] = 2  # a policy change reaches everyone on the next tick
    assert sender.tick([a, b]) == 2 and a.sent[-1].cloud_view.policy_version == 2
    a2 = FakeLink("a")  # a linked again
    assert sender.tick([a2, b]) == 1 and len(a2.sent) == 1
