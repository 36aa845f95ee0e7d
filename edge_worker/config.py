"""Edge worker configuration (the ``[edge]`` table of a Tandem config file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from router.policy.config import PolicyConfig
from runtime.credentials import read_token
from runtime.link_emulator import LinkProfile
from runtime.llm.decoder import NPU_FIRST_PROVIDERS
from runtime.tls import TlsConfig


def is_local_address(address: str) -> bool:
    """A unix socket, or host:port on the loopback interface."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    return bool(sep) and port.isdigit() and (host == "localhost" or host == "::1" or host.startswith("127."))


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
    router: str = ""  # router host:port to keep the device's link to; empty: no router
    # the device's credential (`tandem credentials enroll device ID` prints it): the token itself,
    # or a file holding it
    token: str = ""
    token_file: Path | None = None
    # The device dials out and opens no port by default. listen = true instead serves the Worker
    # service on host:port (0: any free port) and registers it for the router to call: for devices
    # the router can reach, and the benchmark that compares the two.
    listen: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    advertise_host: str = ""  # listen: the address the router calls; default: host
    # Where apps on this device reach the agent's Inference service (edge_worker.apps): a unix
    # socket ("unix:///run/tandem.sock") or a loopback port ("127.0.0.1:0": any free one); the
    # device's own address only, never a network one. Empty: apps go to the router directly.
    apps: str = ""
    # TLS: ca_file vouches for the router's certificate (None: the system's roots); a device that
    # listens serves with cert_file/key_file and lets in only clients whose certificate ca_file
    # signed (the router's)
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    insecure: bool = False  # plaintext to the router (and on the listening port): development only
    metrics_port: int = -1  # /metrics on this port (0: any free one); -1: none
    providers: tuple[str, ...] = NPU_FIRST_PROVIDERS  # execution-provider preference, first available wins
    threads: int = 1  # onnxruntime intra-op threads
    max_inflight: int = 16  # calls served at once before RESOURCE_EXHAUSTED
    kv_cache_mb: int = 256
    battery: BatteryConfig = dataclasses.field(default_factory=BatteryConfig)
    thermal_override: str = ""  # simulate a thermal state: nominal | fair | serious | critical
    # Emulate the device's network to the router (its link's connection — and, when it listens, the
    # router's calls — run through in-process proxies; both directions); all zero: a direct one.
    link: LinkProfile = dataclasses.field(default_factory=LinkProfile)
    # the policy a device decides its apps' requests with before its router sent one (offline)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        if self.thermal_override not in ("", "nominal", "fair", "serious", "critical"):
            raise ValueError(
                f"thermal_override must be nominal, fair, serious or critical, got {self.thermal_override!r}"
            )
        if self.threads < 1 or self.max_inflight < 1:
            raise ValueError("threads and max_inflight must be >= 1")
        if self.apps and not is_local_address(self.apps):
            raise ValueError(
                f"apps must be a unix socket (unix:///path) or a loopback host:port, got {self.apps!r}"
            )
        if self.token and self.token_file:
            raise ValueError("set token or token_file, not both")
        if self.listen and not self.insecure and not (self.tls.has_cert and self.tls.ca_file):
            raise ValueError(
                "listen serves the router over mutual TLS: set [edge.tls] cert_file, key_file and ca_file "
                "(or insecure = true)"
            )

    def credential(self) -> str:
        """The device's token ('' when none is configured). Raises ValueError on an unreadable file."""
        return read_token(self.token, self.token_file, "edge")
