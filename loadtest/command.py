"""``tandem loadtest``: run a scenario against a router (or a local stack it starts), write every
output, or compare two runs.

    tandem loadtest loadtest/scenarios/smoke.toml                 # starts router + cloud pools + devices
    tandem loadtest SCENARIO --target 127.0.0.1:50051 --rate 4    # a running stack; simulated devices join it
    tandem loadtest SCENARIO --target HOST:PORT --attach          # the edge workers already registered
    tandem loadtest --compare runs/a runs/b
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import socket
import sys
import time
from pathlib import Path

import grpc

from loadtest import harness, report
from loadtest.records import summarise, summary_table
from loadtest.scenario import Scenario, load, prompt_set
from runtime.configfile import ConfigError
from runtime.tls import open_channel
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2


def log(msg: str) -> None:
    print(f"[loadtest] {msg}", file=sys.stderr, flush=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", type=Path, help="scenario TOML file (see loadtest/scenarios/)")
    p.add_argument("--target", help="router host:port (default: start a local stack)")
    p.add_argument("--config", type=Path, help="Tandem config for the local stack it starts")
    p.add_argument(
        "--attach",
        action="store_true",
        help="use the edge workers registered with the target instead of starting simulated devices",
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a target that is not loopback")
    p.add_argument("--rate", type=float, help="requests per second (overrides the scenario)")
    p.add_argument("--rates", help="a sweep, e.g. 1,2,4 (overrides the scenario)")
    p.add_argument(
        "--process", choices=("poisson", "gamma", "constant"), help="arrival process (overrides the scenario)"
    )
    p.add_argument("--duration", type=float, help="seconds of sending per rate")
    p.add_argument("--max-requests", type=int, help="stop sending after this many per rate")
    p.add_argument("--concurrency", type=int, help="requests in flight at most (0: no cap)")
    p.add_argument("--devices", type=int, help="simulated devices (overrides the scenario)")
    p.add_argument(
        "--from-device",
        type=float,
        help="share of the device requests an app on the device sends to its agent, which decides "
        "(requests.from_device; overrides the scenario)",
    )
    p.add_argument("--api-key", help="sent as authorization: Bearer <key>")
    p.add_argument(
        "--ca-file",
        type=Path,
        help="the CA of the target router's certificate (default: the system's roots; a local stack's own)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="a plaintext target (a router with insecure = true)"
    )
    p.add_argument(
        "--credentials",
        type=Path,
        help="the target fleet's credentials folder, to enroll simulated devices with "
        "(default: the local stack's)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: loadtest-runs/<scenario>-<time>)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="print two runs side by side")


def is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def with_overrides(s: Scenario, args: argparse.Namespace) -> Scenario:
    a = s.arrivals
    changes = {}
    if args.rates:
        changes["rates"] = tuple(float(x) for x in args.rates.split(",") if x.strip())
    elif args.rate is not None:
        changes.update(rate=args.rate, rates=())
    if args.process is not None:
        changes["process"] = args.process
    if args.duration is not None:
        changes["duration_s"] = args.duration
    if args.max_requests is not None:
        changes["max_requests"] = args.max_requests
    if args.concurrency is not None:
        changes["concurrency"] = args.concurrency
    try:
        s = dataclasses.replace(s, arrivals=dataclasses.replace(a, **changes))
        if args.devices is not None:
            s = dataclasses.replace(s, fleet=dataclasses.replace(s.fleet, devices=args.devices))
        if args.from_device is not None:
            s = dataclasses.replace(s, requests=dataclasses.replace(s.requests, from_device=args.from_device))
    except ValueError as exc:
        raise ConfigError("command line", str(exc)) from None
    return s


def edge_ids(target: str, tls: grpc.ChannelCredentials | None, prefix: str | None = None) -> list[str]:
    """The registered devices' ids (those named `prefix`-…, when given)."""
    request = admin_pb2.ListFleetRequest(
        kind=common_pb2.WORKER_KIND_EDGE, id_prefix="" if prefix is None else prefix + "-"
    )
    with open_channel(target, tls, aio=False) as ch:
        members = admin_pb2_grpc.AdminStub(ch).ListFleet(request, timeout=10).members
    return sorted(m.info.worker_id for m in members)


def wait_devices(
    target: str, tls: grpc.ChannelCredentials | None, prefix: str, n: int, timeout_s: float = 120.0
) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = edge_ids(target, tls, prefix)
        if len(ids) >= n:
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ids)} of {n} simulated devices registered after {timeout_s:.0f} s")
        time.sleep(0.2)


def main(args: argparse.Namespace) -> int:
    if args.compare:
        a, b = args.compare
        print(report.compare(report.load_summary(a), report.load_summary(b), str(a), str(b)), end="")
        return 0
    if args.scenario is None:
        print("tandem loadtest: a scenario file is required (or --compare A B)", file=sys.stderr)
        return 2
    scenario = with_overrides(load(args.scenario), args)
    prompts = prompt_set(scenario.requests.prompts, args.scenario.parent)
    if args.target and not args.allow_remote and not is_loopback(args.target):
        print(
            f"tandem loadtest: {args.target} is not a loopback address; pass --allow-remote to load it",
            file=sys.stderr,
        )
        return 2
    out = args.out or Path("loadtest-runs") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    from stack.local_stack import LocalStack

    with LocalStack(config=args.config, progress=log, credentials=args.credentials) as stack:
        ca = args.ca_file.read_bytes() if args.ca_file else None
        if args.target:
            stack.router_address = args.target
        else:
            ca = stack.credentials.ca_bytes()
            stack.start_router()
            stack.start_cloud()
            stack.wait_fleet(edge=0, cloud=1, timeout_s=120)
        target = stack.router_address
        tls = None if args.insecure else grpc.ssl_channel_credentials(root_certificates=ca)
        apps: dict[str, str] = {}  # device id → where its apps reach it
        if args.attach:
            devices = edge_ids(target, tls)
            log(f"attached to {len(devices)} edge workers already registered")
        elif scenario.fleet.devices:
            log(f"starting {scenario.fleet.devices} simulated devices")
            apps = stack.start_devices(args.scenario, scenario.fleet.devices).get("apps", {})
            devices = wait_devices(target, tls, scenario.fleet.id_prefix, scenario.fleet.devices)
        else:
            devices = []
        if scenario.requests.from_device and not apps:
            print(
                "tandem loadtest: requests.from_device needs the simulated devices (not --attach)",
                file=sys.stderr,
            )
            return 2
        samples: list[dict] = []
        runs = []
        for rate in scenario.arrivals.sweep:
            planned = harness.plan(scenario, rate, prompts, devices)
            log(
                f"{len(planned)} requests at {rate:g}/s ({scenario.arrivals.process}) for "
                f"{scenario.arrivals.duration_s:g} s against {target}"
            )

            def on_sample(t: float, members: list, rate: float = rate) -> None:
                for m in members:
                    if m.info.worker_id in devices:
                        samples.append(
                            {
                                "rate": rate,
                                "t_s": round(t, 3),
                                "device_id": m.info.worker_id,
                                "battery_percent": m.state.battery_percent,
                                "charging": m.state.charging,
                                "thermal": common_pb2.ThermalState.Name(m.state.thermal),
                                "rtt_ms": m.state.rtt_ms,
                                "queue_depth": m.state.queue_depth,
                            }
                        )

            creds = {"api_key": args.api_key} if args.api_key else {}
            if not args.insecure:
                creds["root_certificates"] = ca
                creds["tls"] = True
            records = asyncio.run(
                harness.run(target, scenario, planned, f"{rate:g}/s", creds, on_sample, apps=apps)
            )
            runs.append((rate, records))
            report.write_records(out, runs)  # after every rate: a long sweep keeps what it measured
    summary = {
        "scenario": scenario.name,
        "target": "local stack" if not args.target else args.target,
        "devices": len(devices),
        "process": scenario.arrivals.process,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scenario_config": dataclasses.asdict(scenario),
        "runs": [summarise(records, rate, scenario.arrivals.duration_s) for rate, records in runs],
    }
    report.write_fleet(out, samples)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    images = report.charts(out, runs, samples)
    report.write_html(out, summary, images)
    for run in summary["runs"]:
        print(f"\n{run['requested_rate']:g} requests/s\n")
        print(summary_table(run), end="")
    log(
        f"wrote {out}/: requests.jsonl, requests.csv, fleet.jsonl, summary.json, report.html"
        + (f", {', '.join(images)}" if images else " (no charts: matplotlib is not installed)")
    )
    return 0
