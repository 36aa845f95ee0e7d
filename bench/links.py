"""How many idle devices one router holds on their links, at what memory and heartbeat CPU.

    .venv/bin/python bench/links.py                          # 10,000 light devices in 4 steps (≈5 minutes)
    .venv/bin/python bench/links.py --devices 2000 --procs 2 --window 10   # a quick look
    .venv/bin/python bench/links.py --devices 2000 --procs 2 --chatty --name links_chatty
                                                # telemetry and a ping every heartbeat, for comparison

A real router process (TLS, fleet secret, default 1 s heartbeat interval) and `--procs` processes of
light devices (`tandem devices --light`: no model; each device its own TCP connection, TLS session
and credential, on its own device link; it sends telemetry every heartbeat interval, answers the
router's pings, and answers Describe). The devices join a process at a time; after each step, once
the router's `tandem_device_links` gauge shows them all and a settling pause, the router's resident
memory is read and its CPU time is measured over `--window` seconds: its share of one core is
the cost of holding that many idle devices (telemetry in, a ping out and its pong in, per device per
interval). Memory per device is the growth over the router with no devices, divided by the count.
At the last step `Admin.PingMember` asks a sample of devices to describe themselves, through the
router and over their links (the trivial call), and its round trip is reported.

The device processes share this machine's two cores with the router, so the figures are an upper
bound for the router's own cost. Prints JSON and a markdown table; writes bench/results/links.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from router.config import RouterConfig  # noqa: E402
from stack.local_stack import LocalStack  # noqa: E402
from tandem.admin import AdminClient  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def scrape(port: int, name: str) -> float:
    """One unlabelled sample of the router's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise KeyError(name)


def wait_links(port: int, n: int, timeout_s: float) -> float:
    """Seconds until the router counts `n` links."""
    t0 = time.monotonic()
    while (have := scrape(port, "tandem_device_links")) < n:
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"only {have:.0f} of {n} devices linked after {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - t0


def measure(proc: psutil.Process, window_s: float) -> dict:
    """The process's resident memory now and its CPU share (of one core) over `window_s`."""
    c0, t0 = proc.cpu_times(), time.monotonic()
    time.sleep(window_s)
    c1, t1 = proc.cpu_times(), time.monotonic()
    busy = (c1.user + c1.system) - (c0.user + c0.system)
    return {"rss_mib": proc.memory_info().rss / 2**20, "cpu_share": busy / (t1 - t0)}


def ping_sample(stack: LocalStack, ids: list[str], admin_token: str) -> dict:
    ms = []
    with AdminClient(
        stack.router_address, root_certificates=stack.credentials.ca_bytes(), admin_token=admin_token
    ) as admin:
        for device_id in ids:
            r = admin.ping_member(device_id, timeout_ms=10_000)
            ms.append(r.round_trip_ms)
    ms.sort()
    return {
        "calls": len(ms),
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
    }


def table(result: dict) -> str:
    lines = [
        "| devices linked | router RSS MiB | memory per device KiB | router CPU (share of one core) "
        "| CPU per 1,000 devices | link time s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in result["steps"]:
        per_dev = "–" if not s["devices"] else f"{s['kib_per_device']:.1f}"
        per_k = "–" if not s["devices"] else f"{s['cpu_share_per_1000'] * 100:.2f}%"
        lines.append(
            f"| {s['devices']:,} | {s['rss_mib']:.0f} | {per_dev} | {s['cpu_share'] * 100:.1f}% | {per_k} "
            f"| {s.get('link_seconds', 0):.0f} |"
        )
    p = result["ping"]
    lines.append("")
    lines.append(
        f"Admin.PingMember (Describe over the device link) at {result['steps'][-1]['devices']:,} devices: "
        f"p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms over {p['calls']} devices; heartbeat "
        f"interval {result['heartbeat_interval_ms']} ms."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000, help="light devices in all")
    ap.add_argument("--procs", type=int, default=4, help="device processes (one joins per step)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of CPU measurement per step")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to wait after a step links")
    ap.add_argument("--pings", type=int, default=200, help="devices PingMember asks at the last step")
    ap.add_argument(
        "--chatty",
        action="store_true",
        help="links as chatty as replicas: telemetry and a ping every heartbeat interval (for comparison)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="links")
    args = ap.parse_args(argv)
    if args.devices < args.procs or args.procs < 1:
        ap.error("--devices must be at least --procs, and --procs at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on kill
    t_start = time.time()
    with LocalStack(progress=log) as stack:
        admin_token = "bench-admin"
        config = stack.workdir / "links.toml"
        chatty = "link_telemetry_refresh_ms = 1000\nlink_ping_interval_ms = 1000\n" if args.chatty else ""
        config.write_text(f'[router]\nadmin_token = "{admin_token}"\n{chatty}')
        stack.config = config
        stack.start_router()
        router = stack.components["router"]
        port = router.info["metrics_port"]
        proc = psutil.Process(router.proc.pid)
        log("router up; measuring it with no devices")
        time.sleep(args.settle)
        steps = [{"devices": 0, **measure(proc, args.window)}]
        per_proc = [args.devices // args.procs + (i < args.devices % args.procs) for i in range(args.procs)]
        linked = 0
        for i, n in enumerate(per_proc):
            log(f"step {i + 1}/{args.procs}: {n} more light devices ({linked + n} in all)")
            t0 = time.monotonic()
            stack.start_light_devices(n, first=linked, name=f"light-{i}", timeout_s=600)
            linked += n
            wait_links(port, linked, 300)
            link_s = time.monotonic() - t0
            time.sleep(args.settle)
            m = measure(proc, args.window)
            step = {
                "devices": linked,
                **m,
                "link_seconds": link_s,
                "kib_per_device": (m["rss_mib"] - steps[0]["rss_mib"]) * 1024 / linked,
                "cpu_share_per_1000": (m["cpu_share"] - steps[0]["cpu_share"]) * 1000 / linked,
                "links_gauge": scrape(port, "tandem_device_links"),
            }
            steps.append(step)
            log(
                f"{linked} devices: router RSS {m['rss_mib']:.0f} MiB "
                f"({step['kib_per_device']:.1f} KiB/device), CPU {m['cpu_share'] * 100:.1f}% of a core"
            )
        ids = [f"light-{i:05d}" for i in random.Random(0).sample(range(linked), min(args.pings, linked))]
        log(f"PingMember on {len(ids)} devices")
        ping = ping_sample(stack, ids, admin_token)
    result = {
        "devices": args.devices,
        "procs": args.procs,
        "window_s": args.window,
        "heartbeat_interval_ms": RouterConfig.heartbeat_interval_ms,  # the default the router ran with
        "chatty": args.chatty,
        "steps": steps,
        "ping": ping,
        "seconds": round(time.time() - t_start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    md = table(result) + "\n"
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(md)
    print(json.dumps(result, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
