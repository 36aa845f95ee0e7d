"""Device first: an app on the device calling its agent, against the same app calling the router.

    .venv/bin/python bench/device_first.py                  # stdlib: 12 prompts × 64 tokens, RTT 0/10/30/80
    .venv/bin/python bench/device_first.py --model smollm2  # the SmolLM2 pair (chat prompts)
    .venv/bin/python bench/device_first.py --prompts 2 --tokens 16 --rtts 0,30   # a quick look

A local stack (router, one cloud pool on Ray Serve, TLS everywhere) and, per RTT, one device
behind an emulated link of that round trip (`--link-delay-ms` RTT/2), serving its apps on a
loopback port. The app is on the device, so its own way to the router crosses the same network: a
link emulator of the same delay in front of the router. Per prompt, alternating the order:

- EDGE: app → device (the agent decides and generates; nothing crosses the link) against app →
  router → device (the router decides, then calls the device over its link): time to first token;
- TANDEM: driven from the device (drafting in process, verifying on the router's broker) against
  driven by the router (drafts over the device's link): tokens/s, time to first token, target
  passes per token; and the device-driven output against CLOUD's (greedy: token for token).

Then, in this process (the link's bytes must be readable: plaintext, for this part alone), a router
and the device behind a capturing link emulator: the share of EDGE and LOCAL_ONLY requests any of
whose prompt or output bytes crossed the link.

Prints JSON and a markdown table; writes both to bench/results/ (device_first[_<model>].json, .md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tandem  # noqa: E402
from bench.tandem import BENCH_POOL, LATENCY_POLICY, SMOLLM2_POOL_THREADS  # noqa: E402
from runtime.profiles import ModelProfile, is_chat, profile_from_config  # noqa: E402
from runtime.prompts import CHAT_PROMPTS, CODE_PROMPTS  # noqa: E402
from stack.local_stack import LocalStack  # noqa: E402

PRIVACY_REQUESTS = 10  # of each kind (EDGE, LOCAL_ONLY) in the traffic check


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def timed(client: tandem.Client, ask: dict, tokens: int, **kwargs) -> dict:
    t0 = time.perf_counter()
    first, chunks = None, []
    for chunk in client.generate(**ask, max_new_tokens=tokens, **kwargs):
        if first is None and chunk.token_ids:
            first = time.perf_counter()
        chunks.append(chunk)
    end = time.perf_counter()
    r = tandem.Result.collect(chunks)
    n = max(len(r.token_ids), 1)
    return {
        "tokens": list(r.token_ids),
        "placements": list(r.placements),
        "decided_at": r.decision.decided_at if r.decision else "",
        "ttft_ms": ((first or end) - t0) * 1e3,
        "tokens_per_s": n / (end - t0),
        "passes_per_token": r.target_forward_passes / n,
    }


def ready(app: tandem.Client, timeout_s: float = 60.0) -> None:
    """Until the device holds a cloud view with the pool (it decides CLOUD)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            app.complete("ping", max_new_tokens=1, placement="only_cloud")
            return
        except (tandem.FailedPrecondition, tandem.Unavailable):
            if time.monotonic() > deadline:
                raise SystemExit("the device never held a cloud view with the pool") from None
            time.sleep(0.2)


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def measure(args, profile: ModelProfile, prompts: list[str], chat: bool) -> dict:
    out: dict = {"per_rtt": {}}
    with LocalStack(args.config, progress=progress, model=args.model) as stack:
        if args.config is None:
            config = stack.workdir / "bench.toml"
            stdlib = profile.name == "stdlib"
            config.write_text(LATENCY_POLICY + BENCH_POOL + ("" if stdlib else SMOLLM2_POOL_THREADS))
            stack.config = config
        stack.start_router()
        stack.start_cloud()
        for rtt in args.rtts:
            device = f"dev-rtt{rtt:g}"
            stack.start_edge(device, ["--link-delay-ms", str(rtt / 2)])
            stack.wait_fleet(edge=1, cloud=1)
            via = stack.start_link(f"app-rtt{rtt:g}", stack.router_address, rtt / 2)
            ca = stack.credentials.ca_bytes()
            rows: dict[str, list[dict]] = {
                k: [] for k in ("edge_device", "edge_router", "tandem_device", "tandem_router", "cloud")
            }
            exact = 0
            with (
                tandem.Client(stack.apps[device], timeout=600) as app,
                tandem.Client(via, timeout=600, root_certificates=ca) as routed,
            ):
                ready(app)
                for i, prompt in enumerate(prompts):
                    ask = {"messages": [("user", prompt)]} if chat else {"prompt": prompt}
                    progress(f"RTT {rtt:g} ms: prompt {i + 1}/{len(prompts)}")
                    runs = [
                        ("edge_device", app, {"placement": "only_device"}),
                        ("edge_router", routed, {"placement": "only_device", "device_id": device}),
                        ("tandem_device", app, {"placement": "prefer_tandem"}),
                        ("tandem_router", routed, {"placement": "prefer_tandem", "device_id": device}),
                    ]
                    for name, client, kwargs in runs if i % 2 == 0 else runs[::-1]:
                        rows[name].append(timed(client, ask, args.tokens, **kwargs))
                    cloud = timed(routed, ask, args.tokens, placement="only_cloud")
                    rows["cloud"].append(cloud)
                    exact += rows["tandem_device"][-1]["tokens"] == cloud["tokens"]
            for name in ("tandem_device", "tandem_router"):
                wrong = {p for r in rows[name] for p in r["placements"]} - {"tandem"}
                if wrong:
                    raise SystemExit(f"{name} at RTT {rtt:g}: placements {sorted(wrong)}, not TANDEM alone")
            assert all(r["decided_at"] == "device" for r in rows["tandem_device"] + rows["edge_device"])
            dev, rtr = rows["tandem_device"], rows["tandem_router"]
            out["per_rtt"][f"{rtt:g}"] = {
                "edge_ttft_ms_device": median(rows["edge_device"], "ttft_ms"),
                "edge_ttft_ms_router": median(rows["edge_router"], "ttft_ms"),
                "tandem_tokens_per_s_device": median(dev, "tokens_per_s"),
                "tandem_tokens_per_s_router": median(rtr, "tokens_per_s"),
                "tandem_ttft_ms_device": median(dev, "ttft_ms"),
                "tandem_ttft_ms_router": median(rtr, "ttft_ms"),
                "tandem_passes_per_token_device": median(dev, "passes_per_token"),
                "tandem_passes_per_token_router": median(rtr, "passes_per_token"),
                # per prompt, side by side: device-driven ÷ router-driven tokens/s
                "tandem_speed_ratio": statistics.median(
                    d["tokens_per_s"] / r["tokens_per_s"] for d, r in zip(dev, rtr)
                ),
                "tandem_exact": f"{exact}/{len(prompts)}",
            }
            stack.stop_component(f"edge-{device}")
            stack.stop_component(f"link-app-rtt{rtt:g}")
    return out


async def privacy_share(profile: ModelProfile, prompts: list[str], chat: bool, tokens: int) -> dict:
    """EDGE and LOCAL_ONLY requests whose prompt or output crossed the device's link: its traffic
    captured (plaintext, so it can be read) and searched for each request's bytes."""
    import tempfile

    from edge_worker.config import EdgeConfig
    from edge_worker.worker import EdgeWorker
    from router.config import RouterConfig
    from router.server import create_server
    from runtime.link_emulator import LinkEmulator, LinkProfile
    from stack.credentials import init_credentials

    with tempfile.TemporaryDirectory() as tmp:
        fleet = init_credentials(Path(tmp) / "credentials")
        router, _ = create_server(
            RouterConfig(
                port=0,
                metrics_port=-1,
                dashboard_port=-1,
                fleet_secret_file=fleet.secret_file,
                insecure=True,
                cloud_view_interval_ms=1000,
            )
        )
        await router.start()
        capture: list[tuple[str, bytes]] = []
        wire = await LinkEmulator(router.address, LinkProfile(), capture=capture).start()
        apps = f"unix://{tmp}/apps.sock"
        worker = EdgeWorker(
            EdgeConfig(
                device_id="phone",
                router=wire.address,
                token_file=fleet.device_token_file("phone"),
                insecure=True,
                apps=apps,
            ),
            profile,
        )
        await worker.start()
        leaked = {"edge": 0, "local_only": 0}
        try:
            async with tandem.AsyncClient(apps, timeout=120) as app:
                for kind in leaked:
                    hints = {"placement": "only_device"} if kind == "edge" else {"privacy": "local_only"}
                    for i in range(PRIVACY_REQUESTS):
                        marker = f"marker-{uuid.uuid4().hex[:12]} "
                        text = marker + prompts[i % len(prompts)]
                        ask = {"messages": [("user", text)]} if chat else {"prompt": text}
                        capture.clear()
                        r = await app.complete(**ask, max_new_tokens=tokens, **hints)
                        await asyncio.sleep(1.2)  # the usage report that follows is in the capture too
                        wire_bytes = b"".join(data for _, data in capture)
                        pieces = [r.text[j : j + 8] for j in range(0, max(len(r.text) - 8, 0), 8)]
                        if marker.encode() in wire_bytes or any(
                            p.strip() and p.encode() in wire_bytes for p in pieces
                        ):
                            leaked[kind] += 1
        finally:
            await worker.stop(0)
            await wire.stop()
            await router.stop(0)
    return {f"{k}_share_with_bytes_on_the_link": v / PRIVACY_REQUESTS for k, v in leaked.items()} | {
        "requests_each": PRIVACY_REQUESTS
    }


def markdown(result: dict) -> str:
    lines = [
        f"Device first ({result['model']}, {result['prompts']} prompts × {result['tokens']} tokens): "
        "an app on the device calling its agent, against the same app calling the router.",
        "",
        "| RTT ms | EDGE TTFT ms: app → device / app → router → device | TANDEM tok/s: device-driven / "
        "router-driven (per-prompt ratio) | TANDEM TTFT ms: device / router | target passes per token: "
        "device / router | device-driven TANDEM = CLOUD |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for rtt, v in result["per_rtt"].items():
        lines.append(
            f"| {rtt} | {v['edge_ttft_ms_device']:.1f} / {v['edge_ttft_ms_router']:.1f} | "
            f"{v['tandem_tokens_per_s_device']:.0f} / {v['tandem_tokens_per_s_router']:.0f} "
            f"({v['tandem_speed_ratio']:.3f}) | {v['tandem_ttft_ms_device']:.1f} / "
            f"{v['tandem_ttft_ms_router']:.1f} | {v['tandem_passes_per_token_device']:.3f} / "
            f"{v['tandem_passes_per_token_router']:.3f} | {v['tandem_exact']} |"
        )
    p = result["privacy"]
    lines += [
        "",
        f"EDGE and LOCAL_ONLY requests any of whose prompt or output bytes crossed the device's link "
        f"({p['requests_each']} each, the link's traffic captured): EDGE "
        f"{p['edge_share_with_bytes_on_the_link']:.0%}, "
        f"LOCAL_ONLY {p['local_only_share_with_bytes_on_the_link']:.0%}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", help="model profile: stdlib (code) or smollm2 (chat); default: the config's, else stdlib"
    )
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rtts", default="0,10,30,80", help="round-trip times in ms, comma-separated")
    ap.add_argument("--config", type=Path, help="Tandem config file (model profile, pools)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on kill
    from runtime.configfile import load

    data = load(args.config) if args.config else {}
    profile = profile_from_config(data, Path(data["__dir__"]) if "__dir__" in data else None, args.model)
    chat = is_chat(profile)
    args.rtts = [float(x) for x in args.rtts.split(",")]
    if len(set(args.rtts)) != len(args.rtts):
        ap.error("--rtts: each round-trip time once")
    pool = CHAT_PROMPTS if chat else CODE_PROMPTS
    prompts = (pool * ((args.prompts + len(pool) - 1) // len(pool)))[: args.prompts]
    t0 = time.time()
    result = {"model": profile.name, "prompts": len(prompts), "tokens": args.tokens}
    result |= measure(args, profile, prompts, chat)
    progress("the link's traffic for EDGE and LOCAL_ONLY requests")
    result["privacy"] = asyncio.run(privacy_share(profile, prompts, chat, min(args.tokens, 32)))
    result["seconds"] = round(time.time() - t0)
    name = "device_first" + ("" if profile.name == "stdlib" else f"_{profile.name}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (args.out / f"{name}.md").write_text(md + "\n")
    print(json.dumps(result, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
