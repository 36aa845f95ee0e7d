"""Placement by the caller's hints — a pure function over plain data.

``decide(request, fleet)`` → a :class:`Decision` naming the placement, the workers and the reason,
with every candidate considered (chosen or excluded, and why). Raises FailedPrecondition listing
the reasons when no candidate can serve.

Rules (hints alone; the cost/latency/battery policy builds on this shape):

- LOCAL_ONLY privacy or ONLY_DEVICE: the caller's registered edge worker, or nothing;
- ONLY_CLOUD: the least-loaded cloud replica, or nothing;
- PREFER_DEVICE: the caller's edge worker when registered, else the cloud;
- AUTO: TANDEM when the caller's device and a cloud replica are both registered (exactly the
  large model's output, with the device drafting), else whichever of the two is there;
- PREFER_CLOUD: the cloud when a replica is registered, else the caller's device.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from router.fleet import CLOUD, EDGE, WorkerRecord
from tandem.errors import FailedPrecondition

AUTO, PREFER_DEVICE, ONLY_DEVICE, PREFER_CLOUD, ONLY_CLOUD = (
    "auto", "prefer_device", "only_device", "prefer_cloud", "only_cloud")
STANDARD, LOCAL_ONLY = "standard", "local_only"


@dataclasses.dataclass(frozen=True)
class RouteRequest:
    """The routing-relevant part of a request."""

    preference: str = AUTO
    device_id: str = ""
    privacy: str = STANDARD
    quality: str = "unspecified"  # unspecified | small_ok | large_required
    max_new_tokens: int = 64
    ttft_slo_ms: float = 0.0
    token_slo_ms: float = 0.0
    max_cost_usd: float = 0.0
    max_device_energy_joules: float = 0.0
    draft_length: int = 0
    overlap: bool = True


@dataclasses.dataclass(frozen=True)
class Candidate:
    placement: str  # "edge" | "cloud" | "tandem"
    edge_worker_id: str = ""
    pool: str = ""
    cloud_worker_id: str = ""
    excluded: bool = False
    reason: str = ""
    score: float = 0.0


@dataclasses.dataclass(frozen=True)
class Decision:
    placement: str
    reason: str
    edge_worker_id: str = ""
    edge_endpoint: str = ""
    pool: str = ""
    cloud_worker_id: str = ""
    cloud_endpoint: str = ""
    initial_draft_length: int = 0
    candidates: tuple[Candidate, ...] = ()
    policy_version: int = 0


def _least_loaded(replicas: Sequence[WorkerRecord]) -> WorkerRecord:
    return min(replicas, key=lambda w: (w.state.queue_depth, w.state.active_sessions, w.worker_id))


def decide(req: RouteRequest, fleet: Sequence[WorkerRecord]) -> Decision:
    """Choose a placement for `req` among the registered `fleet`. Pure; raises FailedPrecondition."""
    device = next((w for w in fleet if w.kind == EDGE and w.worker_id == req.device_id), None) if req.device_id else None
    replicas = [w for w in fleet if w.kind == CLOUD]
    device_only = req.preference == ONLY_DEVICE or req.privacy == LOCAL_ONLY
    why_device_only = "privacy LOCAL_ONLY" if req.privacy == LOCAL_ONLY else "placement ONLY_DEVICE"

    candidates: list[Candidate] = []
    if device is not None:
        candidates.append(Candidate("edge", edge_worker_id=device.worker_id, reason="caller's device is registered"))
    else:
        why = (f"device {req.device_id!r} is not registered" if req.device_id
               else "no device_id in the request's hints")
        candidates.append(Candidate("edge", edge_worker_id=req.device_id, excluded=True, reason=why))
    by_pool: dict[str, list[WorkerRecord]] = {}
    for r in replicas:
        by_pool.setdefault(r.pool.name, []).append(r)
    for pool, members in sorted(by_pool.items()):
        best = _least_loaded(members)
        if device_only:
            candidates.append(Candidate("cloud", pool=pool, cloud_worker_id=best.worker_id, excluded=True,
                                        reason=f"{why_device_only}: the prompt may not leave the device"))
        elif req.preference == PREFER_DEVICE and device is not None:
            candidates.append(Candidate("cloud", pool=pool, cloud_worker_id=best.worker_id,
                                        reason="fallback: PREFER_DEVICE and the device is available"))
        else:
            candidates.append(Candidate("cloud", pool=pool, cloud_worker_id=best.worker_id,
                                        reason=f"least-loaded replica of pool {pool!r} (queue {best.state.queue_depth})"))
    if not replicas:
        candidates.append(Candidate("cloud", excluded=True, reason="no cloud replica is registered"))
    tandem_ok = device is not None and replicas and req.preference == AUTO and not device_only
    if tandem_ok:
        best = _least_loaded(replicas)
        candidates.append(Candidate("tandem", edge_worker_id=device.worker_id, pool=best.pool.name,  # type: ignore[union-attr]
                                    cloud_worker_id=best.worker_id,
                                    reason="device drafts, cloud verifies: the large model's exact output"))
    else:
        why = ("needs the caller's device" if device is None else "needs a cloud replica" if not replicas
               else f"placement {req.preference.upper()} / privacy {req.privacy.upper()} rules it out")
        candidates.append(Candidate("tandem", edge_worker_id=req.device_id, excluded=True, reason=why))
    cands = tuple(candidates)

    def on_device(reason: str) -> Decision:
        assert device is not None
        return Decision("edge", reason, edge_worker_id=device.worker_id, edge_endpoint=device.endpoint,
                        candidates=cands)

    def in_cloud(reason: str) -> Decision:
        best = _least_loaded(replicas)
        return Decision("cloud", f"{reason}; replica {best.worker_id} of pool {best.pool.name!r} is least loaded",
                        pool=best.pool.name, cloud_worker_id=best.worker_id, cloud_endpoint=best.endpoint,
                        candidates=cands)

    if device_only:
        if device is None:
            raise FailedPrecondition(f"{why_device_only} requires the caller's device, but {candidates[0].reason}")
        return on_device(f"{why_device_only}: generation stays on device {device.worker_id}")
    if req.preference == ONLY_CLOUD:
        if not replicas:
            raise FailedPrecondition("placement ONLY_CLOUD, but no cloud replica is registered")
        return in_cloud("placement ONLY_CLOUD")
    if req.preference == PREFER_DEVICE:
        if device is not None:
            return on_device(f"placement PREFER_DEVICE and device {device.worker_id} is registered")
        if replicas:
            return in_cloud(f"placement PREFER_DEVICE but {candidates[0].reason}: falling back to the cloud")
        raise FailedPrecondition(f"placement PREFER_DEVICE: {candidates[0].reason} and no cloud replica is registered")
    if tandem_ok:
        assert device is not None
        best = _least_loaded(replicas)
        return Decision("tandem", f"placement AUTO (hints only): device {device.worker_id} drafts, replica "
                        f"{best.worker_id} of pool {best.pool.name!r} verifies", edge_worker_id=device.worker_id,
                        edge_endpoint=device.endpoint, pool=best.pool.name, cloud_worker_id=best.worker_id,
                        cloud_endpoint=best.endpoint, initial_draft_length=req.draft_length, candidates=cands)
    # AUTO without both, and PREFER_CLOUD
    label = "placement PREFER_CLOUD" if req.preference == PREFER_CLOUD else "placement AUTO (hints only)"
    if replicas:
        return in_cloud(label)
    if device is not None:
        return on_device(f"{label} but no cloud replica is registered: falling back to device {device.worker_id}")
    raise FailedPrecondition(f"{label}: no cloud replica is registered and {candidates[0].reason}")
