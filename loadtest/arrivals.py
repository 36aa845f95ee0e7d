"""Open-loop arrival schedules (pure): when each request is to be sent, in seconds from the start.

The schedule is drawn before the run and never adapts to the server: a slow server makes requests
queue, and their latency is measured from their scheduled time (no coordinated omission).
"""

from __future__ import annotations

import random


def schedule(
    process: str,
    rate: float,
    duration_s: float,
    max_requests: int = 0,
    burstiness: float = 1.0,
    rng: random.Random | None = None,
) -> list[float]:
    """Send times in [0, duration_s) for `rate` requests per second on average.

    poisson: exponential gaps; gamma: gamma gaps with mean 1/rate and squared coefficient of
    variation `burstiness` (1 is Poisson, larger is burstier, smaller more regular); constant:
    exactly 1/rate apart. At most `max_requests` (0: no bound). Raises ValueError on bad values.
    """
    if rate <= 0 or duration_s <= 0 or burstiness <= 0 or max_requests < 0:
        raise ValueError("rate, duration_s and burstiness must be > 0, max_requests >= 0")
    rng = rng or random.Random(0)
    limit = max_requests or float("inf")
    out: list[float] = []
    t = 0.0
    shape = 1.0 / burstiness  # gamma(k, θ): mean kθ = 1/rate, CV² = 1/k
    while len(out) < limit:
        if process == "constant":
            t = len(out) / rate
        elif process == "poisson":
            t += rng.expovariate(rate) if out else 0.0
        elif process == "gamma":
            t += rng.gammavariate(shape, 1.0 / (rate * shape)) if out else 0.0
        else:
            raise ValueError(f"unknown arrival process {process!r}")
        if t >= duration_s:
            break
        out.append(t)
    return out
