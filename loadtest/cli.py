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

    scenario = load(args.scenario)
    fleet = scenario.fleet if args.count is None else dataclasses.replace(scenario.fleet, devices=args.count)
    data, base = load_config(args)
    prof = load_profile(data, base, args.model)
    ready = ready_writer(args.ready_file)
    creds = FleetCredentials(args.credentials)
    creds.secret()  # fail now on a folder without a fleet secret

    def token(device_id: str) -> str:
        return creds.token(DEVICE, device_id)

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
    p.add_argument("--scenario", required=True, type=Path, help="load-test scenario TOML (its [fleet] table)")
    p.add_argument("--count", type=int, help="devices (overrides the scenario)")
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
