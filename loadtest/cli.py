"""The load tester's commands in the ``tandem`` CLI: ``tandem loadtest`` and ``tandem devices``.

Registered through the ``tandem.commands`` entry point (pyproject.toml), so that the CLI
(:mod:`stack.cli`, a layer below) finds them without importing this package.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from stack.cli import common, load_config, load_profile, ready_writer, run_until_signal


def cmd_devices(args: argparse.Namespace) -> int:
    from loadtest.devices import serve
    from loadtest.scenario import load
    from runtime.credentials import DEVICE
    from stack.credentials import FleetCredentials

    creds = FleetCredentials(args.credentials)
    creds.secret()  # fail now on a folder without a fleet secret
    ready = ready_writer(args.ready_file)

    def token(device_id: str) -> str:
        return creds.token(DEVICE, device_id)

    if args.light is not None:
        return light_devices(args, token, None if args.insecure else creds.tls().channel_credentials(), ready)
    if args.scenario is None:
        raise ValueError("--scenario is required (or --light N for light devices)")
    scenario = load(args.scenario)
    fleet = scenario.fleet if args.count is None else dataclasses.replace(scenario.fleet, devices=args.count)
    data, base = load_config(args)
    prof = load_profile(data, base, args.model)

    asyncio.run(
        run_until_signal(
            lambda stop: serve(
                fleet,
                args.router,
                scenario.seed,
                prof,
                ready,
                stop,
                token,
                None if args.insecure else creds.tls(),
            )
        )
    )
    return 0


def light_devices(args: argparse.Namespace, token, channel_credentials, ready) -> int:
    import logging

    from loadtest.light_devices import serve_light

    if args.light <= 0 or args.first < 0:
        raise ValueError("--light must be > 0 and --first >= 0")
    logging.getLogger("edge_worker.link").setLevel(logging.WARNING)  # not a line per device
    asyncio.run(
        run_until_signal(
            lambda stop: serve_light(
                args.light,
                args.router,
                token,
                channel_credentials,
                ready,
                stop,
                prefix=args.prefix,
                first=args.first,
                tokenizer_id=args.tokenizer_id,
                progress=lambda m: print(f"[devices] {m}", flush=True),
            )
        )
    )
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    from loadtest.command import main

    return main(args)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``devices`` and ``loadtest`` to the ``tandem`` command's subparsers."""
    from loadtest.command import add_arguments

    p = sub.add_parser(
        "devices", help="run a simulated device fleet (real edge workers) from a load-test scenario"
    )
    common(p)
    p.add_argument("--router", required=True, help="router host:port")
    p.add_argument("--scenario", type=Path, help="load-test scenario TOML (its [fleet] table)")
    p.add_argument("--count", type=int, help="devices (overrides the scenario)")
    p.add_argument(
        "--light",
        type=int,
        metavar="N",
        help="instead: N light devices (no model; they link, heartbeat and answer Describe), to "
        "measure how many devices a router holds",
    )
    p.add_argument("--prefix", default="light", help="light devices' id prefix (ids PREFIX-00000 …)")
    p.add_argument("--first", type=int, default=0, help="the first light device's number")
    p.add_argument(
        "--tokenizer-id", default="light", help="the tokenizer light devices claim (the fleet's, if pinned)"
    )
    p.add_argument(
        "--credentials",
        required=True,
        type=Path,
        help="the fleet's credentials folder (tandem credentials init); the simulated devices are "
        "enrolled from it",
    )
    p.add_argument("--insecure", action="store_true", help="a plaintext router (one with insecure = true)")
    p.set_defaults(fn=cmd_devices)

    p = sub.add_parser(
        "loadtest",
        help="open-loop load test of a router with a simulated device fleet; "
        "--compare A B prints two runs side by side",
    )
    add_arguments(p)
    p.set_defaults(fn=cmd_loadtest)
