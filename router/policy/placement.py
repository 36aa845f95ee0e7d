"""The plain data of routing: what a request asks for, the candidates considered, the decision.

Placements and the request's hints are string enums: they compare and serialise as their names
("edge", "local_only"), and a RouteRequest built from text (a decision log, a load-test record)
rejects a name that is not one of them. The policy that fills them in is router.policy.decide.
"""

from __future__ import annotations

import dataclasses
import enum

from router.tandem.control import DEFAULT_PRIOR, DEFAULT_SPEED_SLACK, DraftControlConfig
from router.tandem.speculation import FASTEST, RoundModel, RoundPrices


class Placement(enum.StrEnum):
    """Where a request's tokens are made."""

    EDGE = "edge"  # the caller's device, its small model
    CLOUD = "cloud"  # a cloud pool, the large model
    TANDEM = "tandem"  # the device drafts, a cloud pool verifies

    @property
    def on_device(self) -> bool:
        return self is not Placement.CLOUD

    @property
    def in_cloud(self) -> bool:
        return self is not Placement.EDGE


class Preference(enum.StrEnum):
    AUTO = "auto"
    PREFER_DEVICE = "prefer_device"
    ONLY_DEVICE = "only_device"
    PREFER_CLOUD = "prefer_cloud"
    ONLY_CLOUD = "only_cloud"
    PREFER_TANDEM = "prefer_tandem"

    @property
    def preferred(self) -> Placement | None:
        """The placement a PREFER_* hint asks for (None for the others)."""
        return _PREFERRED.get(self)


_PREFERRED = {
    Preference.PREFER_DEVICE: Placement.EDGE,
    Preference.PREFER_CLOUD: Placement.CLOUD,
    Preference.PREFER_TANDEM: Placement.TANDEM,
}


class Privacy(enum.StrEnum):
    STANDARD = "standard"
    LOCAL_ONLY = "local_only"  # the prompt may not leave the device


class Quality(enum.StrEnum):
    UNSPECIFIED = "unspecified"
    SMALL_OK = "small_ok"  # the small model's output will do
    LARGE_REQUIRED = "large_required"  # only the large model's output will do


@dataclasses.dataclass(frozen=True)
class RouteRequest:
    """The routing-relevant part of a request. Hint fields accept their enum's names (ValueError
    for any other) and are stored as the enum."""

    preference: Preference = Preference.AUTO
    device_id: str = ""
    privacy: Privacy = Privacy.STANDARD
    quality: Quality = Quality.UNSPECIFIED
    max_new_tokens: int = 64
    ttft_slo_ms: float = 0.0
    token_slo_ms: float = 0.0
    max_cost_usd: float = 0.0
    max_device_energy_joules: float = 0.0
    draft_length: int = 0
    draft_tree: tuple[int, ...] = ()  # empty: the router's default
    overlap: bool = True
    prompt_chars: int = 0  # prompt length in characters (the router decides before tokenizing)
    greedy: bool = True  # temperature 0: greedy and sampled drafts are accepted at different rates

    def __post_init__(self) -> None:
        for name, kind in (("preference", Preference), ("privacy", Privacy), ("quality", Quality)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def device_only(self) -> bool:
        """LOCAL_ONLY or ONLY_DEVICE: nothing may run off the device."""
        return self.privacy is Privacy.LOCAL_ONLY or self.preference is Preference.ONLY_DEVICE

    @property
    def large_only(self) -> bool:
        """ONLY_CLOUD or LARGE_REQUIRED: the small model's output will not do (a TANDEM request that
        lost its cloud may not finish on the device)."""
        return self.preference is Preference.ONLY_CLOUD or self.quality is Quality.LARGE_REQUIRED


@dataclasses.dataclass(frozen=True)
class Candidate:
    placement: Placement
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
    rule: str = ""  # excluded: the rule's key (metrics label)


@dataclasses.dataclass(frozen=True)
class Decision:
    placement: Placement
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
    predicted_token_var: float = 0.0  # variance of log(actual ÷ predicted) per-token time the model knows of
    draft_prices: RoundPrices = FASTEST  # TANDEM: what the session's draft length control minimises
    # TANDEM: the round model the prediction used — the session's controller starts from it; its
    # `overlap` is run-ahead drafting (off where its dropped drafts cost more than it saves)
    draft_model: RoundModel | None = None
    # TANDEM: the most the session may spend drafting on the device, in joules (0: no cap) — the
    # request's budget, and while on battery what the battery holds above its reserve, each less
    # the prompt's prefill: an adaptive session drafts more than the decision predicted on easy
    # text, and never past this
    energy_cap_j: float = 0.0
    # the device energy the request holds against its battery's headroom while it runs (0: the
    # predicted energy) — a capped TANDEM session's may exceed its prediction (router.policy.decide)
    held_energy_j: float = 0.0
    rule: str = ""  # what settled it: device_only | preference | only_candidate | score

    @property
    def overlap(self) -> bool:
        return self.draft_model is not None and self.draft_model.overlap

    def draft_control(
        self,
        max_gamma: int,
        overlap: bool = True,
        fixed_gamma: int = 0,
        speed_slack: float = DEFAULT_SPEED_SLACK,
    ) -> DraftControlConfig:
        """A TANDEM session's draft-length control (router.tandem.control): it starts from the model
        this decision predicted with and minimises its round prices. `overlap` False turns run-ahead
        drafting off where the decision had it on (never on where the decision did not)."""
        prior = self.draft_model or DEFAULT_PRIOR
        return DraftControlConfig(
            prior=dataclasses.replace(prior, overlap=overlap and self.overlap),
            fixed_gamma=fixed_gamma,
            max_gamma=max_gamma,
            speed_slack=speed_slack,
            prices=self.draft_prices,
        )
