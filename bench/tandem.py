"""TANDEM vs CLOUD vs EDGE over emulated links, on the shipped pair or the smollm2 profile.

    .venv/bin/python bench/tandem.py                 # stdlib pair: 20 prompts × 128 tokens, RTT 0/10/30/80 ms
    .venv/bin/python bench/tandem.py --model smollm2 # SmolLM2 pair: 20 chat prompts × 96 tokens
    .venv/bin/python bench/tandem.py --prompts 4 --tokens 32 --rtts 0,30   # a quick look

Topology (all real processes on this machine): the client (the app, on the device) reaches the
router through a link emulator; the router reaches the edge worker through the edge worker's own
emulated link (both directions); the router and the cloud replica sit together (no emulation).
So CLOUD pays the round trip once per request, EDGE twice (the decision is the router's), and
TANDEM once plus once per draft/verify round.

Configurations: CLOUD, EDGE, TANDEM at fixed γ and adaptive γ, and (smollm2 by default) TANDEM with
greedy draft trees (--trees 3x2,4x2: the device drafts the top-3 or top-4 first tokens and the top-2
under each, a chain below; the replica verifies every path in one pass) with adaptive γ. The router's
policy (--policy) prices adaptive γ's rounds: latency alone (stdlib default) or the router's default
weights, which also price target passes and device energy (smollm2 default).

Per configuration and RTT: tokens per second (completion tokens / end-to-end time at the client),
time to first token, target forward passes per output token, acceptance, mean draft length,
overlap hits, and exact-match count against the target's greedy output (CLOUD's). Greedy decoding.
Where a TANDEM output differs from CLOUD's, the first differing position is re-scored on the target
(one uncached pass over the prompt and the common prefix) and the gap between its top two logits
reported: a difference is acceptable only at a near-tie (gap < 1e-4), where the verify pass's and the
single step's float rounding may order the two differently; anything else is a bug.
Prints JSON and a markdown table; writes both to bench/results/ (<name>.json, <name>.md).
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
from runtime.configfile import load  # noqa: E402
from runtime.llm.decoder import NEAR_TIE  # noqa: E402
from runtime.profiles import is_chat, profile_from_config  # noqa: E402
from runtime.prompts import CHAT_PROMPTS, CODE_PROMPTS  # noqa: E402
from stack.local_stack import LocalStack  # noqa: E402

# --policy latency: time alone prices a round (router.policy.predict.RoundPrices), so the adaptive γ is the
# fastest one, which is what it is measured against fixed draft lengths for. --policy default: the
# router's default weights, which also price target passes (cloud money) and device energy, so
# adaptive γ drafts longer for fewer passes (bench/policy.py measures that trade).
LATENCY_POLICY = """
[router.policy]
cost_weight = 0.0
latency_weight = 1.0
battery_weight = 0.0
"""
BENCH_POOL = """
[[cloud.pools]]
name = "gpu"
resource = "gpu"
replicas = 1
"""


# The 30-layer SmolLM2 target gets both cores (≈30 ms per step with 2 threads); the device keeps one.
SMOLLM2_POOL_THREADS = "threads = 2\n"


def configs(
    gammas: list[int], overlaps: tuple[bool, ...] = (False, True), trees: tuple[tuple[int, ...], ...] = ()
) -> list[dict]:
    """CLOUD, EDGE, then TANDEM with each overlap setting: a chain at each fixed γ and adaptive,
    and each draft tree (hints.draft_tree) with adaptive γ."""
    out = [
        {"name": "CLOUD", "kwargs": {"placement": "only_cloud"}},
        {"name": "EDGE", "kwargs": {"placement": "only_device"}},
    ]
    for overlap in overlaps:
        suffix = " +overlap" if overlap else ""
        for tree in ((1,),) + tuple(trees):
            shape = "" if tree == (1,) else " tree " + "×".join(map(str, tree))
            for g in (list(gammas) if tree == (1,) else []) + [0]:
                out.append(
                    {
                        "name": f"TANDEM {'adaptive' if g == 0 else f'γ={g}'}{shape}{suffix}",
                        "kwargs": {
                            "draft_length": g,
                            "overlap": overlap,
                            "placement": "prefer_tandem",
                            "draft_tree": tree,
                        },
                    }
                )
    return out


def tree_shapes(text: str) -> tuple[tuple[int, ...], ...]:
    """'3x2,4' → ((3, 2), (4,))."""
    return tuple(tuple(int(k) for k in part.split("x")) for part in text.split(",") if part)


def run_one(
    client: tandem.Client, prompt: str, tokens: int, device: str, kwargs: dict, chat: bool = False
) -> dict:
    t0 = time.perf_counter()
    first = None
    chunks = []
    ask = {"messages": [("user", prompt)]} if chat else {"prompt": prompt}
    for chunk in client.generate(**ask, max_new_tokens=tokens, device_id=device, **kwargs):
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
        raise SystemExit(
            f"{name}: the router placed runs as {wrong[0]}, not {want}; check the policy in the config"
        )
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
        "exact": (
            sum(r["tokens"] == ref for r, ref in zip(runs, reference)) if reference is not None else None
        ),
        "mismatches": [],  # filled by near_ties
        "prompts": len(runs),
        "fallbacks": sum(r["placements"] not in (["tandem"], ["cloud"], ["edge"]) for r in runs),
    }


def near_ties(rows: list[dict], runs: dict[str, list[dict]], prompts: list[str], profile, chat: bool) -> None:
    """For each TANDEM output that differs from CLOUD's: the first differing position and the target's
    top-two logit gap there (one uncached pass), into row["mismatches"]."""
    from runtime.llm.decoder import OnnxDecoder, divergence
    from runtime.llm.tokenizer import Tokenizer

    decoder = tok = None
    reference = [r["tokens"] for r in runs["CLOUD"]]
    for row in rows:
        if not row["config"].startswith("TANDEM"):
            continue
        for i, (r, ref) in enumerate(zip(runs[row["config"]], reference)):
            if r["tokens"] == ref:
                continue
            if decoder is None:
                decoder, tok = OnnxDecoder(profile.target, threads=2), Tokenizer(profile.tokenizer)
            context = tok.encode(tok.render_chat([("user", prompts[i])]) if chat else prompts[i])
            d = divergence(decoder, context, ref, r["tokens"])
            # equal up to the shorter one: a length difference (a stop) is not a near-tie
            row["mismatches"].append(
                dict(d, prompt=i)
                if d
                else {"prompt": i, "position": min(len(ref), len(r["tokens"])), "top2_gap": float("inf")}
            )


def table(rows: list[dict]) -> str:
    head = (
        "| RTT ms | configuration | tokens/s | TTFT p50 ms | target passes/token | cloud ms/token "
        "| acceptance | tokens/round | mean γ | overlap hits | exact |"
    )
    lines = [head, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['rtt_ms']:g} | {r['config']} | {r['tokens_per_s']:.0f} | {r['ttft_ms_p50']:.1f} | "
            f"{r['target_passes_per_token']:.3f} | {r.get('cloud_compute_ms_per_token', 0):.3f} | "
            f"{fmt(r['acceptance'], '.2f')} | {fmt(r['tokens_per_round'], '.2f')} | "
            f"{fmt(r['mean_gamma'], '.1f')} | {r['overlap_hits'] if r['tokens_per_round'] else '–'} | "
            f"{'–' if r['exact'] is None else str(r['exact']) + '/' + str(r['prompts'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model",
        help="model profile: stdlib (code) or smollm2 (chat); default: the config's [model], else stdlib",
    )
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--tokens", type=int, help="new tokens per request (default: 128 stdlib, 96 smollm2)")
    ap.add_argument("--rtts", default="0,10,30,80", help="round-trip times in ms, comma-separated")
    ap.add_argument(
        "--gammas", help="fixed draft lengths beside adaptive (default: 2,4,6,8 stdlib, 4 smollm2)"
    )
    ap.add_argument(
        "--trees",
        help="draft trees beside the chain, e.g. 3x2 (top-3, then top-2 under each: "
        "6 paths), with adaptive γ — comma-separated (default: none stdlib, 3x2,4x2 smollm2)",
    )
    ap.add_argument(
        "--overlap",
        choices=["both", "on"],
        help="TANDEM with overlap off and on, or on only (default: both stdlib, on smollm2)",
    )
    ap.add_argument(
        "--policy",
        choices=["latency", "default"],
        help="the router's policy weights, which price adaptive γ's rounds: latency alone, or the "
        "default weights (cost, latency, energy); default: latency stdlib, default smollm2",
    )
    ap.add_argument("--config", type=Path, help="Tandem config file (model profile, pools)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", help="output file stem (default: tandem, or tandem_<model>)")
    args = ap.parse_args(argv)
    if args.config and args.policy:
        ap.error("--policy sets the bench's own config; with --config, set [router.policy] there")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on kill
    data = load(args.config) if args.config else {}
    profile = profile_from_config(data, Path(data["__dir__"]) if "__dir__" in data else None, args.model)
    chat = is_chat(profile)
    stdlib = profile.name == "stdlib"
    args.tokens = args.tokens or (128 if stdlib else 96)
    args.gammas = args.gammas if args.gammas is not None else ("2,4,6,8" if stdlib else "4")
    trees = tree_shapes(args.trees if args.trees is not None else ("" if stdlib else "3x2,4x2"))
    overlaps = (False, True) if (args.overlap or ("both" if stdlib else "on")) == "both" else (True,)
    args.name = args.name or ("tandem" if stdlib else f"tandem_{profile.name}")
    rtts = [float(x) for x in args.rtts.split(",")]
    pool = CHAT_PROMPTS if chat else CODE_PROMPTS
    prompts = (pool * ((args.prompts + len(pool) - 1) // len(pool)))[: args.prompts]
    rows: list[dict] = []
    t_start = time.time()
    with LocalStack(
        args.config, progress=lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True), model=args.model
    ) as stack:
        if args.config is None:  # one pool: TANDEM is measured against the same replicas' CLOUD
            config = stack.workdir / "bench.toml"
            policy = args.policy or ("latency" if stdlib else "default")
            config.write_text(
                (LATENCY_POLICY if policy == "latency" else "")
                + BENCH_POOL
                + ("" if stdlib else SMOLLM2_POOL_THREADS)
            )
            stack.config = config
        stack.start_router()
        stack.start_cloud()
        for rtt in rtts:
            device = f"dev-rtt{rtt:g}"
            stack.start_edge(device, ["--link-delay-ms", str(rtt / 2)])
            stack.wait_fleet(edge=1, cloud=1)
            client_link = stack.start_link(device, stack.router_address, rtt / 2)
            with tandem.Client(
                client_link, timeout=600, root_certificates=stack.credentials.ca_bytes()
            ) as client:
                cfgs = configs([int(g) for g in args.gammas.split(",") if g], overlaps, trees)
                for cfg in cfgs:  # warm caches and the router's per-device estimates
                    run_one(client, prompts[0], 16, device, cfg["kwargs"], chat)
                # Side by side: every configuration runs on a prompt before the next prompt, so the
                # shared machine's slow spells fall on all of them alike.
                runs: dict[str, list[dict]] = {cfg["name"]: [] for cfg in cfgs}
                for i, p in enumerate(prompts):
                    for cfg in cfgs:
                        runs[cfg["name"]].append(run_one(client, p, args.tokens, device, cfg["kwargs"], chat))
                    print(
                        f"[bench] RTT {rtt:g} ms: prompt {i + 1}/{len(prompts)}", file=sys.stderr, flush=True
                    )
                reference = [r["tokens"] for r in runs["CLOUD"]]
                at_rtt = [
                    summarise(
                        cfg["name"], rtt, runs[cfg["name"]], None if cfg["name"] == "EDGE" else reference
                    )
                    for cfg in cfgs
                ]
                near_ties(at_rtt, runs, prompts, profile, chat)
                for cfg, row in zip(cfgs, at_rtt):
                    rows.append(row)
                    print(
                        f"[bench] RTT {rtt:g} ms {cfg['name']}: {row['tokens_per_s']:.0f} tok/s, "
                        f"{row['target_passes_per_token']:.3f} passes/token, exact {row['exact']}",
                        file=sys.stderr,
                        flush=True,
                    )
            stack.stop_component(f"link-{device}")
            stack.stop_component(f"edge-{device}")
    result = {
        "model": profile.name,
        "policy": None if args.config else policy,
        "prompts": args.prompts,
        "new_tokens": args.tokens,
        "rtts_ms": rtts,
        "rows": rows,
        "seconds": round(time.time() - t_start, 1),
        "figures": figures(rows),
    }
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
    gaps = [m["top2_gap"] for r in rows for m in r.get("mismatches", [])]
    out["mismatches"] = len(gaps)
    out["max_mismatch_gap"] = max(gaps) if gaps else None
    # the issue's rule: every difference from the target's greedy output is at a near-tie
    out["exact_or_near_tie"] = all(g < NEAR_TIE for g in gaps)
    for rtt in sorted({r["rtt_ms"] for r in rows}):
        at = {r["config"]: r for r in tandem_rows if r["rtt_ms"] == rtt}
        fixed = [r for n, r in at.items() if "adaptive" not in n]
        best = max(fixed, key=lambda r: r["tokens_per_s"]) if fixed else None
        adaptive = at.get("TANDEM adaptive +overlap") or at.get("TANDEM adaptive")
        trees = {n: r for n, r in at.items() if " tree " in n}
        cloud = next((r for r in rows if r["rtt_ms"] == rtt and r["config"] == "CLOUD"), None)
        gains = []
        for name, r in at.items():
            if name.endswith("+overlap") and name.replace(" +overlap", "") in at:
                gains.append(r["tokens_per_s"] / at[name.replace(" +overlap", "")]["tokens_per_s"])
        out["per_rtt"][f"{rtt:g}"] = {
            "best_fixed": best["config"] if best else None,
            "adaptive_vs_best_fixed": adaptive["tokens_per_s"] / best["tokens_per_s"]
            if best and adaptive
            else None,
            "adaptive_passes_per_token": adaptive["target_passes_per_token"] if adaptive else None,
            # draft trees (adaptive γ): the fewest target passes per token, and which tree
            "tree_passes_per_token": min(
                (r["target_passes_per_token"] for r in trees.values()), default=None
            ),
            "tree_acceptance": {n: r["acceptance"] for n, r in trees.items()},
            "overlap_gain_min": min(gains) if gains else None,
            "overlap_gain_max": max(gains) if gains else None,
            # cloud accelerator time per token, CLOUD ÷ TANDEM adaptive: the cost-efficiency gain
            "cloud_compute_saving": (
                cloud["cloud_compute_ms_per_token"] / adaptive["cloud_compute_ms_per_token"]
                if cloud and adaptive and adaptive.get("cloud_compute_ms_per_token")
                else None
            ),
        }
    return out


def figures_md(f: dict) -> str:
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    exact = (
        "Exact match on every prompt in every TANDEM configuration: "
        f"**{'yes' if f['exact_everywhere'] else 'NO'}**."
    )
    if f.get("mismatches"):
        exact += (
            f" {f['mismatches']} outputs differ from CLOUD's; at the first differing token the target's top "
            f"two logits are at most {f['max_mismatch_gap']:.2e} apart "
            f"({'every one a near-tie' if f['exact_or_near_tie'] else 'NOT all near-ties: a bug'})."
        )
    lines = [
        exact,
        "",
        "| RTT ms | best fixed γ | adaptive ÷ best fixed (tokens/s) | adaptive passes/token | "
        "adaptive tree passes/token (best) | cloud compute per token, CLOUD ÷ TANDEM "
        "| overlap gain (min–max) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rtt, v in f["per_rtt"].items():
        saving = v.get("cloud_compute_saving")
        gain = (
            "–"
            if v["overlap_gain_min"] is None
            else f"{v['overlap_gain_min']:.3f}–{v['overlap_gain_max']:.3f}"
        )
        lines.append(
            f"| {rtt} | {v['best_fixed'] or '–'} | {fmt(v['adaptive_vs_best_fixed'], '.3f')} | "
            f"{fmt(v['adaptive_passes_per_token'], '.3f')} | {fmt(v.get('tree_passes_per_token'), '.3f')} | "
            f"{'–' if saving is None else f'{saving:.2f}×'} | "
            f"{gain} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
