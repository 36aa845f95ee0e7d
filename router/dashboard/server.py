"""The policy tuning dashboard: an HTTP server on the router's event loop (aiohttp) serving the page,
its static assets (uPlot, committed), live figures over server-sent events, a device search, and
the policy API.

Every policy read or change goes through the router's own Admin gRPC API, with the caller's admin
token and name forwarded, so the page has no power the API lacks. Errors come back as JSON:
``{"status": "INVALID_ARGUMENT", "field": "policy.cost_weight", "message": ...}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from aiohttp import web
from google.protobuf import field_mask_pb2, json_format

from router.dashboard.devices import search, search_params
from router.dashboard.live import LiveView
from router.policy.config import PolicyConfig, policy_from_dict
from runtime.tls import open_channel
from tandem.errors import InvalidArgument
from tandem.grpc_status import FIELD_METADATA_KEY
from tandem.v1 import admin_pb2, admin_pb2_grpc

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 64 * 2**20
WATCH_S = 30.0  # a request for the live view keeps the device part sampled this long

STATIC = Path(__file__).resolve().parent / "static"
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def _pb_json(msg) -> dict:
    out = json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if isinstance(
        msg, admin_pb2.PolicyVersion
    ):  # the form lists the tunables in the order the .proto documents them
        fields = admin_pb2.RoutingPolicy.DESCRIPTOR.fields
        out["policy"] = {f.name: out["policy"][f.name] for f in sorted(fields, key=lambda f: f.index)}
    return out


class Dashboard:
    """``await start(host, port)`` serves; ``await stop()``. `sample` returns the live view's inputs."""

    def __init__(
        self,
        admin_target: str,
        sample: Callable[[], tuple],
        interval_s: float = 1.0,
        live: LiveView | None = None,
        decision_log: Callable[[], list[dict]] = lambda: [],
        live_policy: Callable[[], PolicyConfig] = PolicyConfig,
        changes_allowed: bool = True,
        channel_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """`decision_log` returns the router's recent decisions (the what-if trace); `live_policy`
        the policy in force; without `changes_allowed` (a router with no admin token) the page is
        read-only: every change answers 403. `channel_credentials`: TLS to the router's Admin service
        (None: plaintext)."""
        self.changes_allowed = changes_allowed
        self.channel_credentials = channel_credentials
        self.admin_target = admin_target
        self._sample = sample
        self._decision_log = decision_log
        self._live_policy = live_policy
        self._replays: concurrent.futures.ProcessPoolExecutor | None = None
        self.interval_s = interval_s
        self.live = live or LiveView()
        self.latest: dict = {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self._subscribers: set[asyncio.Queue] = set()
        self._asked_at = -math.inf  # the last request for the live view or the devices
        # uploaded load-test records run to megabytes (aiohttp's default body limit is 1 MiB)
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.add_routes(
            [
                web.get("/", self._index),
                web.static("/static", STATIC),
                web.get("/api/live", self._live),
                web.get("/api/events", self._events),
                web.get("/api/devices", self._devices),
                web.get("/api/policy", self._get_policy),
                web.post("/api/policy", self._set_policy),
                web.post("/api/rollback", self._rollback),
                web.get("/api/history", self._history),
                web.post("/api/shadow", self._set_shadow),
                web.delete("/api/shadow", self._clear_shadow),
                web.post("/api/whatif", self._whatif),
            ]
        )
        self.app = app

    async def start(self, host: str, port: int) -> int:
        self._channel = open_channel(self.admin_target, self.channel_credentials)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await self._tick()  # the page has figures from its first request on
        self._ticker = asyncio.create_task(self._tick_loop(), name="dashboard-live")
        return self.port

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._replays:
            self._replays.shutdown(wait=False, cancel_futures=True)
        for q in list(self._subscribers):
            q.put_nowait(None)
        if self._runner:
            await self._runner.cleanup()
        if self._channel:
            await self._channel.close()

    # -- live figures

    def _watched(self) -> bool:
        """Whether anyone looks at the devices: a page connected, or a request lately. Nobody
        looking, the ticks leave out the device part (a pass over thousands of devices)."""
        return bool(self._subscribers) or time.monotonic() - self._asked_at < WATCH_S

    def _fresh_devices(self) -> None:
        """Sample the devices now when the ticks left them out (nobody was looking), into the
        latest view too; and keep them sampled for a while."""
        self._asked_at = time.monotonic()
        if self.live.devices_at is None:
            devices = self.live.devices_now(self._sample()[1])
            if self.latest:
                self.latest["devices"] = devices

    async def _tick(self) -> None:
        families, fleet, policy, version = self._sample()
        latest = self.live.sample(families, fleet, policy, version, devices=self._watched())
        latest["series"] = list(self.live.series)[-1:]
        try:
            latest["shadow"] = _pb_json(
                await self._admin().GetShadowReport(admin_pb2.GetShadowReportRequest(), timeout=2)
            )
        except grpc.RpcError:
            latest["shadow"] = {"active": False}
        self.latest = latest
        for q in list(self._subscribers):
            if q.qsize() < 4:  # a slow browser skips updates instead of growing a queue
                q.put_nowait(self.latest)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self._tick()
            except Exception:
                log.exception("dashboard sample failed")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _live(self, request: web.Request) -> web.Response:
        self._fresh_devices()
        return web.json_response(
            {**self.latest, "series": list(self.live.series), "changes_allowed": self.changes_allowed}
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue()
        self._fresh_devices()
        self._subscribers.add(q)
        try:
            await resp.write(
                f"data: {json.dumps({**self.latest, 'series': list(self.live.series)})}\n\n".encode()
            )
            while True:
                item = await q.get()
                if item is None:
                    break
                await resp.write(f"data: {json.dumps(item)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(q)
        return resp

    async def _devices(self, request: web.Request) -> web.Response:
        """GET /api/devices?q=SUBSTRING&limit=N: the devices whose id contains q (case-insensitive),
        the first `limit` by id, as of the last live sample (router.dashboard.devices.search)."""
        try:
            q, limit = search_params(request.query)
        except InvalidArgument as exc:
            return _invalid(exc)
        self._fresh_devices()
        return web.json_response(search(self.live.devices, q, limit))

    # -- the policy, through the Admin API

    def _admin(self) -> admin_pb2_grpc.AdminStub:
        assert self._channel is not None
        return admin_pb2_grpc.AdminStub(self._channel)

    @staticmethod
    def _metadata(request: web.Request) -> list[tuple[str, str]]:
        md = []
        if token := request.headers.get("X-Tandem-Admin-Token"):
            md.append(("x-tandem-admin-token", token))
        if caller := request.headers.get("X-Tandem-Caller"):
            md.append(("x-tandem-caller", f"dashboard:{caller}"))
        return md

    @staticmethod
    def _read_only() -> web.Response:
        return web.json_response(
            {
                "status": "PERMISSION_DENIED",
                "field": "",
                "message": "this router has no admin_token: the dashboard is read-only "
                "(set [router] admin_token to change the policy here)",
            },
            status=403,
        )

    @staticmethod
    def _error(err: grpc.RpcError) -> web.Response:
        field = next((v for k, v in (err.trailing_metadata() or ()) if k == FIELD_METADATA_KEY), "")
        details = err.details() or ""
        message = details[len(field) + 2 :] if field and details.startswith(f"{field}: ") else details
        return web.json_response(
            {"status": err.code().name, "field": field, "message": message},
            status=HTTP_STATUS.get(err.code(), 500),
        )

    async def _call(self, rpc: str, msg, request: web.Request | None = None) -> web.Response:
        """Admin.`rpc`(msg), with the caller's token and name from `request`, as a JSON response."""
        try:
            out = await getattr(self._admin(), rpc)(
                msg, timeout=5, metadata=self._metadata(request) if request else ()
            )
        except grpc.RpcError as err:
            return self._error(err)
        return web.json_response(_pb_json(out))

    async def _get_policy(self, request: web.Request) -> web.Response:
        return await self._call("GetPolicy", admin_pb2.GetPolicyRequest())

    async def _set_policy(self, request: web.Request) -> web.Response:
        if not self.changes_allowed:
            return self._read_only()
        try:
            body = await _body(request)
            changes, policy = _policy_changes(body)
            note = _note(body)
            if not changes:
                raise InvalidArgument("policy", "nothing to change")
        except InvalidArgument as exc:
            return _invalid(exc)
        return await self._call(
            "SetPolicy", _set_request(changes, policy, note, int(body.get("expected_version") or 0)), request
        )

    async def _rollback(self, request: web.Request) -> web.Response:
        if not self.changes_allowed:
            return self._read_only()
        try:
            body = await _body(request)
            try:
                version = int(body.get("version"))
            except (TypeError, ValueError):
                raise InvalidArgument("version", "a version number is required") from None
            note = _note(body)
        except InvalidArgument as exc:
            return _invalid(exc)
        return await self._call(
            "RollbackPolicy", admin_pb2.RollbackPolicyRequest(version=version, note=note), request
        )

    async def _history(self, request: web.Request) -> web.Response:
        return await self._call("ListPolicyHistory", admin_pb2.ListPolicyHistoryRequest(limit=200))

    # -- shadow mode, through the Admin API

    async def _set_shadow(self, request: web.Request) -> web.Response:
        if not self.changes_allowed:
            return self._read_only()
        try:
            body = await _body(request)
            changes, policy = _policy_changes(body)
            if not changes:
                raise InvalidArgument("policy", "the shadow must differ from the live policy somewhere")
        except InvalidArgument as exc:
            return _invalid(exc)
        return await self._call(
            "SetShadowPolicy", _set_request(changes, policy, str(body.get("note") or "")), request
        )

    async def _clear_shadow(self, request: web.Request) -> web.Response:
        if not self.changes_allowed:
            return self._read_only()
        return await self._call("ClearShadowPolicy", admin_pb2.ClearShadowPolicyRequest(), request)

    # -- what-if replay (read-only: the simulator replays a trace; nothing in force changes)

    async def _whatif(self, request: web.Request) -> web.Response:
        from router.policy.replay import entry_from_log, load_records, whatif

        try:
            body = await _body(request)
            source = body.get("source", "log")
            if source == "log":
                entries = [entry_from_log(e) for e in self._decision_log()]
            elif source == "records":
                try:
                    entries = load_records(str(body.get("records") or "").splitlines())
                except ValueError as exc:
                    raise InvalidArgument("records", str(exc)) from None
            else:
                raise InvalidArgument("source", f"must be log or records, got {source!r}")
            if not entries:
                raise InvalidArgument(
                    "source",
                    "the trace is empty: no decisions logged yet" if source == "log" else "no records",
                )
            live = self._live_policy()
            policies = {"live": live}
            for i, c in enumerate(body.get("candidates") or []):
                try:
                    policies[str(c.get("name") or f"candidate {i + 1}")] = policy_from_dict(
                        dict(c.get("policy") or {}), live
                    )
                except InvalidArgument as exc:
                    raise InvalidArgument(
                        f"candidates[{i}].{exc.field}", str(exc).split(": ", 1)[-1]
                    ) from None
            if len(policies) < 2:
                raise InvalidArgument(
                    "candidates", "at least one candidate policy to compare with the live one"
                )
        except InvalidArgument as exc:
            return _invalid(exc)
        if self._replays is None:  # a process of its own: the simulation must not hold the router's GIL
            self._replays = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")
            )
        points = await asyncio.get_running_loop().run_in_executor(self._replays, whatif, entries, policies)
        return web.json_response({"source": source, "requests": len(entries), "points": points})


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidArgument("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    return body


def _note(body: dict) -> str:
    note = str(body.get("note") or "").strip()
    if not note:
        raise InvalidArgument("note", "a note saying why is required")
    return note


def _policy_changes(body: dict) -> tuple[dict, admin_pb2.RoutingPolicy]:
    """The body's `policy` object (field → new value) and the RoutingPolicy carrying it. Raises
    InvalidArgument naming the field whose value does not parse."""
    changes = body.get("policy") or {}
    if not isinstance(changes, dict):
        raise InvalidArgument("policy", "must be an object of policy fields")
    try:
        return changes, json_format.ParseDict(changes, admin_pb2.RoutingPolicy())
    except json_format.ParseError as exc:
        field = next((f"policy.{k}" for k in changes if k in str(exc)), "policy")
        raise InvalidArgument(field, str(exc)) from None


def _set_request(
    changes: dict, policy: admin_pb2.RoutingPolicy, note: str, expected_version: int = 0
) -> admin_pb2.SetPolicyRequest:
    return admin_pb2.SetPolicyRequest(
        policy=policy,
        update_mask=field_mask_pb2.FieldMask(paths=sorted(changes)),
        note=note,
        expected_version=expected_version,
    )


def _invalid(exc: InvalidArgument) -> web.Response:
    message = str(exc)
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2 :]
    return web.json_response(
        {"status": "INVALID_ARGUMENT", "field": exc.field, "message": message}, status=400
    )
