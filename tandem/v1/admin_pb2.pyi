from tandem.v1 import common_pb2 as _common_pb2
from tandem.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListFleetRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: _common_pb2.WorkerKind
    def __init__(self, kind: _Optional[_Union[_common_pb2.WorkerKind, str]] = ...) -> None: ...

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
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[FleetMember]
    def __init__(self, members: _Optional[_Iterable[_Union[FleetMember, _Mapping]]] = ...) -> None: ...
