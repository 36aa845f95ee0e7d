"""What cloud work costs: accelerator time at the pool's hourly price, or a per-token price."""

from __future__ import annotations

from router.fleet import PoolInfo


def cloud_cost_usd(pool: PoolInfo, compute_ms: float, tokens: int) -> float:
    """Pure. A per-1k-token price (third-party API pools) wins over the per-replica-hour price."""
    if pool.price_per_1k_tokens_usd > 0:
        return pool.price_per_1k_tokens_usd * tokens / 1000.0
    return pool.price_per_replica_hour_usd * compute_ms / 3.6e6
