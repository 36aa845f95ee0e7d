"""Router messages ↔ plain domain values. Validation errors name the request field."""

from __future__ import annotations

import dataclasses
import math

from router.fleet import CLOUD, EDGE, DeviceState, PoolInfo, WorkerRecord
from router.policy.config import PolicyConfig, policy_to_dict
from router.policy.placement import Decision, Preference, Privacy, Quality, RouteRequest
from router.policy_store import PolicyVersion
from runtime.convert import check_enum, messages_from_pb, sampling_from_pb
from runtime.credentials import check_id
from runtime.params import SamplingConfig, tree_problem
from tandem.convert import PLACEMENTS
from tandem.errors import InvalidArgument
from tandem.v1 import admin_pb2, common_pb2, fleet_pb2, inference_pb2

PREFERENCES = {
    common_pb2.PLACEMENT_PREFERENCE_AUTO: Preference.AUTO,
    common_pb2.PLACEMENT_PREFERENCE_PREFER_DEVICE: Preference.PREFER_DEVICE,
    common_pb2.PLACEMENT_PREFERENCE_ONLY_DEVICE: Preference.ONLY_DEVICE,
    common_pb2.PLACEMENT_PREFERENCE_PREFER_CLOUD: Preference.PREFER_CLOUD,
    common_pb2.PLACEMENT_PREFERENCE_ONLY_CLOUD: Preference.ONLY_CLOUD,
    common_pb2.PLACEMENT_PREFERENCE_PREFER_TANDEM: Preference.PREFER_TANDEM,
}
PRIVACY = {common_pb2.PRIVACY_STANDARD: Privacy.STANDARD, common_pb2.PRIVACY_LOCAL_ONLY: Privacy.LOCAL_ONLY}
QUALITY = {
    common_pb2.QUALITY_UNSPECIFIED: Quality.UNSPECIFIED,
    common_pb2.QUALITY_SMALL_OK: Quality.SMALL_OK,
    common_pb2.QUALITY_LARGE_REQUIRED: Quality.LARGE_REQUIRED,
}
THERMAL = {
    common_pb2.THERMAL_STATE_UNKNOWN: "unknown",
    common_pb2.THERMAL_STATE_NOMINAL: "nominal",
    common_pb2.THERMAL_STATE_FAIR: "fair",
    common_pb2.THERMAL_STATE_SERIOUS: "serious",
    common_pb2.THERMAL_STATE_CRITICAL: "critical",
}
BATTERY = {
    common_pb2.BATTERY_SOURCE_NONE: "none",
    common_pb2.BATTERY_SOURCE_REAL: "real",
    common_pb2.BATTERY_SOURCE_MODELLED: "modelled",
}
KINDS = {common_pb2.WORKER_KIND_EDGE: EDGE, common_pb2.WORKER_KIND_CLOUD: CLOUD}
KIND_PB = {v: k for k, v in KINDS.items()}


@dataclasses.dataclass(frozen=True)
class GenerateSpec:
    """A validated generation request."""

    request_id: str
    prompt: str
    messages: tuple[tuple[str, str], ...]
    sampling: SamplingConfig
    route: RouteRequest


def _non_negative(value: float, field: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(field, f"must be a finite number >= 0, got {value}")
    return value


def parse_generate(msg: inference_pb2.GenerateRequest) -> GenerateSpec:
    """Validate a GenerateRequest; raises InvalidArgument naming the first bad field."""
    if msg.prompt and msg.messages:
        raise InvalidArgument("prompt", "set either prompt or messages, not both")
    if not msg.prompt and not msg.messages:
        raise InvalidArgument("prompt", "empty: set prompt (text) or messages (chat)")
    for i, m in enumerate(msg.messages):
        if m.role not in ("system", "user", "assistant"):
            raise InvalidArgument(f"messages[{i}].role", f"must be system, user or assistant, got {m.role!r}")
    if not msg.HasField("sampling"):
        raise InvalidArgument("sampling.max_new_tokens", "required (sampling is missing)")
    sampling = sampling_from_pb(msg.sampling)
    h = msg.hints
    route = RouteRequest(
        preference=PREFERENCES[check_enum(h, "placement", "hints.placement")],
        device_id=h.device_id,
        privacy=PRIVACY[check_enum(h, "privacy", "hints.privacy")],
        quality=QUALITY[check_enum(h, "quality", "hints.quality")],
        max_new_tokens=sampling.max_new_tokens,
        ttft_slo_ms=_non_negative(h.ttft_slo_ms, "hints.ttft_slo_ms"),
        token_slo_ms=_non_negative(h.token_slo_ms, "hints.token_slo_ms"),
        max_cost_usd=_non_negative(h.max_cost_usd, "hints.max_cost_usd"),
        max_device_energy_joules=_non_negative(h.max_device_energy_joules, "hints.max_device_energy_joules"),
        draft_length=h.draft_length,
        draft_tree=tuple(h.draft_tree),
        overlap=not h.disable_overlap,
        prompt_chars=len(msg.prompt) + sum(len(m.content) for m in msg.messages),
        greedy=sampling.greedy,
    )
    if route.draft_length < 0 or route.draft_length > 64:
        raise InvalidArgument(
            "hints.draft_length", f"must be in [0, 64] (0 = adaptive), got {route.draft_length}"
        )
    problem = tree_problem(route.draft_tree, sampling.greedy)
    if problem:
        raise InvalidArgument("hints.draft_tree", problem)
    return GenerateSpec(msg.request_id, msg.prompt, tuple(messages_from_pb(msg.messages)), sampling, route)


# what a member may report: (field, lowest, highest); a value outside is refused, naming the field
STATE_RANGES = (
    ("battery_percent", 0.0, 100.0),
    ("energy_per_token_joules", 0.0, 1_000.0),
    ("queue_depth", 0, 1_000_000),
    ("active_sessions", 0, 1_000_000),
    ("rtt_ms", 0.0, 600_000.0),
    ("kv_cache_bytes", 0, 2**50),
    ("battery_capacity_joules", 0.0, 1e9),
    ("tokens_generated", 0, 2**62),
    ("energy_spent_joules", 0.0, 1e12),
)


def state_from_pb(s: common_pb2.WorkerState, prefix: str = "state") -> DeviceState:
    """A member's reported state, every number range-checked (InvalidArgument naming the field)."""
    for name, lo, hi in STATE_RANGES:
        v = getattr(s, name)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise InvalidArgument(f"{prefix}.{name}", f"must be in [{lo:g}, {hi:g}], got {v!r}")
    battery = BATTERY[check_enum(s, "battery_source", f"{prefix}.battery_source")]
    thermal = THERMAL[check_enum(s, "thermal", f"{prefix}.thermal")]
    return DeviceState(
        battery_percent=s.battery_percent,
        charging=s.charging,
        battery_source=battery,
        thermal=thermal,
        energy_per_token_joules=s.energy_per_token_joules,
        queue_depth=s.queue_depth,
        active_sessions=s.active_sessions,
        rtt_ms=s.rtt_ms,
        kv_cache_bytes=s.kv_cache_bytes,
        battery_capacity_joules=s.battery_capacity_joules,
        tokens_generated=s.tokens_generated,
    )


def record_from_register(msg: fleet_pb2.RegisterRequest) -> WorkerRecord:
    if not msg.endpoint or ":" not in msg.endpoint:
        raise InvalidArgument("endpoint", f"must be host:port, got {msg.endpoint!r}")
    return record_from_info(msg.info, msg.endpoint, msg.state, msg.pool, "")


def record_from_info(
    info: common_pb2.WorkerInfo,
    endpoint: str,
    state: common_pb2.WorkerState,
    pool: common_pb2.PoolProfile,
    prefix: str,
) -> WorkerRecord:
    """A member's record from what it says of itself (fields named under `prefix`)."""
    at = f"{prefix}." if prefix else ""
    check_id(f"{at}info.worker_id", info.worker_id)
    if not info.tokenizer_id:
        raise InvalidArgument(f"{at}info.tokenizer_id", "required (draft and target must share a tokenizer)")
    kind = check_enum(info, "kind", f"{at}info.kind")
    if kind not in KINDS:
        raise InvalidArgument(f"{at}info.kind", "must be WORKER_KIND_EDGE or WORKER_KIND_CLOUD")
    if KINDS[kind] == CLOUD and not pool.name:
        raise InvalidArgument(f"{at}pool.name", "required for cloud replicas")
    if not 0 < info.max_context <= 10_000_000:
        raise InvalidArgument(f"{at}info.max_context", f"must be in [1, 10000000], got {info.max_context}")
    return WorkerRecord(
        worker_id=info.worker_id,
        kind=KINDS[kind],
        endpoint=endpoint,
        model_name=info.model_name[:200],
        tokenizer_id=info.tokenizer_id[:200],
        max_context=info.max_context,
        eos_token_id=info.eos_token_id,
        execution_provider=info.execution_provider[:200],
        available_providers=tuple(p[:200] for p in info.available_providers[:32]),
        vocab_size=info.vocab_size,
        version=info.version[:64],
        pool=PoolInfo(
            pool.name,
            pool.accelerator or info.accelerator,
            pool.price_per_replica_hour_usd,
            pool.price_per_1k_tokens_usd,
            pool.replicas,
            pool.slots_per_replica or 8,
        ),
        state=state_from_pb(state, f"{at}state"),
        metrics_port=info.metrics_port,
    )


def decision_to_pb(d: Decision, decided_at: str = "router") -> common_pb2.Decision:
    """`d` on the wire; `decided_at` says where it was made ("router" or "device")."""
    return common_pb2.Decision(
        decided_at=decided_at,
        placement=PLACEMENTS[d.placement],
        edge_worker_id=d.edge_worker_id,
        pool=d.pool,
        cloud_worker_id=d.cloud_worker_id,
        initial_draft_length=d.initial_draft_length,
        reason=d.reason,
        policy_version=d.policy_version,
        predicted_cost_usd=d.predicted_cost_usd,
        predicted_ttft_ms=d.predicted_ttft_ms,
        predicted_token_ms=d.predicted_token_ms,
        predicted_device_energy_joules=d.predicted_energy_j,
        candidates=[
            common_pb2.Candidate(
                placement=PLACEMENTS[c.placement],
                edge_worker_id=c.edge_worker_id,
                pool=c.pool,
                score=c.score,
                excluded=c.excluded,
                reason=c.reason,
                predicted_cost_usd=c.predicted_cost_usd,
                predicted_ttft_ms=c.predicted_ttft_ms,
                predicted_token_ms=c.predicted_token_ms,
                predicted_device_energy_joules=c.predicted_energy_j,
            )
            for c in d.candidates
        ],
    )


def policy_to_pb(p: PolicyConfig) -> admin_pb2.RoutingPolicy:
    return admin_pb2.RoutingPolicy(**policy_to_dict(p))


def policy_changes_from_pb(msg: admin_pb2.RoutingPolicy, paths: list[str]) -> dict:
    """The fields of `msg` named by `paths` (all when empty) as policy changes; InvalidArgument
    naming update_mask for an unknown path."""
    names = [f.name for f in admin_pb2.RoutingPolicy.DESCRIPTOR.fields]
    for path in paths:
        if path not in names:
            raise InvalidArgument("update_mask", f"unknown policy field {path!r}; known: {', '.join(names)}")
    return {
        name: dict(getattr(msg, name)) if name == "pool_prices" else getattr(msg, name)
        for name in (paths or names)
    }


def policy_version_to_pb(v: PolicyVersion) -> admin_pb2.PolicyVersion:
    return admin_pb2.PolicyVersion(
        version=v.version,
        policy=policy_to_pb(v.policy),
        caller=v.caller,
        created_unix_s=v.created_unix_s,
        note=v.note,
        source=v.source,
        restored_version=v.restored_version,
    )


def shadow_to_pb(stats) -> admin_pb2.ShadowReport:
    """A router.policy.shadow.ShadowStats (None: no shadow runs) as the Admin API's report."""
    if stats is None:
        return admin_pb2.ShadowReport(active=False)
    r = stats.report()
    return admin_pb2.ShadowReport(
        active=True,
        policy=policy_to_pb(stats.policy),
        note=r["note"],
        caller=r["caller"],
        started_unix_s=r["started_unix_s"],
        decisions=r["decisions"],
        same_placement=r["same_placement"],
        same_target=r["same_target"],
        differences=[
            admin_pb2.ShadowDifference(live=d["live"], shadow=d["shadow"], count=d["count"])
            for d in r["differences"]
        ],
        live=admin_pb2.ShadowPredictions(**{k: v or 0.0 for k, v in r["live"].items()}),
        shadow=admin_pb2.ShadowPredictions(**{k: v or 0.0 for k, v in r["shadow"].items()}),
    )


def member_to_pb(w: WorkerRecord, now: float) -> admin_pb2.FleetMember:
    s = w.state
    return admin_pb2.FleetMember(
        info=common_pb2.WorkerInfo(
            worker_id=w.worker_id,
            kind=KIND_PB[w.kind],
            model_name=w.model_name,
            tokenizer_id=w.tokenizer_id,
            max_context=w.max_context,
            execution_provider=w.execution_provider,
            available_providers=list(w.available_providers),
            vocab_size=w.vocab_size,
            version=w.version,
            pool=w.pool.name,
            accelerator=w.pool.accelerator,
            metrics_port=w.metrics_port,
            eos_token_id=w.eos_token_id,
        ),
        endpoint=w.endpoint,
        state=common_pb2.WorkerState(
            battery_percent=s.battery_percent,
            charging=s.charging,
            battery_source={v: k for k, v in BATTERY.items()}[s.battery_source],
            thermal={v: k for k, v in THERMAL.items()}[s.thermal],
            energy_per_token_joules=s.energy_per_token_joules,
            queue_depth=s.queue_depth,
            active_sessions=s.active_sessions,
            rtt_ms=s.rtt_ms,
            kv_cache_bytes=s.kv_cache_bytes,
            battery_capacity_joules=s.battery_capacity_joules,
        ),
        pool=common_pb2.PoolProfile(
            name=w.pool.name,
            accelerator=w.pool.accelerator,
            price_per_replica_hour_usd=w.pool.price_per_replica_hour_usd,
            price_per_1k_tokens_usd=w.pool.price_per_1k_tokens_usd,
            replicas=w.pool.replicas,
            slots_per_replica=w.pool.slots_per_replica,
        ),
        heartbeat_age_ms=(now - w.last_seen) * 1e3,
        registered_age_ms=(now - w.registered_at) * 1e3,
    )
