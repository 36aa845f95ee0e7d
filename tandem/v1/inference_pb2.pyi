from tandem.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoutingHints(_message.Message):
    __slots__ = ("placement", "device_id", "ttft_slo_ms", "token_slo_ms", "max_cost_usd", "privacy", "quality", "max_device_energy_joules", "draft_length", "disable_overlap", "draft_tree")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TTFT_SLO_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SLO_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    MAX_DEVICE_ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    DRAFT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DISABLE_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    DRAFT_TREE_FIELD_NUMBER: _ClassVar[int]
    placement: _common_pb2.PlacementPreference
    device_id: str
    ttft_slo_ms: float
    token_slo_ms: float
    max_cost_usd: float
    privacy: _common_pb2.Privacy
    quality: _common_pb2.Quality
    max_device_energy_joules: float
    draft_length: int
    disable_overlap: bool
    draft_tree: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, placement: _Optional[_Union[_common_pb2.PlacementPreference, str]] = ..., device_id: _Optional[str] = ..., ttft_slo_ms: _Optional[float] = ..., token_slo_ms: _Optional[float] = ..., max_cost_usd: _Optional[float] = ..., privacy: _Optional[_Union[_common_pb2.Privacy, str]] = ..., quality: _Optional[_Union[_common_pb2.Quality, str]] = ..., max_device_energy_joules: _Optional[float] = ..., draft_length: _Optional[int] = ..., disable_overlap: _Optional[bool] = ..., draft_tree: _Optional[_Iterable[int]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("request_id", "prompt", "messages", "sampling", "hints")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    sampling: _common_pb2.SamplingParams
    hints: RoutingHints
    def __init__(self, request_id: _Optional[str] = ..., prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., hints: _Optional[_Union[RoutingHints, _Mapping]] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("ttft_ms", "total_ms", "decision_ms")
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    DECISION_MS_FIELD_NUMBER: _ClassVar[int]
    ttft_ms: float
    total_ms: float
    decision_ms: float
    def __init__(self, ttft_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., decision_ms: _Optional[float] = ...) -> None: ...

class GenerateChunk(_message.Message):
    __slots__ = ("request_id", "text", "token_ids", "placement", "worker_id", "accepted_draft_tokens", "final", "finish_reason", "usage", "cost", "tandem", "decision", "timing")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_DRAFT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    TANDEM_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    placement: _common_pb2.Placement
    worker_id: str
    accepted_draft_tokens: int
    final: bool
    finish_reason: _common_pb2.FinishReason
    usage: _common_pb2.Usage
    cost: _common_pb2.Cost
    tandem: _common_pb2.TandemStats
    decision: _common_pb2.Decision
    timing: Timing
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., placement: _Optional[_Union[_common_pb2.Placement, str]] = ..., worker_id: _Optional[str] = ..., accepted_draft_tokens: _Optional[int] = ..., final: _Optional[bool] = ..., finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., cost: _Optional[_Union[_common_pb2.Cost, _Mapping]] = ..., tandem: _Optional[_Union[_common_pb2.TandemStats, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, _Mapping]] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ...) -> None: ...
