"""The candidates of one decision, each with its prediction: EDGE on the caller's device, CLOUD on
each pool, TANDEM on the device with each pool.

The plain runs (EDGE, CLOUD) are predicted first: the cheapest CLOUD run and the fastest plain run
are the score's scales, which also price a TANDEM round for choosing its draft length. A TANDEM
candidate is the best of the variants its session could run: γ at the score's prices, or the
fastest γ when that one alone meets the SLOs; with run-ahead drafting (faster, but the device
drafts ahead and drops what misses) or without — the one predicted to meet the SLOs at the lowest
score. TANDEM candidates that a rule needing no prediction will exclude are not predicted.
"""

from __future__ import annotations

import dataclasses

from router.policy.context import DecisionContext
from router.policy.placement import Candidate, Placement, Preference
from router.policy.predict import PoolEstimate, Prediction, predict_cloud, predict_edge, predict_tandem
from router.policy.scoring import Scales
from router.tandem.speculation import FASTEST, constant


@dataclasses.dataclass
class Option:
    """A candidate while the decision runs (mutable: the stages exclude and score it)."""

    placement: Placement
    pool: PoolEstimate | None = None
    prediction: Prediction | None = None
    excluded: str = ""  # why, once a rule excluded it
    rule: str = ""  # the excluding rule's key (metrics label)
    score: float = 0.0
    detail: str = ""  # the score's terms

    def exclude(self, rule: str, why: str) -> None:
        self.rule, self.excluded = rule, why

    @property
    def label(self) -> str:
        return self.placement.upper() + (f"[{self.pool.name}]" if self.pool else "")

    def candidate(self, ctx: DecisionContext) -> Candidate:
        """The option as the decision reports it."""
        p, d = self.prediction, ctx.device
        return Candidate(
            placement=self.placement,
            edge_worker_id=(d.worker_id if d else ctx.req.device_id) if self.placement.on_device else "",
            pool=self.pool.name if self.pool else "",
            cloud_worker_id=self.pool.replica_id if self.pool else "",
            excluded=bool(self.excluded),
            reason=self.excluded or self.detail,
            rule=self.rule,
            score=self.score,
            predicted_cost_usd=p.cost_usd if p else 0.0,
            predicted_ttft_ms=p.ttft_ms if p else 0.0,
            predicted_token_ms=p.token_ms if p else 0.0,
            predicted_energy_j=p.energy_j if p else 0.0,
        )


def predicted_options(ctx: DecisionContext) -> tuple[list[Option], Scales]:
    """Every candidate, predicted where a prediction can matter, and the score's scales."""
    d, n, policy = ctx.device, ctx.n, ctx.policy
    client_rtt = d.rtt_ms if d else policy.prior_rtt_ms  # the client sits on the device
    edge = Option(Placement.EDGE, prediction=predict_edge(d, n, ctx.prompt_tokens) if d else None)
    clouds = [
        Option(Placement.CLOUD, p, predict_cloud(p, n, client_rtt, ctx.prompt_tokens)) for p in ctx.snap.pools
    ]
    plain = [o.prediction for o in (edge, *clouds) if o.prediction]
    scales = Scales.of(plain, edge.prediction, d, policy, n)
    tandems = [Option(Placement.TANDEM, p, _tandem_prediction(ctx, p, scales)) for p in ctx.snap.pools]
    return [edge, *clouds, *tandems], scales


def _tandem_prediction(ctx: DecisionContext, pool: PoolEstimate, scales: Scales) -> Prediction | None:
    d, req, policy = ctx.device, ctx.req, ctx.policy
    if d is None or req.device_only or req.preference is Preference.ONLY_CLOUD or not policy.allow_tandem:
        return None  # excluded by a rule that needs no prediction
    betas = ctx.snap.acceptance.get(pool.name) or constant(policy.prior_acceptance)
    prices = scales.round_prices(d, pool, policy)
    variants = []
    for overlap in (True, False) if req.overlap else (False,):

        def predict(prices=prices, overlap=overlap) -> Prediction:
            return predict_tandem(
                d,
                pool,
                betas,
                ctx.n,
                ctx.prompt_tokens,
                policy.max_draft_length,
                req.max_device_energy_joules,
                req.draft_length,
                overlap,
                prices,
            )

        pred = predict()
        if ctx.misses(Placement.TANDEM, pred) and prices != FASTEST:
            fast = predict(prices=FASTEST)
            pred = pred if ctx.misses(Placement.TANDEM, fast) else fast
        variants.append(pred)
    return min(variants, key=lambda v: (bool(ctx.misses(Placement.TANDEM, v)), scales.score(v, policy)))
