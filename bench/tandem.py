"""TANDEM vs CLOUD vs EDGE over emulated links, on the shipped pair (or a configured profile).

    .venv/bin/python bench/tandem.py                      # 20 prompts × 128 tokens, RTT 0/10/30/80 ms
    .venv/bin/python bench/tandem.py --prompts 4 --tokens 32 --rtts 0,30   # a quick look

Topology (all real processes on this machine): the client (the app, on the device) reaches the
router through a link emulator; the router reaches the edge worker through the edge worker's own
emulated link (both directions); the router and the cloud replica sit together (no emulation).
So CLOUD pays the round trip once per request, EDGE twice (the decision is the router's), and
TANDEM once plus once per draft/verify round.

Per configuration and RTT: tokens per second (completion tokens / end-to-end time at the client),
time to first token, target forward passes per output token, acceptance, mean draft length,
overlap hits, and exact-match count against the target's greedy output (CLOUD's). Greedy decoding.
Prints JSON and a markdown table; writes both to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tandem  # noqa: E402
from tandem.server.local_stack import LocalStack  # noqa: E402
from tandem.server.prompts import CODE_PROMPTS as PROMPTS  # noqa: E402



# Latency alone prices a round (router.predict.RoundPrices): the adaptive γ is then the fastest one,
# which is what it is measured against fixed draft lengths for. The default policy also prices target
# passes and device energy and drafts longer for fewer passes (bench/policy.py measures that trade).
BENCH_CONFIG = """
[router.policy]
cost_weight = 0.0
latency_weight = 1.0
battery_weight = 0.0

[[cloud.pools]]
name = "gpu"
accelerator = "gpu"
resource = "gpu"
replicas = 1
price_per_replica_hour_usd = 3.0
"""


def configs(gammas: list[int]) -> list[dict]:
    out = [{"name": "CLOUD", "kwargs": {"placement": "only_cloud"}},
           {"name": "EDGE", "kwargs": {"placement": "only_device"}}]
    for overlap in (False, True):
        suffix = " +overlap" if overlap else ""
        for g in gammas:
            out.append({"name": f"TANDEM γ={g}{suffix}",
                        "kwargs": {"draft_length": g, "overlap": overlap, "placement": "prefer_tandem"}})
        out.append({"name": f"TANDEM adaptive{suffix}",
                    "kwargs": {"draft_length": 0, "overlap": overlap, "placement": "prefer_tandem"}})
    return out


def run_one(client: tandem.Client, prompt: str, tokens: int, device: str, kwargs: dict) -> dict:
    t0 = time.perf_counter()
    first = None
    chunks = []
    for chunk in client.generate(prompt, max_new_tokens=tokens, device_id=device, **kwargs):
        if first is None and chunk.token_ids:
            first = time.perf_counter()
        chunks.append(chunk)
    end = time.perf_counter()
    r = tandem.Result.collect(chunks)
    stats = chunks[-1].raw.tandem
    return {
        "tokens": list(r.token_ids),
        "placements": list(r.placements),
        "seconds": end - t0,
        "ttft_ms": ((first or end) - t0) * 1e3,
        "target_passes": r.target_forward_passes,
        "cloud_compute_ms": chunks[-1].raw.cost.cloud_compute_ms,
        "cloud_usd": r.cloud_usd,
        "drafted": stats.drafted_tokens,
        "accepted": stats.accepted_tokens,
        "rounds": stats.rounds,
        "mean_gamma": stats.mean_draft_length,
        "overlap_hits": stats.overlap_hits,
        "overlap_misses": stats.overlap_misses,
    }


def summarise(name: str, rtt: float, runs: list[dict], reference: list[list[int]] | None) -> dict:
    want = name.split()[0].lower()
    wrong = [r["placements"] for r in runs if r["placements"] != [want]]
    if wrong:
        raise SystemExit(f"{name}: the router placed runs as {wrong[0]}, not {want}; check the policy in the config")
    tokens = sum(len(r["tokens"]) for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    drafted = sum(r["drafted"] for r in runs)
    rounds = sum(r["rounds"] for r in runs)
    return {
        "config": name,
        "rtt_ms": rtt,
        "tokens_per_s": tokens / seconds,
        "ttft_ms_p50": statistics.median(r["ttft_ms"] for r in runs),
        "target_passes_per_token": sum(r["target_passes"] for r in runs) / tokens,
        "cloud_compute_ms_per_token": sum(r["cloud_compute_ms"] for r in runs) / tokens,
        "acceptance": sum(r["accepted"] for r in runs) / drafted if drafted else None,
        "tokens_per_round": tokens / rounds if rounds else None,
        "mean_gamma": (sum(r["mean_gamma"] * r["rounds"] for r in runs) / rounds) if rounds else None,
        "overlap_hits": sum(r["overlap_hits"] for r in runs),
        "overlap_misses": sum(r["overlap_misses"] for r in runs),
        "exact": (sum(r["tokens"] == ref for r, ref in zip(runs, reference)) if reference is not None else None),
        "prompts": len(runs),
        "fallbacks": sum(r["placements"] not in (["tandem"], ["cloud"], ["edge"]) for r in runs),
    }


def table(rows: list[dict]) -> str:
    head = ("| RTT ms | configuration | tokens/s | TTFT p50 ms | target passes/token | cloud ms/token | acceptance | "
            "tokens/round | mean γ | overlap hits | exact |")
    lines = [head, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['rtt_ms']:g} | {r['config']} | {r['tokens_per_s']:.0f} | {r['ttft_ms_p50']:.1f} | "
            f"{r['target_passes_per_token']:.3f} | {r.get('cloud_compute_ms_per_token', 0):.3f} | "
            f"{fmt(r['acceptance'], '.2f')} | {fmt(r['tokens_per_round'], '.2f')} | "
            f"{fmt(r['mean_gamma'], '.1f')} | {r['overlap_hits'] if r['tokens_per_round'] else '–'} | "
            f"{'–' if r['exact'] is None else str(r['exact']) + '/' + str(r['prompts'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rtts", default="0,10,30,80", help="round-trip times in ms, comma-separated")
    ap.add_argument("--gammas", default="2,4,6,8")
    ap.add_argument("--config", type=Path, help="Tandem config file (model profile, pools)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="tandem", help="output file stem")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on kill
    rtts = [float(x) for x in args.rtts.split(",")]
    prompts = (PROMPTS * ((args.prompts + len(PROMPTS) - 1) // len(PROMPTS)))[: args.prompts]
    rows: list[dict] = []
    t_start = time.time()
    with LocalStack(args.config, progress=lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True)) as stack:
        if args.config is None:  # one pool: TANDEM is measured against the same replicas' CLOUD
            config = stack.workdir / "bench.toml"
            config.write_text(BENCH_CONFIG)
            stack.config = config
        stack.start_router()
        stack.start_cloud()
        for rtt in rtts:
            device = f"dev-rtt{rtt:g}"
            stack.start_edge(device, ["--link-delay-ms", str(rtt / 2)])
            stack.wait_fleet(edge=1, cloud=1)
            client_link = stack.start_link(device, stack.router_address, rtt / 2)
            with tandem.Client(client_link, timeout=600) as client:
                cfgs = configs([int(g) for g in args.gammas.split(",")])
                for cfg in cfgs:  # warm caches and the router's per-device estimates
                    run_one(client, prompts[0], 16, device, cfg["kwargs"])
                # Side by side: every configuration runs on a prompt before the next prompt, so the
                # shared machine's slow spells fall on all of them alike.
                runs: dict[str, list[dict]] = {cfg["name"]: [] for cfg in cfgs}
                for i, p in enumerate(prompts):
                    for cfg in cfgs:
                        runs[cfg["name"]].append(run_one(client, p, args.tokens, device, cfg["kwargs"]))
                    print(f"[bench] RTT {rtt:g} ms: prompt {i + 1}/{len(prompts)}", file=sys.stderr, flush=True)
                reference = [r["tokens"] for r in runs["CLOUD"]]
                for cfg in cfgs:
                    row = summarise(cfg["name"], rtt, runs[cfg["name"]], None if cfg["name"] == "EDGE" else reference)
                    rows.append(row)
                    print(f"[bench] RTT {rtt:g} ms {cfg['name']}: {row['tokens_per_s']:.0f} tok/s, "
                          f"{row['target_passes_per_token']:.3f} passes/token, exact {row['exact']}", file=sys.stderr,
                          flush=True)
            stack.stop_component(f"link-{device}")
            stack.stop_component(f"edge-{device}")
    result = {"prompts": args.prompts, "new_tokens": args.tokens, "rtts_ms": rtts, "rows": rows,
              "seconds": round(time.time() - t_start, 1), "figures": figures(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = table(rows) + "\n\n" + figures_md(result["figures"]) + "\n"
    (args.out / f"{args.name}.md").write_text(md)
    print(json.dumps(result["figures"], indent=2))
    print(md)
    return 0


def figures(rows: list[dict]) -> dict:
    """The issue's figures: exactness, passes/token at 30 ms, adaptive vs best fixed, overlap gain."""
    out: dict = {"per_rtt": {}}
    tandem_rows = [r for r in rows if r["config"].startswith("TANDEM")]
    out["exact_everywhere"] = all(r["exact"] == r["prompts"] for r in rows if r["exact"] is not None)
    for rtt in sorted({r["rtt_ms"] for r in rows}):
        at = {r["config"]: r for r in tandem_rows if r["rtt_ms"] == rtt}
        fixed = [r for n, r in at.items() if "adaptive" not in n]
        best = max(fixed, key=lambda r: r["tokens_per_s"]) if fixed else None
        adaptive = at.get("TANDEM adaptive +overlap") or at.get("TANDEM adaptive")
        cloud = next((r for r in rows if r["rtt_ms"] == rtt and r["config"] == "CLOUD"), None)
        gains = []
        for name, r in at.items():
            if name.endswith("+overlap") and name.replace(" +overlap", "") in at:
                gains.append(r["tokens_per_s"] / at[name.replace(" +overlap", "")]["tokens_per_s"])
        out["per_rtt"][f"{rtt:g}"] = {
            "best_fixed": best["config"] if best else None,
            "adaptive_vs_best_fixed": adaptive["tokens_per_s"] / best["tokens_per_s"] if best and adaptive else None,
            "adaptive_passes_per_token": adaptive["target_passes_per_token"] if adaptive else None,
            "overlap_gain_min": min(gains) if gains else None,
            "overlap_gain_max": max(gains) if gains else None,
            # cloud accelerator time per token, CLOUD ÷ TANDEM adaptive: the cost-efficiency gain
            "cloud_compute_saving": (cloud["cloud_compute_ms_per_token"] / adaptive["cloud_compute_ms_per_token"]
                                     if cloud and adaptive and adaptive.get("cloud_compute_ms_per_token") else None),
        }
    return out


def figures_md(f: dict) -> str:
    lines = [f"Exact match on every prompt in every TANDEM configuration: **{'yes' if f['exact_everywhere'] else 'NO'}**.", "",
             "| RTT ms | best fixed γ | adaptive ÷ best fixed (tokens/s) | adaptive passes/token | "
             "cloud compute per token, CLOUD ÷ TANDEM | overlap gain (min–max) |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for rtt, v in f["per_rtt"].items():
        saving = v.get("cloud_compute_saving")
        lines.append(f"| {rtt} | {v['best_fixed']} | {v['adaptive_vs_best_fixed']:.3f} | "
                     f"{v['adaptive_passes_per_token']:.3f} | {'–' if saving is None else f'{saving:.2f}×'} | "
                     f"{v['overlap_gain_min']:.3f}–{v['overlap_gain_max']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
