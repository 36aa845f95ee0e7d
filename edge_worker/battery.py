"""Device energy: the OS battery where it is exposed, a modelled battery elsewhere.

The modelled battery is a pure object over an injected clock: capacity in joules, drained by the
energy of each token computed, recharged at a fixed power while charging.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

POWER_SUPPLY = Path("/sys/class/power_supply")


@dataclasses.dataclass(frozen=True)
class BatteryReading:
    percent: float
    charging: bool


def read_os_battery(power_supply: Path = POWER_SUPPLY) -> BatteryReading | None:
    """The OS battery (psutil, then /sys/class/power_supply), or None when the machine has none."""
    try:
        import psutil

        b = psutil.sensors_battery()
        if b is not None:
            return BatteryReading(float(b.percent), bool(b.power_plugged))
    except (ImportError, NotImplementedError, OSError):
        pass
    if power_supply.is_dir():
        for dev in sorted(power_supply.iterdir()):
            try:
                if (dev / "type").read_text().strip() != "Battery":
                    continue
                percent = float((dev / "capacity").read_text().strip())
                status = (dev / "status").read_text().strip()
            except (OSError, ValueError):
                continue
            return BatteryReading(percent, status in ("Charging", "Full"))
    return None


class ModelledBattery:
    """A battery of `capacity_j` joules. Not thread-safe; the worker calls it from its event loop."""

    def __init__(
        self,
        capacity_j: float,
        percent: float,
        charging: bool,
        charge_watts: float,
        clock: Callable[[], float],
    ) -> None:
        self.capacity_j = capacity_j
        self._level_j = capacity_j * percent / 100.0
        self.charging = charging
        self.charge_watts = charge_watts
        self._clock = clock
        self._t = clock()

    def _advance(self) -> None:
        now = self._clock()
        if self.charging:
            self._level_j = min(self.capacity_j, self._level_j + self.charge_watts * (now - self._t))
        self._t = now

    def drain(self, joules: float) -> None:
        self._advance()
        self._level_j = max(0.0, self._level_j - joules)

    def set_charging(self, charging: bool) -> None:
        self._advance()
        self.charging = charging

    @property
    def percent(self) -> float:
        self._advance()
        return 100.0 * self._level_j / self.capacity_j
