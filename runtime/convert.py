"""Protocol messages ↔ plain domain values, for the servers (router and workers).

Conversion validates: a bad field raises :class:`~tandem.errors.InvalidArgument` naming it.
Enum values outside the declared set (a newer or a broken client) are rejected here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from runtime.params import SamplingConfig, validate_sampling
from tandem.errors import InvalidArgument
from tandem.v1 import common_pb2


def check_enum(msg: Message, field: str, path: str) -> int:
    """The value of enum field `field` of `msg`, or InvalidArgument(path) if it is not declared."""
    value = getattr(msg, field)
    enum = msg.DESCRIPTOR.fields_by_name[field].enum_type
    if enum.values_by_number.get(value) is None:
        allowed = ", ".join(v.name for v in enum.values)
        raise InvalidArgument(path, f"unknown enum value {value}; expected one of {allowed}")
    return value


def sampling_from_pb(msg: common_pb2.SamplingParams, prefix: str = "sampling") -> SamplingConfig:
    cfg = SamplingConfig(
        temperature=float(msg.temperature),
        top_k=int(msg.top_k),
        top_p=float(msg.top_p) if msg.HasField("top_p") else 1.0,
        seed=int(msg.seed) if msg.HasField("seed") else None,
        max_new_tokens=int(msg.max_new_tokens),
        stop=tuple(msg.stop),
    )
    return validate_sampling(cfg, prefix)


def sampling_to_pb(cfg: SamplingConfig) -> common_pb2.SamplingParams:
    msg = common_pb2.SamplingParams(
        temperature=cfg.temperature, top_k=cfg.top_k, max_new_tokens=cfg.max_new_tokens, stop=list(cfg.stop)
    )
    if cfg.top_p != 1.0:
        msg.top_p = cfg.top_p
    if cfg.seed is not None:
        msg.seed = cfg.seed
    return msg


def messages_from_pb(messages: Sequence[common_pb2.ChatMessage]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]
