"""Edge worker configuration (the ``[edge]`` table of a Tandem config file)."""

from __future__ import annotations

import dataclasses

from runtime.link_emulator import LinkProfile
from runtime.llm.decoder import NPU_FIRST_PROVIDERS


@dataclasses.dataclass(frozen=True)
class BatteryConfig:
    """Battery reporting. mode "auto" reads the OS battery when there is one, else models one."""

    mode: str = "auto"  # "auto" | "real" | "modelled"
    capacity_wh: float = 15.0  # a phone-sized battery
    initial_percent: float = 80.0
    charging: bool = False
    charge_watts: float = 10.0  # modelled charging rate while charging
    energy_per_token_joules: float = 0.05  # per generated (or drafted) token
    prefill_energy_fraction: float = 0.2  # a prompt token costs this fraction of a generated one

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "real", "modelled"):
            raise ValueError(f"mode must be auto, real or modelled, got {self.mode!r}")
        if self.capacity_wh <= 0 or not 0 <= self.initial_percent <= 100 or self.energy_per_token_joules < 0:
            raise ValueError("capacity_wh must be > 0, initial_percent in [0, 100], energy >= 0")


@dataclasses.dataclass(frozen=True)
class EdgeConfig:
    device_id: str = ""  # default: "<hostname>-edge"
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    advertise_host: str = ""  # address the router should call; default: host
    metrics_port: int = 0  # /metrics; 0: any free port; -1: disabled
    router: str = ""  # router host:port to register with; empty: do not register
    providers: tuple[str, ...] = NPU_FIRST_PROVIDERS  # execution-provider preference, first available wins
    threads: int = 1  # onnxruntime intra-op threads
    max_inflight: int = 16  # calls served at once before RESOURCE_EXHAUSTED
    kv_cache_mb: int = 256
    battery: BatteryConfig = dataclasses.field(default_factory=BatteryConfig)
    thermal_override: str = ""  # simulate a thermal state: nominal | fair | serious | critical
    # Emulate the device's network link (both directions: router→device calls and device→router
    # registration/heartbeats) with an in-process TCP proxy; all zero = a direct connection.
    link: LinkProfile = dataclasses.field(default_factory=LinkProfile)

    def __post_init__(self) -> None:
        if self.thermal_override not in ("", "nominal", "fair", "serious", "critical"):
            raise ValueError(
                f"thermal_override must be nominal, fair, serious or critical, got {self.thermal_override!r}"
            )
        if self.threads < 1 or self.max_inflight < 1:
            raise ValueError("threads and max_inflight must be >= 1")
