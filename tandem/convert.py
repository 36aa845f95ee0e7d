"""Protocol enum values ↔ the names the SDK and the servers use ("edge", "length", …).

Pure protobuf; the servers' request conversion and validation is :mod:`runtime.convert`.
"""

from __future__ import annotations

from tandem.v1 import common_pb2

FINISH_REASONS = {
    "length": common_pb2.FINISH_REASON_LENGTH,
    "eos": common_pb2.FINISH_REASON_EOS,
    "stop_string": common_pb2.FINISH_REASON_STOP_STRING,
}
FINISH_NAMES = {v: k for k, v in FINISH_REASONS.items()}

PLACEMENTS = {
    "edge": common_pb2.PLACEMENT_EDGE,
    "cloud": common_pb2.PLACEMENT_CLOUD,
    "tandem": common_pb2.PLACEMENT_TANDEM,
}
PLACEMENT_NAMES = {v: k for k, v in PLACEMENTS.items()}
