"""The tests a hypothesis names, each returning an ``analysis.verdict.Evidence``.

Every test is two-sided at the hypothesis' ``alpha`` with a ``1 - alpha`` interval (the
direction of a hypothesis only decides which significant result reproduces the paper), its
power computed at the hypothesis' effect and its MDE at 80% power (``analysis.power``):

- ``t_one_sample``: ``x - null`` (scipy ``ttest_1samp``, t interval); a sample without spread
  (every unit the same, e.g. a prune potential on a coarse grid) gets the sign test's p-value
  ``2 * 0.5^n`` and a point interval;
- ``t_paired``: ``a - b`` over paired units (scipy ``ttest_rel``);
- ``welch``: ``mean(a) - mean(b)``, independent samples, Welch-Satterthwaite df (scipy
  ``ttest_ind(equal_var=False)``);
- ``pearson``: ``r`` with the Fisher-z interval (scipy ``pearsonr``);
- ``tost_paired``: equivalence of paired ``a - b`` within ``+-margin``: the larger of the two
  one-sided p-values and the ``1 - 2 alpha`` t interval (Schuirmann 1987).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis import power as P
from analysis.verdict import Evidence
from core.studies import Hypothesis


def _clean(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _constant(a: np.ndarray) -> bool:
    return a.size < 2 or float(np.std(a)) <= 1e-12 * max(1.0, float(np.abs(a).max(initial=0.0)))


def t_one_sample(x, h: Hypothesis, test: str = "t_one_sample") -> Evidence:
    a = _clean(x) - h.null
    n = a.size
    if n < 2:
        return Evidence.missing(test, n)
    if _constant(a):  # no spread (a discrete quantity such as a prune potential): the sign test
        v = float(a.mean())
        if v == 0:
            return Evidence(test, n, 0.0, 0.0, 0.0, 1.0, float("nan"), float("nan"))
        return Evidence(test, n, v, v, v, float(min(1.0, 2 * 0.5**n)), float("nan"), float("nan"))
    res = stats.ttest_1samp(a, 0.0)
    ci = res.confidence_interval(1 - h.alpha)
    sd = float(a.std(ddof=1))
    effect = h.effect if h.effect is not None else float("nan")
    return Evidence(
        test,
        n,
        float(a.mean()),
        float(ci.low),
        float(ci.high),
        float(res.pvalue),
        P.mde_t(sd, n, h.alpha),
        P.power_t(effect, sd, n, h.alpha),
        float(res.statistic),
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


def pearson(x, y, h: Hypothesis) -> Evidence:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = x.size
    if n < 4 or _constant(x) or _constant(y):
        return Evidence.missing("pearson", n)
    res = stats.pearsonr(x, y)
    ci = res.confidence_interval(1 - h.alpha)
    effect = h.effect if h.effect is not None else float("nan")
    return Evidence(
        "pearson",
        n,
        float(res.statistic),
        float(ci.low),
        float(ci.high),
        float(res.pvalue),
        P.mde_r(n, h.alpha),
        P.power_r(effect, n, h.alpha),
        float(res.statistic),
    )


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


TESTS = {"t_one_sample", "t_paired", "welch", "pearson", "tost_paired", "noninferiority_paired"}


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg q-values (``scipy.stats.false_discovery_control``), NaN kept as NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q
