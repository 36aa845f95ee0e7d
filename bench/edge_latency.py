"""The router's added latency for a one-token EDGE request: over the device link, against the dialled path.

    .venv/bin/python bench/edge_latency.py                   # 1000 iterations after 50 warm-up ones (≈15 s)
    .venv/bin/python bench/edge_latency.py --iterations 100   # a quick look

A router and two edge workers run as real processes on this machine (no cloud pool: EDGE needs
none), with no emulated network (RTT 0): `dev-link` holds its device link to the router (the
default), `dev-dialled` listens on its own port and the router dials it. Each iteration makes three
calls, in an order that rotates from one iteration to the next so the shared machine's slow spells
fall on all three alike:

- (a) link: a one-token EDGE request (placement ONLY_DEVICE) through the router to `dev-link`;
- (b) dialled: the same through the router to `dev-dialled`;
- (c) direct: a Worker.Generate call for one token straight to `dev-dialled`'s port, over mutual
  TLS with the router's certificate and the device's credential (the worker admits the router alone).

Every call is a TLS gRPC stream read to its end, timed at the caller; the prompt, a short code line,
is the same for all (each call prefills it: no session is kept). Reports p50, p90 and p99 of each,
and the router's added latency per percentile: link (a) − (c) and dialled (b) − (c). Prints
progress to stderr, JSON and a markdown table to stdout, and writes bench/results/edge_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.local_stack import LocalStack  # noqa: E402
from tandem.v1 import common_pb2, worker_pb2, worker_pb2_grpc  # noqa: E402

PROMPT = "def add(a, b):\n    return"
KINDS = ("link", "dialled", "direct")
PERCENTILES = (50, 90, 99)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (linear interpolation between the closest ranks)."""
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def via_router(client, device: str) -> float:
    """One one-token EDGE request through the router to `device`; its time in ms."""
    t0 = time.perf_counter()
    chunks = list(
        client.generate(PROMPT, max_new_tokens=1, device_id=device, placement="only_device", timeout=30)
    )
    ms = (time.perf_counter() - t0) * 1e3
    made = [(c.placement, c.worker_id) for c in chunks if c.token_ids]
    if made != [("edge", device)]:
        raise SystemExit(f"expected one EDGE token from {device}, got {made!r}")
    return ms


def direct(stub: worker_pb2_grpc.WorkerStub) -> float:
    """One Worker.Generate call for one token, straight to the worker; its time in ms."""
    req = worker_pb2.WorkerGenerateRequest(
        session_id=f"bench-{uuid.uuid4().hex}",
        input=common_pb2.PromptInput(text=PROMPT),
        sampling=common_pb2.SamplingParams(max_new_tokens=1),
    )
    t0 = time.perf_counter()
    chunks = list(stub.Generate(req, timeout=30))
    ms = (time.perf_counter() - t0) * 1e3
    if sum(len(c.token_ids) for c in chunks) != 1:
        raise SystemExit(f"expected one token from the worker, got {chunks!r}")
    return ms


def summary(samples: dict[str, list[float]]) -> dict:
    out: dict = {"calls": {}, "added_ms": {}}
    for kind in KINDS:
        xs = samples[kind]
        out["calls"][kind] = {f"p{p}_ms": percentile(xs, p) for p in PERCENTILES} | {
            "mean_ms": statistics.fmean(xs),
            "n": len(xs),
        }
    for kind in ("link", "dialled"):
        out["added_ms"][kind] = {
            f"p{p}": out["calls"][kind][f"p{p}_ms"] - out["calls"]["direct"][f"p{p}_ms"] for p in PERCENTILES
        }
        # the added latency of the same iteration's pair of calls (a paired view, less noisy)
        diffs = [a - c for a, c in zip(samples[kind], samples["direct"])]
        out["added_ms"][kind]["paired_median"] = statistics.median(diffs)
    out["link_vs_dialled_added_p50_ms"] = out["added_ms"]["link"]["p50"] - out["added_ms"]["dialled"]["p50"]
    return out


def table(s: dict) -> str:
    c, a = s["calls"], s["added_ms"]
    lines = [
        "| call | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p99 ms "
        "| added, paired median ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "link": "(a) EDGE via the router, device link",
        "dialled": "(b) EDGE via the router, dialled device",
        "direct": "(c) Worker.Generate straight to the device",
    }
    for kind in KINDS:
        added = (
            f"{a[kind]['p50']:+.2f} | {a[kind]['p99']:+.2f} | {a[kind]['paired_median']:+.2f}"
            if kind in a
            else "– | – | –"
        )
        lines.append(
            f"| {names[kind]} | {c[kind]['p50_ms']:.2f} | {c[kind]['p90_ms']:.2f} | "
            f"{c[kind]['p99_ms']:.2f} | {c[kind]['mean_ms']:.2f} | {added} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=1000, help="measured iterations (three calls each)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured iterations first")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="edge_latency", help="output file stem")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on kill
    t_start = time.time()
    with LocalStack(progress=log) as stack:
        stack.start_router()
        stack.start_edge("dev-link")
        stack.start_edge("dev-dialled", ["--listen"])  # 127.0.0.1, a free port; mutual TLS
        members = stack.wait_fleet(edge=2, cloud=0)
        listening = next(m for m in members if m.info.worker_id == "dev-dialled")
        linked = next(m for m in members if m.info.worker_id == "dev-link")
        if listening.endpoint.startswith("link:") or not linked.endpoint.startswith("link:"):
            raise SystemExit(f"unexpected endpoints: {linked.endpoint!r}, {listening.endpoint!r}")
        log(f"dev-link at {linked.endpoint}, dev-dialled at {listening.endpoint}")
        samples: dict[str, list[float]] = {k: [] for k in KINDS}
        with stack.client(timeout=30) as client, stack.worker_channel(listening) as channel:
            stub = worker_pb2_grpc.WorkerStub(channel)
            calls = {
                "link": lambda: via_router(client, "dev-link"),
                "dialled": lambda: via_router(client, "dev-dialled"),
                "direct": lambda: direct(stub),
            }
            for i in range(args.warmup + args.iterations):
                order = KINDS[i % 3 :] + KINDS[: i % 3]  # rotated: no kind always first
                got = {kind: calls[kind]() for kind in order}
                if i >= args.warmup:
                    for kind in KINDS:
                        samples[kind].append(got[kind])
                if (i + 1) % 50 == 0:
                    log(f"iteration {i + 1}/{args.warmup + args.iterations}")
    s = summary(samples)
    result = {
        "prompt": PROMPT,
        "new_tokens": 1,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "rtt_ms": 0,
        "seconds": round(time.time() - t_start, 1),
        **s,
        "samples_ms": samples,
    }
    md = table(s) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(md)
    print(json.dumps({k: v for k, v in result.items() if k != "samples_ms"}, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
