"""The tests a hypothesis names, each returning an ``analysis.verdict.Evidence``.

Every test is two-sided at the hypothesis' ``alpha`` with a ``1 - alpha`` interval (the
direction of a hypothesis only decides which significant result reproduces the paper), its
power computed at the hypothesis' effect and its MDE at 80% power (``analysis.power``):

- ``t_one_sample``: ``x - null`` (scipy ``ttest_1samp``, t interval); a sample without spread
  (every unit the same value ``v``, e.g. a prune potential on a coarse grid) gets the sign test
  and its order-statistic interval for the median, which agree: ``p = 2 * 0.5^n`` (1 when
  ``v = 0``) and the interval ``[v, v]`` once ``2 * 0.5^n <= alpha`` (the coverage of
  ``[x_(1), x_(n)]`` is ``1 - 2 * 0.5^n``), else ``(-inf, inf)``: too few units to decide at
  that level (``n_min = ceil(log2(2 / alpha))``);
- ``t_paired``: ``a - b`` over paired units (scipy ``ttest_rel``);
- ``welch``: ``mean(a) - mean(b)``, independent samples, Welch-Satterthwaite df (scipy
  ``ttest_ind(equal_var=False)``);
- ``pearson``: ``r`` with the Fisher-z interval and the Fisher-z p-value (so the two agree),
  ``z = atanh(r) sqrt(n - 3)``;
- ``pearson_blocked``: the seed-blocked correlation: each block's (seed's) mean removed from both
  variables, ``r`` of the residuals, the Fisher-z interval and p with ``n - (g - 1)`` in place of
  ``n`` for ``g`` blocks (the partial correlation given the block indicators);
- ``paired_classes``: per-class paired shifts ``d_mc`` (units x classes): one-sample t per class;
  the family's p is Bonferroni ``min(1, K min_c p_c)``; the estimate is the most significantly
  changed class's mean shift with its ``1 - alpha / K`` interval when that p is below ``alpha``,
  else (nothing decided) the envelope of all classes' ``1 - alpha / K`` intervals, so that the
  interval is inside ``+-SESOI`` exactly when every class is (``absent``);
- ``tost_paired``: equivalence of paired ``a - b`` within ``+-margin``: the larger of the two
  one-sided p-values and the ``1 - 2 alpha`` t interval (Schuirmann 1987).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis import power as P
from analysis.verdict import Evidence
from core.hypotheses import Hypothesis


def _clean(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _constant(a: np.ndarray) -> bool:
    return a.size < 2 or float(np.std(a)) <= 1e-12 * max(1.0, float(np.abs(a).max(initial=0.0)))


def sign_test_n_min(alpha: float) -> int:
    """The fewest units at which a sign test can reject at ``alpha``: ``2 * 0.5^n <= alpha``."""
    return math.ceil(math.log2(2 / alpha))


def _constant_sample(a: np.ndarray, h: Hypothesis, test: str) -> Evidence:
    """The sign test and the order-statistic interval of the median of a sample without spread."""
    n, v = a.size, float(a.mean())
    v = 0.0 if abs(v) <= 1e-12 else v  # rounding of an exact 0 (two equal arms)
    n_min = sign_test_n_min(h.alpha)
    p = 1.0 if v == 0 else float(min(1.0, 2 * 0.5**n))
    lo, hi = (v, v) if n >= n_min else (-math.inf, math.inf)
    return Evidence(test, n, v, lo, hi, p, float("nan"), float("nan"), n_min=n_min)


def t_one_sample(x, h: Hypothesis, test: str = "t_one_sample") -> Evidence:
    a = _clean(x) - h.null
    n = a.size
    if n < 2:
        return Evidence.missing(test, n)
    if _constant(a):  # no spread (a discrete quantity such as a prune potential): the sign test
        return _constant_sample(a, h, test)
    mean, sd = float(a.mean()), float(a.std(ddof=1))
    se, df = sd / math.sqrt(n), n - 1
    t = mean / se  # scipy's ttest_1samp, written out (it is called 200 times per bootstrap)
    half = float(stats.t.ppf(1 - h.alpha / 2, df)) * se
    effect = h.effect if h.effect is not None else float("nan")
    return Evidence(
        test,
        n,
        mean,
        mean - half,
        mean + half,
        float(2 * stats.t.sf(abs(t), df)),
        P.mde_t(sd, n, h.alpha),
        P.power_t(effect, sd, n, h.alpha),
        t,
    )


def t_paired(a, b, h: Hypothesis) -> Evidence:
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    return t_one_sample(a[keep] - b[keep], h, "t_paired")


def welch(a, b, h: Hypothesis) -> Evidence:
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:
        return Evidence.missing("welch", min(a.size, b.size))
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(1 - h.alpha)
    pooled = float(
        np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    )
    effect = h.effect if h.effect is not None else float("nan")
    return Evidence(
        "welch",
        int(min(a.size, b.size)),
        float(a.mean() - b.mean()),
        float(ci.low),
        float(ci.high),
        float(res.pvalue),
        P.mde_welch(pooled, a.size, b.size, h.alpha),
        P.power_welch(effect, pooled, a.size, b.size, h.alpha),
        float(res.statistic),
    )


def _fisher(r: float, n_eff: float, h: Hypothesis, test: str, n: int) -> Evidence:
    """``r`` with the Fisher-z interval at ``1 - alpha`` and the two-sided Fisher-z p-value
    (``z = atanh(r) sqrt(n_eff - 3)``): the interval excludes 0 exactly when ``p < alpha``."""
    if n_eff < 4 or not np.isfinite(r):
        return Evidence.missing(test, n)
    se = 1 / math.sqrt(n_eff - 3)
    z = math.atanh(min(max(r, -0.9999999), 0.9999999))
    crit = float(stats.norm.ppf(1 - h.alpha / 2))
    effect = h.effect if h.effect is not None else float("nan")
    n_round = round(n_eff)
    return Evidence(
        test,
        n,
        float(r),
        math.tanh(z - crit * se),
        math.tanh(z + crit * se),
        float(2 * stats.norm.sf(abs(z) / se)),
        P.mde_r(n_round, h.alpha),
        P.power_r(effect, n_round, h.alpha),
        float(z / se),
    )


def pearson(x, y, h: Hypothesis) -> Evidence:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = x.size
    if n < 4 or _constant(x) or _constant(y):
        return Evidence.missing("pearson", n)
    return _fisher(float(np.corrcoef(x, y)[0, 1]), n, h, "pearson", n)


def block_residuals(values, blocks) -> np.ndarray:
    """``values`` minus their block's mean."""
    v = pd.Series(np.asarray(values, float))
    return (v - v.groupby(np.asarray(blocks)).transform("mean")).to_numpy()


def pearson_blocked(x, y, blocks, h: Hypothesis) -> Evidence:
    """The seed-blocked correlation (module docstring)."""
    x, y, blocks = np.asarray(x, float), np.asarray(y, float), np.asarray(blocks)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, blocks = x[keep], y[keep], blocks[keep]
    n, g = x.size, len(np.unique(blocks))
    rx, ry = block_residuals(x, blocks), block_residuals(y, blocks)
    if n - g < 3 or _constant(rx) or _constant(ry):
        return Evidence.missing("pearson_blocked", n)
    return _fisher(float(np.corrcoef(rx, ry)[0, 1]), n - (g - 1), h, "pearson_blocked", n)


def paired_classes(d, h: Hypothesis) -> tuple[Evidence, pd.DataFrame]:
    """Per-class one-sample t on ``d`` (units x classes), Bonferroni over the K classes (module
    docstring); the per-class table (shift, p, the ``1 - alpha / K`` interval) beside it."""
    d = np.asarray(d, float)
    n, k = d.shape
    table = pd.DataFrame({"class": np.arange(k), "shift": d.mean(0) if n else np.full(k, np.nan)})
    if n < 2:
        return Evidence.missing("paired_classes", n), table.assign(p=np.nan, low=np.nan, high=np.nan)
    res = stats.ttest_1samp(d, 0.0, axis=0)
    p = np.asarray(res.pvalue, float)
    ci = res.confidence_interval(1 - h.alpha / k)
    table = table.assign(p=p, low=np.asarray(ci.low, float), high=np.asarray(ci.high, float))
    if not np.isfinite(p).any():
        return Evidence.missing("paired_classes", n), table
    best = int(np.nanargmin(p))
    p_family = float(min(1.0, k * p[best]))
    if p_family < h.alpha:
        lo, hi = float(table["low"][best]), float(table["high"][best])
    else:
        lo, hi = float(np.nanmin(table["low"])), float(np.nanmax(table["high"]))
    sd = float(np.nanmedian(d.std(0, ddof=1)))
    effect = h.effect if h.effect is not None else float("nan")
    ev = Evidence(
        "paired_classes",
        n,
        float(table["shift"][best]),
        lo,
        hi,
        p_family,
        P.mde_t(sd, n, h.alpha / k),
        P.power_t(effect, sd, n, h.alpha / k),
        float(np.asarray(res.statistic)[best]),
    )
    return ev, table


def _margin_test(a, b, h: Hypothesis, test: str) -> Evidence:
    """A paired test against the margin ``m = h.margin`` with the TOST's ``1 - 2 alpha`` interval:
    ``tost_paired`` rejects both ``d <= -m`` and ``d >= m`` (Schuirmann 1987; p the larger of the
    two one-sided p-values); ``noninferiority_paired`` only ``d <= -m`` (keeps or improves)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n, m = d.size, float(h.margin)
    if _constant(d):
        return Evidence.missing(test, n)
    p = stats.ttest_1samp(d, -m, alternative="greater").pvalue
    if test == "tost_paired":
        p = max(p, stats.ttest_1samp(d, m, alternative="less").pvalue)
        mde, power = P.tost_margin_mde, P.tost_power
    else:
        mde, power = P.noninferiority_margin_mde, P.noninferiority_power
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * h.alpha)
    sd = float(d.std(ddof=1))
    return Evidence(
        test,
        n,
        float(d.mean()),
        float(ci.low),
        float(ci.high),
        float(p),
        mde(sd, n, h.alpha),
        power(m, sd, n, h.alpha),
    )


def tost_paired(a, b, h: Hypothesis) -> Evidence:
    """Equivalence within ``h.margin`` (TOST)."""
    return _margin_test(a, b, h, "tost_paired")


def noninferiority_paired(a, b, h: Hypothesis) -> Evidence:
    """Non-inferiority by ``h.margin``: the lower one-sided test of the TOST."""
    return _margin_test(a, b, h, "noninferiority_paired")


TESTS = {
    "t_one_sample",
    "t_paired",
    "welch",
    "pearson",
    "pearson_blocked",
    "paired_classes",
    "tost_paired",
    "noninferiority_paired",
}


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg q-values (``scipy.stats.false_discovery_control``), NaN kept as NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q
