"""The verify broker (fleet.proto `Fleet.VerifyStream`): TANDEM driven from a device, verified in the
cloud through the router.

A device drafting for its own apps (edge_worker.tandem) verifies on a stream to the router, and
pipelines it: it sends the blocks it drafts ahead at once, each continuing the one before as if it
were a hit, tagged with an epoch and its bonus guess; the broker verifies them in order and, after a
block that was not a hit, drops the rest of that epoch unanswered — so a run of hits does not wait
for the device's link. The router authorizes the device, picks the least-loaded replica of the pool,
and relays each round to it on a Worker.VerifyStream of its own (router.tandem_io.GrpcVerifier: a
session id the router makes, failover to another replica of the pool with the whole committed
context when one is lost), and meters what the cloud did: the passes' accelerator time is billed to
the pool in the router's metrics, as for the router's own TANDEM requests.

Why relay rather than hand the device a ticket to a gateway in front of the replicas: the replicas
stay reachable from the router alone and trust one credential (the router's, over mutual TLS); the
router sees every pass it bills and every replica failure it must route around; and the extra hop is
inside the cloud (router ↔ replica), not on the device's link, which is what a round pays for.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from router.config import RouterConfig
from router.failover import ReplicaFailover
from router.fleet import CLOUD, EDGE, FleetRegistry
from router.identity import FleetIdentity
from router.metrics import RouterMetrics
from router.placer import Placer
from router.policy.costs import cloud_cost_usd, priced
from router.tandem.loop import CloudLost, Draft, is_hit
from router.tandem_io import Deadline, GrpcVerifier
from router.worker_channels import WorkerChannels
from runtime.credentials import bearer
from tandem.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unauthenticated, Unavailable
from tandem.v1 import worker_pb2

log = logging.getLogger(__name__)

DEVICE_KEY, POOL_KEY = "tandem-device", "tandem-pool"


class VerifyBroker:
    def __init__(
        self,
        registry: FleetRegistry,
        channels: WorkerChannels,
        identity: FleetIdentity,
        placer: Placer,
        metrics: RouterMetrics,
        config: RouterConfig,
    ) -> None:
        self.registry = registry
        self.channels = channels
        self.identity = identity
        self.placer = placer
        self.metrics = metrics
        self.config = config
        self.streams = 0  # brokered streams open now

    def _admit(self, context) -> tuple[str, ReplicaFailover]:
        metadata = context.invocation_metadata() or ()
        meta = {k: v for k, v in metadata}
        device_id, pool = meta.get(DEVICE_KEY, ""), meta.get(POOL_KEY, "")
        if not self.identity.is_device(device_id, bearer(metadata)):
            raise Unauthenticated(
                f"a brokered verify stream needs the credential of the device in `{DEVICE_KEY}` metadata"
            )
        device = self.registry.get(device_id)
        if device is None or device.kind != EDGE:
            raise FailedPrecondition(f"device {device_id!r} is not in the fleet: link it first")
        replica = self.registry.pick_replica(pool, exclude=set())
        if replica is None:
            known = {w.pool.name for w in self.registry.members(CLOUD)}
            if pool not in known:
                raise FailedPrecondition(f"no pool {pool!r} (`{POOL_KEY}` metadata); pools: {sorted(known)}")
            raise ResourceExhausted(f"every replica of pool {pool!r} is full")
        return device_id, ReplicaFailover(self.registry, replica, self.metrics.fallback)

    async def stream(self, request_iterator, context) -> AsyncIterator[worker_pb2.VerifyResponse]:
        """Relay a device's rounds to a replica (module docstring)."""
        device_id, failover = self._admit(context)
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if not first.context:
            raise InvalidArgument(
                "context", "the first message of a verify stream carries the committed context"
            )
        session_id = f"brokered-{uuid.uuid4().hex}"  # made here, never taken from the device
        deadline = Deadline(context.time_remaining(), self.config.round_timeout_s)
        verifier = GrpcVerifier(self.channels, failover, session_id, first.sampling, deadline)
        committed: list[int] = []
        compute_ms, passes, rounds, produced = 0.0, 0, 0, 0
        started = time.perf_counter()
        self.streams += 1
        msg, epoch = first, first.epoch
        try:
            while msg is not None:
                if msg.epoch < epoch:  # sent ahead of a block that was not a hit: stale
                    msg = await anext(aiter(request_iterator), None)
                    continue
                epoch = msg.epoch
                if msg.context:
                    committed = list(msg.context)
                if msg.context_length and msg.context_length != len(committed):
                    raise InvalidArgument(
                        "context_length", f"{msg.context_length} is not the stream's ({len(committed)})"
                    )
                draft = Draft(
                    list(msg.draft_token_ids),
                    list(msg.draft_distributions),
                    alternatives=[list(a.token_ids) for a in msg.draft_alternatives],
                )
                try:
                    verdict = await verifier.verify(committed, draft)
                except CloudLost as lost:
                    raise Unavailable(str(lost)) from None
                path = draft.path(verdict.path)
                committed += [*path[: verdict.accepted], verdict.next_token]
                guessed = msg.HasField("bonus_guess")
                guess = msg.bonus_guess if guessed else None
                hit = is_hit(len(draft.tokens), guess, verdict.accepted, verdict.next_token, verdict.path)
                compute_ms += verdict.compute_ms
                passes += verdict.forward_passes
                rounds += 1
                produced += verdict.accepted + 1
                yield worker_pb2.VerifyResponse(
                    accepted=verdict.accepted,
                    next_token_id=verdict.next_token,
                    all_accepted=verdict.accepted == len(path),
                    compute_ms=verdict.compute_ms,
                    forward_passes=verdict.forward_passes,
                    path=verdict.path,
                    worker_id=verdict.worker_id,
                    epoch=epoch,
                )
                if guessed and not hit:
                    epoch += 1  # the blocks sent ahead of this one assumed a hit
                msg = await anext(aiter(request_iterator), None)
        finally:
            self.streams -= 1
            await verifier.release()
            pool = verifier.replica.pool
            price = priced(pool, self.placer.store.policy.pool_prices)
            self.metrics.cloud_cost.labels(pool.name).inc(cloud_cost_usd(price, compute_ms, produced))
            self.metrics.pool_tokens.labels(pool.name).inc(produced)
            log.debug(
                "brokered verify for %s on %s: %d rounds, %d passes, %.0f ms",
                device_id, pool.name, rounds, passes, (time.perf_counter() - started) * 1e3,
            )  # fmt: skip
