"""Online estimates the policy predicts from, fed by what the router measures on real requests.

Per pool: time to first token and time per token as the router sees them (queueing included),
verify-call time, accelerator milliseconds per CLOUD token and per verify pass. Per device: EDGE
time to first token and per token, time per drafted token. Per (device, pool, greedy or sampled):
TANDEM's acceptance profile.
Fleet-wide: characters per prompt token (the router decides before the prompt is tokenized).
Each is an exponentially weighted mean — except the times to first token, which grow with the
prompt (its prefill): those are exponentially weighted least-squares lines, TTFT ≈ a + b·(prompt
tokens). A newcomer starts at the mean of its measured peers (other pools, other devices) or,
before anything was measured, at the policy's prior, and its own measurements take over from its
first request. Plain data, no clock;
bounded (least recently updated entries dropped first) so 10,000s of devices cost little memory.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import statistics
from collections.abc import Sequence

from router.policy.config import PolicyConfig
from router.policy.placement import Decision
from router.tandem.control import shrunk_profile
from router.tandem.speculation import constant

WEIGHT = 0.2  # of each new observation
LINE_DECAY = 0.9  # a line's older observations keep this weight per new one (≈10 in memory)
X_REF = 512.0  # prompt tokens at which a prior line is pinned besides x = 0
MAX_KEYS = 100_000
SPREAD_STEP = 0.01  # a latency spread's quantiles move by at most this per request, once warmed up
PROFILE_DECAY = 0.9  # a pair's acceptance counts keep this weight per later session
PAIR_WEIGHT = 8.0  # rounds' worth of the fleet's profile behind each position of a pair's
FLEET_WEIGHT = 8.0  # rounds' worth of the policy's prior behind each position of the fleet's


@dataclasses.dataclass
class Ewma:
    value: float
    count: int = 0

    def add(self, x: float) -> None:
        # a plain mean over the first few observations (the first replaces the prior), then a moving one
        w = max(WEIGHT, 1.0 / (self.count + 1))
        self.value += w * (x - self.value)
        self.count += 1


@dataclasses.dataclass
class Line:
    """y ≈ a + b·x by exponentially weighted least squares, from a prior line (two pseudo-observations
    of total weight 1, at x = 0 and x = X_REF) that the first few measurements outweigh. The slope is
    kept >= 0: prefill never makes a shorter prompt slower."""

    sw: float
    sx: float
    sy: float
    sxx: float
    sxy: float
    count: int = 0

    @classmethod
    def through(cls, a: float, b: float) -> Line:
        y1 = a + b * X_REF
        return cls(sw=1.0, sx=0.5 * X_REF, sy=0.5 * (a + y1), sxx=0.5 * X_REF**2, sxy=0.5 * X_REF * y1)

    def add(self, x: float, y: float) -> None:
        k = LINE_DECAY
        self.sw, self.sx, self.sy = k * self.sw + 1, k * self.sx + x, k * self.sy + y
        self.sxx, self.sxy = k * self.sxx + x * x, k * self.sxy + x * y
        self.count += 1

    def coef(self) -> tuple[float, float]:
        """(a, b), both >= 0."""
        den = self.sw * self.sxx - self.sx**2
        b = (self.sw * self.sxy - self.sx * self.sy) / den if den > 1e-9 * self.sw * self.sxx else 0.0
        b = max(b, 0.0)
        return max((self.sy - b * self.sx) / self.sw, 0.0), b


class _Lines:
    """Lines by key, with the kind's mean line (of its measured entries) as a newcomer's prior."""

    def __init__(self) -> None:
        self._d: collections.OrderedDict[tuple, Line] = collections.OrderedDict()
        self._sum: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        self._n: collections.Counter[str] = collections.Counter()

    def add(self, key: tuple, x: float, y: float, prior: tuple[float, float]) -> None:
        kind, line = key[0], self._d.get(key)
        s = self._sum[kind]
        if line is None:
            line = self._d[key] = Line.through(*prior)
            self._n[kind] += 1
        else:
            a, b = line.coef()
            s[0], s[1] = s[0] - a, s[1] - b
        line.add(x, y)
        a, b = line.coef()
        s[0], s[1] = s[0] + a, s[1] + b
        self._d.move_to_end(key)
        if len(self._d) > MAX_KEYS:
            old_key, old = self._d.popitem(last=False)
            a, b = old.coef()
            t = self._sum[old_key[0]]
            t[0], t[1] = t[0] - a, t[1] - b
            self._n[old_key[0]] -= 1

    def count(self, key: tuple) -> int:
        line = self._d.get(key)
        return line.count if line is not None else 0

    def get(self, key: tuple, prior: tuple[float, float]) -> tuple[float, float]:
        line = self._d.get(key)
        if line is not None:
            return line.coef()
        n = self._n[key[0]]
        if not n:
            return prior
        s = self._sum[key[0]]
        return s[0] / n, s[1] / n


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

    def mean_without(self, key: tuple, prior: float) -> float:
        """The mean of the kind's measured entries other than `key` (prior when there are none)."""
        kind, e = key[0], self._d.get(key)
        n = self._n[kind] - (e is not None)
        return (self._sum[kind] - (e.value if e is not None else 0.0)) / n if n > 0 else prior

    def kind_count(self, kind: str) -> int:
        return self._n[kind]


class _Acceptance:
    """TANDEM acceptance counts by (device, pool, greedy): per position i, the rounds that reached it
    (drafted it with the ones before it accepted) and of those the rounds that accepted it, each
    pair's counts decayed by PROFILE_DECAY per session so that they follow the device's text; and
    the fleet's pooled counts of each kind (greedy or sampled). A pair's profile is its own rates
    shrunk towards the fleet's profile, which is shrunk towards the policy's prior: a pair seen
    for a few rounds borrows from the fleet, one seen for many stands on its own (a hierarchical
    estimate, router.tandem.control.shrunk_profile at both levels)."""

    def __init__(self) -> None:
        self._d: collections.OrderedDict[tuple, tuple[list[float], list[float]]] = collections.OrderedDict()
        self._fleet: dict[bool, tuple[list[float], list[float]]] = {}

    def add(self, key: tuple[str, str, bool], accepted: Sequence[float], reached: Sequence[float]) -> None:
        acc, reach = self._d.pop(key, None) or ([], [])
        f_acc, f_reach = self._fleet.setdefault(key[2], ([], []))
        for mine, fleet, new in ((acc, f_acc, accepted), (reach, f_reach, reached)):
            for lst in (mine, fleet):
                if len(lst) < len(new):
                    lst.extend([0.0] * (len(new) - len(lst)))
            for i, v in enumerate(mine):  # older sessions fade (the fleet's counts are the pairs' sum)
                fleet[i] -= v * (1 - PROFILE_DECAY)
                mine[i] = v * PROFILE_DECAY
            for i, x in enumerate(new):
                mine[i] += x
                fleet[i] += x
        self._d[key] = (acc, reach)
        if len(self._d) > MAX_KEYS:
            (_, _, greedy), (gone_acc, gone_reach) = self._d.popitem(last=False)
            f_acc, f_reach = self._fleet[greedy]
            for lst, gone in ((f_acc, gone_acc), (f_reach, gone_reach)):
                for i, v in enumerate(gone):
                    lst[i] -= v

    def get(self, key: tuple[str, str, bool], prior: Sequence[float], positions: int) -> tuple[float, ...]:
        f_acc, f_reach = self._fleet.get(key[2], ([], []))
        fleet = shrunk_profile(_padded(f_acc, positions), _padded(f_reach, positions), prior, FLEET_WEIGHT)
        own = self._d.get(key)
        if own is None:
            return fleet
        return shrunk_profile(_padded(own[0], positions), _padded(own[1], positions), fleet, PAIR_WEIGHT)


def _padded(values: Sequence[float], n: int) -> list[float]:
    return [max(values[i], 0.0) if i < len(values) else 0.0 for i in range(n)]


SPREAD_QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.99)


class Spread:
    """How actual latency strays from predicted: quantiles of u = log(actual ÷ predicted) ÷ scale,
    scale = √(model variance + base²) — the residual standardised by what the model knows of the
    request's own spread (TANDEM's rounds; `base` for the rest), so that one distribution serves
    short and long requests. Quantiles, not a mean and a variance, because the distribution is
    skewed (the pace guard cuts TANDEM's slow tail). Tracked by stochastic approximation, starting
    from the standard normal's; `quantile(q)` interpolates between the tracked ones."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.q = [statistics.NormalDist().inv_cdf(p) for p in SPREAD_QUANTILES]
        self.count = 0

    def scale(self, model_var: float) -> float:
        return math.sqrt(max(model_var, 0.0) + self.base**2)

    def add(self, log_ratio: float, model_var: float) -> None:
        u = log_ratio / self.scale(model_var)
        step = max(SPREAD_STEP, 4.0 / (self.count + 10))
        for i, p in enumerate(SPREAD_QUANTILES):
            self.q[i] += step * (p - (u <= self.q[i]))
        for i in range(1, len(self.q)):  # keep them ordered
            self.q[i] = max(self.q[i], self.q[i - 1])
        self.count += 1

    def quantile(self, p: float) -> float:
        """The p-quantile of u (linear between the tracked ones, the extreme ones beyond them)."""
        qs = SPREAD_QUANTILES
        if p <= qs[0]:
            return self.q[0]
        for i in range(1, len(qs)):
            if p <= qs[i]:
                t = (p - qs[i - 1]) / (qs[i] - qs[i - 1])
                return self.q[i - 1] + t * (self.q[i] - self.q[i - 1])
        return self.q[-1]

    def margin(self, p: float, model_var: float) -> float:
        """The factor that a prediction times meets with probability `p`."""
        return math.exp(self.quantile(p) * self.scale(model_var))


class Estimates:
    """Not thread-safe: the router's event loop (or the simulator) owns it."""

    def __init__(self, policy: PolicyConfig) -> None:
        self.policy = policy  # priors; replaced when the policy changes
        self._t = _Table()
        self._lines = _Lines()
        self._acceptance = _Acceptance()
        self._spreads: dict[tuple[str, str], Spread] = {}  # (placement, "ttft" | "token")
        self._chars_per_token: Ewma | None = None
        self.inflight: collections.Counter[str] = collections.Counter()  # pool → slots its requests hold now
        self.device_energy: collections.Counter[str] = (
            collections.Counter()
        )  # device → J its requests will spend

    # ---------------------------------------------------------------- requests in flight

    def begin(self, d: Decision) -> None:
        """A decided request starts: it holds its predicted share of a pool slot (CLOUD a whole one,
        TANDEM its verify passes' share) and holds the device energy it may spend (Decision.held_energy_j)."""
        self._hold(d, 1.0)

    def end(self, d: Decision) -> None:
        """The request `begin` was called with has finished (or failed)."""
        self._hold(d, -1.0)

    def _hold(self, d: Decision, sign: float) -> None:
        for table, key, x in (
            (self.inflight, d.pool, d.predicted_slot_share),
            (self.device_energy, d.edge_worker_id, d.held_energy_j or d.predicted_energy_j),
        ):
            if key and x:
                table[key] += sign * x
                if abs(table[key]) < 1e-9:  # float residue of equal begin/end: keep the table small
                    del table[key]

    # ---------------------------------------------------------------- observations

    def observe_prompt(self, chars: int, tokens: int) -> None:
        """A prompt of `chars` characters was `tokens` tokens long."""
        if chars > 0 and tokens > 0:
            if self._chars_per_token is None:
                self._chars_per_token = Ewma(self.policy.prompt_chars_per_token)
            self._chars_per_token.add(chars / tokens)

    def observe_cloud_ttft(self, pool: str, ttft_ms: float, prompt_tokens: int) -> None:
        """A first token from the pool (CLOUD, or TANDEM's head start), queueing and prefill included."""
        p = self.policy
        self._lines.add(
            ("pool_ttft", pool),
            prompt_tokens,
            ttft_ms,
            (p.prior_cloud_ttft_ms, p.prior_cloud_prefill_ms_per_token),
        )

    def observe_cloud(
        self,
        pool: str,
        ttft_ms: float,
        token_ms: float | None,
        compute_ms_per_token: float,
        prompt_tokens: int = 0,
    ) -> None:
        p = self.policy
        self.observe_cloud_ttft(pool, ttft_ms, prompt_tokens)
        if token_ms is not None:
            self._t.add(("pool_token", pool), token_ms, p.prior_cloud_token_ms)
        if compute_ms_per_token > 0:
            self._t.add(("pool_compute_token", pool), compute_ms_per_token, p.prior_compute_ms_per_token)

    def observe_verify(self, pool: str, call_ms: float, compute_ms: float) -> None:
        self._t.add(("pool_verify", pool), call_ms, self.policy.prior_verify_ms)
        if compute_ms > 0:
            self._t.add(("pool_compute_verify", pool), compute_ms, self.policy.prior_compute_ms_per_verify)

    def observe_edge(
        self, device: str, ttft_ms: float, token_ms: float | None, prompt_tokens: int = 0
    ) -> None:
        p = self.policy
        self._lines.add(
            ("dev_ttft", device),
            prompt_tokens,
            ttft_ms,
            (p.prior_device_ttft_ms, p.prior_device_prefill_ms_per_token),
        )
        if token_ms is not None:
            self._t.add(("dev_token", device), token_ms, self.policy.prior_device_token_ms)

    def observe_link(self, device: str, link_ms: float, ahead_extra_ms: float) -> None:
        """A TANDEM session's measured draft-call overhead (the device's link as its rounds pay it)
        and what its run-ahead blocks kept it waiting beyond the modelled overlap."""
        self._t.add(("dev_link", device), link_ms, link_ms)
        self._t.add(("dev_ahead", device), ahead_extra_ms, 0.0)

    def observe_draft(self, device: str, ms_per_token: float) -> None:
        self._t.add(("dev_draft", device), ms_per_token, self.policy.prior_draft_ms)

    def observe_acceptance(
        self, device: str, pool: str, greedy: bool, accepted: Sequence[float], reached: Sequence[float]
    ) -> None:
        """A TANDEM session's acceptance counts between `device` and `pool`, greedy or sampled: per
        position i, the rounds that reached it and of those the rounds that accepted it."""
        if any(reached):
            self._acceptance.add((device, pool, greedy), accepted, reached)

    def observe_latency(
        self, placement: str, what: str, actual_ms: float, predicted_ms: float, model_var: float
    ) -> None:
        """A finished request's `what` ("ttft" or "token") against its prediction, as the client saw it."""
        if actual_ms > 0 and predicted_ms > 0:
            self.spread(placement, what).add(math.log(actual_ms / predicted_ms), model_var)

    def spread(self, placement: str, what: str) -> Spread:
        """How `what` ("ttft" or "token") of `placement` strays from its predictions (the prior's
        standard normal, scaled by prior_latency_spread, until measured)."""
        s = self._spreads.get((placement, what))
        if s is None:
            s = self._spreads[(placement, what)] = Spread(self.policy.prior_latency_spread)
        return s

    # ---------------------------------------------------------------- reads

    def _paired(self, a: tuple, b: tuple, prior_a: float, prior_b: float) -> tuple[float, float]:
        """Two related figures of one pool or device (e.g. accelerator time per CLOUD token and per
        verify pass). When only one of its own has been measured, the other follows it in the ratio
        the peers measured (else the priors' ratio) rather than taking the peers' value or the prior
        — a pool's own CLOUD figures say more about its verify passes than another pool's do."""
        t = self._t
        own_a, own_b = t.count(a), t.count(b)
        va, vb = t.get(a, prior_a), t.get(b, prior_b)  # own, else the peers' mean, else the prior
        if own_a and own_b:
            return va, vb
        if own_a or own_b:
            pa, pb = t.mean_without(a, 0.0), t.mean_without(b, 0.0)
            ratio = pb / pa if pa > 0 and pb > 0 else prior_b / prior_a
            return (va, va * ratio) if own_a else (vb / ratio, vb)
        # nothing of its own: the peers' means — and where the peers measured one kind only, the
        # other follows it in the priors' ratio
        na, nb = t.kind_count(a[0]), t.kind_count(b[0])
        if na and not nb:
            vb = va * prior_b / prior_a
        elif nb and not na:
            va = vb * prior_a / prior_b
        return va, vb

    def pool(self, pool: str) -> dict[str, float]:
        p = self.policy
        token_ms, verify_ms = self._paired(
            ("pool_token", pool), ("pool_verify", pool), p.prior_cloud_token_ms, p.prior_verify_ms
        )
        per_token, per_verify = self._paired(
            ("pool_compute_token", pool),
            ("pool_compute_verify", pool),
            p.prior_compute_ms_per_token,
            p.prior_compute_ms_per_verify,
        )
        ttft_ms, prefill_ms = self._lines.get(
            ("pool_ttft", pool), (p.prior_cloud_ttft_ms, p.prior_cloud_prefill_ms_per_token)
        )
        return {
            "ttft_ms": ttft_ms,
            "prefill_ms_per_token": prefill_ms,
            "token_ms": token_ms,
            "verify_ms": verify_ms,
            "compute_ms_per_token": per_token,
            "compute_ms_per_verify": per_verify,
        }

    def device(self, device: str) -> dict[str, float]:
        p = self.policy
        token_ms, draft_ms = self._paired(
            ("dev_token", device), ("dev_draft", device), p.prior_device_token_ms, p.prior_draft_ms
        )
        ttft_ms, prefill_ms = self._lines.get(
            ("dev_ttft", device), (p.prior_device_ttft_ms, p.prior_device_prefill_ms_per_token)
        )
        return {
            "ttft_ms": ttft_ms,
            "prefill_ms_per_token": prefill_ms,
            "token_ms": token_ms,
            "draft_ms": draft_ms,
        }

    def device_link(self, device: str) -> tuple[float | None, float]:
        """(the draft-call overhead its TANDEM sessions measured — its own only, a link is the
        device's; None before any —, what run-ahead blocks kept them waiting beyond the modelled
        overlap — its own, else its measured peers')."""
        link = ("dev_link", device)
        return (self._t.get(link, 0.0) if self._t.count(link) else None), self._t.get(
            ("dev_ahead", device), 0.0
        )

    def prior_profile(self) -> tuple[float, ...]:
        return constant(self.policy.prior_acceptance)

    def acceptance(self, device: str, pool: str, greedy: bool = True) -> tuple[float, ...]:
        """The acceptance profile (β_1..β_L, L = the policy's longest draft + 1) between `device` and
        `pool`: its own rates, shrunk towards the fleet's, shrunk towards the policy's prior."""
        return self._acceptance.get(
            (device, pool, greedy), self.prior_profile(), self.policy.max_draft_length + 1
        )

    def chars_per_token(self) -> float:
        return self._chars_per_token.value if self._chars_per_token else self.policy.prompt_chars_per_token

    def observations(self, *key: str) -> int:
        return self._lines.count(tuple(key)) or self._t.count(tuple(key))
