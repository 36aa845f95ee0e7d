"""The plain data of routing: what a request asks for, the candidates considered, the decision.

The policy that fills them in is router.policy.decide.
"""

from __future__ import annotations

import dataclasses

from router.policy.predict import FASTEST, RoundPrices

AUTO, PREFER_DEVICE, ONLY_DEVICE, PREFER_CLOUD, ONLY_CLOUD, PREFER_TANDEM = (
    "auto", "prefer_device", "only_device", "prefer_cloud", "only_cloud", "prefer_tandem")
STANDARD, LOCAL_ONLY = "standard", "local_only"


@dataclasses.dataclass(frozen=True)
class RouteRequest:
    """The routing-relevant part of a request."""

    preference: str = AUTO
    device_id: str = ""
    privacy: str = STANDARD
    quality: str = "unspecified"  # unspecified | small_ok | large_required
    max_new_tokens: int = 64
    ttft_slo_ms: float = 0.0
    token_slo_ms: float = 0.0
    max_cost_usd: float = 0.0
    max_device_energy_joules: float = 0.0
    draft_length: int = 0
    draft_tree: tuple[int, ...] = ()  # empty: the router's default
    overlap: bool = True
    prompt_chars: int = 0  # prompt length in characters (the router decides before tokenizing)


@dataclasses.dataclass(frozen=True)
class Candidate:
    placement: str  # "edge" | "cloud" | "tandem"
    edge_worker_id: str = ""
    pool: str = ""
    cloud_worker_id: str = ""
    excluded: bool = False
    reason: str = ""
    score: float = 0.0
    predicted_cost_usd: float = 0.0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    predicted_energy_j: float = 0.0
    rule: str = ""  # excluded: the hard rule's key (metrics label)


@dataclasses.dataclass(frozen=True)
class Decision:
    placement: str
    reason: str
    edge_worker_id: str = ""
    edge_endpoint: str = ""
    pool: str = ""
    cloud_worker_id: str = ""
    cloud_endpoint: str = ""
    initial_draft_length: int = 0
    candidates: tuple[Candidate, ...] = ()
    policy_version: int = 0
    predicted_cost_usd: float = 0.0
    predicted_ttft_ms: float = 0.0
    predicted_token_ms: float = 0.0
    predicted_energy_j: float = 0.0
    predicted_slot_share: float = 0.0  # of one pool slot, while it runs (router.policy.predict)
    draft_prices: RoundPrices = FASTEST  # TANDEM: what the session's draft length control minimises
    overlap: bool = True  # TANDEM: run-ahead drafting (off where its dropped drafts cost more than it saves)
    rule: str = ""  # what settled it: device_only | preference | only_candidate | score
