"""Device thermal state from the OS thermal zones (Linux), coarse like mobile OSes report it."""

from __future__ import annotations

from pathlib import Path

THERMAL_ROOT = Path("/sys/class/thermal")
# °C thresholds for fair / serious / critical: typical SoC skin-to-junction throttling steps.
THRESHOLDS_C = (60.0, 75.0, 90.0)
STATES = ("nominal", "fair", "serious", "critical")


def state_for(temp_c: float | None) -> str:
    """Pure: a temperature → "nominal" | "fair" | "serious" | "critical" ("unknown" for None)."""
    if temp_c is None:
        return "unknown"
    level = sum(temp_c >= t for t in THRESHOLDS_C)
    return STATES[level]


def read_max_temp_c(root: Path = THERMAL_ROOT) -> float | None:
    """Hottest thermal zone in °C, or None when none is readable."""
    temps = []
    if root.is_dir():
        for zone in root.glob("thermal_zone*/temp"):
            try:
                temps.append(int(zone.read_text().strip()) / 1000.0)
            except (OSError, ValueError):
                continue
    return max(temps) if temps else None
