"""Power of the primary tests: the minimum detectable effect (MDE) at 80% power, and the power
at a given effect, computed from the measured spread (``shared/design/claims.md`` section 0).

- one-sample / paired t at level ``alpha`` (``alternative`` two-sided, larger or smaller):
  statsmodels' ``TTestPower`` (noncentral t); ``MDE = d* sd`` with ``d*`` the standardised
  effect that reaches the power at ``n``.
- two independent samples (Welch): ``TTestIndPower`` with the pooled sd and the harmonic
  allocation ``ratio = n2 / n1``.
- Pearson r (Fisher z): ``MDE_r = tanh((z_{1-a'} + z_{power}) / sqrt(n - 3))``, ``a' = alpha / 2``
  two-sided; power at ``r``: ``Phi(atanh|r| sqrt(n - 3) - z_{1-a'})``.
- TOST equivalence with margin ``m`` (Schuirmann 1987), true difference 0: power
  ``= 1 - 2 T_{n-1}(t_{1-alpha} - m sqrt(n)/sd)`` (floored at 0), so the smallest margin the
  design can show equivalent at the power is ``(t_{1-alpha} + t_{1-(1-power)/2}) sd / sqrt(n)``.

A primary test whose MDE exceeds the effect it must detect is ``inconclusive (underpowered)``
when it decides nothing. The verdicts read the power, never the MDE: while a verdict's bootstrap
resamples are re-tested (``resampling()``) the MDEs are not solved for (NaN), which keeps the
200 re-tests of each primary cheap.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np
from scipy import stats

POWER = 0.8
_RESAMPLING = contextvars.ContextVar("resampling", default=False)


@contextlib.contextmanager
def resampling():
    """Within: the MDE functions return NaN (bootstrap re-tests need only the verdict)."""
    token = _RESAMPLING.set(True)
    try:
        yield
    finally:
        _RESAMPLING.reset(token)


def _alternative(direction: str) -> str:
    return {"less": "smaller", "greater": "larger"}.get(direction, "two-sided")


def mde_t(sd: float, n: int, alpha: float, direction: str = "two-sided", power: float = POWER) -> float:
    """Smallest |mean - null| a one-sample (or paired) t-test detects with ``power``."""
    if _RESAMPLING.get():
        return float("nan")
    from statsmodels.stats.power import TTestPower

    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    alt = _alternative(direction)
    # statsmodels solves for a positive d with 'larger'; 'smaller' is the mirror image
    d = TTestPower().solve_power(
        effect_size=None, nobs=n, alpha=alpha, power=power, alternative="larger" if alt == "smaller" else alt
    )
    return float(abs(d) * sd)


def power_t(effect: float, sd: float, n: int, alpha: float, direction: str = "two-sided") -> float:
    """Power of the one-sample t-test at a true effect ``effect`` (signed, relative to the null)."""
    from statsmodels.stats.power import TTestPower

    if n < 2 or not np.isfinite(sd) or sd <= 0 or effect is None or not np.isfinite(effect):
        return float("nan")
    alt = _alternative(direction)
    d = effect / sd
    if alt == "smaller":
        d, alt = -d, "larger"
    power = float(TTestPower().power(effect_size=d, nobs=n, alpha=alpha, alternative=alt))
    if not np.isfinite(power):  # the noncentral t underflows for very large d: its normal limit
        z = stats.norm.ppf(1 - alpha / (2 if alt == "two-sided" else 1))
        power = float(stats.norm.cdf(abs(d) * math.sqrt(n) - z))
    return power


def mde_welch(
    sd: float, n1: int, n2: int, alpha: float, direction: str = "two-sided", power: float = POWER
) -> float:
    """Smallest |difference of means| a two-sample t-test detects (pooled ``sd``)."""
    if _RESAMPLING.get():
        return float("nan")
    from statsmodels.stats.power import TTestIndPower

    if min(n1, n2) < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    alt = _alternative(direction)
    d = TTestIndPower().solve_power(
        effect_size=None,
        nobs1=n1,
        alpha=alpha,
        power=power,
        ratio=n2 / n1,
        alternative="larger" if alt == "smaller" else alt,
    )
    return float(abs(d) * sd)


def power_welch(
    effect: float, sd: float, n1: int, n2: int, alpha: float, direction: str = "two-sided"
) -> float:
    from statsmodels.stats.power import TTestIndPower

    if min(n1, n2) < 2 or not np.isfinite(sd) or sd <= 0 or effect is None or not np.isfinite(effect):
        return float("nan")
    alt = _alternative(direction)
    d = effect / sd
    if alt == "smaller":
        d, alt = -d, "larger"
    return float(TTestIndPower().power(effect_size=d, nobs1=n1, alpha=alpha, ratio=n2 / n1, alternative=alt))


def _z_alpha(alpha: float, direction: str) -> float:
    return float(stats.norm.ppf(1 - (alpha / 2 if _alternative(direction) == "two-sided" else alpha)))


def mde_r(n: int, alpha: float, direction: str = "two-sided", power: float = POWER) -> float:
    """Smallest |r| a Fisher-z test of ``rho = 0`` detects with ``power``."""
    if _RESAMPLING.get():
        return float("nan")
    if n < 4:
        return float("nan")
    return float(math.tanh((_z_alpha(alpha, direction) + stats.norm.ppf(power)) / math.sqrt(n - 3)))


def power_r(r: float, n: int, alpha: float, direction: str = "two-sided") -> float:
    if n < 4 or r is None or not np.isfinite(r):
        return float("nan")
    shift = math.atanh(min(abs(r), 0.999999)) * math.sqrt(n - 3)
    return float(stats.norm.cdf(shift - _z_alpha(alpha, direction)))


def tost_margin_mde(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """Smallest equivalence margin a TOST at ``alpha`` shows with ``power`` when the truth is 0."""
    if _RESAMPLING.get():
        return float("nan")
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    return float((stats.t.ppf(1 - alpha, df) + stats.t.ppf(1 - (1 - power) / 2, df)) * sd / math.sqrt(n))


def noninferiority_margin_mde(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """Smallest margin m a one-sided test of ``d > -m`` at ``alpha`` shows with ``power`` when the
    truth is 0 (the lower test of a TOST): ``(t_{1-alpha} + t_{power}) sd / sqrt(n)``."""
    if _RESAMPLING.get():
        return float("nan")
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    return float((stats.t.ppf(1 - alpha, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n))


def noninferiority_power(margin: float, sd: float, n: int, alpha: float) -> float:
    """Power of the one-sided test of ``d > -margin`` at ``alpha`` when the truth is 0."""
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, margin * math.sqrt(n) / sd))


def tost_power(margin: float, sd: float, n: int, alpha: float) -> float:
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    return float(max(0.0, 1 - 2 * stats.t.cdf(stats.t.ppf(1 - alpha, df) - margin * math.sqrt(n) / sd, df)))
