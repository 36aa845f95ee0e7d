"""Cloud configuration (the ``[cloud]`` table and its ``[[cloud.pools]]``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runtime.credentials import read_token
from runtime.tls import TlsConfig


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """One pool: replicas of the target model placed on a Ray resource. Its accelerator and price
    are the router's to set (``[[router.pools]]``); its replicas prove they belong to it with the
    pool's token (`tandem credentials enroll pool NAME`)."""

    name: str = "asic"
    token: str = ""  # the pool's credential, or a file holding it
    token_file: Path | None = None
    replicas: int = 1  # at start; the pool autoscales within [min_replicas, max_replicas] when they differ
    min_replicas: int = 0  # 0: replicas
    max_replicas: int = 0  # 0: replicas (no autoscaling)
    target_queue_per_replica: float = 8.0  # autoscaling: calls in flight per replica the pool aims at
    resource: str = "asic"  # Ray resource each replica needs one unit of ("" = none)
    num_cpus: float = 0.5  # Ray CPU reservation per replica (fractional: a 2-core machine holds several)
    threads: int = 1  # onnxruntime intra-op threads per replica
    max_inflight: int = 64
    kv_cache_mb: int = 512  # KV-cache budget per replica; least recently used sessions are evicted past it
    # Verify calls and CLOUD decode steps of different sessions batched into one forward pass: up to
    # this many (1: no batching); while other sessions are active a pass waits up to batch_wait_ms
    # for company (cloud_worker.batching), else it starts at once
    max_batch_size: int = 16
    batch_wait_ms: float = 2.0
    slots_per_replica: int = 8  # requests a replica serves at full speed (the router's utilisation measure)
    # > 1 emulates a slower accelerator on this machine: every forward pass takes this many times
    # its compute time (the replica sleeps the difference, and reports — and bills — the whole time)
    slowdown: float = 1.0

    def __post_init__(self) -> None:
        if not self.name or self.replicas < 1 or self.num_cpus < 0 or self.threads < 1:
            raise ValueError(f"pool {self.name!r}: name required, replicas >= 1, num_cpus >= 0, threads >= 1")
        if self.slowdown < 1 or self.slots_per_replica < 1:
            raise ValueError(f"pool {self.name!r}: slowdown must be >= 1 and slots_per_replica >= 1")
        if self.token and self.token_file:
            raise ValueError(f"pool {self.name!r}: set token or token_file, not both")
        lo, hi = self.replica_bounds
        if not 1 <= lo <= self.replicas <= hi:
            raise ValueError(f"pool {self.name!r}: need 1 <= min_replicas <= replicas <= max_replicas")
        if self.max_batch_size < 1 or self.batch_wait_ms < 0:
            raise ValueError(f"pool {self.name!r}: max_batch_size must be >= 1 and batch_wait_ms >= 0")

    def credential(self) -> str:
        """The pool's token; ValueError when none is configured or its file is unreadable."""
        token = read_token(self.token, self.token_file, f"pool {self.name!r}")
        if not token:
            raise ValueError(
                f"pool {self.name!r} has no credential: set token or token_file (`tandem credentials enroll "
                f"pool {self.name}` prints one)"
            )
        return token

    @property
    def replica_bounds(self) -> tuple[int, int]:
        return self.min_replicas or self.replicas, self.max_replicas or self.replicas

    @property
    def autoscales(self) -> bool:
        lo, hi = self.replica_bounds
        return lo < hi


@dataclasses.dataclass(frozen=True)
class CloudConfig:
    router: str = "127.0.0.1:50051"  # router host:port the replicas register with
    ray_address: str = ""  # empty: start a local Ray; else join this cluster ("auto", "host:6379")
    host: str = "127.0.0.1"  # replicas bind here ("0.0.0.0" on a cluster)
    advertise_host: str = ""  # address the router should call; default: host, or the node IP on a cluster
    metrics: bool = True  # each replica serves /metrics on a free port
    metrics_port: int = 0  # this (driver) process's /metrics: pools and replicas; -1: disabled
    num_cpus: int = 0  # local Ray only: CPUs to declare (0 = all)
    log_to_driver: bool = False  # stream replica logs to this process
    # TLS: replicas serve with cert_file/key_file and let in only clients whose certificate ca_file
    # signed (the router's); ca_file also vouches for the router's certificate. The files must be
    # readable where the replicas run.
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    insecure: bool = False  # plaintext to the router and on the replicas' ports: development only
    # the default: a slower ASIC pool and a faster GPU pool (the router's default prices make the
    # ASIC cheaper per token)
    pools: tuple[PoolConfig, ...] = (
        PoolConfig(name="asic", resource="asic", slowdown=2.0),
        PoolConfig(name="gpu", resource="gpu"),
    )

    def __post_init__(self) -> None:
        names = [p.name for p in self.pools]
        if not names or len(set(names)) != len(names):
            raise ValueError("cloud.pools: at least one pool, with distinct names")
        if not self.insecure and not (self.tls.has_cert and self.tls.ca_file):
            raise ValueError(
                "replicas serve the router over mutual TLS: set [cloud.tls] cert_file, key_file and ca_file "
                "(`tandem credentials init DIR` makes a development set), or insecure = true"
            )
