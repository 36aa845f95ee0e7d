"""Per-request records of a load test and their summary (pure functions over plain data).

Every latency counts from the request's *scheduled* send time, so queueing in the harness or the
server is never hidden. Per-token latency divides each gap between chunks by the tokens of the
chunk that ended it (a TANDEM chunk carries several tokens at once); inter-chunk latency is the
raw gap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 99)


@dataclasses.dataclass
class RequestRecord:
    index: int
    hint_class: str
    device_id: str
    max_new_tokens: int
    scheduled_s: float  # from the run's start
    sent_s: float = 0.0  # when the call was made (later than scheduled under a concurrency cap)
    first_token_s: float | None = None
    end_s: float = 0.0
    status: str = "OK"  # a gRPC status name
    error: str = ""
    placement: str = ""  # of the final chunk
    placements: list[str] = dataclasses.field(default_factory=list)
    pool: str = ""
    decided_at: str = ""  # "router", or "device" (sent to the device's agent, which decided)
    reason: str = ""
    tokens: int = 0
    prompt_tokens: int = 0
    chunks: int = 0
    cost_usd: float = 0.0
    device_energy_j: float = 0.0
    tandem_rounds: int = 0
    tandem_acceptance: float | None = None
    token_ms: list[float] = dataclasses.field(
        default_factory=list
    )  # per-token latency of each chunk after the first
    itl_ms: list[float] = dataclasses.field(
        default_factory=list
    )  # inter-token latency: the raw gaps between chunks
    ttft_slo_ms: float = 0.0  # the SLOs this request is held to
    token_slo_ms: float = 0.0
    # its hints and size, so that a run's records are a trace to replay (router.policy.replay)
    placement_hint: str = "auto"
    privacy: str = "standard"
    quality: str = "unspecified"
    prompt_chars: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_s is None else (self.first_token_s - self.scheduled_s) * 1e3

    @property
    def e2e_ms(self) -> float:
        return (self.end_s - self.scheduled_s) * 1e3

    @property
    def tpot_ms(self) -> float | None:
        """Mean time per output token after the first."""
        if self.first_token_s is None or self.tokens < 2:
            return None
        return (self.end_s - self.first_token_s) * 1e3 / (self.tokens - 1)

    @property
    def meets_slo(self) -> bool:
        if not self.ok:
            return False
        ttft, tpot = self.ttft_ms, self.tpot_ms
        if self.ttft_slo_ms and (ttft is None or ttft > self.ttft_slo_ms):
            return False
        return not (self.token_slo_ms and tpot is not None and tpot > self.token_slo_ms)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(ttft_ms=self.ttft_ms, e2e_ms=self.e2e_ms, tpot_ms=self.tpot_ms, meets_slo=self.meets_slo)
        return d


CSV_FIELDS = (
    "index",
    "hint_class",
    "device_id",
    "status",
    "placement",
    "pool",
    "scheduled_s",
    "sent_s",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "tokens",
    "prompt_tokens",
    "chunks",
    "cost_usd",
    "device_energy_j",
    "tandem_rounds",
    "tandem_acceptance",
    "meets_slo",
    "reason",
    "error",
)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of `values`; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def _dist(values: Iterable[float | None]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    out: dict[str, float | None] = {f"p{p}": percentile(vals, p) for p in PERCENTILES}
    out["mean"] = sum(vals) / len(vals) if vals else None
    return out


def _rate(times: Sequence[float]) -> float | None:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None


def summarise(records: Sequence[RequestRecord], requested_rate: float, duration_s: float) -> dict:
    """The run's summary: counts, rates, latency percentiles (overall and by placement), goodput,
    SLO attainment, cost per 1k tokens, energy per request, errors by status, and how well the
    harness kept its schedule (achieved send rate and send lag)."""
    n = len(records)
    ok = [r for r in records if r.ok]
    sends = sorted(r.sent_s for r in records)
    span = (max(r.end_s for r in records) - min(r.scheduled_s for r in records)) if records else 0.0
    tokens = sum(r.tokens for r in ok)
    good = [r for r in records if r.meets_slo]
    errors: dict[str, int] = {}
    for r in records:
        if not r.ok:
            errors[r.status] = errors.get(r.status, 0) + 1
    by_placement = {}
    for placement in sorted({r.placement for r in ok}):
        mine = [r for r in ok if r.placement == placement]
        by_placement[placement] = {
            "requests": len(mine),
            "share": len(mine) / len(ok),
            "ttft_ms": _dist(r.ttft_ms for r in mine),
            "tpot_ms": _dist(r.tpot_ms for r in mine),
            "token_ms": _dist(t for r in mine for t in r.token_ms),
            "itl_ms": _dist(t for r in mine for t in r.itl_ms),
            "e2e_ms": _dist(r.e2e_ms for r in mine),
        }
    acceptance = [r.tandem_acceptance for r in ok if r.tandem_acceptance is not None]
    return {
        "requests": n,
        "ok": len(ok),
        "decided_on_device": sum(r.decided_at == "device" for r in ok),
        "errors": errors,
        "requested_rate": requested_rate,
        "duration_s": duration_s,
        # the rate of the drawn schedule (a Poisson sample's differs from the nominal rate) and the
        # rate the harness kept: sends from the first to the last, over the gaps between them
        "scheduled_rate": _rate(sorted(r.scheduled_s for r in records)),
        "achieved_send_rate": _rate(sends),
        "send_lag_ms": _dist((r.sent_s - r.scheduled_s) * 1e3 for r in records),
        "throughput_rps": len(ok) / span if span else 0.0,
        "output_tokens_per_s": tokens / span if span else 0.0,
        "goodput_rps": len(good) / span if span else 0.0,
        "slo_attainment": len(good) / n if n else None,
        "ttft_ms": _dist(r.ttft_ms for r in ok),
        "tpot_ms": _dist(r.tpot_ms for r in ok),
        "token_ms": _dist(t for r in ok for t in r.token_ms),
        "itl_ms": _dist(t for r in ok for t in r.itl_ms),
        "e2e_ms": _dist(r.e2e_ms for r in ok),
        "tokens": tokens,
        "cost_usd": sum(r.cost_usd for r in ok),
        "cost_per_1k_tokens_usd": 1e3 * sum(r.cost_usd for r in ok) / tokens if tokens else None,
        "device_energy_j": sum(r.device_energy_j for r in ok),
        "energy_per_request_j": sum(r.device_energy_j for r in ok) / len(ok) if ok else None,
        "tandem_acceptance": sum(acceptance) / len(acceptance) if acceptance else None,
        "by_placement": by_placement,
    }


def _fmt(v: float | None, fmt: str) -> str:
    return "—" if v is None else fmt.format(v)


def summary_table(s: dict) -> str:
    """A markdown table of a summary's headline figures."""

    def three(d: dict, fmt: str = "{:.1f}") -> str:
        return " / ".join(_fmt(d.get(k), fmt) for k in ("p50", "p90", "p99"))

    attainment = None if s["slo_attainment"] is None else 100 * s["slo_attainment"]
    lines = [
        "| figure | value |",
        "| --- | ---: |",
        f"| requests (ok / errors) | {s['ok']} / {s['requests'] - s['ok']} |",
        f"| decided on the device (ok) | {s.get('decided_on_device', 0)} |",
        f"| send rate requested → scheduled → achieved (/s) | {s['requested_rate']:.2f} → "
        f"{_fmt(s.get('scheduled_rate'), '{:.3f}')} → {_fmt(s['achieved_send_rate'], '{:.3f}')} |",
        f"| send lag p50 / p99 (ms) | {_fmt(s['send_lag_ms']['p50'], '{:.2f}')} / "
        f"{_fmt(s['send_lag_ms']['p99'], '{:.2f}')} |",
        f"| throughput / goodput (req/s) | {s['throughput_rps']:.2f} / {s['goodput_rps']:.2f} |",
        f"| SLO attainment | {_fmt(attainment, '{:.1f}%')} |",
        f"| output tokens/s | {s['output_tokens_per_s']:.1f} |",
        f"| TTFT p50 / p90 / p99 (ms) | {three(s['ttft_ms'], '{:.0f}')} |",
        f"| per-token p50 / p90 / p99 (ms) | {three(s['token_ms'])} |",
        f"| inter-chunk p50 / p90 / p99 (ms) | {three(s['itl_ms'])} |",
        f"| end-to-end p50 / p90 / p99 (ms) | {three(s['e2e_ms'], '{:.0f}')} |",
        f"| cost per 1k tokens | {_fmt(s['cost_per_1k_tokens_usd'], '${:.5f}')} |",
        f"| device energy per request | {_fmt(s['energy_per_request_j'], '{:.2f} J')} |",
        f"| TANDEM acceptance | {_fmt(s['tandem_acceptance'], '{:.2f}')} |",
        "| placements | "
        + (", ".join(f"{p} {100 * v['share']:.0f}%" for p, v in s["by_placement"].items()) or "—")
        + " |",
    ]
    if s["errors"]:
        lines.append(
            "| errors by status | " + ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())) + " |"
        )
    return "\n".join(lines) + "\n"
