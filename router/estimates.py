"""Online estimates the policy predicts from, fed by what the router measures on real requests.

Per pool: time to first token and time per token as the router sees them (queueing included),
verify-call time, accelerator milliseconds per CLOUD token and per verify pass. Per device: EDGE
time to first token and per token, time per drafted token. Per (device, pool): TANDEM acceptance.
Each is an exponentially weighted mean; a newcomer starts at the mean of its measured peers (other
pools, other devices) or, before anything was measured, at the policy's prior, and its own
measurements take over from its first request. Plain data, no clock;
bounded (least recently updated entries dropped first) so 10,000s of devices cost little memory.
"""

from __future__ import annotations

import collections
import dataclasses

from router.policy_config import PolicyConfig

WEIGHT = 0.2  # of each new observation
MAX_KEYS = 100_000


@dataclasses.dataclass
class Ewma:
    value: float
    count: int = 0

    def add(self, x: float) -> None:
        # a plain mean over the first few observations (the first replaces the prior), then a moving one
        w = max(WEIGHT, 1.0 / (self.count + 1))
        self.value += w * (x - self.value)
        self.count += 1


class _Table:
    """EWMAs by key; a key's first element names its kind, and each kind keeps the mean of its
    measured entries — the prior for a newcomer of that kind once others have been measured."""

    def __init__(self) -> None:
        self._d: collections.OrderedDict[tuple, Ewma] = collections.OrderedDict()
        self._sum: collections.Counter[str] = collections.Counter()
        self._n: collections.Counter[str] = collections.Counter()

    def add(self, key: tuple, x: float, prior: float) -> None:
        kind = key[0]
        e = self._d.get(key)
        if e is None:
            e = self._d[key] = Ewma(prior)
            self._n[kind] += 1
        else:
            self._sum[kind] -= e.value
        e.add(x)
        self._sum[kind] += e.value
        self._d.move_to_end(key)
        if len(self._d) > MAX_KEYS:
            old_key, old = self._d.popitem(last=False)
            self._sum[old_key[0]] -= old.value
            self._n[old_key[0]] -= 1

    def get(self, key: tuple, prior: float) -> float:
        e = self._d.get(key)
        if e is not None:
            return e.value
        n = self._n[key[0]]
        return self._sum[key[0]] / n if n else prior

    def count(self, key: tuple) -> int:
        e = self._d.get(key)
        return e.count if e is not None else 0

    def kind_count(self, kind: str) -> int:
        return self._n[kind]


class Estimates:
    """Not thread-safe: the router's event loop (or the simulator) owns it."""

    def __init__(self, policy: PolicyConfig) -> None:
        self.policy = policy  # priors; replaced when the policy changes
        self._t = _Table()
        self.inflight: collections.Counter[str] = collections.Counter()  # pool → requests using it now

    # ---------------------------------------------------------------- observations

    def observe_cloud(self, pool: str, ttft_ms: float, token_ms: float | None, compute_ms_per_token: float) -> None:
        p = self.policy
        self._t.add(("pool_ttft", pool), ttft_ms, p.prior_cloud_ttft_ms)
        if token_ms is not None:
            self._t.add(("pool_token", pool), token_ms, p.prior_cloud_token_ms)
        if compute_ms_per_token > 0:
            self._t.add(("pool_compute_token", pool), compute_ms_per_token, p.prior_compute_ms_per_token)

    def observe_verify(self, pool: str, call_ms: float, compute_ms: float) -> None:
        self._t.add(("pool_verify", pool), call_ms, self.policy.prior_verify_ms)
        if compute_ms > 0:
            self._t.add(("pool_compute_verify", pool), compute_ms, self.policy.prior_compute_ms_per_verify)

    def observe_edge(self, device: str, ttft_ms: float, token_ms: float | None) -> None:
        self._t.add(("dev_ttft", device), ttft_ms, self.policy.prior_device_ttft_ms)
        if token_ms is not None:
            self._t.add(("dev_token", device), token_ms, self.policy.prior_device_token_ms)

    def observe_draft(self, device: str, ms_per_token: float) -> None:
        self._t.add(("dev_draft", device), ms_per_token, self.policy.prior_draft_ms)

    def observe_acceptance(self, device: str, pool: str, rate: float) -> None:
        self._t.add(("accept", device, pool), rate, self.policy.prior_acceptance)

    # ---------------------------------------------------------------- reads

    def _paired(self, a: tuple, b: tuple, prior_a: float, prior_b: float) -> tuple[float, float]:
        """Two related figures (e.g. accelerator time per CLOUD token and per verify pass): when
        only one has been measured, the other follows it in the ratio of their priors rather than
        staying at its prior — comparing a measurement with a prior would mislead the score."""
        na = self._t.count(a) or self._t.kind_count(a[0])
        nb = self._t.count(b) or self._t.kind_count(b[0])
        va, vb = self._t.get(a, prior_a), self._t.get(b, prior_b)
        if na and not nb:
            vb = va * prior_b / prior_a
        elif nb and not na:
            va = vb * prior_a / prior_b
        return va, vb

    def pool(self, pool: str) -> dict[str, float]:
        p = self.policy
        token_ms, verify_ms = self._paired(("pool_token", pool), ("pool_verify", pool),
                                           p.prior_cloud_token_ms, p.prior_verify_ms)
        per_token, per_verify = self._paired(("pool_compute_token", pool), ("pool_compute_verify", pool),
                                             p.prior_compute_ms_per_token, p.prior_compute_ms_per_verify)
        return {
            "ttft_ms": self._t.get(("pool_ttft", pool), p.prior_cloud_ttft_ms),
            "token_ms": token_ms,
            "verify_ms": verify_ms,
            "compute_ms_per_token": per_token,
            "compute_ms_per_verify": per_verify,
        }

    def device(self, device: str) -> dict[str, float]:
        p = self.policy
        token_ms, draft_ms = self._paired(("dev_token", device), ("dev_draft", device),
                                          p.prior_device_token_ms, p.prior_draft_ms)
        return {
            "ttft_ms": self._t.get(("dev_ttft", device), p.prior_device_ttft_ms),
            "token_ms": token_ms,
            "draft_ms": draft_ms,
        }

    def acceptance(self, device: str, pool: str) -> float:
        return self._t.get(("accept", device, pool), self.policy.prior_acceptance)

    def observations(self, *key: str) -> int:
        return self._t.count(tuple(key))
