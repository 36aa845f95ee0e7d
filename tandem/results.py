"""Plain result types of the SDK, built from protocol messages."""

from __future__ import annotations

import dataclasses

from tandem.convert import FINISH_NAMES, PLACEMENT_NAMES
from tandem.v1 import common_pb2, inference_pb2


@dataclasses.dataclass(frozen=True)
class Candidate:
    placement: str
    edge_worker_id: str
    pool: str
    excluded: bool
    reason: str
    score: float
    predicted_cost_usd: float = 0.0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    predicted_device_energy_joules: float = 0.0


@dataclasses.dataclass(frozen=True)
class Decision:
    """Where a request was placed and why (by the router, or by the agent on the caller's device)."""

    placement: str  # "edge" | "cloud" | "tandem"
    reason: str
    edge_worker_id: str = ""
    pool: str = ""
    cloud_worker_id: str = ""
    initial_draft_length: int = 0
    policy_version: int = 0
    candidates: tuple[Candidate, ...] = ()
    predicted_cost_usd: float = 0.0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    predicted_device_energy_joules: float = 0.0
    decided_at: str = "router"  # "router", or "device" (the agent on the caller's device)

    @classmethod
    def from_pb(cls, d: common_pb2.Decision) -> Decision:
        return cls(
            decided_at=d.decided_at or "router",
            placement=PLACEMENT_NAMES.get(d.placement, "unspecified"),
            reason=d.reason,
            edge_worker_id=d.edge_worker_id,
            pool=d.pool,
            cloud_worker_id=d.cloud_worker_id,
            initial_draft_length=d.initial_draft_length,
            policy_version=d.policy_version,
            candidates=tuple(
                Candidate(
                    PLACEMENT_NAMES.get(c.placement, "unspecified"),
                    c.edge_worker_id,
                    c.pool,
                    c.excluded,
                    c.reason,
                    c.score,
                    c.predicted_cost_usd,
                    c.predicted_ttft_ms,
                    c.predicted_token_ms,
                    c.predicted_device_energy_joules,
                )
                for c in d.candidates
            ),
            predicted_cost_usd=d.predicted_cost_usd,
            predicted_ttft_ms=d.predicted_ttft_ms,
            predicted_token_ms=d.predicted_token_ms,
            predicted_device_energy_joules=d.predicted_device_energy_joules,
        )


@dataclasses.dataclass(frozen=True)
class TandemStats:
    """Speculative decoding statistics of a TANDEM request (on its final chunk)."""

    rounds: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    correction_tokens: int = 0
    bonus_tokens: int = 0
    acceptance_rate: float = 0.0  # accepted ÷ drafted
    mean_draft_length: float = 0.0
    last_draft_length: int = 0
    fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)  # cause → times TANDEM fell back
    overlap_hits: int = 0  # blocks drafted during verification and used
    overlap_misses: int = 0  # … and dropped

    @classmethod
    def from_pb(cls, t: common_pb2.TandemStats) -> TandemStats:
        return cls(
            t.rounds,
            t.drafted_tokens,
            t.accepted_tokens,
            t.correction_tokens,
            t.bonus_tokens,
            t.acceptance_rate,
            t.mean_draft_length,
            t.last_draft_length,
            dict(t.fallbacks),
            t.overlap_hits,
            t.overlap_misses,
        )

    @property
    def tokens_per_round(self) -> float:
        committed = self.accepted_tokens + self.correction_tokens + self.bonus_tokens
        return committed / self.rounds if self.rounds else 0.0


@dataclasses.dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A piece of streamed output. `decision` is set on the first and final chunks; usage, cost and
    timing on the final one (``final`` is True)."""

    text: str
    token_ids: tuple[int, ...]
    placement: str
    worker_id: str
    request_id: str = ""
    accepted_draft_tokens: int = 0  # TANDEM: this chunk's tokens drafted by the device and accepted
    final: bool = False
    finish_reason: str | None = None
    decision: Decision | None = None
    usage: Usage | None = None
    cloud_usd: float = 0.0
    device_energy_joules: float = 0.0
    target_forward_passes: int = 0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    tandem: TandemStats | None = None  # final chunk of a request that ran TANDEM rounds
    raw: inference_pb2.GenerateChunk | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def from_pb(cls, c: inference_pb2.GenerateChunk) -> Chunk:
        return cls(
            text=c.text,
            token_ids=tuple(c.token_ids),
            placement=PLACEMENT_NAMES.get(c.placement, "unspecified"),
            worker_id=c.worker_id,
            request_id=c.request_id,
            accepted_draft_tokens=c.accepted_draft_tokens,
            final=c.final,
            finish_reason=FINISH_NAMES.get(c.finish_reason),
            decision=Decision.from_pb(c.decision) if c.HasField("decision") else None,
            usage=Usage(c.usage.prompt_tokens, c.usage.completion_tokens) if c.final else None,
            cloud_usd=c.cost.cloud_usd,
            device_energy_joules=c.cost.device_energy_joules,
            target_forward_passes=c.cost.target_forward_passes,
            ttft_ms=c.timing.ttft_ms,
            total_ms=c.timing.total_ms,
            tandem=TandemStats.from_pb(c.tandem) if c.final and c.tandem.rounds else None,
            raw=c,
        )


@dataclasses.dataclass(frozen=True)
class Result:
    """A whole generation, collected from its chunks."""

    text: str
    token_ids: tuple[int, ...]
    placement: str  # placement of the final chunk
    placements: tuple[str, ...]  # every placement that produced tokens, in order of first use
    finish_reason: str | None
    decision: Decision | None
    usage: Usage
    cloud_usd: float
    device_energy_joules: float
    target_forward_passes: int
    ttft_ms: float
    total_ms: float
    chunks: int
    request_id: str = ""
    tandem: TandemStats | None = None  # set when TANDEM rounds ran

    @property
    def reason(self) -> str:
        """Why the router placed the request where it did."""
        return self.decision.reason if self.decision else ""

    @classmethod
    def collect(cls, chunks: list[Chunk]) -> Result:
        last = chunks[-1] if chunks else None
        placements: list[str] = []
        for c in chunks:
            if c.token_ids and c.placement not in placements:
                placements.append(c.placement)
        return cls(
            text="".join(c.text for c in chunks),
            token_ids=tuple(t for c in chunks for t in c.token_ids),
            placement=last.placement if last else "unspecified",
            placements=tuple(placements),
            finish_reason=last.finish_reason if last else None,
            decision=next((c.decision for c in reversed(chunks) if c.decision), None),
            usage=(last.usage if last and last.usage else Usage()),
            cloud_usd=last.cloud_usd if last else 0.0,
            device_energy_joules=last.device_energy_joules if last else 0.0,
            target_forward_passes=last.target_forward_passes if last else 0,
            ttft_ms=last.ttft_ms if last else 0.0,
            total_ms=last.total_ms if last else 0.0,
            chunks=len(chunks),
            request_id=last.request_id if last else "",
            tandem=last.tandem if last else None,
        )
