"""The chunks a request streams back, whatever placement made its tokens: one builder.

:class:`ChunkBuilder` stamps provenance (placement and worker per chunk: a TANDEM request that lost
its device streams CLOUD chunks), puts the decision on the first and the final chunk, records
time to first token, inter-token latency and token metrics, and finishes the last chunk with its
finish reason, usage, timing and bill (and the bill's metrics). :class:`TextRenderer` turns
committed token ids into text with stop strings, for streams whose text the router renders itself
(TANDEM: the tokens come from several workers); EDGE and CLOUD workers render their own.
"""

from __future__ import annotations

import dataclasses
import time

from router.metrics import RouterMetrics
from runtime.llm.stopping import StopMatcher
from runtime.llm.tokenizer import Detokenizer, Tokenizer
from tandem.convert import FINISH_REASONS, PLACEMENTS
from tandem.v1 import common_pb2, inference_pb2


@dataclasses.dataclass
class Bill:
    """What a request cost: the cloud's money and accelerator time, the device's energy."""

    pool: str = ""  # the pool billed (empty: none)
    cloud_usd: float = 0.0
    cloud_compute_ms: float = 0.0
    target_passes: int = 0
    device_energy_j: float = 0.0


class TextRenderer:
    """Token ids → text deltas, with the request's stop strings and its token budget."""

    def __init__(self, tokenizer: Tokenizer, prompt: list[int], stop: tuple[str, ...], max_new: int) -> None:
        self.detok = Detokenizer(tokenizer, prompt)
        self.stops = StopMatcher(stop)
        self.max_new = max_new
        self.produced = 0

    def feed(self, tokens: list[int], eos: bool = False) -> tuple[str, str | None]:
        """The text `tokens` add, and why the request finished with them (None: it goes on)."""
        self.produced += len(tokens)
        text = self.stops.feed(self.detok.add(tokens))
        finish = None
        if eos:
            finish = "eos"
        elif self.stops.stopped:
            finish = "stop_string"
        elif self.produced >= self.max_new:
            finish = "length"
        if finish and finish != "stop_string":
            text += self.stops.feed(self.detok.flush()) + self.stops.flush()
        return text, finish


class ChunkBuilder:
    def __init__(
        self,
        request_id: str,
        decision_pb: common_pb2.Decision,
        metrics: RouterMetrics,
        t_start: float,
        t_decided: float,
    ) -> None:
        self.request_id = request_id
        self.decision_pb = decision_pb
        self.metrics = metrics
        self.t_start, self.t_decided = t_start, t_decided
        self.produced = 0
        self.first_at: float | None = None
        self.last_at = 0.0

    def chunk(
        self, tokens: list[int], text: str, placement: str, worker_id: str, accepted: int = 0
    ) -> inference_pb2.GenerateChunk:
        now = time.perf_counter()
        self.produced += len(tokens)
        out = inference_pb2.GenerateChunk(
            request_id=self.request_id,
            text=text,
            token_ids=tokens,
            placement=PLACEMENTS[placement],
            worker_id=worker_id,
            accepted_draft_tokens=accepted,
        )
        if self.first_at is None:
            self.first_at = now
            out.decision.CopyFrom(self.decision_pb)
            self.metrics.ttft.labels(placement).observe(now - self.t_start)
        elif tokens:
            self.metrics.token_latency.labels(placement).observe((now - self.last_at) / len(tokens))
        self.last_at = now
        self.metrics.tokens.labels(placement).inc(len(tokens))
        return out

    def finish(
        self, out: inference_pb2.GenerateChunk, finish_reason: str, prompt_tokens: int, bill: Bill
    ) -> inference_pb2.GenerateChunk:
        """Make `out` the final chunk: finish reason, usage, the decision, timing and the bill."""
        out.final = True
        out.finish_reason = FINISH_REASONS[finish_reason]
        out.usage.prompt_tokens = prompt_tokens
        out.usage.completion_tokens = self.produced
        out.decision.CopyFrom(self.decision_pb)
        assert self.first_at is not None
        out.timing.ttft_ms = self.ttft_ms
        out.timing.total_ms = (self.last_at - self.t_start) * 1e3
        out.timing.decision_ms = (self.t_decided - self.t_start) * 1e3
        out.cost.cloud_usd = bill.cloud_usd
        out.cost.cloud_compute_ms = bill.cloud_compute_ms
        out.cost.target_forward_passes = bill.target_passes
        out.cost.device_energy_joules = bill.device_energy_j
        if bill.pool:
            self.metrics.cloud_cost.labels(bill.pool).inc(bill.cloud_usd)
            self.metrics.pool_tokens.labels(bill.pool).inc(self.produced)
        self.metrics.device_energy.inc(bill.device_energy_j)
        return out

    @property
    def ttft_ms(self) -> float:
        return (self.first_at - self.t_start) * 1e3 if self.first_at is not None else 0.0

    @property
    def token_ms(self) -> float | None:
        """Mean time per token after the first (None: fewer than two tokens)."""
        if self.first_at is None or self.produced < 2:
            return None
        return (self.last_at - self.first_at) * 1e3 / (self.produced - 1)
