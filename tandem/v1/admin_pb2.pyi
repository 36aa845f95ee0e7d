from google.protobuf import field_mask_pb2 as _field_mask_pb2
from tandem.v1 import common_pb2 as _common_pb2
from tandem.v1 import inference_pb2 as _inference_pb2
from tandem.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoutingPolicy(_message.Message):
    __slots__ = ("cost_weight", "latency_weight", "battery_weight", "battery_reserve_percent", "energy_margin", "default_battery_capacity_joules", "default_ttft_slo_ms", "default_token_slo_ms", "small_ok_max_new_tokens", "allow_tandem", "max_cost_usd", "max_pool_price_per_hour_usd", "max_pool_utilisation", "max_draft_length", "max_device_state_age_s", "prior_acceptance", "prior_device_ttft_ms", "prior_device_prefill_ms_per_token", "prior_device_token_ms", "prior_draft_ms", "prior_rtt_ms", "prior_cloud_ttft_ms", "prior_cloud_prefill_ms_per_token", "prior_cloud_token_ms", "prior_verify_ms", "prior_compute_ms_per_token", "prior_compute_ms_per_verify", "prompt_chars_per_token", "prefill_energy_fraction", "slo_confidence", "prior_latency_spread", "pool_prices")
    class PoolPricesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    COST_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATTERY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATTERY_RESERVE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    ENERGY_MARGIN_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BATTERY_CAPACITY_JOULES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TTFT_SLO_MS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TOKEN_SLO_MS_FIELD_NUMBER: _ClassVar[int]
    SMALL_OK_MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_TANDEM_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_POOL_PRICE_PER_HOUR_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_POOL_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAFT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_DEVICE_STATE_AGE_S_FIELD_NUMBER: _ClassVar[int]
    PRIOR_ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_DEVICE_TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_DEVICE_PREFILL_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_DEVICE_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_DRAFT_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_CLOUD_TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_CLOUD_PREFILL_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_CLOUD_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_VERIFY_MS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_COMPUTE_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_COMPUTE_MS_PER_VERIFY_FIELD_NUMBER: _ClassVar[int]
    PROMPT_CHARS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREFILL_ENERGY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SLO_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_LATENCY_SPREAD_FIELD_NUMBER: _ClassVar[int]
    POOL_PRICES_FIELD_NUMBER: _ClassVar[int]
    cost_weight: float
    latency_weight: float
    battery_weight: float
    battery_reserve_percent: float
    energy_margin: float
    default_battery_capacity_joules: float
    default_ttft_slo_ms: float
    default_token_slo_ms: float
    small_ok_max_new_tokens: int
    allow_tandem: bool
    max_cost_usd: float
    max_pool_price_per_hour_usd: float
    max_pool_utilisation: float
    max_draft_length: int
    max_device_state_age_s: float
    prior_acceptance: float
    prior_device_ttft_ms: float
    prior_device_prefill_ms_per_token: float
    prior_device_token_ms: float
    prior_draft_ms: float
    prior_rtt_ms: float
    prior_cloud_ttft_ms: float
    prior_cloud_prefill_ms_per_token: float
    prior_cloud_token_ms: float
    prior_verify_ms: float
    prior_compute_ms_per_token: float
    prior_compute_ms_per_verify: float
    prompt_chars_per_token: float
    prefill_energy_fraction: float
    slo_confidence: float
    prior_latency_spread: float
    pool_prices: _containers.ScalarMap[str, float]
    def __init__(self, cost_weight: _Optional[float] = ..., latency_weight: _Optional[float] = ..., battery_weight: _Optional[float] = ..., battery_reserve_percent: _Optional[float] = ..., energy_margin: _Optional[float] = ..., default_battery_capacity_joules: _Optional[float] = ..., default_ttft_slo_ms: _Optional[float] = ..., default_token_slo_ms: _Optional[float] = ..., small_ok_max_new_tokens: _Optional[int] = ..., allow_tandem: _Optional[bool] = ..., max_cost_usd: _Optional[float] = ..., max_pool_price_per_hour_usd: _Optional[float] = ..., max_pool_utilisation: _Optional[float] = ..., max_draft_length: _Optional[int] = ..., max_device_state_age_s: _Optional[float] = ..., prior_acceptance: _Optional[float] = ..., prior_device_ttft_ms: _Optional[float] = ..., prior_device_prefill_ms_per_token: _Optional[float] = ..., prior_device_token_ms: _Optional[float] = ..., prior_draft_ms: _Optional[float] = ..., prior_rtt_ms: _Optional[float] = ..., prior_cloud_ttft_ms: _Optional[float] = ..., prior_cloud_prefill_ms_per_token: _Optional[float] = ..., prior_cloud_token_ms: _Optional[float] = ..., prior_verify_ms: _Optional[float] = ..., prior_compute_ms_per_token: _Optional[float] = ..., prior_compute_ms_per_verify: _Optional[float] = ..., prompt_chars_per_token: _Optional[float] = ..., prefill_energy_fraction: _Optional[float] = ..., slo_confidence: _Optional[float] = ..., prior_latency_spread: _Optional[float] = ..., pool_prices: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PolicyVersion(_message.Message):
    __slots__ = ("version", "policy", "caller", "created_unix_s", "note", "source", "restored_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RESTORED_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    policy: RoutingPolicy
    caller: str
    created_unix_s: float
    note: str
    source: str
    restored_version: int
    def __init__(self, version: _Optional[int] = ..., policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., caller: _Optional[str] = ..., created_unix_s: _Optional[float] = ..., note: _Optional[str] = ..., source: _Optional[str] = ..., restored_version: _Optional[int] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("policy", "update_mask", "note", "expected_version")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    policy: RoutingPolicy
    update_mask: _field_mask_pb2.FieldMask
    note: str
    expected_version: int
    def __init__(self, policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., note: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RollbackPolicyRequest(_message.Message):
    __slots__ = ("version", "note")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    version: int
    note: str
    def __init__(self, version: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class ListPolicyHistoryRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListPolicyHistoryResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PolicyVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[PolicyVersion, _Mapping]]] = ...) -> None: ...

class GetShadowReportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClearShadowPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShadowReport(_message.Message):
    __slots__ = ("active", "policy", "note", "caller", "started_unix_s", "decisions", "same_placement", "same_target", "differences", "live", "shadow")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    SAME_PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    SAME_TARGET_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    active: bool
    policy: RoutingPolicy
    note: str
    caller: str
    started_unix_s: float
    decisions: int
    same_placement: int
    same_target: int
    differences: _containers.RepeatedCompositeFieldContainer[ShadowDifference]
    live: ShadowPredictions
    shadow: ShadowPredictions
    def __init__(self, active: _Optional[bool] = ..., policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., note: _Optional[str] = ..., caller: _Optional[str] = ..., started_unix_s: _Optional[float] = ..., decisions: _Optional[int] = ..., same_placement: _Optional[int] = ..., same_target: _Optional[int] = ..., differences: _Optional[_Iterable[_Union[ShadowDifference, _Mapping]]] = ..., live: _Optional[_Union[ShadowPredictions, _Mapping]] = ..., shadow: _Optional[_Union[ShadowPredictions, _Mapping]] = ...) -> None: ...

class ShadowDifference(_message.Message):
    __slots__ = ("live", "shadow", "count")
    LIVE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    live: str
    shadow: str
    count: int
    def __init__(self, live: _Optional[str] = ..., shadow: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ShadowPredictions(_message.Message):
    __slots__ = ("cost_usd", "ttft_ms", "token_ms")
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    cost_usd: float
    ttft_ms: float
    token_ms: float
    def __init__(self, cost_usd: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., token_ms: _Optional[float] = ...) -> None: ...

class ListFleetRequest(_message.Message):
    __slots__ = ("kind", "id_prefix", "limit", "after")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    kind: _common_pb2.WorkerKind
    id_prefix: str
    limit: int
    after: str
    def __init__(self, kind: _Optional[_Union[_common_pb2.WorkerKind, str]] = ..., id_prefix: _Optional[str] = ..., limit: _Optional[int] = ..., after: _Optional[str] = ...) -> None: ...

class FleetMember(_message.Message):
    __slots__ = ("info", "endpoint", "state", "pool", "heartbeat_age_ms", "registered_age_ms")
    INFO_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.WorkerInfo
    endpoint: str
    state: _common_pb2.WorkerState
    pool: _common_pb2.PoolProfile
    heartbeat_age_ms: float
    registered_age_ms: float
    def __init__(self, info: _Optional[_Union[_common_pb2.WorkerInfo, _Mapping]] = ..., endpoint: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ..., pool: _Optional[_Union[_common_pb2.PoolProfile, _Mapping]] = ..., heartbeat_age_ms: _Optional[float] = ..., registered_age_ms: _Optional[float] = ...) -> None: ...

class ListFleetResponse(_message.Message):
    __slots__ = ("members", "matched")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[FleetMember]
    matched: int
    def __init__(self, members: _Optional[_Iterable[_Union[FleetMember, _Mapping]]] = ..., matched: _Optional[int] = ...) -> None: ...

class PingMemberRequest(_message.Message):
    __slots__ = ("worker_id", "timeout_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    timeout_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class PingMemberResponse(_message.Message):
    __slots__ = ("describe", "round_trip_ms", "endpoint")
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    describe: _worker_pb2.DescribeResponse
    round_trip_ms: float
    endpoint: str
    def __init__(self, describe: _Optional[_Union[_worker_pb2.DescribeResponse, _Mapping]] = ..., round_trip_ms: _Optional[float] = ..., endpoint: _Optional[str] = ...) -> None: ...
