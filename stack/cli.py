"""The ``tandem`` command: run a router, an edge worker or cloud pools, or the local demo.

    tandem router [--config F] [--port N]
    tandem edge   [--config F] [--router HOST:PORT] [--device-id ID]
    tandem cloud  [--config F] [--router HOST:PORT] [--ray-address ADDR]
    tandem demo   [--config F] [--model stdlib|smollm2]      (smollm2 by default once built)
    tandem up     [--config F] [--port N] [--device ID ...]   (a local stack until Ctrl-C)
    tandem models build smollm2 [--cache DIR]                 (needs the train extra)
    tandem credentials init DIR                               (a fleet secret: the router's)
    tandem credentials enroll device ID|pool NAME --dir DIR   (print and file a member's token)
    tandem loadtest SCENARIO [--target HOST:PORT] [--rate R]   (the load tester's, see loadtest/cli.py)
    tandem devices --router HOST:PORT --scenario SCENARIO      (a simulated device fleet, the same)

Each component reads its table of the TOML config file (``[router]``, ``[edge]``, ``[cloud]``,
``[model]``; see ``examples/tandem.toml``); flags override the file. ``--model NAME`` picks a
built-in model profile (stdlib, smollm2) for a component, as ``[model] name`` does. Components import lazily,
so ``tandem --help`` needs nothing heavy.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLUGIN_GROUP = "tandem.commands"


def load_config(args: argparse.Namespace) -> tuple[dict, Path | None]:
    from runtime.configfile import load

    data = load(args.config) if args.config else {}
    base = Path(data["__dir__"]) if "__dir__" in data else None
    return data, base


def flag_value(value):
    """A flag's value for a config table: a path flag as an absolute path string (relative to the
    working directory, where a file's paths are relative to the file)."""
    return str(value.resolve()) if isinstance(value, Path) else value


def apply_tls_flags(args: argparse.Namespace, table: dict) -> None:
    """--ca-file/--cert-file/--key-file/--insecure over a component's table (its [*.tls] table)."""
    tls = dict(table.get("tls", {}))
    for key in ("ca_file", "cert_file", "key_file"):
        if getattr(args, key, None) is not None:
            tls[key] = flag_value(getattr(args, key))
    table["tls"] = tls
    if getattr(args, "insecure", False):
        table["insecure"] = True


def tls_flags(p: argparse.ArgumentParser, serves: bool = True) -> None:
    """The TLS options of a component (`serves`: it has a certificate of its own)."""
    p.add_argument("--ca-file", type=Path, help="the CA that signed its peers' certificates (PEM)")
    if serves:
        p.add_argument("--cert-file", type=Path, help="its own certificate (PEM)")
        p.add_argument("--key-file", type=Path, help="its certificate's private key (PEM)")
    p.add_argument("--insecure", action="store_true", help="plaintext instead of TLS (development only)")


def load_profile(data: dict, base: Path | None, override: str | None = None):
    from runtime.profiles import profile_from_config

    return profile_from_config(data, base, override)


def ready_writer(path: str | None) -> Callable[[dict], None]:
    def ready(info: dict) -> None:
        line = json.dumps(info)
        print(f"ready: {line}", flush=True)
        if path:
            tmp = f"{path}.tmp"
            Path(tmp).write_text(line)
            os.replace(tmp, path)

    return ready


async def run_until_signal(main: Callable[[asyncio.Event], Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)


def cmd_router(args: argparse.Namespace) -> int:
    from router.config import RouterConfig
    from router.server import serve
    from runtime.configfile import build

    data, base = load_config(args)
    table = dict(data.get("router", {}))
    for key in ("host", "port", "metrics_port", "dashboard_port", "fleet_secret_file"):
        if getattr(args, key) is not None:
            table[key] = flag_value(getattr(args, key))
    apply_tls_flags(args, table)
    config = build(RouterConfig, table, "router", base)
    asyncio.run(run_until_signal(lambda stop: serve(config, ready_writer(args.ready_file), stop)))
    return 0


def cmd_edge(args: argparse.Namespace) -> int:
    from edge_worker.config import EdgeConfig
    from edge_worker.worker import serve
    from runtime.configfile import build

    data, base = load_config(args)
    table = dict(data.get("edge", {}))
    for key in ("router", "device_id", "host", "port", "metrics_port", "token_file", "apps"):
        if getattr(args, key) is not None:
            table[key] = flag_value(getattr(args, key))
    if args.listen:
        table["listen"] = True
    apply_tls_flags(args, table)
    link = dict(table.get("link", {}))
    for key in ("delay_ms", "jitter_ms", "bandwidth_mbps", "loss"):
        if getattr(args, f"link_{key}") is not None:
            link[key] = getattr(args, f"link_{key}")
    table["link"] = link
    config = build(EdgeConfig, table, "edge", base)
    profile = load_profile(data, base, args.model)
    asyncio.run(run_until_signal(lambda stop: serve(config, profile, ready_writer(args.ready_file), stop)))
    return 0


def cmd_cloud(args: argparse.Namespace) -> int:
    from cloud_worker.config import CloudConfig
    from cloud_worker.pools import CloudPools
    from runtime.configfile import build

    data, base = load_config(args)
    table = dict(data.get("cloud", {}))
    for key in ("router", "ray_address", "host", "metrics_port"):
        if getattr(args, key) is not None:
            table[key] = flag_value(getattr(args, key))
    apply_tls_flags(args, table)
    config = build(CloudConfig, table, "cloud", base)
    tokens = dict(item.split("=", 1) for item in args.pool_token_file or ())
    unknown = set(tokens) - {p.name for p in config.pools}
    if unknown:
        print(
            f"tandem cloud: --pool-token-file for pools not configured: {', '.join(sorted(unknown))}",
            file=sys.stderr,
        )
        return 2
    config = dataclasses.replace(
        config,
        pools=tuple(
            dataclasses.replace(p, token="", token_file=Path(tokens[p.name]).resolve())
            if p.name in tokens
            else p
            for p in config.pools
        ),
    )
    profile = load_profile(data, base, args.model)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pools = CloudPools(config, profile)
    try:
        pools.start()
        ready_writer(args.ready_file)(
            {"component": "cloud", "replicas": pools.replicas, "metrics_port": pools.metrics_port}
        )
        stop.wait()
    finally:
        pools.stop()
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    """Make a fleet's credentials folder, or enroll a member and print its token."""
    from stack.credentials import FleetCredentials, init_credentials

    if args.action == "init":
        creds = init_credentials(args.dir)
        print(f"fleet secret: {creds.secret_file} (the router's fleet_secret_file; keep it private)")
        return 0
    creds = FleetCredentials(args.dir)
    if not creds.secret_file.exists():
        print(
            f"tandem credentials: no fleet secret in {args.dir} (tandem credentials init DIR)",
            file=sys.stderr,
        )
        return 2
    path = creds.token_file(args.role, args.name)
    print(path.read_text().strip())
    print(f"(also in {path})", file=sys.stderr)
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    from runtime.link_emulator import LinkEmulator, LinkProfile

    profile = LinkProfile(args.delay_ms, args.jitter_ms, args.bandwidth_mbps, args.loss)
    host, _, port = args.listen.rpartition(":")

    async def main(stop: asyncio.Event) -> None:
        link = await LinkEmulator(args.to, profile, host or "127.0.0.1", int(port)).start()
        ready_writer(args.ready_file)({"component": "link", "address": link.address})
        try:
            await stop.wait()
        finally:
            await link.stop()

    asyncio.run(run_until_signal(main))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Build a model profile's files with the repository's builder script (needs the train extra)."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "models" / f"{args.profile}.py"
    if not script.is_file():
        print(
            f"tandem models build: no builder for {args.profile!r} at {script} (run from a checkout of the "
            f"repository)",
            file=sys.stderr,
        )
        return 2
    cmd = [sys.executable, str(script)] + (["--cache", str(args.cache)] if args.cache else [])
    return subprocess.run(cmd).returncode


def cmd_up(args: argparse.Namespace) -> int:
    """A whole local stack (router on --port, an edge worker per --device, the cloud pools) until Ctrl-C."""
    import time

    from stack.local_stack import LocalStack

    def say(msg: str) -> None:
        print(f"[up] {msg}", file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with LocalStack(
        config=args.config, progress=say, model=args.model, credentials=args.credentials
    ) as stack:
        stack.start_router(port=args.port, dashboard_port=args.dashboard_port)
        for device in args.device:
            stack.start_edge(device)
        stack.start_cloud()
        stack.wait_fleet(edge=len(args.device), cloud=1, timeout_s=120)
        ready_writer(args.ready_file)(
            {
                "router": stack.router_address,
                "dashboard": stack.dashboard_url,
                "devices": args.device,
                "apps": stack.apps,
                "ca_file": str(stack.credentials.ca_file.resolve()),
            }
        )
        ca = stack.credentials.ca_file.resolve()
        say(
            f"router on {stack.router_address} (TLS), dashboard {stack.dashboard_url or 'off'}, devices "
            f"{', '.join(args.device) or 'none'}; Ctrl-C stops everything"
        )
        say(
            f"connect with tandem.Client({stack.router_address!r}, root_certificates=open({str(ca)!r}, "
            f"'rb').read()); credentials in {args.credentials.resolve()}"
        )
        for device, address in stack.apps.items():
            say(f"apps on device {device}: tandem.Client({address!r}) (the device decides; no credential)")
        while not stop.is_set():
            time.sleep(0.2)
        say("stopping")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stack.demo import run_demo

    return run_demo(
        args.config,
        verbose=args.verbose,
        link_delay_ms=args.link_delay_ms,
        model=args.model,
        max_new_tokens=args.max_new_tokens,
    )


def common(p: argparse.ArgumentParser) -> None:
    """The options every component command takes."""
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--ready-file", help="write a JSON line with the bound ports here once serving")
    p.add_argument("--model", help="model profile (stdlib or smollm2); overrides the config's [model]")


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Commands of the packages above this one (the load tester's ``loadtest`` and ``devices``),
    found through the ``tandem.commands`` entry points so that the CLI never imports them: each is
    a function that adds its subparsers to `sub`."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        ep.load()(sub)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tandem", description="Hybrid edge-cloud LLM inference router.")
    ap.add_argument("--log-level", default=os.environ.get("TANDEM_LOG_LEVEL", "INFO"))
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("router", help="run the router (Inference, Fleet, Admin)")
    common(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--dashboard-port", type=int, help="the dashboard's HTTP port (0: a free one; -1: off)")
    p.add_argument(
        "--fleet-secret-file", type=Path, help="the fleet secret members' credentials are checked against"
    )
    tls_flags(p)
    p.set_defaults(fn=cmd_router)

    p = sub.add_parser("edge", help="run an edge worker (draft model) linked to a router")
    common(p)
    p.add_argument("--router", help="router host:port")
    p.add_argument("--device-id")
    p.add_argument(
        "--token-file", type=Path, help="the device's credential (tandem credentials enroll device ID)"
    )
    p.add_argument(
        "--listen",
        action="store_true",
        help="serve the router on --host:--port instead of dialling out (devices the router can reach)",
    )
    tls_flags(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--metrics-port", type=int)
    p.add_argument(
        "--apps", help="serve apps on this device here: unix:///path or 127.0.0.1:PORT (0: any free port)"
    )
    p.add_argument("--link-delay-ms", type=float, help="emulate the device's link: one-way delay")
    p.add_argument("--link-jitter-ms", type=float)
    p.add_argument("--link-bandwidth-mbps", type=float)
    p.add_argument("--link-loss", type=float, help="probability a chunk waits a retransmission timeout")
    p.set_defaults(fn=cmd_edge)

    p = sub.add_parser("cloud", help="run cloud pools (target model) on Ray Serve")
    common(p)
    p.add_argument("--router", help="router host:port")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one")
    p.add_argument("--host", help="address replicas bind (0.0.0.0 on a cluster)")
    p.add_argument("--metrics-port", type=int)
    p.add_argument(
        "--pool-token-file",
        action="append",
        metavar="POOL=PATH",
        help="a pool's credential (tandem credentials enroll pool POOL); repeatable",
    )
    tls_flags(p)
    p.set_defaults(fn=cmd_cloud)

    p = sub.add_parser("credentials", help="make a fleet secret; enroll devices and pools")
    csub = p.add_subparsers(dest="action", required=True)
    c = csub.add_parser("init", help="a credentials folder with a new fleet secret (kept if one exists)")
    c.add_argument("dir", type=Path)
    c.set_defaults(fn=cmd_credentials)
    c = csub.add_parser("enroll", help="print (and file under DIR) a device's or a pool's token")
    c.add_argument("role", choices=["device", "pool"])
    c.add_argument("name", help="the device id or the pool name")
    c.add_argument("--dir", type=Path, required=True, help="the credentials folder (tandem credentials init)")
    c.set_defaults(fn=cmd_credentials)

    p = sub.add_parser(
        "link", help="run a TCP link emulator (delay, jitter, bandwidth, loss) in front of a server"
    )
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on (port 0: a free port)")
    p.add_argument("--to", required=True, help="host:port to forward to")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--bandwidth-mbps", type=float, default=0.0, help="0: unlimited")
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--ready-file")
    p.set_defaults(fn=cmd_link)

    p = sub.add_parser("models", help="build a model profile (tandem models build smollm2)")
    msub = p.add_subparsers(dest="action", required=True)
    b = msub.add_parser("build", help="fetch and convert a profile's models into the models cache")
    b.add_argument("profile", choices=["smollm2"])
    b.add_argument(
        "--cache", type=Path, help="models cache folder (default: $TANDEM_MODELS or ~/.cache/tandem/models)"
    )
    b.set_defaults(fn=cmd_models)

    p = sub.add_parser("up", help="run a local stack (router, edge workers, cloud pools) until Ctrl-C")
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--port", type=int, default=50051, help="router port (0: a free one)")
    p.add_argument(
        "--dashboard-port", type=int, default=8051, help="the dashboard's port (0: a free one; -1: off)"
    )
    p.add_argument(
        "--device",
        action="append",
        default=None,
        help="an edge worker's device id (repeatable; default: my-phone)",
    )
    p.add_argument("--ready-file", help="write a JSON line with the router's address once up")
    p.add_argument("--model", help="model profile (stdlib or smollm2); overrides the config's [model]")
    p.add_argument(
        "--credentials",
        type=Path,
        default=Path("tandem-credentials"),
        help="the stack's fleet secret, tokens and development CA (made if missing; default: %(default)s)",
    )
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("demo", help="start router, edge worker and cloud pool locally and generate")
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--verbose", action="store_true", help="show the components' logs")
    p.add_argument(
        "--link-delay-ms",
        type=float,
        default=0.0,
        help="emulate the device's network link with this one-way delay",
    )
    p.add_argument("--model", help="model profile: smollm2 (the default once built) or stdlib")
    p.add_argument("--max-new-tokens", type=int, help="tokens per answer (default: 96 for chat, 40 for code)")
    p.set_defaults(fn=cmd_demo)

    add_plugin_commands(sub)
    args = ap.parse_args(argv)
    if args.command == "up" and args.device is None:
        args.device = ["my-phone"]
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from runtime.configfile import ConfigError
    from tandem.errors import TandemError

    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"tandem {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"tandem {args.command}: {exc}", file=sys.stderr)
        return 2
    except TandemError as exc:
        print(f"tandem {args.command}: {exc.status}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
