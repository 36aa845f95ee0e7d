"""The Tandem SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio) for the router's Inference
service. Needs only grpcio and protobuf.

``generate()`` streams :class:`~tandem.results.Chunk` objects; ``complete()`` collects them into a
:class:`~tandem.results.Result`. Failed calls raise the matching :class:`~tandem.errors.TandemError`
(InvalidArgument with the offending field, FailedPrecondition with the router's reasons, ...).

Both clients take the same options: ``timeout`` (a deadline per request, retries included),
``api_key`` (sent as ``authorization: Bearer <key>``), ``tls`` / ``root_certificates`` /
``credentials`` for a TLS channel, and ``retries``: a call that fails UNAVAILABLE before its first
token is retried (with exponential backoff from ``retry_backoff_s``) under the same request id;
once a token has arrived nothing is retried, so no token is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import grpc

from tandem.errors import DeadlineExceeded, InvalidArgument
from tandem.grpc_status import from_rpc_error
from tandem.results import Chunk, Decision, Result
from tandem.v1 import admin_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc

PLACEMENT_PREFERENCES = {
    "auto": common_pb2.PLACEMENT_PREFERENCE_AUTO,
    "prefer_device": common_pb2.PLACEMENT_PREFERENCE_PREFER_DEVICE,
    "only_device": common_pb2.PLACEMENT_PREFERENCE_ONLY_DEVICE,
    "prefer_cloud": common_pb2.PLACEMENT_PREFERENCE_PREFER_CLOUD,
    "only_cloud": common_pb2.PLACEMENT_PREFERENCE_ONLY_CLOUD,
    "prefer_tandem": common_pb2.PLACEMENT_PREFERENCE_PREFER_TANDEM,
}
PRIVACY = {"standard": common_pb2.PRIVACY_STANDARD, "local_only": common_pb2.PRIVACY_LOCAL_ONLY}
QUALITY = {
    "unspecified": common_pb2.QUALITY_UNSPECIFIED,
    "small_ok": common_pb2.QUALITY_SMALL_OK,
    "large_required": common_pb2.QUALITY_LARGE_REQUIRED,
}


def _pick(table: dict[str, int], value: str, field: str) -> int:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument(field, f"must be one of {', '.join(table)}, got {value!r}") from None


def build_request(
    prompt: str | None = None,
    *,
    messages: Sequence[dict | tuple[str, str]] | None = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[str] = (),
    placement: str = "auto",
    device_id: str = "",
    privacy: str = "standard",
    quality: str = "unspecified",
    ttft_slo_ms: float = 0.0,
    token_slo_ms: float = 0.0,
    max_cost_usd: float = 0.0,
    max_device_energy_joules: float = 0.0,
    draft_length: int = 0,
    overlap: bool = True,
    request_id: str = "",
    draft_tree: Sequence[int] = (),
) -> inference_pb2.GenerateRequest:
    """The GenerateRequest for these arguments (the router validates values; enum names are checked here)."""
    msgs = []
    for m in messages or ():
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        msgs.append(common_pb2.ChatMessage(role=role, content=content))
    sampling = common_pb2.SamplingParams(
        temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens, stop=list(stop)
    )
    if top_p is not None:
        sampling.top_p = top_p
    if seed is not None:
        sampling.seed = seed
    hints = inference_pb2.RoutingHints(
        placement=_pick(PLACEMENT_PREFERENCES, placement, "placement"),
        device_id=device_id,
        privacy=_pick(PRIVACY, privacy, "privacy"),
        quality=_pick(QUALITY, quality, "quality"),
        ttft_slo_ms=ttft_slo_ms,
        token_slo_ms=token_slo_ms,
        max_cost_usd=max_cost_usd,
        max_device_energy_joules=max_device_energy_joules,
        draft_length=draft_length,
        disable_overlap=not overlap,
        draft_tree=list(draft_tree),
    )
    return inference_pb2.GenerateRequest(
        request_id=request_id, prompt=prompt or "", messages=msgs, sampling=sampling, hints=hints
    )


def tls_credentials(
    tls: bool, root_certificates: bytes | None, credentials: grpc.ChannelCredentials | None
) -> grpc.ChannelCredentials | None:
    """The channel credentials a client asked for: `credentials` as given, else TLS when `tls` or
    `root_certificates` (the CA that signed the router's certificate; None: the system's roots);
    None: plaintext."""
    if credentials is None and (tls or root_certificates):
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return credentials


class _Options:
    """What both clients share: target, deadline, credentials, metadata and the retry rule."""

    def __init__(
        self,
        target: str,
        timeout: float | None,
        api_key: str | None,
        tls: bool,
        root_certificates: bytes | None,
        credentials: grpc.ChannelCredentials | None,
        retries: int,
        retry_backoff_s: float,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        if retries < 0 or retry_backoff_s < 0:
            raise InvalidArgument("retries", "retries and retry_backoff_s must be >= 0")
        if timeout is not None and timeout <= 0:
            raise InvalidArgument("timeout", f"must be > 0 seconds, got {timeout}")
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.metadata = tuple(metadata) + ((("authorization", f"Bearer {api_key}"),) if api_key else ())
        self.credentials = tls_credentials(tls, root_certificates, credentials)

    def channel(self, grpc_module, options: Sequence[tuple[str, object]]):
        """A channel to the target from `grpc_module` (grpc or grpc.aio), with TLS when asked for."""
        if self.credentials:
            return grpc_module.secure_channel(self.target, self.credentials, options=list(options))
        return grpc_module.insecure_channel(self.target, options=list(options))

    def request(self, prompt: str | None, kwargs: dict) -> inference_pb2.GenerateRequest:
        request = build_request(prompt, **kwargs)
        if not request.request_id:  # one id for every attempt
            request.request_id = uuid.uuid4().hex
        return request

    def deadline(self, timeout: float | None) -> float | None:
        budget = timeout if timeout is not None else self.timeout
        return None if budget is None else time.monotonic() + budget

    def remaining(self, end: float | None) -> float | None:
        if end is None:
            return None
        left = end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the request's deadline passed before its first token")
        return left

    def retry_after(
        self, err: grpc.RpcError, attempt: int, got_tokens: bool, end: float | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None: raise `err`."""
        if got_tokens or err.code() != grpc.StatusCode.UNAVAILABLE or attempt >= self.retries:
            return None
        wait = self.retry_backoff_s * 2**attempt
        if end is not None and time.monotonic() + wait >= end:
            return None
        return wait


class Client:
    """Blocking client. Use as a context manager or call close(). Options: see the module docstring."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float | None = None,
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        retries: int = 2,
        retry_backoff_s: float = 0.1,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self._o = _Options(
            target, timeout, api_key, tls, root_certificates, credentials, retries, retry_backoff_s, metadata
        )
        self.target, self.timeout = target, timeout
        self._channel = self._o.channel(grpc, options)
        self._inference = inference_pb2_grpc.InferenceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)

    def generate(
        self, prompt: str | None = None, *, timeout: float | None = None, **kwargs
    ) -> Iterator[Chunk]:
        """Stream chunks as the router commits tokens. Keyword arguments: see build_request()."""
        request = self._o.request(prompt, kwargs)
        end = self._o.deadline(timeout)
        attempt = 0
        while True:
            call = self._inference.Generate(
                request, timeout=self._o.remaining(end), metadata=self._o.metadata
            )
            got = False
            try:
                for msg in call:
                    got = got or bool(msg.token_ids)
                    yield Chunk.from_pb(msg)
                return
            except grpc.RpcError as err:
                wait = self._o.retry_after(err, attempt, got, end)
                if wait is None:
                    raise from_rpc_error(err) from None
            finally:
                call.cancel()
            time.sleep(wait)
            attempt += 1

    def complete(self, prompt: str | None = None, **kwargs) -> Result:
        """The whole generation with usage, cost, placement, TANDEM statistics and the decision's reason."""
        return Result.collect(list(self.generate(prompt, **kwargs)))

    def explain(self, prompt: str | None = None, *, timeout: float | None = None, **kwargs) -> Decision:
        """The router's decision for this request, without running it."""
        try:
            d = self._admin.Explain(
                build_request(prompt, **kwargs), timeout=timeout or self.timeout, metadata=self._o.metadata
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return Decision.from_pb(d)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """asyncio client. Use as an async context manager or await close(). Options: as Client's."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float | None = None,
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        retries: int = 2,
        retry_backoff_s: float = 0.1,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self._o = _Options(
            target, timeout, api_key, tls, root_certificates, credentials, retries, retry_backoff_s, metadata
        )
        self.target, self.timeout = target, timeout
        self._channel = self._o.channel(grpc.aio, options)
        self._inference = inference_pb2_grpc.InferenceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)

    async def generate(
        self, prompt: str | None = None, *, timeout: float | None = None, **kwargs
    ) -> AsyncIterator[Chunk]:
        """Stream chunks as the router commits tokens. Keyword arguments: see build_request()."""
        request = self._o.request(prompt, kwargs)
        end = self._o.deadline(timeout)
        attempt = 0
        while True:
            call = self._inference.Generate(
                request, timeout=self._o.remaining(end), metadata=self._o.metadata
            )
            got = False
            try:
                async for msg in call:
                    got = got or bool(msg.token_ids)
                    yield Chunk.from_pb(msg)
                return
            except grpc.RpcError as err:
                wait = self._o.retry_after(err, attempt, got, end)
                if wait is None:
                    raise from_rpc_error(err) from None
            finally:
                call.cancel()
            await asyncio.sleep(wait)
            attempt += 1

    async def complete(self, prompt: str | None = None, **kwargs) -> Result:
        """The whole generation with usage, cost, placement, TANDEM statistics and the decision's reason."""
        return Result.collect([c async for c in self.generate(prompt, **kwargs)])

    async def explain(self, prompt: str | None = None, *, timeout: float | None = None, **kwargs) -> Decision:
        """The router's decision for this request, without running it."""
        try:
            d = await self._admin.Explain(
                build_request(prompt, **kwargs), timeout=timeout or self.timeout, metadata=self._o.metadata
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return Decision.from_pb(d)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
