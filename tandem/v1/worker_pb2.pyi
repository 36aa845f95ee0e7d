from tandem.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("info", "state")
    INFO_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.WorkerInfo
    state: _common_pb2.WorkerState
    def __init__(self, info: _Optional[_Union[_common_pb2.WorkerInfo, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.WorkerState, _Mapping]] = ...) -> None: ...

class TokenizeRequest(_message.Message):
    __slots__ = ("input",)
    INPUT_FIELD_NUMBER: _ClassVar[int]
    input: _common_pb2.PromptInput
    def __init__(self, input: _Optional[_Union[_common_pb2.PromptInput, _Mapping]] = ...) -> None: ...

class TokenizeResponse(_message.Message):
    __slots__ = ("token_ids",)
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class WorkerGenerateRequest(_message.Message):
    __slots__ = ("session_id", "input", "sampling", "keep_session")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    KEEP_SESSION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    input: _common_pb2.PromptInput
    sampling: _common_pb2.SamplingParams
    keep_session: bool
    def __init__(self, session_id: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.PromptInput, _Mapping]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., keep_session: _Optional[bool] = ...) -> None: ...

class WorkerGenerateChunk(_message.Message):
    __slots__ = ("token_ids", "text", "finish_reason", "usage", "energy_joules", "compute_ms", "forward_passes", "cached_tokens")
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    text: str
    finish_reason: _common_pb2.FinishReason
    usage: _common_pb2.Usage
    energy_joules: float
    compute_ms: float
    forward_passes: int
    cached_tokens: int
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ..., text: _Optional[str] = ..., finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., energy_joules: _Optional[float] = ..., compute_ms: _Optional[float] = ..., forward_passes: _Optional[int] = ..., cached_tokens: _Optional[int] = ...) -> None: ...

class TokenDistribution(_message.Message):
    __slots__ = ("token_ids", "probs")
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    PROBS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    probs: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ..., probs: _Optional[_Iterable[float]] = ...) -> None: ...

class DraftRequest(_message.Message):
    __slots__ = ("session_id", "context", "num_tokens", "sampling", "support_size", "branching")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    BRANCHING_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    context: _containers.RepeatedScalarFieldContainer[int]
    num_tokens: int
    sampling: _common_pb2.SamplingParams
    support_size: int
    branching: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[str] = ..., context: _Optional[_Iterable[int]] = ..., num_tokens: _Optional[int] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., support_size: _Optional[int] = ..., branching: _Optional[_Iterable[int]] = ...) -> None: ...

class TokenPath(_message.Message):
    __slots__ = ("token_ids",)
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DraftResponse(_message.Message):
    __slots__ = ("token_ids", "distributions", "cached_tokens", "compute_ms", "energy_joules", "alternatives")
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    distributions: _containers.RepeatedCompositeFieldContainer[TokenDistribution]
    cached_tokens: int
    compute_ms: float
    energy_joules: float
    alternatives: _containers.RepeatedCompositeFieldContainer[TokenPath]
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ..., distributions: _Optional[_Iterable[_Union[TokenDistribution, _Mapping]]] = ..., cached_tokens: _Optional[int] = ..., compute_ms: _Optional[float] = ..., energy_joules: _Optional[float] = ..., alternatives: _Optional[_Iterable[_Union[TokenPath, _Mapping]]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("session_id", "context", "draft_token_ids", "draft_distributions", "sampling", "draft_alternatives")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    DRAFT_DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    DRAFT_ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    context: _containers.RepeatedScalarFieldContainer[int]
    draft_token_ids: _containers.RepeatedScalarFieldContainer[int]
    draft_distributions: _containers.RepeatedCompositeFieldContainer[TokenDistribution]
    sampling: _common_pb2.SamplingParams
    draft_alternatives: _containers.RepeatedCompositeFieldContainer[TokenPath]
    def __init__(self, session_id: _Optional[str] = ..., context: _Optional[_Iterable[int]] = ..., draft_token_ids: _Optional[_Iterable[int]] = ..., draft_distributions: _Optional[_Iterable[_Union[TokenDistribution, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., draft_alternatives: _Optional[_Iterable[_Union[TokenPath, _Mapping]]] = ...) -> None: ...

class VerifyStreamRequest(_message.Message):
    __slots__ = ("session_id", "sampling", "context", "context_length", "draft_token_ids", "draft_distributions", "draft_alternatives", "epoch", "bonus_guess")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DRAFT_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    DRAFT_DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    DRAFT_ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BONUS_GUESS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    sampling: _common_pb2.SamplingParams
    context: _containers.RepeatedScalarFieldContainer[int]
    context_length: int
    draft_token_ids: _containers.RepeatedScalarFieldContainer[int]
    draft_distributions: _containers.RepeatedCompositeFieldContainer[TokenDistribution]
    draft_alternatives: _containers.RepeatedCompositeFieldContainer[TokenPath]
    epoch: int
    bonus_guess: int
    def __init__(self, session_id: _Optional[str] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., context: _Optional[_Iterable[int]] = ..., context_length: _Optional[int] = ..., draft_token_ids: _Optional[_Iterable[int]] = ..., draft_distributions: _Optional[_Iterable[_Union[TokenDistribution, _Mapping]]] = ..., draft_alternatives: _Optional[_Iterable[_Union[TokenPath, _Mapping]]] = ..., epoch: _Optional[int] = ..., bonus_guess: _Optional[int] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("accepted", "next_token_id", "all_accepted", "text", "cached_tokens", "compute_ms", "forward_passes", "queue_ms", "path", "worker_id", "epoch")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    next_token_id: int
    all_accepted: bool
    text: str
    cached_tokens: int
    compute_ms: float
    forward_passes: int
    queue_ms: float
    path: int
    worker_id: str
    epoch: int
    def __init__(self, accepted: _Optional[int] = ..., next_token_id: _Optional[int] = ..., all_accepted: _Optional[bool] = ..., text: _Optional[str] = ..., cached_tokens: _Optional[int] = ..., compute_ms: _Optional[float] = ..., forward_passes: _Optional[int] = ..., queue_ms: _Optional[float] = ..., path: _Optional[int] = ..., worker_id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...

class GetTokenizerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTokenizerResponse(_message.Message):
    __slots__ = ("tokenizer_id", "tokenizer_json")
    TOKENIZER_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_JSON_FIELD_NUMBER: _ClassVar[int]
    tokenizer_id: str
    tokenizer_json: bytes
    def __init__(self, tokenizer_id: _Optional[str] = ..., tokenizer_json: _Optional[bytes] = ...) -> None: ...

class DraftStreamRequest(_message.Message):
    __slots__ = ("session_id", "sampling", "support_size", "context", "epoch", "num_tokens", "max_blocks_ahead", "verified_blocks", "branching")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCKS_AHEAD_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BRANCHING_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    sampling: _common_pb2.SamplingParams
    support_size: int
    context: _containers.RepeatedScalarFieldContainer[int]
    epoch: int
    num_tokens: int
    max_blocks_ahead: int
    verified_blocks: int
    branching: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[str] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., support_size: _Optional[int] = ..., context: _Optional[_Iterable[int]] = ..., epoch: _Optional[int] = ..., num_tokens: _Optional[int] = ..., max_blocks_ahead: _Optional[int] = ..., verified_blocks: _Optional[int] = ..., branching: _Optional[_Iterable[int]] = ...) -> None: ...

class DraftBlock(_message.Message):
    __slots__ = ("epoch", "index", "start_length", "token_ids", "distributions", "bonus_guess", "compute_ms", "energy_joules", "alternatives")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_LENGTH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    BONUS_GUESS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    index: int
    start_length: int
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    distributions: _containers.RepeatedCompositeFieldContainer[TokenDistribution]
    bonus_guess: int
    compute_ms: float
    energy_joules: float
    alternatives: _containers.RepeatedCompositeFieldContainer[TokenPath]
    def __init__(self, epoch: _Optional[int] = ..., index: _Optional[int] = ..., start_length: _Optional[int] = ..., token_ids: _Optional[_Iterable[int]] = ..., distributions: _Optional[_Iterable[_Union[TokenDistribution, _Mapping]]] = ..., bonus_guess: _Optional[int] = ..., compute_ms: _Optional[float] = ..., energy_joules: _Optional[float] = ..., alternatives: _Optional[_Iterable[_Union[TokenPath, _Mapping]]] = ...) -> None: ...
