"""The policy tuning dashboard: an HTTP server on the router's event loop (aiohttp) serving the page,
its static assets (uPlot, committed), live figures over server-sent events, and the policy API.

Every policy read or change goes through the router's own Admin gRPC API, with the caller's admin
token and name forwarded, so the page has no power the API lacks. Errors come back as JSON:
``{"status": "INVALID_ARGUMENT", "field": "policy.cost_weight", "message": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Callable

import grpc
from aiohttp import web
from google.protobuf import field_mask_pb2, json_format

from router.dashboard.live import LiveView
from tandem.grpc_status import FIELD_METADATA_KEY
from tandem.v1 import admin_pb2, admin_pb2_grpc

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ABORTED: 409,
               grpc.StatusCode.FAILED_PRECONDITION: 412, grpc.StatusCode.UNAVAILABLE: 503}


def _pb_json(msg) -> dict:
    out = json_format.MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    if isinstance(msg, admin_pb2.PolicyVersion):  # the form lists the tunables in the order the .proto documents them
        fields = admin_pb2.RoutingPolicy.DESCRIPTOR.fields
        out["policy"] = {f.name: out["policy"][f.name] for f in sorted(fields, key=lambda f: f.index)}
    return out


class Dashboard:
    """``await start(host, port)`` serves; ``await stop()``. `sample` returns the live view's inputs."""

    def __init__(self, admin_target: str, sample: Callable[[], tuple], interval_s: float = 1.0,
                 live: LiveView | None = None) -> None:
        self.admin_target = admin_target
        self._sample = sample
        self.interval_s = interval_s
        self.live = live or LiveView()
        self.latest: dict = {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self._subscribers: set[asyncio.Queue] = set()
        app = web.Application()
        app.add_routes([
            web.get("/", self._index),
            web.static("/static", STATIC),
            web.get("/api/live", self._live),
            web.get("/api/events", self._events),
            web.get("/api/policy", self._get_policy),
            web.post("/api/policy", self._set_policy),
            web.post("/api/rollback", self._rollback),
            web.get("/api/history", self._history),
        ])
        self.app = app

    async def start(self, host: str, port: int) -> int:
        self._channel = grpc.aio.insecure_channel(self.admin_target)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tick()
        self._ticker = asyncio.create_task(self._tick_loop(), name="dashboard-live")
        return self.port

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for q in list(self._subscribers):
            q.put_nowait(None)
        if self._runner:
            await self._runner.cleanup()
        if self._channel:
            await self._channel.close()

    # -- live figures

    def _tick(self) -> None:
        families, fleet, policy, version = self._sample()
        self.latest = self.live.sample(families, fleet, policy, version)
        self.latest["series"] = list(self.live.series)[-1:]
        for q in list(self._subscribers):
            if q.qsize() < 4:  # a slow browser skips updates instead of growing a queue
                q.put_nowait(self.latest)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - one bad sample must not stop the page's updates
                log.exception("dashboard sample failed")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({**self.latest, "series": list(self.live.series)})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(q)
        try:
            await resp.write(f"data: {json.dumps({**self.latest, 'series': list(self.live.series)})}\n\n".encode())
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
    def _error(err: grpc.RpcError) -> web.Response:
        field = next((v for k, v in (err.trailing_metadata() or ()) if k == FIELD_METADATA_KEY), "")
        details = err.details() or ""
        message = details[len(field) + 2:] if field and details.startswith(f"{field}: ") else details
        return web.json_response({"status": err.code().name, "field": field, "message": message},
                                 status=HTTP_STATUS.get(err.code(), 500))

    async def _get_policy(self, request: web.Request) -> web.Response:
        try:
            v = await self._admin().GetPolicy(admin_pb2.GetPolicyRequest(), timeout=5)
        except grpc.RpcError as err:
            return self._error(err)
        return web.json_response(_pb_json(v))

    async def _set_policy(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            changes = dict(body.get("policy") or {})
            policy = json_format.ParseDict(changes, admin_pb2.RoutingPolicy())
        except (ValueError, json_format.ParseError) as exc:
            field = next((f"policy.{k}" for k in (locals().get("changes") or {}) if k in str(exc)), "policy")
            return web.json_response({"status": "INVALID_ARGUMENT", "field": field, "message": str(exc)}, status=400)
        note = str(body.get("note") or "").strip()
        if not note:
            return web.json_response({"status": "INVALID_ARGUMENT", "field": "note",
                                      "message": "a note saying why is required"}, status=400)
        if not changes:
            return web.json_response({"status": "INVALID_ARGUMENT", "field": "policy",
                                      "message": "nothing to change"}, status=400)
        req = admin_pb2.SetPolicyRequest(policy=policy, update_mask=field_mask_pb2.FieldMask(paths=sorted(changes)),
                                         note=note, expected_version=int(body.get("expected_version") or 0))
        try:
            v = await self._admin().SetPolicy(req, timeout=5, metadata=self._metadata(request))
        except grpc.RpcError as err:
            return self._error(err)
        return web.json_response(_pb_json(v))

    async def _rollback(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            version = int(body.get("version"))
        except (ValueError, TypeError):
            return web.json_response({"status": "INVALID_ARGUMENT", "field": "version",
                                      "message": "a version number is required"}, status=400)
        note = str(body.get("note") or "").strip()
        if not note:
            return web.json_response({"status": "INVALID_ARGUMENT", "field": "note",
                                      "message": "a note saying why is required"}, status=400)
        try:
            v = await self._admin().RollbackPolicy(admin_pb2.RollbackPolicyRequest(version=version, note=note),
                                                   timeout=5, metadata=self._metadata(request))
        except grpc.RpcError as err:
            return self._error(err)
        return web.json_response(_pb_json(v))

    async def _history(self, request: web.Request) -> web.Response:
        try:
            resp = await self._admin().ListPolicyHistory(admin_pb2.ListPolicyHistoryRequest(limit=200), timeout=5)
        except grpc.RpcError as err:
            return self._error(err)
        return web.json_response({"versions": [_pb_json(v) for v in resp.versions]})
