"""Device telemetry: the modelled battery and thermal states (pure, injected clock)."""

from __future__ import annotations

from edge_worker.battery import ModelledBattery, read_os_battery
from edge_worker.thermal import read_max_temp_c, state_for


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_modelled_battery_drains_and_charges():
    clock = Clock()
    b = ModelledBattery(capacity_j=1000.0, percent=50.0, charging=False, charge_watts=10.0, clock=clock)
    b.drain(100.0)
    assert abs(b.percent - 40.0) < 1e-9
    clock.t += 100
    assert abs(b.percent - 40.0) < 1e-9  # not charging: no change with time
    b.set_charging(True)
    clock.t += 10  # 10 s at 10 W = 100 J
    assert abs(b.percent - 50.0) < 1e-9
    clock.t += 1000
    assert b.percent == 100.0
    b.set_charging(False)
    b.drain(5000)
    assert b.percent == 0.0


def test_thermal_states():
    assert state_for(None) == "unknown"
    assert [state_for(t) for t in (40, 65, 80, 95)] == ["nominal", "fair", "serious", "critical"]


def test_os_readers_handle_missing_and_fake_sysfs(tmp_path):
    assert read_max_temp_c(tmp_path / "none") is None
    zone = tmp_path / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("71500\n")
    assert read_max_temp_c(tmp_path / "thermal") == 71.5
    bat = tmp_path / "ps" / "BAT0"
    bat.mkdir(parents=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text("37\n")
    (bat / "status").write_text("Charging\n")
    reading = read_os_battery(tmp_path / "ps")
    # psutil answers first when the machine has a battery; otherwise the sysfs copy is read
    assert reading is not None
