"""One verdict per hypothesis, by the rules of ``shared/design/claims.md`` section 0b (rev. 3).

A test (``Evidence``) gives an estimate relative to the hypothesis' null, its two-sided
confidence interval at ``1 - alpha`` (``1 - 2 alpha`` for the margin tests), a p-value that
agrees with it, the number of independent units ``n``, the MDE at 80% power and the power at
the hypothesis' effect (``analysis.power``). With ``s`` the hypothesis' smallest effect of
interest (SESOI, ``Hypothesis.smallest_effect``) and ``e`` the estimate in the paper's
direction (``e = sign * estimate``; for ``any`` the estimate's own sign), the **point verdict**
(``point_verdict``) is, in this order:

- ``reproduced``: the interval excludes 0 on the paper's side;
- ``contradicted`` (reason ``opposite effect``): the interval excludes 0 on the other side and
  ``e < -s``;
- ``absent``: the interval lies inside ``(-s, s)`` (equivalence);
- ``contradicted`` (reason ``paper's effect excluded``): the paper's own effect
  (``effect_source = "paper"``) lies outside the interval, 0 inside it, and the interval is not
  inside ``(-s, s)``;
- ``inconclusive (underpowered)``: none of these, and the power at the paper's (or stated)
  effect is below 0.8 (or fewer than two units);
- ``inconclusive``: none of these.

Margin tests keep their own rules, margin ``m``: non-inferiority ``reproduced`` when the lower
bound clears ``-m``, ``contradicted`` when the interval lies below ``-m``; equivalence (TOST)
``reproduced`` inside ``(-m, m)``, ``contradicted`` wholly outside; else inconclusive as above.

An undecided verdict carries the **n that would settle it**: with ``w`` the interval's
half-width, ``c = z_{(1 + level)/2}`` and the per-unit spread ``sd = w sqrt(n) / c`` read off the
interval, ``n* = ceil(((c + z_0.8) sd / d)^2)``, where ``d`` is the largest distance from the
estimate to a boundary whose clearing decides a verdict (0 when it would decide
reproduced or contradicted, ``+-s`` for absent, the paper's effect for ``paper's effect
excluded``; ``|m - |e||`` or ``|e + m|`` for margin tests): the first decision an interval of
that spread around the estimate reaches with 80% power as n grows. A test that cannot decide
below ``n_min`` units (the sign test) gives at least ``n_min``.

**Gates** (``Gate``: the regime checks of ``analysis.regime`` and each analysis' controls)
come first: when one fails the verdict is ``out of regime`` and the reason names the gate and
its numbers. Otherwise a primary verdict's **bootstrap stability** is the share of
``BOOTSTRAP`` resamples of its units (seeds, or blocks of seeds; gates held fixed) whose point
verdict equals the full-data one; below ``min_stability`` (0.8) the verdict is ``unsettled``,
keeping the point verdict, the stability and ``n*``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats

from analysis.power import resampling
from core.hypotheses import MARGIN_DIRECTIONS, REGIME_DEFAULTS, VERDICTS, Hypothesis

BOOTSTRAP = 200
POWER = 0.8
UNDERPOWERED = "inconclusive (underpowered)"
DECIDED = ("reproduced", "contradicted", "absent")
assert set(DECIDED) | {UNDERPOWERED, "inconclusive", "out of regime", "unsettled"} == set(VERDICTS)


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
    n_min: int = 2  # the fewest units at which the test can decide at all

    @staticmethod
    def missing(test: str, n: int = 0) -> Evidence:
        nan = float("nan")
        return Evidence(test, n, nan, nan, nan, nan, nan, nan)


@dataclass(frozen=True)
class Gate:
    """One regime or control check: ``passed`` True, False, or None (not applicable here)."""

    name: str
    passed: bool | None
    detail: str

    def text(self) -> str:
        status = "n/a" if self.passed is None else "pass" if self.passed else "FAIL"
        return f"{self.name}: {status} ({self.detail})"


@dataclass(frozen=True)
class Decision:
    verdict: str
    reason: str = ""
    n_settle: float = float("nan")


@dataclass(frozen=True)
class Judgement:
    """The final verdict of a row: gates, point verdict, stability."""

    verdict: str
    point_verdict: str
    reason: str
    stability: float = float("nan")
    n_settle: float = float("nan")
    gates: tuple[Gate, ...] = ()


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


def ci_level(h: Hypothesis) -> float:
    return 1 - 2 * h.alpha if h.direction in MARGIN_DIRECTIONS else 1 - h.alpha


def n_to_settle(h: Hypothesis, ev: Evidence, distances: Sequence[float]) -> float:
    """``ceil(((c + z_0.8) sd / d)^2)`` with ``sd`` read off the interval and ``d`` the largest
    deciding distance (module docstring); NaN when nothing can be computed."""
    d = max([x for x in distances if _finite(x) and x > 0], default=float("nan"))
    width = (ev.ci_high - ev.ci_low) / 2
    if not _finite(d, width) or ev.n < 1:
        return float(max(ev.n_min, ev.n + 1)) if ev.n_min > ev.n else float("nan")
    c = float(stats.norm.ppf((1 + ci_level(h)) / 2))
    sd = width * math.sqrt(ev.n) / c
    return float(max(ev.n_min, math.ceil(((c + stats.norm.ppf(POWER)) * sd / d) ** 2)))


def _undecided(h: Hypothesis, ev: Evidence, distances: Sequence[float], why: str) -> Decision:
    n_star = n_to_settle(h, ev, distances)
    judged_by_power = h.effect is not None or h.direction in MARGIN_DIRECTIONS
    underpowered = ev.n < ev.n_min or (judged_by_power and not (_finite(ev.power) and ev.power >= POWER))
    power = f"power {ev.power:.2f} at the effect" if _finite(ev.power) else "power unknown"
    settle = f"; n = {n_star:.0f} would settle it" if _finite(n_star) else ""
    return Decision(UNDERPOWERED if underpowered else "inconclusive", f"{why}; {power}{settle}", n_star)


def _margin_verdict(h: Hypothesis, ev: Evidence) -> Decision:
    m = float(h.margin)
    lo, hi, est = ev.ci_low, ev.ci_high, ev.estimate
    if h.direction == "noninferiority":
        if lo > -m:
            return Decision("reproduced", f"lower bound {lo:+.4g} clears -margin {-m:+.4g}")
        if hi < -m:
            return Decision("contradicted", f"interval below -margin {-m:+.4g}")
        return _undecided(h, ev, [abs(est + m)], f"interval covers -margin {-m:+.4g}")
    if -m < lo and hi < m:
        return Decision("reproduced", f"interval inside +-margin {m:.4g}")
    if lo >= m or hi <= -m:
        return Decision("contradicted", f"interval outside +-margin {m:.4g}")
    return _undecided(h, ev, [abs(m - abs(est))], f"interval crosses the margin {m:.4g}")


def point_verdict(h: Hypothesis, ev: Evidence) -> Decision:
    """The verdict of the data alone (module docstring), before gates and stability."""
    if ev.n < 2 or not _finite(ev.estimate) or np.isnan(ev.ci_low) or np.isnan(ev.ci_high):
        return Decision(UNDERPOWERED, f"no interval ({ev.n} units)", float(max(ev.n_min, ev.n + 1, 2)))
    if h.direction in MARGIN_DIRECTIONS:
        return _margin_verdict(h, ev)
    s = h.smallest_effect
    sign = paper_sign(h) or (1 if ev.estimate >= 0 else -1)
    lo, hi = ev.ci_low, ev.ci_high
    f_lo, f_hi = sorted((sign * lo, sign * hi))
    e = sign * ev.estimate
    if f_lo > 0:
        return Decision("reproduced", "interval excludes 0 in the paper's direction")
    if f_hi < 0 and e < -s:
        why = "opposite effect: the interval excludes 0 the other way, beyond -SESOI"
        return Decision("contradicted", why)
    if s > 0 and -s < lo and hi < s:
        return Decision("absent", f"interval inside +-SESOI {s:.4g}")
    paper = h.effect is not None and h.effect_source == "paper" and paper_sign(h) != 0
    effect = sign * h.effect if paper else None
    if effect is not None and f_lo <= 0 <= f_hi and not f_lo <= effect <= f_hi:
        return Decision("contradicted", f"paper's effect excluded: {h.effect:+.4g} outside the interval")
    distances = [abs(e)] if e > 0 or e < -s else []
    if s > abs(e):
        distances.append(s - abs(e))
    if effect is not None and e < effect:
        distances.append(effect - e)
    return _undecided(h, ev, distances, "interval covers 0 and is not inside +-SESOI")


def decide(h: Hypothesis, ev: Evidence) -> str:
    """The point verdict's word."""
    return point_verdict(h, ev).verdict


def claim_seed(*key: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def bootstrap_stability(
    n_units: int, verdict_of: Callable[[np.ndarray], str], full: str, key: tuple, reps: int | None = None
) -> float:
    """Share of ``reps`` resamples of the ``n_units`` units whose verdict equals ``full``.

    ``verdict_of(index)`` recomputes the hypothesis' point verdict on the units ``index`` (drawn
    with replacement; a paired or blocked design resamples whole units, so pairs and blocks stay
    together)."""
    reps = BOOTSTRAP if reps is None else reps
    if n_units < 2 or reps < 1:
        return float("nan")
    rng = claim_seed(*key)
    same = 0
    with resampling():
        for _ in range(reps):
            same += verdict_of(rng.integers(0, n_units, n_units)) == full
    return same / reps


def judge(
    h: Hypothesis,
    ev: Evidence,
    gates: Sequence[Gate] = (),
    *,
    resample: Callable[[np.ndarray], Evidence | str] | None = None,
    n_units: int = 0,
    key: tuple = (),
    thresholds: dict | None = None,
    decision: Decision | None = None,
) -> Judgement:
    """Gates, point verdict, and (when ``resample`` is given: primary rows) bootstrap stability.

    ``resample(index)`` returns the evidence (or the point verdict) on the resampled units;
    ``decision`` overrides the point verdict (intersection-union pooling)."""
    point = decision or point_verdict(h, ev)
    gates = tuple(gates)
    failed = [g for g in gates if g.passed is False]
    if failed:
        reason = "; ".join(f"{g.name} failed: {g.detail}" for g in failed)
        return Judgement("out of regime", point.verdict, reason, n_settle=point.n_settle, gates=gates)
    stability = float("nan")
    if resample is not None:

        def again(idx):
            out = resample(idx)
            return out if isinstance(out, str) else decide(h, out)

        stability = bootstrap_stability(n_units, again, point.verdict, key)
    limit = (thresholds or REGIME_DEFAULTS)["min_stability"]
    if _finite(stability) and stability < limit:
        n_star = point.n_settle
        if not _finite(n_star):
            n_star = n_to_settle(h, ev, [abs(ev.estimate)])
        settle = f"; n = {n_star:.0f} would settle it" if _finite(n_star) else ""
        reason = f"bootstrap stability {stability:.2f} < {limit:g}; point verdict {point.verdict}{settle}"
        return Judgement("unsettled", point.verdict, reason, stability, n_star, gates)
    return Judgement(point.verdict, point.verdict, point.reason, stability, point.n_settle, gates)


# -- intersection-union: a pooled claim holds only if it holds for each member ------------------

ORDER = ("contradicted", "absent", UNDERPOWERED, "inconclusive", "reproduced")


def pooled(h: Hypothesis, members: dict[str, Evidence]) -> tuple[Evidence, Decision]:
    """The pooled verdict of members each tested at ``alpha`` (intersection-union test: no
    multiplicity correction): the weakest member's verdict in the order contradicted < absent <
    inconclusive (underpowered) < inconclusive < reproduced, so ``reproduced`` only when every
    member is; the evidence shown is that member's (the one with the lowest bound in the paper's
    direction among the weakest), and the reason names the members that fail."""
    if not members:
        return Evidence.missing("intersection_union"), Decision(UNDERPOWERED, "no member tested")
    verdicts = {name: point_verdict(h, ev) for name, ev in members.items()}
    worst = min(ORDER.index(d.verdict) for d in verdicts.values())
    weakest = [name for name, d in verdicts.items() if ORDER.index(d.verdict) == worst]
    sign = paper_sign(h) or 1

    def bound(name):
        ev = members[name]
        low = min(sign * ev.ci_low, sign * ev.ci_high)
        return low if _finite(low) else -math.inf

    limiting = min(weakest, key=lambda name: (bound(name), name))
    word = ORDER[worst]
    failing = sorted(name for name, d in verdicts.items() if d.verdict != "reproduced")
    reason = (
        "every member reproduced"
        if word == "reproduced"
        else f"{word} for {', '.join(weakest)}; not reproduced: {', '.join(failing)}"
    )
    ev = replace(members[limiting], n=min(e.n for e in members.values()))
    return ev, Decision(word, reason, verdicts[limiting].n_settle)


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
    sesoi: float
    mde: float
    power: float
    verdict: str
    point_verdict: str = ""
    reason: str = ""
    stability: float = float("nan")
    n_settle: float = float("nan")
    gates: str = "[]"  # JSON: [{"gate", "passed", "detail"}]
    details: str = "{}"  # JSON: the analysis' own numbers (alpha, beta, A/A_t, members, ...)
    collapsed: bool = False
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


def _json(value) -> str:
    def clean(v):
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps(clean(value), sort_keys=True, allow_nan=False)


def make_row(
    h: Hypothesis,
    ev: Evidence,
    *,
    claim: str,
    study: str,
    description: str,
    judgement: Judgement | None = None,
    details: dict | None = None,
    ci_level_: float | None = None,
    **scope,
) -> Row:
    j = judgement or judge(h, ev)
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
        ci_level=ci_level_ if ci_level_ is not None else ci_level(h),
        p=ev.p,
        alpha=h.alpha,
        null=h.null,
        effect=float(h.effect) if h.effect is not None else (float(h.margin) if h.margin else float("nan")),
        effect_source=h.effect_source,
        sesoi=h.smallest_effect,
        mde=ev.mde,
        power=ev.power,
        verdict=j.verdict,
        point_verdict=j.point_verdict,
        reason=j.reason,
        stability=j.stability,
        n_settle=j.n_settle,
        gates=_json([{"gate": g.name, "passed": g.passed, "detail": g.detail} for g in j.gates]),
        details=_json(details or {}),
        description=description,
        **{k: v for k, v in scope.items() if k in ("arch", "dataset", "pruner", "sparsity", "eval_set")},
    )
