"""Run a whole Tandem stack on this machine as real processes: router, edge worker(s), cloud pools.

Used by ``tandem demo``, the end-to-end tests and the benchmarks. The stack has its own fleet
credentials (stack.credentials, in its work folder): the router checks every member's, each device
and pool is given its own token. Every component is started with
``python -m stack.cli`` on free ports (port 0) and reports its bound ports through a ready file;
``stop()`` sends SIGTERM (the cloud process then shuts Serve and Ray down), waits, and kills any
process of the tree still alive, so nothing is left behind — Ray's processes included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import psutil

from stack.credentials import FleetCredentials, init_credentials
from tandem.v1 import admin_pb2, admin_pb2_grpc, common_pb2

DEFAULT_POOLS = ("asic", "gpu")  # cloud_worker.config.CloudConfig's


class StackError(RuntimeError):
    """A component failed to start; the message carries the tail of its log."""


class Component:
    def __init__(
        self, name: str, args: Sequence[str], workdir: Path, env: dict[str, str], log_to_console: bool
    ) -> None:
        self.name = name
        self.ready_file = workdir / f"{name}.ready.json"
        self.ready_file.unlink(missing_ok=True)  # a component started again under the name of an earlier one
        self.log_path = workdir / f"{name}.log"
        # Held open for the child's lifetime (its stdout and stderr); close_log() closes it.
        self._log = None if log_to_console else open(self.log_path, "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "stack.cli", *args, "--ready-file", str(self.ready_file)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            env=env,
            start_new_session=True,
        )
        self.info: dict = {}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.info = json.loads(self.ready_file.read_text())
                return self.info
            if self.proc.poll() is not None:
                raise StackError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise StackError(f"{self.name} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def tree(self) -> list[psutil.Process]:
        try:
            p = psutil.Process(self.proc.pid)
            return [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None


class LocalStack:
    """A router, edge workers and cloud pools as child processes. Use as a context manager."""

    def __init__(
        self,
        config: Path | None = None,
        workdir: Path | None = None,
        log_to_console: bool = False,
        progress: Callable[[str], None] = lambda msg: None,
        model: str | None = None,
        credentials: Path | None = None,
    ) -> None:
        """`model` names the model profile every component runs (overriding the config's [model]);
        `credentials` the fleet's credentials folder (stack.credentials; default: a new one in the
        work folder)."""
        self.config = config
        self.model = model
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="tandem-stack-")
        self.workdir = Path(workdir or self._tmp.name)
        self.log_to_console = log_to_console
        self.progress = progress
        self.components: dict[str, Component] = {}
        self.router_address = ""
        self.dashboard_url = ""
        self.apps: dict[str, str] = {}  # device id → where its apps reach it
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
        # a folder given is made if missing (what it holds is kept)
        self.credentials: FleetCredentials = init_credentials(credentials or self.workdir / "credentials")

    # -- talking to the stack as its users (and its router) do: TLS, with the fleet's CA

    def client(self, **kwargs):
        """A `tandem.Client` of the router."""
        import tandem

        return tandem.Client(self.router_address, root_certificates=self.credentials.ca_bytes(), **kwargs)

    def async_client(self, **kwargs):
        """A `tandem.AsyncClient` of the router."""
        import tandem

        return tandem.AsyncClient(
            self.router_address, root_certificates=self.credentials.ca_bytes(), **kwargs
        )

    def router_channel(self, aio: bool = False):
        """A channel to the router (its Admin and Fleet services)."""
        from runtime.tls import open_channel

        return open_channel(self.router_address, self.credentials.tls().channel_credentials(), aio=aio)

    def worker_channel(self, member: admin_pb2.FleetMember, aio: bool = False):
        """A channel to `member`'s own Worker service as the router has one: mutual TLS with the
        router's certificate, every call carrying the member's credential (its pool's, or a
        listening device's) — for tests and benchmarks that call workers directly."""
        from runtime.credentials import DEVICE, POOL
        from runtime.tls import open_channel

        if member.info.kind == common_pb2.WORKER_KIND_CLOUD:
            token = self.credentials.token(POOL, member.pool.name)
        else:
            token = self.credentials.token(DEVICE, member.info.worker_id)
        creds = grpc.composite_channel_credentials(
            self.credentials.tls("router").channel_credentials(present_cert=True),
            grpc.access_token_call_credentials(token),
        )
        return open_channel(member.endpoint, creds, aio=aio)

    def pool_names(self) -> list[str]:
        """The cloud pools the stack's config runs."""
        if self.config is None:
            return list(DEFAULT_POOLS)
        from runtime.configfile import load

        pools = load(self.config).get("cloud", {}).get("pools")
        return [p.get("name", "asic") for p in pools] if pools else list(DEFAULT_POOLS)

    def _start(self, name: str, args: list[str], with_config: bool = True) -> Component:
        if self.config and with_config:
            args = [*args, "--config", str(self.config)]
        if self.model and with_config:
            args = [*args, "--model", self.model]
        comp = Component(name, args, self.workdir, self.env, self.log_to_console)
        self.components[name] = comp
        return comp

    def _tls_args(self, name: str) -> list[str]:
        tls = self.credentials.tls(name)
        args = ["--ca-file", str(tls.ca_file)]
        if tls.cert_file is not None:
            args += ["--cert-file", str(tls.cert_file), "--key-file", str(tls.key_file)]
        return args

    def start_router(self, timeout_s: float = 60.0, port: int = 0, dashboard_port: int = 0) -> str:
        self.progress("starting router")
        info = self._start(
            "router",
            [
                "router",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--metrics-port",
                "0",
                "--dashboard-port",
                str(dashboard_port),
                "--fleet-secret-file",
                str(self.credentials.secret_file),
                *self._tls_args("router"),
            ],
        ).wait_ready(timeout_s)
        self.router_address = f"127.0.0.1:{info['port']}"
        self.dashboard_url = (
            f"http://127.0.0.1:{info['dashboard_port']}/" if info.get("dashboard_port") else ""
        )
        return self.router_address

    def start_edge(self, device_id: str, extra: Sequence[str] = (), timeout_s: float = 60.0) -> dict:
        """An edge worker for `device_id`, linked to the router; it serves its apps on a loopback
        port (the ready info's "apps") unless `extra` says otherwise."""
        self.progress(f"starting edge worker {device_id}")
        apps = [] if "--apps" in extra else ["--apps", "127.0.0.1:0"]
        comp = self._start(
            f"edge-{device_id}",
            [
                "edge",
                "--router",
                self.router_address,
                "--device-id",
                device_id,
                "--token-file",
                str(self.credentials.device_token_file(device_id)),
                "--metrics-port",
                "0",
                *self._tls_args("worker" if "--listen" in extra else ""),
                *apps,
                *extra,
            ],
        )
        info = comp.wait_ready(timeout_s)
        if info.get("apps"):
            self.apps[device_id] = info["apps"]
        return info

    def start_cloud(self, extra: Sequence[str] = (), timeout_s: float = 300.0) -> dict:
        self.progress("starting cloud pools on Ray Serve (local Ray; this takes a while)")
        tokens = [
            arg
            for pool in self.pool_names()
            for arg in ("--pool-token-file", f"{pool}={self.credentials.pool_token_file(pool)}")
        ]
        comp = self._start(
            "cloud",
            [
                "cloud",
                "--router",
                self.router_address,
                "--metrics-port",
                "0",
                *tokens,
                *self._tls_args("worker"),
                *extra,
            ],
        )
        return comp.wait_ready(timeout_s)

    def start_devices(self, scenario: Path, count: int, timeout_s: float = 180.0) -> dict:
        """A `tandem devices` process: the scenario's simulated fleet of `count` edge workers."""
        comp = self._start(
            "devices",
            [
                "devices",
                "--router",
                self.router_address,
                "--scenario",
                str(scenario),
                "--count",
                str(count),
                "--credentials",
                str(self.credentials.root),
            ],
        )
        return comp.wait_ready(timeout_s)

    def start_light_devices(
        self, count: int, first: int = 0, name: str = "light", timeout_s: float = 300.0
    ) -> dict:
        """A `tandem devices --light` process: `count` light devices (no model) numbered from
        `first`, each on its own link; returns once all are linked."""
        comp = self._start(
            name,
            [
                "devices",
                "--router",
                self.router_address,
                "--light",
                str(count),
                "--first",
                str(first),
                "--credentials",
                str(self.credentials.root),
            ],
            with_config=False,
        )
        return comp.wait_ready(timeout_s)

    def start_link(self, name: str, to: str, delay_ms: float, timeout_s: float = 30.0) -> str:
        """A `tandem link` emulator process forwarding to `to`; returns its address."""
        comp = self._start(
            f"link-{name}", ["link", "--to", to, "--delay-ms", str(delay_ms)], with_config=False
        )
        return comp.wait_ready(timeout_s)["address"]

    def wait_fleet(self, edge: int, cloud: int, timeout_s: float = 60.0) -> list[admin_pb2.FleetMember]:
        """Block until the router lists at least `edge` edge workers and `cloud` replicas."""
        deadline = time.monotonic() + timeout_s
        with self.router_channel() as ch:
            stub = admin_pb2_grpc.AdminStub(ch)
            while True:
                members = list(stub.ListFleet(admin_pb2.ListFleetRequest(), timeout=5).members)
                n_edge = sum(m.info.kind == common_pb2.WORKER_KIND_EDGE for m in members)
                n_cloud = sum(m.info.kind == common_pb2.WORKER_KIND_CLOUD for m in members)
                if n_edge >= edge and n_cloud >= cloud:
                    return members
                if time.monotonic() > deadline:
                    raise StackError(
                        f"fleet incomplete after {timeout_s:.0f}s: {n_edge}/{edge} edge, "
                        f"{n_cloud}/{cloud} cloud"
                    )
                time.sleep(0.1)

    def stop_component(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        comp = self.components.pop(name)
        tree = comp.tree()
        try:
            comp.proc.send_signal(sig)
            comp.proc.wait(timeout_s)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        for p in tree:  # anything of the tree still alive (e.g. Ray after a hard kill)
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=10)
        comp.close_log()

    def stop(self) -> None:
        # workers first (they deregister), the router last
        for name in sorted(self.components, key=lambda n: n == "router"):
            self.stop_component(name)
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
