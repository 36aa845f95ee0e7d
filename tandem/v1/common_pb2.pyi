from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Placement(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACEMENT_UNSPECIFIED: _ClassVar[Placement]
    PLACEMENT_EDGE: _ClassVar[Placement]
    PLACEMENT_CLOUD: _ClassVar[Placement]
    PLACEMENT_TANDEM: _ClassVar[Placement]

class PlacementPreference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACEMENT_PREFERENCE_AUTO: _ClassVar[PlacementPreference]
    PLACEMENT_PREFERENCE_PREFER_DEVICE: _ClassVar[PlacementPreference]
    PLACEMENT_PREFERENCE_ONLY_DEVICE: _ClassVar[PlacementPreference]
    PLACEMENT_PREFERENCE_PREFER_CLOUD: _ClassVar[PlacementPreference]
    PLACEMENT_PREFERENCE_ONLY_CLOUD: _ClassVar[PlacementPreference]
    PLACEMENT_PREFERENCE_PREFER_TANDEM: _ClassVar[PlacementPreference]

class Privacy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_STANDARD: _ClassVar[Privacy]
    PRIVACY_LOCAL_ONLY: _ClassVar[Privacy]

class Quality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_UNSPECIFIED: _ClassVar[Quality]
    QUALITY_SMALL_OK: _ClassVar[Quality]
    QUALITY_LARGE_REQUIRED: _ClassVar[Quality]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_EOS: _ClassVar[FinishReason]
    FINISH_REASON_STOP_STRING: _ClassVar[FinishReason]

class WorkerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_KIND_UNSPECIFIED: _ClassVar[WorkerKind]
    WORKER_KIND_EDGE: _ClassVar[WorkerKind]
    WORKER_KIND_CLOUD: _ClassVar[WorkerKind]

class ThermalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THERMAL_STATE_UNKNOWN: _ClassVar[ThermalState]
    THERMAL_STATE_NOMINAL: _ClassVar[ThermalState]
    THERMAL_STATE_FAIR: _ClassVar[ThermalState]
    THERMAL_STATE_SERIOUS: _ClassVar[ThermalState]
    THERMAL_STATE_CRITICAL: _ClassVar[ThermalState]

class BatterySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATTERY_SOURCE_NONE: _ClassVar[BatterySource]
    BATTERY_SOURCE_REAL: _ClassVar[BatterySource]
    BATTERY_SOURCE_MODELLED: _ClassVar[BatterySource]
PLACEMENT_UNSPECIFIED: Placement
PLACEMENT_EDGE: Placement
PLACEMENT_CLOUD: Placement
PLACEMENT_TANDEM: Placement
PLACEMENT_PREFERENCE_AUTO: PlacementPreference
PLACEMENT_PREFERENCE_PREFER_DEVICE: PlacementPreference
PLACEMENT_PREFERENCE_ONLY_DEVICE: PlacementPreference
PLACEMENT_PREFERENCE_PREFER_CLOUD: PlacementPreference
PLACEMENT_PREFERENCE_ONLY_CLOUD: PlacementPreference
PLACEMENT_PREFERENCE_PREFER_TANDEM: PlacementPreference
PRIVACY_STANDARD: Privacy
PRIVACY_LOCAL_ONLY: Privacy
QUALITY_UNSPECIFIED: Quality
QUALITY_SMALL_OK: Quality
QUALITY_LARGE_REQUIRED: Quality
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_EOS: FinishReason
FINISH_REASON_STOP_STRING: FinishReason
WORKER_KIND_UNSPECIFIED: WorkerKind
WORKER_KIND_EDGE: WorkerKind
WORKER_KIND_CLOUD: WorkerKind
THERMAL_STATE_UNKNOWN: ThermalState
THERMAL_STATE_NOMINAL: ThermalState
THERMAL_STATE_FAIR: ThermalState
THERMAL_STATE_SERIOUS: ThermalState
THERMAL_STATE_CRITICAL: ThermalState
BATTERY_SOURCE_NONE: BatterySource
BATTERY_SOURCE_REAL: BatterySource
BATTERY_SOURCE_MODELLED: BatterySource

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class PromptInput(_message.Message):
    __slots__ = ("text", "messages", "token_ids")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, text: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_k", "top_p", "seed", "max_new_tokens", "stop")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_k: int
    top_p: float
    seed: int
    max_new_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., max_new_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("cloud_usd", "device_energy_joules", "target_forward_passes", "cloud_compute_ms")
    CLOUD_USD_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    TARGET_FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    CLOUD_COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    cloud_usd: float
    device_energy_joules: float
    target_forward_passes: int
    cloud_compute_ms: float
    def __init__(self, cloud_usd: _Optional[float] = ..., device_energy_joules: _Optional[float] = ..., target_forward_passes: _Optional[int] = ..., cloud_compute_ms: _Optional[float] = ...) -> None: ...

class TandemStats(_message.Message):
    __slots__ = ("rounds", "drafted_tokens", "accepted_tokens", "correction_tokens", "bonus_tokens", "acceptance_rate", "mean_draft_length", "last_draft_length", "fallbacks", "overlap_hits", "overlap_misses")
    class FallbacksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    DRAFTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BONUS_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_RATE_FIELD_NUMBER: _ClassVar[int]
    MEAN_DRAFT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LAST_DRAFT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_HITS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_MISSES_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    drafted_tokens: int
    accepted_tokens: int
    correction_tokens: int
    bonus_tokens: int
    acceptance_rate: float
    mean_draft_length: float
    last_draft_length: int
    fallbacks: _containers.ScalarMap[str, int]
    overlap_hits: int
    overlap_misses: int
    def __init__(self, rounds: _Optional[int] = ..., drafted_tokens: _Optional[int] = ..., accepted_tokens: _Optional[int] = ..., correction_tokens: _Optional[int] = ..., bonus_tokens: _Optional[int] = ..., acceptance_rate: _Optional[float] = ..., mean_draft_length: _Optional[float] = ..., last_draft_length: _Optional[int] = ..., fallbacks: _Optional[_Mapping[str, int]] = ..., overlap_hits: _Optional[int] = ..., overlap_misses: _Optional[int] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("placement", "edge_worker_id", "pool", "score", "excluded", "reason", "predicted_cost_usd", "predicted_ttft_ms", "predicted_token_ms", "predicted_device_energy_joules")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    EDGE_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_DEVICE_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    placement: Placement
    edge_worker_id: str
    pool: str
    score: float
    excluded: bool
    reason: str
    predicted_cost_usd: float
    predicted_ttft_ms: float
    predicted_token_ms: float
    predicted_device_energy_joules: float
    def __init__(self, placement: _Optional[_Union[Placement, str]] = ..., edge_worker_id: _Optional[str] = ..., pool: _Optional[str] = ..., score: _Optional[float] = ..., excluded: _Optional[bool] = ..., reason: _Optional[str] = ..., predicted_cost_usd: _Optional[float] = ..., predicted_ttft_ms: _Optional[float] = ..., predicted_token_ms: _Optional[float] = ..., predicted_device_energy_joules: _Optional[float] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("placement", "edge_worker_id", "pool", "cloud_worker_id", "initial_draft_length", "reason", "candidates", "policy_version", "predicted_cost_usd", "predicted_ttft_ms", "predicted_token_ms", "predicted_device_energy_joules", "decided_at")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    EDGE_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    CLOUD_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DRAFT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_DEVICE_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    placement: Placement
    edge_worker_id: str
    pool: str
    cloud_worker_id: str
    initial_draft_length: int
    reason: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    policy_version: int
    predicted_cost_usd: float
    predicted_ttft_ms: float
    predicted_token_ms: float
    predicted_device_energy_joules: float
    decided_at: str
    def __init__(self, placement: _Optional[_Union[Placement, str]] = ..., edge_worker_id: _Optional[str] = ..., pool: _Optional[str] = ..., cloud_worker_id: _Optional[str] = ..., initial_draft_length: _Optional[int] = ..., reason: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., policy_version: _Optional[int] = ..., predicted_cost_usd: _Optional[float] = ..., predicted_ttft_ms: _Optional[float] = ..., predicted_token_ms: _Optional[float] = ..., predicted_device_energy_joules: _Optional[float] = ..., decided_at: _Optional[str] = ...) -> None: ...

class WorkerState(_message.Message):
    __slots__ = ("battery_percent", "charging", "battery_source", "thermal", "energy_per_token_joules", "queue_depth", "active_sessions", "rtt_ms", "kv_cache_bytes", "tokens_generated", "energy_spent_joules", "battery_capacity_joules")
    BATTERY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CHARGING_FIELD_NUMBER: _ClassVar[int]
    BATTERY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    THERMAL_FIELD_NUMBER: _ClassVar[int]
    ENERGY_PER_TOKEN_JOULES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SPENT_JOULES_FIELD_NUMBER: _ClassVar[int]
    BATTERY_CAPACITY_JOULES_FIELD_NUMBER: _ClassVar[int]
    battery_percent: float
    charging: bool
    battery_source: BatterySource
    thermal: ThermalState
    energy_per_token_joules: float
    queue_depth: int
    active_sessions: int
    rtt_ms: float
    kv_cache_bytes: int
    tokens_generated: int
    energy_spent_joules: float
    battery_capacity_joules: float
    def __init__(self, battery_percent: _Optional[float] = ..., charging: _Optional[bool] = ..., battery_source: _Optional[_Union[BatterySource, str]] = ..., thermal: _Optional[_Union[ThermalState, str]] = ..., energy_per_token_joules: _Optional[float] = ..., queue_depth: _Optional[int] = ..., active_sessions: _Optional[int] = ..., rtt_ms: _Optional[float] = ..., kv_cache_bytes: _Optional[int] = ..., tokens_generated: _Optional[int] = ..., energy_spent_joules: _Optional[float] = ..., battery_capacity_joules: _Optional[float] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "kind", "model_name", "tokenizer_id", "vocab_size", "max_context", "execution_provider", "available_providers", "pool", "accelerator", "metrics_port", "version", "eos_token_id")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_ID_FIELD_NUMBER: _ClassVar[int]
    VOCAB_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    METRICS_PORT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EOS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    kind: WorkerKind
    model_name: str
    tokenizer_id: str
    vocab_size: int
    max_context: int
    execution_provider: str
    available_providers: _containers.RepeatedScalarFieldContainer[str]
    pool: str
    accelerator: str
    metrics_port: int
    version: str
    eos_token_id: int
    def __init__(self, worker_id: _Optional[str] = ..., kind: _Optional[_Union[WorkerKind, str]] = ..., model_name: _Optional[str] = ..., tokenizer_id: _Optional[str] = ..., vocab_size: _Optional[int] = ..., max_context: _Optional[int] = ..., execution_provider: _Optional[str] = ..., available_providers: _Optional[_Iterable[str]] = ..., pool: _Optional[str] = ..., accelerator: _Optional[str] = ..., metrics_port: _Optional[int] = ..., version: _Optional[str] = ..., eos_token_id: _Optional[int] = ...) -> None: ...

class PoolProfile(_message.Message):
    __slots__ = ("name", "accelerator", "price_per_replica_hour_usd", "price_per_1k_tokens_usd", "replicas", "slots_per_replica")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_REPLICA_HOUR_USD_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_1K_TOKENS_USD_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_PER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    name: str
    accelerator: str
    price_per_replica_hour_usd: float
    price_per_1k_tokens_usd: float
    replicas: int
    slots_per_replica: int
    def __init__(self, name: _Optional[str] = ..., accelerator: _Optional[str] = ..., price_per_replica_hour_usd: _Optional[float] = ..., price_per_1k_tokens_usd: _Optional[float] = ..., replicas: _Optional[int] = ..., slots_per_replica: _Optional[int] = ...) -> None: ...
