"""What cloud work costs: accelerator time at the pool's hourly price, or a per-token price."""

from __future__ import annotations

import dataclasses

from router.fleet import PoolInfo


def cloud_cost_usd(pool: PoolInfo, compute_ms: float, tokens: int) -> float:
    """Pure. A per-1k-token price (third-party API pools) wins over the per-replica-hour price."""
    if pool.price_per_1k_tokens_usd > 0:
        return pool.price_per_1k_tokens_usd * tokens / 1000.0
    return pool.price_per_replica_hour_usd * compute_ms / 3.6e6


def priced(pool: PoolInfo, prices: tuple[tuple[str, float], ...]) -> PoolInfo:
    """`pool` at the policy's price override for it (PolicyConfig.pool_prices), if any. Pure."""
    for name, price in prices:
        if name == pool.name:
            return dataclasses.replace(pool, price_per_replica_hour_usd=price)
    return pool
