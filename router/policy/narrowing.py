"""The policy's soft rules: after the hard rules, narrow the survivors — but never to nobody.

A soft rule keeps the survivors it accepts and excludes the others, unless it accepts none (or
all), in which case nobody is excluded: it expresses a preference among the possible, not a
constraint.
"""

from __future__ import annotations

from collections.abc import Callable

from router.policy.candidates import Option
from router.policy.context import DecisionContext


def narrow(
    alive: list[Option], keep: Callable[[Option], bool], rule: str, why: Callable[[Option], str]
) -> list[Option]:
    """The survivors that `keep` accepts, the others excluded under `rule` with `why` — or all of
    them, untouched, when `keep` accepts none or all."""
    kept = [o for o in alive if keep(o)]
    if not kept or len(kept) == len(alive):
        return alive
    for o in alive:
        if not keep(o):
            o.exclude(rule, why(o))
    return kept


def meet_slos(alive: list[Option], ctx: DecisionContext) -> list[Option]:
    """Drop candidates that are not predicted to meet the SLOs with the policy's confidence when any
    candidate is; else those predicted to miss them outright — one that misses by less is still a
    better bet."""
    for confident, why in ((True, "not sure enough to meet the SLO"), (False, "predicted to miss the SLO")):
        missed = {
            id(o): ctx.misses(o.placement, o.prediction, confident) if o.prediction else "not predicted"
            for o in alive
        }
        if not all(missed.values()):
            return narrow(
                alive,
                lambda o, missed=missed: not missed[id(o)],
                "slo",
                lambda o, why=why, missed=missed: f"{why} ({missed[id(o)]}) while another candidate meets it",
            )
    return alive


def follow_preference(alive: list[Option], ctx: DecisionContext) -> list[Option]:
    """PREFER_DEVICE keeps EDGE, PREFER_CLOUD a CLOUD and PREFER_TANDEM a TANDEM candidate, when one
    survived."""
    want, hint = ctx.req.preference.preferred, ctx.req.preference
    if want is None:
        return alive
    return narrow(
        alive,
        lambda o: o.placement is want,
        "preference",
        lambda o: f"placement {hint.upper()}: a {want.upper()} candidate is available",
    )


SOFT_RULES: tuple[Callable[[list[Option], DecisionContext], list[Option]], ...] = (
    meet_slos,
    follow_preference,
)
