"""Router configuration (the ``[router]`` table of a Tandem config file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from router.identity import PoolSpec
from router.policy.config import PolicyConfig
from router.tandem.control import DEFAULT_SPEED_SLACK
from runtime.params import tree_problem
from runtime.tls import TlsConfig

ROUND_TIMEOUT_S = 5.0  # the router's default, and a device driving TANDEM itself
DRAFT_SUPPORT_SIZE = 32


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    host: str = "127.0.0.1"
    port: int = 50051  # 0: any free port
    metrics_port: int = 9464  # /metrics; 0: any free port; -1: disabled
    heartbeat_interval_ms: int = 1000  # asked of every worker
    lease_ms: int = 5000  # a worker silent this long is dropped (devices on a link: when it breaks)
    # devices on a link: telemetry on change (looked at every heartbeat interval), at least this
    # often, and a battery change worth a message; the router pings each link this often (its RTT)
    link_telemetry_refresh_ms: int = 30_000
    link_battery_step: float = 0.5
    link_ping_interval_ms: int = 10_000
    # how often each linked device gets the cloud view it decides its apps' requests with (and at
    # the next tick after a policy change); a view is good for three intervals
    cloud_view_interval_ms: int = 5_000
    # cloud replicas are also asked (grpc.health.v1) every interval; this many failed checks in a
    # row (no answer within the timeout, or NOT_SERVING) drop one; interval 0: no health checks
    health_check_interval_ms: int = 1000
    health_check_timeout_ms: int = 1000
    health_check_failures: int = 2
    tokenizer_id: str = ""  # pin the fleet's tokenizer; empty: the first worker to register sets it
    max_inflight: int = 256  # Generate calls served at once before RESOURCE_EXHAUSTED
    worker_timeout_s: float = 120.0  # upper bound on a worker call when the client set no deadline
    # TANDEM: a draft or verify call slower than this counts as a failure
    round_timeout_s: float = ROUND_TIMEOUT_S
    draft_support_size: int = DRAFT_SUPPORT_SIZE  # TANDEM sampling: tokens of q sent per drafted position
    overlap: bool = True  # TANDEM: the device drafts ahead while earlier blocks are verified
    head_start: bool = True  # TANDEM: the cloud sends the first token while the device prefills
    # TANDEM: a request falling behind its per-token SLO continues in the cloud (router.tandem.pace)
    pace_guard: bool = True
    # TANDEM: speed given up (at most) for longer drafts, i.e. fewer cloud passes
    draft_speed_slack: float = DEFAULT_SPEED_SLACK
    # TANDEM greedy: the device drafts a tree — the top k_d tokens at depth d for each entry k_d,
    # a greedy chain below — and the replica verifies every path in one pass (a batch row each);
    # e.g. [3, 2]: 6 paths. Fewer passes per token for more verify compute. Empty: one chain.
    draft_tree: tuple[int, ...] = ()
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)  # the [router.policy] table
    policy_file: Path | None = None  # a TOML policy file, reloaded when it changes (on top of `policy`)
    policy_poll_ms: int = 1000
    admin_token: str = ""  # non-empty: SetPolicy/RollbackPolicy need it in x-tandem-admin-token metadata
    # the dashboard (HTTP): on this port (0: a free one; -1: off), on loopback unless allowed elsewhere
    dashboard_port: int = 8051
    dashboard_host: str = "127.0.0.1"
    dashboard_allow_remote: bool = False
    # non-empty: Inference calls need one of these in `authorization: Bearer <key>` metadata
    api_keys: tuple[str, ...] = ()
    # the fleet secret every member's credential is checked against (`tandem credentials init`
    # makes one, `tandem credentials enroll` a member's token from it); without it the router
    # takes no members
    fleet_secret_file: Path | None = None
    # the cloud pools replicas may join, with their accelerator and price (a replica's own word on
    # them is not taken)
    pools: tuple[PoolSpec, ...] = (
        PoolSpec("asic", "asic", price_per_replica_hour_usd=1.0),
        PoolSpec("gpu", "gpu", price_per_replica_hour_usd=3.0),
    )
    # TLS on every hop: the router serves `port` with this certificate, and calls cloud replicas
    # (and devices that listen) with it as its client certificate, trusting ca_file for theirs.
    # `tandem credentials init DIR` makes a development set.
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    insecure: bool = False  # plaintext instead, on every hop of this router (development only)

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms <= 0 or self.lease_ms < 2 * self.heartbeat_interval_ms:
            raise ValueError("heartbeat_interval_ms must be > 0 and lease_ms at least twice it")
        if self.cloud_view_interval_ms < self.heartbeat_interval_ms:
            raise ValueError("cloud_view_interval_ms must be at least heartbeat_interval_ms")
        if self.link_telemetry_refresh_ms < self.heartbeat_interval_ms or self.link_ping_interval_ms <= 0:
            raise ValueError(
                "link_telemetry_refresh_ms must be at least heartbeat_interval_ms, link_ping_interval_ms > 0"
            )
        if not 0 <= self.link_battery_step <= 100:
            raise ValueError("link_battery_step must be in [0, 100]")
        if (
            self.dashboard_port >= 0
            and not self.dashboard_allow_remote
            and self.dashboard_host not in ("127.0.0.1", "localhost", "::1")
        ):
            raise ValueError(
                f"dashboard_host {self.dashboard_host!r} is not loopback: set dashboard_allow_remote = true "
                "to serve the dashboard there (and set admin_token)"
            )
        if (
            self.health_check_interval_ms < 0
            or self.health_check_timeout_ms <= 0
            or self.health_check_failures < 1
        ):
            raise ValueError(
                "health_check_interval_ms must be >= 0, health_check_timeout_ms > 0 and "
                "health_check_failures >= 1"
            )
        if self.max_inflight < 1 or self.worker_timeout_s <= 0 or self.round_timeout_s <= 0:
            raise ValueError("max_inflight must be >= 1, worker_timeout_s and round_timeout_s > 0")
        if not 1 <= self.draft_support_size <= 4096:
            raise ValueError("draft_support_size must be in [1, 4096]")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError("router.pools: pool names must be distinct")
        problem = tree_problem(self.draft_tree)
        if problem:
            raise ValueError(f"draft_tree: {problem}")
        if not self.insecure and not self.tls.has_cert:
            raise ValueError(
                "the router serves TLS: set [router.tls] cert_file and key_file (and ca_file, the CA of its "
                "workers' certificates; `tandem credentials init DIR` makes a development set), or "
                "insecure = true for plaintext"
            )
