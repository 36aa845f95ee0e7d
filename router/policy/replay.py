"""What-if replay: a recorded trace (load-test records or the router's decision log) replayed by the
fleet simulator under candidate policies, for the cost / SLO attainment / battery-harm trade-off.

A trace entry is plain data — when the request arrived, from which device, its hints and sizes —
so both sources convert to the same thing (``entry_from_record``, ``entry_from_log``). The
simulated world (device speeds, links, pools, acceptance) is a fleet-simulator scenario's, by
default router/policy/sim/reference.toml; the trace sets the arrivals and the devices.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping, Sequence

from router.policy.config import PolicyConfig
from router.policy.placement import RouteRequest
from router.policy.sim import REFERENCE, RouterPolicy, Scenario, SimRequest, Simulation, load_scenario

MAX_ENTRIES = 20_000


@dataclasses.dataclass(frozen=True)
class TraceEntry:
    t_s: float  # arrival, seconds from any origin
    device_id: str  # "" when the request named no device
    route: RouteRequest
    prompt_tokens: int


def entry_from_record(r: Mapping) -> TraceEntry:
    """A load-test record (loadtest.records.RequestRecord.to_json(), a requests.jsonl line)."""
    route = RouteRequest(
        preference=r.get("placement_hint") or "auto",
        device_id=r.get("device_id", ""),
        privacy=r.get("privacy") or "standard",
        quality=r.get("quality") or "unspecified",
        max_new_tokens=int(r["max_new_tokens"]),
        ttft_slo_ms=float(r.get("ttft_slo_ms") or 0),
        token_slo_ms=float(r.get("token_slo_ms") or 0),
        prompt_chars=int(r.get("prompt_chars") or 4 * int(r.get("prompt_tokens") or 1)),
    )
    return TraceEntry(
        float(r["scheduled_s"]), route.device_id, route, max(1, int(r.get("prompt_tokens") or 1))
    )


def entry_from_log(e: Mapping) -> TraceEntry:
    """An entry of the router's decision log (router.placer.Placer.decision_log: t_s and the route's
    fields)."""
    route = RouteRequest(**{k: e[k] for k in RouteRequest.__dataclass_fields__ if k in e})
    chars_per_token = float(e.get("chars_per_token") or 3.5)
    return TraceEntry(
        float(e["t_s"]), route.device_id, route, max(1, round(route.prompt_chars / chars_per_token))
    )


def sim_requests(entries: Sequence[TraceEntry], base: Scenario) -> tuple[Scenario, list[SimRequest]]:
    """The scenario (the base world, with the trace's devices and span) and its requests, in order.
    Devices are renamed dev-00000…; a request that named no device keeps naming none."""
    if not entries:
        raise ValueError("the trace is empty")
    entries = sorted(entries, key=lambda e: e.t_s)[:MAX_ENTRIES]
    ids = sorted({e.device_id for e in entries if e.device_id})
    index = {d: i for i, d in enumerate(ids)}
    t0, t1 = entries[0].t_s, entries[-1].t_s
    sc = dataclasses.replace(base, devices=max(1, len(ids)), hours=max((t1 - t0) / 3600.0, 1 / 60))
    start = sc.start_hour * 3600.0
    out = []
    for k, e in enumerate(entries):
        i = index.get(e.device_id, 0)
        route = dataclasses.replace(e.route, device_id=f"dev-{i:05d}" if e.device_id else "")
        out.append(
            SimRequest(
                t=start + e.t_s - t0,
                device=i,
                route=route,
                interactive=bool(route.ttft_slo_ms or route.token_slo_ms),
                prompt_tokens=e.prompt_tokens,
                rtt_jitter=1.0,
                seed=(sc.seed * 1_000_003 + k) & 0xFFFFFFFF,
            )
        )
    return sc, out


def whatif(
    entries: Sequence[TraceEntry],
    policies: Mapping[str, PolicyConfig],
    base: Scenario | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Each policy's outcome on the trace: one point per policy, the same world for all."""
    base = base or load_scenario(REFERENCE)
    sc, reqs = sim_requests(entries, base)
    points = []
    for name, policy in policies.items():
        s = Simulation(sc, RouterPolicy(policy, name), random.Random(sc.seed), progress, requests=reqs).run()
        points.append(
            {
                "name": name,
                "requests": s["requests"],
                "cloud_cost_usd": s["cloud_cost_usd"],
                "slo_attainment": s["slo_attainment"],
                "device_energy_j": s["device_energy_j"],
                "devices_pushed_below_reserve": s["devices_pushed_below_reserve"],
                "pushed_below_reserve_events": s["pushed_below_reserve_events"],
                "refused": s["refused"],
                "share": s["share"],
            }
        )
    return points


def load_records(lines: Iterable[str]) -> list[TraceEntry]:
    """Trace entries from requests.jsonl lines (blank lines skipped). Raises ValueError naming the line."""
    import json

    out = []
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(entry_from_record(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"line {i}: not a load-test record ({exc})") from None
    return out
