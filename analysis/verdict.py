"""One verdict per hypothesis, in the words of ``shared/design/claims.md`` section 0.

A test (``Evidence``) gives an estimate, its confidence interval at level ``1 - alpha`` (two-sided,
the level the hypothesis states: the paper's 99% intervals for intensification), a p-value,
the number of independent units ``n`` and the minimum detectable effect (MDE) at 80% power
computed from the measured spread (``analysis.power``). The verdict (``decide``):

- ``reproduced``: the interval excludes the null and the estimate lies in the paper's direction
  (``less`` / ``greater``; for ``two-sided`` the sign of the paper's effect; ``any``: either way);
- ``contradicted``: the interval excludes the null and the estimate lies the other way;
- ``not detected``: the interval includes the null and the design could detect the paper's
  (or the stated) effect: ``MDE <= |effect|``;
- ``underpowered``: the interval includes the null and ``MDE > |effect|`` (or fewer than two units).

Equivalence hypotheses (TOST, Schuirmann 1987, margin ``m``): ``reproduced`` when both one-sided
tests reject at ``alpha`` (the ``1 - 2 alpha`` interval inside ``[-m, m]``), ``contradicted`` when
that interval lies wholly outside ``[-m, m]``, else ``not detected`` if the smallest margin the
design shows at 80% power is ``<= m``, else ``underpowered``.

``stability`` is the share of bootstrap resamples of the units (with replacement, seeded by the
claim) whose verdict equals the full-data verdict (``bootstrap_stability``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from core.studies import Hypothesis

BOOTSTRAP = 200


@dataclass(frozen=True)
class Evidence:
    test: str
    n: int
    estimate: float  # relative to the hypothesis' null (mean - null, r, difference of means)
    ci_low: float
    ci_high: float
    p: float
    mde: float
    power: float  # at the hypothesis' effect
    statistic: float = float("nan")

    @staticmethod
    def missing(test: str, n: int = 0) -> Evidence:
        nan = float("nan")
        return Evidence(test, n, nan, nan, nan, nan, nan, nan)


def _finite(*values) -> bool:
    return all(v is not None and np.isfinite(v) for v in values)


def paper_sign(h: Hypothesis) -> int:
    """+1 / -1 the direction the paper found (0: any)."""
    if h.direction == "greater":
        return 1
    if h.direction == "less":
        return -1
    if h.direction == "any":
        return 0
    if h.effect is not None and h.effect != 0:
        return int(math.copysign(1, h.effect))
    return 0


def decide(h: Hypothesis, ev: Evidence) -> str:
    if ev.n < 2 or not _finite(ev.estimate, ev.ci_low, ev.ci_high):
        return "underpowered"
    if h.direction == "equivalence":
        m = float(h.margin)
        if -m < ev.ci_low and ev.ci_high < m:
            return "reproduced"
        if ev.ci_low >= m or ev.ci_high <= -m:
            return "contradicted"
        return "not detected" if _finite(ev.mde) and ev.mde <= m else "underpowered"
    if h.direction == "noninferiority":  # keeps (or improves): the lower bound clears -margin
        m = float(h.margin)
        if ev.ci_low > -m:
            return "reproduced"
        if ev.ci_high < -m:
            return "contradicted"
        return "not detected" if _finite(ev.mde) and ev.mde <= m else "underpowered"
    if ev.ci_low > 0 or ev.ci_high < 0:
        sign = paper_sign(h)
        if sign == 0 or np.sign(ev.estimate) == sign:
            return "reproduced"
        return "contradicted"
    effect = abs(h.effect) if h.effect is not None else float("nan")
    return "not detected" if _finite(ev.mde, effect) and ev.mde <= effect else "underpowered"


def claim_seed(*key: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def bootstrap_stability(
    n_units: int, verdict_of: Callable[[np.ndarray], str], full: str, key: tuple, reps: int | None = None
) -> float:
    """Share of ``reps`` resamples of the ``n_units`` units whose verdict equals ``full``.

    ``verdict_of(index)`` recomputes the hypothesis' test on the units ``index`` (drawn with
    replacement; a paired design resamples whole units, so pairs stay together)."""
    reps = BOOTSTRAP if reps is None else reps
    if n_units < 2 or reps < 1:
        return float("nan")
    rng = claim_seed(*key)
    same = 0
    for _ in range(reps):
        same += verdict_of(rng.integers(0, n_units, n_units)) == full
    return same / reps


@dataclass
class Row:
    """One row of the claims table: a hypothesis tested in one scope."""

    claim: str
    hypothesis: str
    primary: bool
    study: str
    test: str
    scope: str
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    p: float
    alpha: float
    null: float
    effect: float
    effect_source: str
    mde: float
    power: float
    verdict: str
    stability: float = float("nan")
    q: float = float("nan")
    arch: str | None = None
    dataset: str | None = None
    pruner: str | None = None
    sparsity: float = float("nan")
    eval_set: str | None = None
    label: str | None = None  # intensification: "<", ">" or "?"
    description: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def make_row(
    h: Hypothesis,
    ev: Evidence,
    *,
    claim: str,
    study: str,
    description: str,
    stability=float("nan"),
    ci_level: float | None = None,
    **scope,
) -> Row:
    verdict = decide(h, ev)
    where = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in scope.items()
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    )
    return Row(
        claim=claim,
        hypothesis=h.id,
        primary=h.primary,
        study=study,
        test=ev.test,
        scope=where,
        n=int(ev.n),
        estimate=ev.estimate,
        ci_low=ev.ci_low,
        ci_high=ev.ci_high,
        ci_level=ci_level
        if ci_level is not None
        else (1 - 2 * h.alpha if h.direction in ("equivalence", "noninferiority") else 1 - h.alpha),
        p=ev.p,
        alpha=h.alpha,
        null=h.null,
        effect=float(h.effect) if h.effect is not None else (float(h.margin) if h.margin else float("nan")),
        effect_source=h.effect_source,
        mde=ev.mde,
        power=ev.power,
        verdict=verdict,
        stability=stability,
        description=description,
        **{k: v for k, v in scope.items() if k in ("arch", "dataset", "pruner", "sparsity", "eval_set")},
    )
