"""Request validation: every bad field is named (pure, over protocol messages)."""

from __future__ import annotations

import pytest

from router.convert import parse_generate, record_from_register
from tandem.client import build_request
from tandem.errors import InvalidArgument
from tandem.v1 import common_pb2, fleet_pb2, inference_pb2


def req(**kw) -> inference_pb2.GenerateRequest:
    return build_request(kw.pop("prompt", "hello"), **kw)


@pytest.mark.parametrize(
    "request_,field",
    [
        (req(prompt=""), "prompt"),
        (req(max_new_tokens=0), "sampling.max_new_tokens"),
        (req(max_new_tokens=-5), "sampling.max_new_tokens"),
        (req(temperature=-1.0), "sampling.temperature"),
        (req(top_p=0.0), "sampling.top_p"),
        (req(top_p=1.01), "sampling.top_p"),
        (req(top_k=-2), "sampling.top_k"),
        (req(ttft_slo_ms=-1), "hints.ttft_slo_ms"),
        (req(max_cost_usd=float("inf")), "hints.max_cost_usd"),
        (req(draft_length=-1), "hints.draft_length"),
        (req(messages=[("robot", "hi")], prompt=None), "messages[0].role"),
        (req(messages=[("user", "hi")]), "prompt"),  # both set
    ],
)
def test_bad_fields_are_named(request_, field):
    with pytest.raises(InvalidArgument) as err:
        parse_generate(request_)
    assert err.value.field == field


@pytest.mark.parametrize("hint", ["placement", "privacy", "quality"])
def test_unknown_enum_values_are_rejected(hint):
    r = req()
    setattr(r.hints, hint, 42)  # proto3 enums are open: a newer or broken client can send anything
    with pytest.raises(InvalidArgument) as err:
        parse_generate(r)
    assert err.value.field == f"hints.{hint}" and "42" in err.value.message


def test_missing_sampling_is_named():
    with pytest.raises(InvalidArgument) as err:
        parse_generate(inference_pb2.GenerateRequest(prompt="x"))
    assert err.value.field == "sampling.max_new_tokens"


def test_valid_request_parses():
    spec = parse_generate(
        req(placement="prefer_device", device_id="p", privacy="local_only", top_p=0.5, seed=3)
    )
    assert spec.route.preference == "prefer_device" and spec.route.privacy == "local_only"
    assert spec.sampling.top_p == 0.5 and spec.sampling.seed == 3


def test_client_rejects_unknown_placement_names():
    with pytest.raises(InvalidArgument) as err:
        build_request("x", placement="mars")
    assert err.value.field == "placement"


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda r: setattr(r.info, "worker_id", ""), "info.worker_id"),
        (lambda r: setattr(r, "endpoint", "nohost"), "endpoint"),
        (lambda r: setattr(r.info, "tokenizer_id", ""), "info.tokenizer_id"),
        (lambda r: setattr(r.info, "kind", 0), "info.kind"),
        (lambda r: setattr(r.info, "kind", 9), "info.kind"),
        (lambda r: setattr(r.pool, "name", ""), "pool.name"),
        (lambda r: setattr(r.info, "max_context", 0), "info.max_context"),
    ],
)
def test_registration_validation(mutate, field):
    r = fleet_pb2.RegisterRequest(
        info=common_pb2.WorkerInfo(
            worker_id="w", kind=common_pb2.WORKER_KIND_CLOUD, tokenizer_id="t", max_context=8
        ),
        endpoint="h:1",
        pool=common_pb2.PoolProfile(name="asic"),
    )
    record_from_register(r)
    mutate(r)
    with pytest.raises(InvalidArgument) as err:
        record_from_register(r)
    assert err.value.field == field
