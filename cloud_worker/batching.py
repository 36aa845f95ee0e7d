"""Batched target passes in a replica: concurrent Verify calls and CLOUD decode steps of different
sessions run as one padded forward pass (runtime.llm.runner.ModelRunner.logits_after_many).

Batches are formed by Ray Serve's ``@serve.batch`` over the calls arriving at the replica's own
gRPC server: up to `max_batch_size` passes, one batch on the model thread at a time (the next one
gathers meanwhile: under load each batch holds what arrived while the previous one ran). A pass
waits up to `wait_ms` for company while other sessions are active on the replica (one submitted
within ACTIVE_S); a lone session's pass goes straight to the model thread, as without batching.
`max_batch_size` 1 turns batching off. A pass that fails (its context does not fit, say) fails
alone: the others of its batch are served.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from ray import serve

from runtime.llm.runner import ForwardResult, ModelRunner, Pass

ACTIVE_S = 0.1  # a session that submitted a pass this recently is active


class PassBatcher:
    """``await batcher(pass)`` → that pass's ForwardResult, computed in a batch."""

    def __init__(
        self,
        runner: ModelRunner,
        run_on_model_thread: Callable[..., Awaitable],
        max_batch_size: int,
        wait_ms: float,
        observe_batch: Callable[[int], None] = lambda n: None,
    ) -> None:
        if max_batch_size < 1 or wait_ms < 0:
            raise ValueError("max_batch_size must be >= 1 and wait_ms >= 0")
        self.runner = runner
        self.run_on_model_thread = run_on_model_thread
        self.observe_batch = observe_batch
        self.max_batch_size = max_batch_size
        self.wait_s = wait_ms / 1e3
        self._wait_now = 0.0
        self._recent: dict[str, float] = {}  # session → when it last submitted a pass
        self._sizes = [0, 0]  # passes and batches since occupancy() was last read

        # two batches in flight: one computing on the model thread, the next gathered and queued
        # behind it while the first's sessions stream their results — the model thread never
        # waits for the event loop
        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=0.0, max_concurrent_batches=2)
        async def run_batch(passes: list[Pass]) -> list[ForwardResult | BaseException]:
            self.observe_batch(len(passes))
            self._sizes[0] += len(passes)
            self._sizes[1] += 1
            return await self.run_on_model_thread(run_all, self.runner, passes)

        self._run_batch = run_batch

    def occupancy(self) -> float:
        """Mean batch size ÷ max_batch_size since the last call (0 with no batches); resets."""
        passes, batches = self._sizes
        self._sizes = [0, 0]
        return passes / batches / self.max_batch_size if batches else 0.0

    def forget(self, session_id: str) -> None:
        """The session ended: it no longer counts as active (a pass of the next one need not wait)."""
        self._recent.pop(session_id, None)

    def joins_batch(self, session_id: str) -> bool:
        """Record that `session_id` submits a pass now; whether that pass goes to a batch, i.e. a
        session other than `session_id` submitted one within ACTIVE_S (and was not forgotten since)."""
        now = time.monotonic()
        self._recent[session_id] = now
        if len(self._recent) > 4 * self.max_batch_size:
            self._recent = {s: t for s, t in self._recent.items() if now - t < ACTIVE_S}
        return any(s != session_id and now - t < ACTIVE_S for s, t in self._recent.items())

    async def __call__(self, p: Pass) -> ForwardResult:
        if not self.joins_batch(p.session_id):  # alone: no batch to join, straight to the model
            self._sizes[0] += 1
            self._sizes[1] += 1
            self.observe_batch(1)
            return (await self.run_on_model_thread(self.runner.logits_after_many, [p]))[0]
        wait = self.wait_s
        if wait != self._wait_now:
            self._run_batch.set_batch_wait_timeout_s(wait)
            self._wait_now = wait
        out = await self._run_batch(p)
        if isinstance(out, BaseException):
            raise out
        return out


def run_all(runner: ModelRunner, passes: Sequence[Pass]) -> list[ForwardResult | BaseException]:
    """Every pass, in as few batched forward passes as the rule "a session once per pass" allows;
    a pass whose batch failed is retried alone, so an error is returned only for its own pass."""
    out: list[ForwardResult | BaseException | None] = [None] * len(passes)
    left = list(range(len(passes)))
    while left:
        seen: set[str] = set()
        now, later = [], []
        for i in left:
            (later if passes[i].session_id in seen else now).append(i)
            seen.add(passes[i].session_id)
        try:
            for i, r in zip(now, runner.logits_after_many([passes[i] for i in now])):
                out[i] = r
        except Exception:
            for i in now:
                try:
                    out[i] = runner.logits_after_many([passes[i]])[0]
                except Exception as exc:
                    out[i] = exc
        left = later
    return out  # type: ignore[return-value]
