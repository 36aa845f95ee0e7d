"""Who may join the fleet, and as what: the router's checks of its members' credentials. Pure.

Devices prove their id with their device token; cloud replicas prove their pool with the pool's
token (runtime.credentials). Only a pool the router's config names can be joined, and the pool's
accelerator and prices are the config's, never what a replica says of itself.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterable

from router.fleet import CLOUD, EDGE, PoolInfo, WorkerRecord
from runtime.credentials import DEVICE, POOL, check_token, member_token
from tandem.errors import PermissionDenied, Unauthenticated


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """A cloud pool the router accepts replicas into (the ``[[router.pools]]`` tables)."""

    name: str
    accelerator: str = ""  # "asic" | "gpu" | "cpu" | …
    price_per_replica_hour_usd: float = 0.0
    price_per_1k_tokens_usd: float = 0.0  # > 0: priced by tokens instead (a third-party API)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("router.pools: every pool needs a name")
        if self.price_per_replica_hour_usd < 0 or self.price_per_1k_tokens_usd < 0:
            raise ValueError(f"router.pools {self.name!r}: prices must be >= 0")


class FleetIdentity:
    """Checks a member's credential against the fleet secret, and what it may join."""

    def __init__(self, secret: bytes | None, pools: Iterable[PoolSpec]) -> None:
        """`secret` None: a router that takes no members (every check fails with Unauthenticated)."""
        self.secret = secret
        self.pools = {p.name: p for p in pools}

    def token(self, role: str, name: str) -> str:
        if self.secret is None:
            raise Unauthenticated("this router has no fleet secret (fleet_secret_file): it takes no members")
        return member_token(self.secret, role, name)

    def token_for(self, record: WorkerRecord) -> str:
        """The credential of `record`'s member: its device's, or its pool's."""
        if record.kind == EDGE:
            return self.token(DEVICE, record.worker_id)
        return self.token(POOL, record.pool.name)

    def is_device(self, device_id: str, token: str) -> bool:
        """Whether `token` is device `device_id`'s credential (False without a fleet secret)."""
        if self.secret is None or not device_id or not token:
            return False
        return hmac.compare_digest(self.token(DEVICE, device_id), token)

    def check(self, record: WorkerRecord, token: str) -> WorkerRecord:
        """`record` as the fleet takes it when `token` proves it — a replica's pool replaced by the
        config's — else Unauthenticated (bad credential) or PermissionDenied (a pool not named)."""
        if record.kind == CLOUD:
            spec = self.pools.get(record.pool.name)
            if spec is None:
                raise PermissionDenied(
                    f"pool {record.pool.name!r} is not one of this router's pools "
                    f"({', '.join(sorted(self.pools)) or 'none configured'})"
                )
            check_token(
                self.token_for(record),
                token,
                f"pool {record.pool.name!r}",
                "`tandem credentials enroll pool`",
            )
            return dataclasses.replace(
                record,
                pool=PoolInfo(
                    spec.name,
                    spec.accelerator,
                    spec.price_per_replica_hour_usd,
                    spec.price_per_1k_tokens_usd,
                    record.pool.replicas,
                    record.pool.slots_per_replica,
                ),
            )
        check_token(
            self.token_for(record),
            token,
            f"device {record.worker_id!r}",
            "`tandem credentials enroll device`",
        )
        return record
