"""What one decision works from: the request, the fleet snapshot, the policy and the clock, with
the values every stage derives from them computed once (the request's size in tokens, its SLOs,
its cost ceiling, whether it must stay on the device)."""

from __future__ import annotations

import dataclasses

from router.policy.config import PolicyConfig
from router.policy.placement import Preference, Privacy, Quality, RouteRequest
from router.policy.predict import DeviceEstimate, Prediction
from router.policy.snapshot import FleetSnapshot


def prompt_tokens_estimate(req: RouteRequest, snap: FleetSnapshot, policy: PolicyConfig) -> int:
    """The prompt's length in tokens, before it is tokenized: its characters ÷ characters per token."""
    return max(1, round(req.prompt_chars / (snap.chars_per_token or policy.prompt_chars_per_token)))


def small_model_ok(req: RouteRequest, policy: PolicyConfig) -> tuple[bool, str]:
    """Whether the small model's output will do for `req`, and why (or why not)."""
    if req.quality is Quality.LARGE_REQUIRED:
        return False, "quality LARGE_REQUIRED: EDGE output is the small model's"
    if req.quality is Quality.SMALL_OK:
        return True, "quality SMALL_OK"
    if req.privacy is Privacy.LOCAL_ONLY or req.preference in (
        Preference.ONLY_DEVICE,
        Preference.PREFER_DEVICE,
    ):
        return True, "the request asks for the device"
    limit = policy.small_ok_max_new_tokens
    if limit and req.max_new_tokens <= limit:
        return True, f"short request ({req.max_new_tokens} <= {limit} tokens)"
    return False, (
        "quality unspecified: EDGE output is the small model's and the request is not short"
        + (f" (> {limit} tokens)" if limit else "")
    )


@dataclasses.dataclass(frozen=True)
class DecisionContext:
    req: RouteRequest
    snap: FleetSnapshot
    policy: PolicyConfig
    now: float  # the registry's clock: device state ages are measured against it
    prompt_tokens: int
    small_ok: bool
    why_small: str
    cost_ceiling: float  # USD, 0: none
    ttft_slo_ms: float  # 0: none
    token_slo_ms: float  # 0: none

    @classmethod
    def of(cls, req: RouteRequest, snap: FleetSnapshot, policy: PolicyConfig, now: float) -> DecisionContext:
        small_ok, why_small = small_model_ok(req, policy)
        return cls(
            req=req,
            snap=snap,
            policy=policy,
            now=now,
            prompt_tokens=prompt_tokens_estimate(req, snap, policy),
            small_ok=small_ok,
            why_small=why_small,
            cost_ceiling=min((c for c in (policy.max_cost_usd, req.max_cost_usd) if c > 0), default=0.0),
            ttft_slo_ms=req.ttft_slo_ms or policy.default_ttft_slo_ms,
            token_slo_ms=req.token_slo_ms or policy.default_token_slo_ms,
        )

    @property
    def n(self) -> int:
        return self.req.max_new_tokens

    @property
    def device(self) -> DeviceEstimate | None:
        return self.snap.device

    @property
    def insists(self) -> bool:
        """Only ONLY_DEVICE insists on the device: it may spend the battery reserve. LOCAL_ONLY forbids
        the cloud but not the reserve — on a device at its reserve it is refused."""
        return self.req.preference is Preference.ONLY_DEVICE

    @property
    def why_device_only(self) -> str:
        return "privacy LOCAL_ONLY" if self.req.privacy is Privacy.LOCAL_ONLY else "placement ONLY_DEVICE"

    def margin(self, placement: str, what: str, model_var: float = 0.0) -> float:
        """The factor a prediction is scaled by to meet an SLO with the policy's confidence: the
        measured spread of actual ÷ predicted latency for this placement, scaled by the spread the
        model knows of for this request (`model_var`)."""
        if self.snap.spread is None:
            return 1.0
        return self.snap.spread(placement, what).margin(self.policy.slo_confidence, model_var)

    def misses(self, placement: str, p: Prediction, confident: bool = True) -> str:
        """What `p` (a prediction for `placement`) misses ('' if nothing): with the policy's confidence
        (the margins of :meth:`margin`), or `confident=False`: as predicted."""
        out = []
        ttft = p.ttft_ms * (self.margin(placement, "ttft") if confident else 1.0)
        if self.ttft_slo_ms and ttft > self.ttft_slo_ms:
            shown = f" ({p.ttft_ms:.0f} predicted)" if confident else ""
            out.append(f"TTFT {ttft:.0f} ms{shown} > {self.ttft_slo_ms:g} ms")
        token = p.token_ms * (self.margin(placement, "token", p.token_var) if confident else 1.0)
        if self.token_slo_ms and self.n > 1 and token > self.token_slo_ms:
            shown = f" ({p.token_ms:.1f} predicted)" if confident else ""
            out.append(f"{token:.1f} ms/token{shown} > {self.token_slo_ms:g} ms")
        return ", ".join(out)
