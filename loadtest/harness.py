"""The open-loop load generator: sends a scenario's requests on their schedule through the SDK and
records each one (loadtest.records), while sampling the fleet's state from the router.

Sending never waits for answers: each request is its own task, started at its scheduled time (a
concurrency cap makes it wait for a slot, and that wait counts in its latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sys
import time
from collections.abc import Callable, Sequence

import grpc

import tandem
from loadtest.arrivals import schedule
from loadtest.records import RequestRecord, percentile
from loadtest.scenario import HintMix, Scenario
from runtime.tls import open_channel
from tandem.client import tls_credentials
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2


@dataclasses.dataclass(frozen=True)
class Planned:
    index: int
    at_s: float
    prompt: str
    max_new_tokens: int
    hints: HintMix
    device_id: str
    from_device: bool = False  # sent by an app on the device to its agent, not to the router


def plan(scenario: Scenario, rate: float, prompts: Sequence[str], device_ids: Sequence[str]) -> list[Planned]:
    """Every request of one run at `rate`, drawn from the scenario's seed (pure)."""
    rng = random.Random(f"{scenario.seed}-{rate}")
    a = scenario.arrivals
    times = schedule(a.process, rate, a.duration_s, a.max_requests, a.burstiness, rng)
    weights = [h.weight for h in scenario.hints]
    out = []
    for i, t in enumerate(times):
        h = rng.choices(scenario.hints, weights)[0]
        device = rng.choice(device_ids) if device_ids and h.on_device else ""
        local = bool(device) and rng.random() < scenario.requests.from_device
        out.append(
            Planned(
                i,
                t,
                prompts[i % len(prompts)],
                rng.choice(scenario.requests.max_new_tokens),
                h,
                device,
                local,
            )
        )
    return out


class Progress:
    """A live status line on stderr: a bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, duration_s: float, label: str, stream=sys.stderr) -> None:
        self.total, self.duration_s, self.label, self.stream = total, duration_s, label, stream
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, elapsed_s: float, sent: int, done: list[RequestRecord], final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.25 if self.tty else 5.0):
            return
        self._last = now
        errors = sum(not r.ok for r in done)
        ttft = percentile([r.ttft_ms for r in done if r.ttft_ms is not None], 50)
        width = 24
        filled = int(width * min(1.0, sent / self.total)) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"[loadtest] {self.label} [{bar}] {elapsed_s:5.1f}/{self.duration_s:.0f} s"
            f"  sent {sent}/{self.total}"
            f"  done {len(done)}  errors {errors}  TTFT p50 {'—' if ttft is None else f'{ttft:.0f} ms'}"
            f"  {len(done) / elapsed_s if elapsed_s > 0 else 0:.1f} req/s"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _tightest(*slos: float) -> float:
    """The tightest of the SLOs that are set (0: none is)."""
    return min((x for x in slos if x), default=0.0)


async def _one(
    client: tandem.AsyncClient, p: Planned, scenario: Scenario, t0: float, slots: asyncio.Semaphore | None
) -> RequestRecord:
    slo = scenario.slo
    rec = RequestRecord(
        p.index,
        p.hints.name,
        p.device_id,
        p.max_new_tokens,
        p.at_s,
        ttft_slo_ms=_tightest(p.hints.ttft_slo_ms, slo.ttft_ms),
        token_slo_ms=_tightest(p.hints.token_slo_ms, slo.token_ms),
        placement_hint=p.hints.placement,
        privacy=p.hints.privacy,
        quality=p.hints.quality,
        prompt_chars=len(p.prompt),
    )
    h = p.hints
    kwargs = dict(
        max_new_tokens=p.max_new_tokens,
        temperature=scenario.requests.temperature,
        placement=h.placement,
        device_id=p.device_id,
        privacy=h.privacy,
        quality=h.quality,
        ttft_slo_ms=h.ttft_slo_ms,
        token_slo_ms=h.token_slo_ms,
        max_cost_usd=h.max_cost_usd,
        timeout=scenario.requests.timeout_s,
    )
    try:
        if slots:
            await slots.acquire()
        rec.sent_s = time.perf_counter() - t0
        last = None
        chunks = []
        async for chunk in client.generate(p.prompt, **kwargs):
            now = time.perf_counter() - t0
            if chunk.token_ids:
                if rec.first_token_s is None:
                    rec.first_token_s = now
                elif last is not None:
                    rec.itl_ms.append((now - last) * 1e3)
                    rec.token_ms.append(rec.itl_ms[-1] / len(chunk.token_ids))
                last = now
            chunks.append(chunk)
        result = tandem.Result.collect(chunks)
        rec.placement, rec.placements = result.placement, list(result.placements)
        rec.pool = result.decision.pool if result.decision else ""
        rec.decided_at = result.decision.decided_at if result.decision else ""
        rec.reason = result.reason
        rec.tokens, rec.prompt_tokens, rec.chunks = (
            len(result.token_ids),
            result.usage.prompt_tokens,
            result.chunks,
        )
        rec.cost_usd, rec.device_energy_j = result.cloud_usd, result.device_energy_joules
        if result.tandem:
            rec.tandem_rounds, rec.tandem_acceptance = result.tandem.rounds, result.tandem.acceptance_rate
    except tandem.TandemError as exc:
        rec.status, rec.error = exc.status, str(exc)
    except asyncio.CancelledError:
        rec.status, rec.error = "CANCELLED", "still running when the run's drain time ended"
    finally:
        if slots:
            slots.release()
        rec.end_s = time.perf_counter() - t0
        if not rec.sent_s:
            rec.sent_s = rec.end_s
    return rec


async def run(
    target: str,
    scenario: Scenario,
    planned: Sequence[Planned],
    label: str,
    credentials: dict | None = None,
    on_sample: Callable[[float, list], None] = lambda t, m: None,
    sample_every_s: float = 1.0,
    apps: dict[str, str] | None = None,
) -> list[RequestRecord]:
    """Send `planned` to the router at `target` on schedule (`credentials`: tandem.AsyncClient's
    keyword arguments — api_key, tls, root_certificates); returns one record per request, in
    order. A request planned `from_device` goes to its device's agent instead, at `apps[device]`
    (a local address: no credentials), as an app on the device would send it. Samples ListFleet
    every `sample_every_s` into `on_sample(t, members)`."""
    a = scenario.arrivals
    slots = asyncio.Semaphore(a.concurrency) if a.concurrency else None
    progress = Progress(len(planned), a.duration_s, label)
    done: list[RequestRecord] = []
    opts = dict(credentials or {})
    tls = tls_credentials(opts.get("tls", False), opts.get("root_certificates"), None)
    agents = {
        device: tandem.AsyncClient(address, retries=scenario.requests.retries)
        for device, address in (apps or {}).items()
        if any(p.from_device and p.device_id == device for p in planned)
    }
    missing = {p.device_id for p in planned if p.from_device} - set(agents)
    if missing:
        raise ValueError(f"requests planned from devices that serve no apps: {sorted(missing)[:5]}")
    async with (
        tandem.AsyncClient(target, retries=scenario.requests.retries, **opts) as client,
        open_channel(target, tls) as admin_channel,
        contextlib.AsyncExitStack() as stack,
    ):
        for agent in agents.values():
            await stack.enter_async_context(agent)
        admin = admin_pb2_grpc.AdminStub(admin_channel)
        t0 = time.perf_counter() + 0.05  # a moment to set up before the first send

        async def sample() -> None:
            while True:
                try:
                    resp = await admin.ListFleet(
                        admin_pb2.ListFleetRequest(kind=common_pb2.WORKER_KIND_EDGE), timeout=2
                    )
                    on_sample(time.perf_counter() - t0, list(resp.members))
                except grpc.RpcError:
                    pass
                await asyncio.sleep(sample_every_s)

        sampler = asyncio.create_task(sample())
        tasks: list[asyncio.Task] = []
        for p in planned:
            delay = t0 + p.at_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            via = agents[p.device_id] if p.from_device else client
            task = asyncio.create_task(_one(via, p, scenario, t0, slots))
            task.add_done_callback(lambda t: done.append(t.result()) if not t.cancelled() else None)
            tasks.append(task)
            progress.update(time.perf_counter() - t0, len(tasks), done)
        drain_end = time.perf_counter() + a.drain_s
        while any(not t.done() for t in tasks) and time.perf_counter() < drain_end:
            await asyncio.wait([t for t in tasks if not t.done()], timeout=0.25)
            progress.update(time.perf_counter() - t0, len(tasks), done)
        for t in tasks:
            t.cancel()
        records = []
        for p, t in zip(planned, tasks):
            try:
                records.append(await t)
            except asyncio.CancelledError:  # cancelled before it ever ran
                records.append(
                    RequestRecord(
                        p.index,
                        p.hints.name,
                        p.device_id,
                        p.max_new_tokens,
                        p.at_s,
                        status="CANCELLED",
                        error="never started",
                    )
                )
        sampler.cancel()
        progress.update(time.perf_counter() - t0, len(tasks), records, final=True)
    return records
