"""When a device's link sends telemetry (edge_worker.link.changed): on change, not every tick."""

from __future__ import annotations

from edge_worker.link import changed
from tandem.v1 import common_pb2


def state(**kw) -> common_pb2.WorkerState:
    base = {"battery_percent": 60.0, "battery_source": common_pb2.BATTERY_SOURCE_MODELLED}
    return common_pb2.WorkerState(**{**base, **kw})


def test_an_unchanged_state_is_not_sent():
    assert not changed(state(), state(), 0.5)


def test_the_battery_level_is_sent_when_it_moved_a_step():
    assert not changed(state(), state(battery_percent=60.4), 0.5)
    assert changed(state(), state(battery_percent=59.5), 0.5)
    assert changed(state(), state(battery_percent=60.01), 0.0)  # step 0: any move
    assert not changed(state(), state(), 0.0)


def test_any_other_change_is_sent():
    for kw in ({"charging": True}, {"queue_depth": 1}, {"thermal": common_pb2.THERMAL_STATE_SERIOUS},
               {"tokens_generated": 5}, {"active_sessions": 2}):  # fmt: skip
        assert changed(state(), state(**kw), 0.5), kw
