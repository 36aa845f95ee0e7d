"""A cloud replica under concurrent sessions: CLOUD decoding vs TANDEM verification, batching on vs off.

    .venv/bin/python bench/cloud.py                                   # 1, 4, 16, 32 sessions
    .venv/bin/python bench/cloud.py --sessions 1,16 --tokens 32       # a quick look

Two pools of one replica each run on a local Ray Serve, the shipped target in both: `batched`
(Verify rounds and decode steps of different sessions gathered into one forward pass, up to 16,
waiting up to 2 ms for company while other sessions are active) and `unbatched` (every pass
alone). Per concurrency, every (mode, pool) pair runs back to back, --repeat times interleaved,
and the best run of each is reported (all runs are in the JSON): the figures are ratios measured
side by side on this noisy machine.

- CLOUD decoding: each session is one Worker.Generate stream of --tokens greedy tokens.
- TANDEM verification: each session replays, round by round on one VerifyStream (as the router
  sends them), the rounds of a real TANDEM session — drafted by the shipped draft with
  γ = --gamma, computed in this process before the measurement so the replica's work is exactly
  a real session's — and checks every verdict against the trace (exactness). The device's
  drafting and link are not on the clock: this measures what the pool serves.

N concurrent sessions means N clients, each running session after session until every prompt of
the shared set ran at least once (so one session's figures are not one prompt's). Figures:
committed tokens per replica-second (all sessions' tokens ÷ wall time), per-token latency
p50/p99 (a CLOUD chunk's gap; a round's time ÷ the tokens it committed), and the batch sizes the
replica formed (its tandem_worker_batch_size histogram). Prints progress to stderr, JSON and a
markdown table to stdout, and writes bench/results/cloud.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.traces import VerifyCall, greedy_tandem_trace  # noqa: E402
from runtime.llm.decoder import OnnxDecoder  # noqa: E402
from runtime.llm.runner import ModelRunner  # noqa: E402
from runtime.llm.tokenizer import Tokenizer  # noqa: E402
from runtime.profiles import ModelProfile  # noqa: E402
from runtime.prompts import CODE_PROMPTS as PROMPTS  # noqa: E402
from stack.local_stack import LocalStack  # noqa: E402
from tandem.v1 import common_pb2, worker_pb2, worker_pb2_grpc  # noqa: E402

POOLS = ("batched", "unbatched")
CONFIG = """
[[router.pools]]
name = "batched"
accelerator = "cpu"

[[router.pools]]
name = "unbatched"
accelerator = "cpu"

[[cloud.pools]]
name = "batched"
resource = ""
replicas = 1
num_cpus = 0.5
max_batch_size = 16
batch_wait_ms = 2.0
max_inflight = 256

[[cloud.pools]]
name = "unbatched"
resource = ""
replicas = 1
num_cpus = 0.5
max_batch_size = 1
max_inflight = 256
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def batch_histogram(metrics_port: int) -> dict[str, float]:
    """The replica's tandem_worker_batch_size buckets (cumulative counts by upper bound)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("tandem_worker_batch_size_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = float(line.rsplit(" ", 1)[1])
    return out


def batch_sizes(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Batches formed between two scrapes of the cumulative histogram, by size range ("1", "3–4", "65+")."""
    out, below, lo = {}, 0.0, 1
    for key in sorted(after, key=float):  # "1.0", "2.0", …, "+Inf" (float() reads all of them)
        cumulative = after[key] - before.get(key, 0.0)
        hi = float(key)
        label = f"{lo}+" if hi == float("inf") else f"{lo}" if hi == lo else f"{lo}–{int(hi)}"
        if cumulative > below:
            out[label] = int(cumulative - below)
        below, lo = cumulative, int(hi) + 1 if hi != float("inf") else lo
    return out


async def cloud_session(stub, sid: str, prompt: list[int], n: int, gaps: list[float]) -> int:
    req = worker_pb2.WorkerGenerateRequest(
        session_id=sid,
        input=common_pb2.PromptInput(token_ids=prompt),
        sampling=common_pb2.SamplingParams(max_new_tokens=n),
    )
    produced, last = 0, None
    async for chunk in stub.Generate(req, timeout=600):
        now = time.perf_counter()
        if last is not None and chunk.token_ids:
            gaps.append((now - last) * 1e3 / len(chunk.token_ids))
        last = now
        produced += len(chunk.token_ids)
    return produced


async def tandem_session(stub, sid: str, rounds: list[VerifyCall], gaps: list[float]) -> int:
    """Replays a session's rounds on one VerifyStream, as the router sends them."""
    committed = 0
    stream = stub.VerifyStream(timeout=600)
    for k, r in enumerate(rounds):
        t0 = time.perf_counter()
        await stream.write(
            worker_pb2.VerifyStreamRequest(
                session_id=sid, context=r.context if k == 0 else (), draft_token_ids=r.drafted
            )
        )
        v = await stream.read()
        if v is grpc.aio.EOF or (v.accepted, v.next_token_id) != (r.accepted, r.next_token):
            raise AssertionError(f"{sid}: verdict {v} != the target's {(r.accepted, r.next_token)}")
        gaps.append((time.perf_counter() - t0) * 1e3 / (v.accepted + 1))
        committed += v.accepted + 1
    await stream.done_writing()  # which releases the session's cache
    return committed


async def run(
    open_channel: Callable[[], grpc.aio.Channel],
    mode: str,
    sessions: int,
    prompts: list[list[int]],
    traces: list[list[VerifyCall]],
    n: int,
    tag: str,
) -> dict:
    """`sessions` concurrent sessions on a replica (`open_channel`: the router's way to it), each
    running session after session over the prompt set until every prompt ran at least once (so
    that one session's figures are not one prompt's)."""
    total = -(-max(sessions, len(prompts)) // sessions) * sessions
    async with open_channel() as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)
        gaps: list[float] = []

        async def worker(w: int) -> int:
            tokens = 0
            for i in range(w, total, sessions):
                if mode == "cloud":
                    tokens += await cloud_session(stub, f"{tag}-{i}", prompts[i % len(prompts)], n, gaps)
                else:
                    tokens += await tandem_session(stub, f"{tag}-{i}", traces[i % len(traces)], gaps)
            return tokens

        t0 = time.perf_counter()
        tokens = sum(await asyncio.gather(*[worker(w) for w in range(sessions)]))
        wall = time.perf_counter() - t0
    gaps.sort()
    return {
        "sessions_run": total,
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_replica_s": round(tokens / wall, 1),
        "token_ms_p50": round(statistics.median(gaps), 3) if gaps else None,
        "token_ms_p99": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], 3) if gaps else None,
    }


def markdown(rows: list[dict], figures: dict, header: str) -> str:
    lines = [
        header,
        "",
        "| sessions | mode | batching | committed tok/replica-s | token ms p50 | token ms p99 "
        "| batches by size |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        sizes = ", ".join(f"{k}: {v}" for k, v in r["batch_sizes"].items()) or "—"
        lines.append(
            f"| {r['sessions']} | {r['mode'].upper()} | {'on' if r['pool'] == 'batched' else 'off'} "
            f"| {r['tokens_per_replica_s']:.0f} | {r['token_ms_p50']:.2f} | {r['token_ms_p99']:.2f} "
            f"| {sizes} |"
        )
    lines += [
        "",
        "| sessions | CLOUD batching on ÷ off | TANDEM batching on ÷ off | TANDEM ÷ CLOUD (both batched) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for s, f in figures["by_sessions"].items():
        lines.append(
            f"| {s} | {f['cloud_batching_gain']:.2f}× | {f['tandem_batching_gain']:.2f}× "
            f"| {f['tandem_over_cloud']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="1,4,16,32")
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per session")
    ap.add_argument("--gamma", type=int, default=4, help="draft length of the TANDEM traces")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each configuration (the best is reported)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.sessions.split(",")]
    wall = time.perf_counter()

    profile = ModelProfile()
    tok = Tokenizer(profile.tokenizer)
    target, draft = (
        ModelRunner(OnnxDecoder(profile.target), tok),
        ModelRunner(OnnxDecoder(profile.draft), tok),
    )
    prompts = [target.prompt_ids(text=p) for p in PROMPTS]
    log(
        f"tracing {len(prompts)} TANDEM sessions (γ = {args.gamma}, {args.tokens} tokens) "
        "with the shipped pair"
    )
    traces = [greedy_tandem_trace(target, draft, p, args.tokens, args.gamma) for p in prompts]
    accepted = sum(r.accepted for t in traces for r in t)
    drafted = sum(len(r.drafted) for t in traces for r in t)
    passes = sum(len(t) for t in traces)
    del target, draft

    rows, runs = [], []  # rows: the best of each (sessions, mode, pool)'s repeats
    with LocalStack(progress=log) as stack:
        config = stack.workdir / "cloud-bench.toml"
        config.write_text(CONFIG)
        stack.config = config
        stack.start_router()
        stack.start_cloud()
        members = stack.wait_fleet(edge=0, cloud=2)
        replicas = {m.info.pool: m for m in members if m.info.pool in POOLS}
        for s in levels:
            for rep in range(args.repeat):  # interleaved: each repeat runs every (mode, pool) once
                for mode in ("cloud", "tandem"):
                    for pool in POOLS:
                        m = replicas[pool]
                        before = batch_histogram(m.info.metrics_port)
                        r = asyncio.run(
                            run(
                                lambda m=m: stack.worker_channel(m, aio=True),
                                mode,
                                s,
                                prompts,
                                traces,
                                args.tokens,
                                f"{mode}-{pool}-{s}-{rep}",
                            )
                        )
                        r.update(
                            sessions=s,
                            mode=mode,
                            pool=pool,
                            repeat=rep,
                            batch_sizes=batch_sizes(before, batch_histogram(m.info.metrics_port)),
                        )
                        runs.append(r)
                        log(
                            f"{s} sessions, {mode.upper()}, batching {'on' if pool == 'batched' else 'off'} "
                            f"(run {rep + 1}/{args.repeat}): {r['tokens_per_replica_s']:.0f} tok/s, "
                            f"p50 {r['token_ms_p50']} ms/token"
                        )
                for mode in ("cloud", "tandem"):
                    for pool in POOLS:
                        mine = [r for r in runs if (r["sessions"], r["mode"], r["pool"]) == (s, mode, pool)]
                        if len(mine) == args.repeat:
                            rows.append(max(mine, key=lambda r: r["tokens_per_replica_s"]))
        rows.sort(key=lambda r: (r["sessions"], r["mode"], POOLS.index(r["pool"])))

    def rate(s, mode, pool):
        return next(
            r["tokens_per_replica_s"]
            for r in rows
            if (r["sessions"], r["mode"], r["pool"]) == (s, mode, pool)
        )

    by = {
        s: {
            "cloud_batching_gain": round(rate(s, "cloud", "batched") / rate(s, "cloud", "unbatched"), 3),
            "tandem_batching_gain": round(rate(s, "tandem", "batched") / rate(s, "tandem", "unbatched"), 3),
            "tandem_over_cloud": round(rate(s, "tandem", "batched") / rate(s, "cloud", "batched"), 3),
        }
        for s in levels
    }
    figures = {
        "by_sessions": by,
        "trace_acceptance": round(accepted / drafted, 3) if drafted else 0.0,
        # the tokens the sessions asked for over the passes that produced them
        "trace_tokens_per_pass": round(len(traces) * args.tokens / passes, 3),
    }
    result = {
        "tokens_per_session": args.tokens,
        "gamma": args.gamma,
        "repeat": args.repeat,
        "rows": rows,
        "runs": runs,
        "figures": figures,
        "wall_s": round(time.perf_counter() - wall, 1),
    }
    header = (
        f"One replica of the shipped target per pool; {args.tokens} new tokens per session; TANDEM traces "
        f"drafted by the shipped draft with γ = {args.gamma} (acceptance {figures['trace_acceptance']:.2f}, "
        f"{figures['trace_tokens_per_pass']:.2f} tokens per target pass)."
    )
    md = markdown(rows, figures, header)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cloud.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "cloud.md").write_text(md)
    print(json.dumps(result, indent=2))
    print()
    print(md, end="")
    log(f"wrote {out / 'cloud.json'} and {out / 'cloud.md'} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
