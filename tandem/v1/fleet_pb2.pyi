from tandem.v1 import admin_pb2 as _admin_pb2
from tandem.v1 import common_pb2 as _common_pb2
from tandem.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkUp(_message.Message):
    __slots__ = ("hello", "telemetry", "reply", "pong", "usage", "outcome")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    hello: LinkHello
    telemetry: _common_pb2.WorkerState
    reply: LinkReply
    pong: LinkPong
    usage: DeviceUsage
    outcome: DeviceOutcome
    def __init__(self, hello: _Optional[_Union[LinkHello, _Mapping]] = ..., telemetry: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ..., reply: _Optional[_Union[LinkReply, _Mapping]] = ..., pong: _Optional[_Union[LinkPong, _Mapping]] = ..., usage: _Optional[_Union[DeviceUsage, _Mapping]] = ..., outcome: _Optional[_Union[DeviceOutcome, _Mapping]] = ...) -> None: ...

class DeviceOutcome(_message.Message):
    __slots__ = ("placement", "prompt_chars", "prompt_tokens", "tokens", "ttft_ms", "token_ms", "pool", "greedy", "drafted", "reached", "accepted", "draft_ms", "predicted_token_ms", "predicted_token_var")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_CHARS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    GREEDY_FIELD_NUMBER: _ClassVar[int]
    DRAFTED_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DRAFT_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TOKEN_VAR_FIELD_NUMBER: _ClassVar[int]
    placement: str
    prompt_chars: int
    prompt_tokens: int
    tokens: int
    ttft_ms: float
    token_ms: float
    pool: str
    greedy: bool
    drafted: int
    reached: _containers.RepeatedScalarFieldContainer[int]
    accepted: _containers.RepeatedScalarFieldContainer[int]
    draft_ms: float
    predicted_token_ms: float
    predicted_token_var: float
    def __init__(self, placement: _Optional[str] = ..., prompt_chars: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., tokens: _Optional[int] = ..., ttft_ms: _Optional[float] = ..., token_ms: _Optional[float] = ..., pool: _Optional[str] = ..., greedy: _Optional[bool] = ..., drafted: _Optional[int] = ..., reached: _Optional[_Iterable[int]] = ..., accepted: _Optional[_Iterable[int]] = ..., draft_ms: _Optional[float] = ..., predicted_token_ms: _Optional[float] = ..., predicted_token_var: _Optional[float] = ...) -> None: ...

class DeviceUsage(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[UsageCount]
    def __init__(self, counts: _Optional[_Iterable[_Union[UsageCount, _Mapping]]] = ...) -> None: ...

class UsageCount(_message.Message):
    __slots__ = ("placement", "status", "requests", "completion_tokens", "device_energy_joules")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    placement: str
    status: str
    requests: int
    completion_tokens: int
    device_energy_joules: float
    def __init__(self, placement: _Optional[str] = ..., status: _Optional[str] = ..., requests: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., device_energy_joules: _Optional[float] = ...) -> None: ...

class LinkHello(_message.Message):
    __slots__ = ("info", "state")
    INFO_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.WorkerInfo
    state: _common_pb2.WorkerState
    def __init__(self, info: _Optional[_Union[_common_pb2.WorkerInfo, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ...) -> None: ...

class LinkDown(_message.Message):
    __slots__ = ("welcome", "call", "cancel", "ping", "cloud_view")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    CLOUD_VIEW_FIELD_NUMBER: _ClassVar[int]
    welcome: LinkWelcome
    call: LinkCall
    cancel: LinkCancel
    ping: LinkPing
    cloud_view: CloudView
    def __init__(self, welcome: _Optional[_Union[LinkWelcome, _Mapping]] = ..., call: _Optional[_Union[LinkCall, _Mapping]] = ..., cancel: _Optional[_Union[LinkCancel, _Mapping]] = ..., ping: _Optional[_Union[LinkPing, _Mapping]] = ..., cloud_view: _Optional[_Union[CloudView, _Mapping]] = ...) -> None: ...

class CloudView(_message.Message):
    __slots__ = ("policy_version", "policy", "pools", "device", "chars_per_token", "spreads", "ttl_ms")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHARS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SPREADS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    policy_version: int
    policy: _admin_pb2.RoutingPolicy
    pools: _containers.RepeatedCompositeFieldContainer[PoolView]
    device: DeviceView
    chars_per_token: float
    spreads: _containers.RepeatedCompositeFieldContainer[LatencySpread]
    ttl_ms: float
    def __init__(self, policy_version: _Optional[int] = ..., policy: _Optional[_Union[_admin_pb2.RoutingPolicy, _Mapping]] = ..., pools: _Optional[_Iterable[_Union[PoolView, _Mapping]]] = ..., device: _Optional[_Union[DeviceView, _Mapping]] = ..., chars_per_token: _Optional[float] = ..., spreads: _Optional[_Iterable[_Union[LatencySpread, _Mapping]]] = ..., ttl_ms: _Optional[float] = ...) -> None: ...

class PoolView(_message.Message):
    __slots__ = ("profile", "replicas", "utilisation", "ttft_ms", "prefill_ms_per_token", "token_ms", "verify_ms", "compute_ms_per_token", "compute_ms_per_verify", "observations", "acceptance_greedy", "acceptance_sampled", "replica_id")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_MS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_PER_VERIFY_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_GREEDY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_SAMPLED_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.PoolProfile
    replicas: int
    utilisation: float
    ttft_ms: float
    prefill_ms_per_token: float
    token_ms: float
    verify_ms: float
    compute_ms_per_token: float
    compute_ms_per_verify: float
    observations: int
    acceptance_greedy: _containers.RepeatedScalarFieldContainer[float]
    acceptance_sampled: _containers.RepeatedScalarFieldContainer[float]
    replica_id: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.PoolProfile, _Mapping]] = ..., replicas: _Optional[int] = ..., utilisation: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., prefill_ms_per_token: _Optional[float] = ..., token_ms: _Optional[float] = ..., verify_ms: _Optional[float] = ..., compute_ms_per_token: _Optional[float] = ..., compute_ms_per_verify: _Optional[float] = ..., observations: _Optional[int] = ..., acceptance_greedy: _Optional[_Iterable[float]] = ..., acceptance_sampled: _Optional[_Iterable[float]] = ..., replica_id: _Optional[str] = ...) -> None: ...

class DeviceView(_message.Message):
    __slots__ = ("ttft_ms", "prefill_ms_per_token", "token_ms", "draft_ms", "link_ms", "ahead_extra_ms", "inflight_energy_joules", "rtt_ms")
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    PREFILL_MS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    DRAFT_MS_FIELD_NUMBER: _ClassVar[int]
    LINK_MS_FIELD_NUMBER: _ClassVar[int]
    AHEAD_EXTRA_MS_FIELD_NUMBER: _ClassVar[int]
    INFLIGHT_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    ttft_ms: float
    prefill_ms_per_token: float
    token_ms: float
    draft_ms: float
    link_ms: float
    ahead_extra_ms: float
    inflight_energy_joules: float
    rtt_ms: float
    def __init__(self, ttft_ms: _Optional[float] = ..., prefill_ms_per_token: _Optional[float] = ..., token_ms: _Optional[float] = ..., draft_ms: _Optional[float] = ..., link_ms: _Optional[float] = ..., ahead_extra_ms: _Optional[float] = ..., inflight_energy_joules: _Optional[float] = ..., rtt_ms: _Optional[float] = ...) -> None: ...

class LatencySpread(_message.Message):
    __slots__ = ("placement", "figure", "base", "quantiles", "count")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    placement: str
    figure: str
    base: float
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    count: int
    def __init__(self, placement: _Optional[str] = ..., figure: _Optional[str] = ..., base: _Optional[float] = ..., quantiles: _Optional[_Iterable[float]] = ..., count: _Optional[int] = ...) -> None: ...

class LinkWelcome(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms", "telemetry_refresh_ms", "telemetry_battery_step", "cloud_view_interval_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_REFRESH_MS_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_BATTERY_STEP_FIELD_NUMBER: _ClassVar[int]
    CLOUD_VIEW_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    telemetry_refresh_ms: int
    telemetry_battery_step: float
    cloud_view_interval_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., telemetry_refresh_ms: _Optional[int] = ..., telemetry_battery_step: _Optional[float] = ..., cloud_view_interval_ms: _Optional[int] = ...) -> None: ...

class LinkCall(_message.Message):
    __slots__ = ("call_id", "timeout_ms", "half_close", "describe", "draft", "draft_stream", "generate", "release", "get_tokenizer", "tokenize")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    HALF_CLOSE_FIELD_NUMBER: _ClassVar[int]
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_STREAM_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    GET_TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    TOKENIZE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    timeout_ms: float
    half_close: bool
    describe: _worker_pb2.DescribeRequest
    draft: _worker_pb2.DraftRequest
    draft_stream: _worker_pb2.DraftStreamRequest
    generate: _worker_pb2.WorkerGenerateRequest
    release: _worker_pb2.ReleaseRequest
    get_tokenizer: _worker_pb2.GetTokenizerRequest
    tokenize: _worker_pb2.TokenizeRequest
    def __init__(self, call_id: _Optional[int] = ..., timeout_ms: _Optional[float] = ..., half_close: _Optional[bool] = ..., describe: _Optional[_Union[_worker_pb2.DescribeRequest, _Mapping]] = ..., draft: _Optional[_Union[_worker_pb2.DraftRequest, _Mapping]] = ..., draft_stream: _Optional[_Union[_worker_pb2.DraftStreamRequest, _Mapping]] = ..., generate: _Optional[_Union[_worker_pb2.WorkerGenerateRequest, _Mapping]] = ..., release: _Optional[_Union[_worker_pb2.ReleaseRequest, _Mapping]] = ..., get_tokenizer: _Optional[_Union[_worker_pb2.GetTokenizerRequest, _Mapping]] = ..., tokenize: _Optional[_Union[_worker_pb2.TokenizeRequest, _Mapping]] = ...) -> None: ...

class LinkCancel(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    def __init__(self, call_id: _Optional[int] = ...) -> None: ...

class LinkReply(_message.Message):
    __slots__ = ("call_id", "end", "status", "describe", "draft", "draft_block", "generate", "release", "get_tokenizer", "tokenize")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    GET_TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    TOKENIZE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    end: bool
    status: LinkStatus
    describe: _worker_pb2.DescribeResponse
    draft: _worker_pb2.DraftResponse
    draft_block: _worker_pb2.DraftBlock
    generate: _worker_pb2.WorkerGenerateChunk
    release: _worker_pb2.ReleaseResponse
    get_tokenizer: _worker_pb2.GetTokenizerResponse
    tokenize: _worker_pb2.TokenizeResponse
    def __init__(self, call_id: _Optional[int] = ..., end: _Optional[bool] = ..., status: _Optional[_Union[LinkStatus, _Mapping]] = ..., describe: _Optional[_Union[_worker_pb2.DescribeResponse, _Mapping]] = ..., draft: _Optional[_Union[_worker_pb2.DraftResponse, _Mapping]] = ..., draft_block: _Optional[_Union[_worker_pb2.DraftBlock, _Mapping]] = ..., generate: _Optional[_Union[_worker_pb2.WorkerGenerateChunk, _Mapping]] = ..., release: _Optional[_Union[_worker_pb2.ReleaseResponse, _Mapping]] = ..., get_tokenizer: _Optional[_Union[_worker_pb2.GetTokenizerResponse, _Mapping]] = ..., tokenize: _Optional[_Union[_worker_pb2.TokenizeResponse, _Mapping]] = ...) -> None: ...

class LinkStatus(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class LinkPing(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class LinkPong(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("info", "endpoint", "state", "pool")
    INFO_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.WorkerInfo
    endpoint: str
    state: _common_pb2.WorkerState
    pool: _common_pb2.PoolProfile
    def __init__(self, info: _Optional[_Union[_common_pb2.WorkerInfo, _Mapping]] = ..., endpoint: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ..., pool: _Optional[_Union[_common_pb2.PoolProfile, _Mapping]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms", "lease_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    lease_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "state")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    state: _common_pb2.WorkerState
    def __init__(self, worker_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("known",)
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    known: bool
    def __init__(self, known: _Optional[bool] = ...) -> None: ...

class DeregisterRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class DeregisterResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...
