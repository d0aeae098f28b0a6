"""Statistics shared by the claim tests: each returns a ``TestResult`` (or plain numbers).

Conventions: two-sided p-values, 95% confidence intervals (``CONF``), NaN where a test is
undefined (too few observations, zero variance). Randomised procedures (bootstrap,
permutation) take a ``numpy.random.Generator`` so results are reproducible.

- one-sample / paired t: ``t = mean(x) / (sd(x) / sqrt(n))``, CI ``mean +- t_{n-1} sd/sqrt(n)``
- Wilcoxon signed-rank (zeros dropped as scipy's ``zero_method='wilcox'``; exact over all sign
  patterns with midranks for ties when n <= 14, scipy's normal approximation above) with the
  Hodges-Lehmann estimate
  (median of the Walsh averages ``(x_i + x_j)/2, i <= j``) and its exact distribution-free CI
  (Walsh averages ``k`` and ``M + 1 - k``, ``k - 1`` the largest ``t`` with ``P(T+ <= t) <= a/2``)
- Welch's t (unequal variances, Welch-Satterthwaite df) and Student's t (pooled variance)
- Pearson r with the Fisher-z CI ``tanh(atanh r +- z_{.975} / sqrt(n - 3))``
- the t interval of a mean, ``mean +- t_{n-1} sd / sqrt(n)`` (``t_half_width``, vectorised)
- Kendall tau-b with a percentile bootstrap CI; permutation p-values for both
- OLS with cluster-robust standard errors (statsmodels ``cov_type='cluster'``, t with G-1 df)
- Benjamini-Hochberg q-values (Benjamini & Hochberg 1995), NaN p-values left out
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONF = 0.95
EXACT_WILCOXON_MAX_N = 400
EXACT_SIGN_FLIP_MAX_N = 14
TIE_TOL = 1e-9  # a standard deviation below this (relative) is zero: means of equal values


@dataclass(frozen=True)
class TestResult:
    statistic: float
    estimate: float
    ci_low: float
    ci_high: float
    p: float
    n: int

    @staticmethod
    def empty(n: int = 0, estimate: float = float("nan")) -> TestResult:
        nan = float("nan")
        return TestResult(nan, estimate, nan, nan, nan, n)


def _clean(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg q-values: ``q_(i) = min_{j >= i} m p_(j) / j``, capped at 1; NaN kept."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def one_sample_t(x, mu: float = 0.0, conf: float = CONF) -> TestResult:
    """t-test of ``E[x] = mu``; estimate ``mean(x) - mu`` with its t interval."""
    a = _clean(x) - mu
    n = a.size
    if n < 2:
        return TestResult.empty(n, float(a.mean()) if n else float("nan"))
    mean, sd = float(a.mean()), float(a.std(ddof=1))
    if sd <= TIE_TOL * max(1.0, abs(mean)):  # constant sample (up to rounding): t undefined
        return TestResult(float("nan"), mean, mean, mean, float("nan"), n)
    se = sd / math.sqrt(n)
    t = mean / se
    half = float(t_half_width(sd, n, conf))
    return TestResult(t, mean, mean - half, mean + half, float(2 * stats.t.sf(abs(t), n - 1)), n)


def one_sample_t_many(samples, mu: float = 0.0, conf: float = CONF) -> list[TestResult]:
    """``[one_sample_t(x, mu, conf) for x in samples]``, with the t quantiles and tail
    probabilities computed in one vectorised call (the same numbers, much faster for many groups)."""
    pre: list = []
    for x in samples:
        a = _clean(x) - mu
        n = a.size
        if n < 2:
            pre.append(TestResult.empty(n, float(a.mean()) if n else float("nan")))
            continue
        mean, sd = float(a.mean()), float(a.std(ddof=1))
        if sd <= TIE_TOL * max(1.0, abs(mean)):
            pre.append(TestResult(float("nan"), mean, mean, mean, float("nan"), n))
            continue
        pre.append((mean, sd, n))
    todo = [i for i, r in enumerate(pre) if isinstance(r, tuple)]
    if todo:
        mean, sd, n = (np.array([pre[i][j] for i in todo], float) for j in range(3))
        t = mean / (sd / np.sqrt(n))
        half = t_half_width(sd, n, conf)
        p = 2 * stats.t.sf(np.abs(t), n - 1)
        for k, i in enumerate(todo):
            m = float(mean[k])
            pre[i] = TestResult(
                float(t[k]), m, m - float(half[k]), m + float(half[k]), float(p[k]), int(n[k])
            )
    return pre


def t_half_width(sd, n, conf: float = CONF) -> np.ndarray:
    """Half-width ``t_{n-1, (1+conf)/2} * sd / sqrt(n)`` of the t interval of a mean (NaN for n < 2).

    Vectorised over ``sd`` and ``n`` (e.g. one entry per group); ``one_sample_t`` and the report's
    mean-and-CI tables both use it, so every t interval is this one.
    """
    sd, n = np.asarray(sd, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        crit = stats.t.ppf(0.5 + conf / 2, np.maximum(n - 1, 1))
        return np.where(n > 1, crit * sd / np.sqrt(n), np.nan)


def paired_t(x, y, conf: float = CONF) -> TestResult:
    """Paired t-test on ``x - y`` (pairs with a NaN are dropped)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return one_sample_t(x - y, 0.0, conf)


def _midranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``a`` with ties given their mean rank (``scipy.stats.rankdata``, 'average')."""
    n = a.size
    order = np.argsort(a, kind="mergesort")
    sa = a[order]
    new = np.r_[True, sa[1:] != sa[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]
    mean_rank = (starts + 1 + ends) / 2.0  # mean of the ranks starts+1 .. ends
    ranks = np.empty(n)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


@functools.lru_cache(maxsize=512)
def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n)


@functools.lru_cache(maxsize=512)
def _signed_rank_cdf_cached(n: int) -> np.ndarray:
    cdf = _signed_rank_cdf(n)
    cdf.flags.writeable = False
    return cdf


def _signed_rank_cdf(n: int) -> np.ndarray:
    """``P(T+ <= t)`` for t = 0..n(n+1)/2 under H0 (no ties), by dynamic programming."""
    m = n * (n + 1) // 2
    counts = np.zeros(m + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[: m + 1 - r].copy()
    return np.cumsum(counts) / 2.0**n


def hodges_lehmann(x, conf: float = CONF) -> tuple[float, float, float]:
    """Hodges-Lehmann one-sample estimate (median of Walsh averages) and its exact CI."""
    a = _clean(x)
    n = a.size
    if n == 0:
        return (float("nan"),) * 3
    i, j = _triu(n)
    walsh = np.sort((a[i] + a[j]) / 2.0)
    est = float(np.median(walsh))
    m = walsh.size
    alpha = 1 - conf
    if n <= EXACT_WILCOXON_MAX_N:
        cdf = _signed_rank_cdf_cached(n)
        below = np.nonzero(cdf <= alpha / 2)[0]
        if below.size == 0:
            return est, float("nan"), float("nan")
        k = int(below[-1]) + 1
    else:
        z = stats.norm.ppf(1 - alpha / 2)
        k = math.floor(m / 2 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
        if k < 1:
            return est, float("nan"), float("nan")
    return est, float(walsh[k - 1]), float(walsh[m - k])


def wilcoxon_signed_rank(x, conf: float = CONF) -> TestResult:
    """Wilcoxon signed-rank test of a zero median of ``x`` (scipy), with the HL estimate and CI."""
    a = _clean(x)
    n = a.size
    est, lo, hi = hodges_lehmann(a, conf)
    nz = a[a != 0]  # zero_method='wilcox': zero differences are dropped
    if nz.size == 0:
        return TestResult(float("nan"), est, lo, hi, float("nan"), n)
    ranks = _midranks(np.abs(nz))  # midranks for ties
    t_plus = float(ranks[nz > 0].sum())
    if nz.size <= EXACT_SIGN_FLIP_MAX_N:  # exact: all 2^n sign patterns, conditional on ties
        signs = (np.arange(2**nz.size)[:, None] >> np.arange(nz.size)) & 1
        null = signs @ ranks
        centre = ranks.sum() / 2
        p = float(np.mean(np.abs(null - centre) >= abs(t_plus - centre) - 1e-9))
    else:
        res = stats.wilcoxon(nz, zero_method="wilcox", alternative="two-sided", method="approx")
        p = float(res.pvalue)
    return TestResult(min(t_plus, ranks.sum() - t_plus), est, lo, hi, p, n)


def welch(x, y, conf: float = CONF) -> TestResult:
    """Welch's two-sided t-test (``equal_var=False``); estimate ``mean(x) - mean(y)``."""
    return _two_sample(x, y, conf, equal_var=False)


def student(x, y, conf: float = CONF) -> TestResult:
    """Student's two-sample t-test (pooled variance); estimate ``mean(x) - mean(y)``."""
    return _two_sample(x, y, conf, equal_var=True)


def _two_sample(x, y, conf: float, equal_var: bool) -> TestResult:
    a, b = _clean(x), _clean(y)
    n = a.size + b.size
    if a.size < 2 or b.size < 2:
        est = float(a.mean() - b.mean()) if a.size and b.size else float("nan")
        return TestResult.empty(n, est)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    est = float(a.mean() - b.mean())
    if equal_var:
        df = a.size + b.size - 2
        sp = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / df
        se = math.sqrt(sp * (1 / a.size + 1 / b.size))
    else:
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else float("nan")
    if se <= TIE_TOL * max(1.0, abs(est)):
        return TestResult(float("nan"), est, est, est, float("nan"), n)
    t = est / se
    crit = stats.t.ppf(0.5 + conf / 2, df)
    return TestResult(t, est, est - crit * se, est + crit * se, float(2 * stats.t.sf(abs(t), df)), n)


def welch_many(pairs, conf: float = CONF) -> list[TestResult]:
    """``[welch(x, y, conf) for x, y in pairs]``, the t quantiles and tail probabilities in one
    vectorised call (the same numbers, faster for many tests)."""
    pre: list = []
    for x, y in pairs:
        a, b = _clean(x), _clean(y)
        n = a.size + b.size
        if a.size < 2 or b.size < 2:
            est = float(a.mean() - b.mean()) if a.size and b.size else float("nan")
            pre.append(TestResult.empty(n, est))
            continue
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        est = float(a.mean() - b.mean())
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else float("nan")
        if se <= TIE_TOL * max(1.0, abs(est)):
            pre.append(TestResult(float("nan"), est, est, est, float("nan"), n))
            continue
        pre.append((est, se, df, n))
    todo = [i for i, r in enumerate(pre) if isinstance(r, tuple)]
    if todo:
        est, se, df = (np.array([pre[i][j] for i in todo], float) for j in range(3))
        t = est / se
        crit = stats.t.ppf(0.5 + conf / 2, df)
        p = 2 * stats.t.sf(np.abs(t), df)
        for k, i in enumerate(todo):
            e, h = float(est[k]), float(crit[k] * se[k])
            pre[i] = TestResult(float(t[k]), e, e - h, e + h, float(p[k]), pre[i][3])
    return pre


def pearson_fisher_ci(r: float, n: int, conf: float = CONF) -> tuple[float, float]:
    """``tanh(atanh(r) +- z / sqrt(n - 3))`` (Fisher 1921)."""
    if n < 4 or not np.isfinite(r):
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + conf / 2)
    c = math.atanh(min(max(r, -0.999999999), 0.999999999))
    return math.tanh(c - z / math.sqrt(n - 3)), math.tanh(c + z / math.sqrt(n - 3))


def _pearson_many(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson r of ``x`` with each row of ``ys``."""
    xc = x - x.mean()
    yc = ys - ys.mean(axis=1, keepdims=True)
    den = np.sqrt((xc**2).sum()) * np.sqrt((yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc @ xc) / den


def permutation_p(observed: float, null: np.ndarray) -> float:
    """Two-sided permutation p-value ``(1 + #{|T*| >= |T|}) / (B + 1)``."""
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    return float((1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (null.size + 1))


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def pearson(x, y, rng: np.random.Generator, n_perm: int = 2000, conf: float = CONF) -> TestResult:
    """Pearson r, Fisher-z CI, permutation p-value (``n_perm`` shuffles of ``y``)."""
    a, b = _pairs(x, y)
    n = a.size
    if n < 4 or a.std() == 0 or b.std() == 0:
        return TestResult.empty(n)
    r = float(stats.pearsonr(a, b).statistic)
    lo, hi = pearson_fisher_ci(r, n, conf)
    perms = np.stack([rng.permutation(b) for _ in range(n_perm)])
    p = permutation_p(r, _pearson_many(a, perms))
    return TestResult(r, r, lo, hi, p, n)


def correlation_estimates(x, y, conf: float = CONF) -> dict:
    """The deterministic parts of ``pearson`` and ``kendall``: Pearson r with its Fisher-z CI and
    Kendall tau-b, with ``n`` the complete pairs (NaN where those tests return empty results)."""
    a, b = _pairs(x, y)
    n = int(a.size)
    if n < 4 or a.std() == 0 or b.std() == 0:
        nan = float("nan")
        return {"r": nan, "r_low": nan, "r_high": nan, "tau": nan, "n": n}
    r = float(stats.pearsonr(a, b).statistic)
    lo, hi = pearson_fisher_ci(r, n, conf)
    tau = float(kendall_tau_b(a[None], b[None])[0])
    return {"r": r, "r_low": lo, "r_high": hi, "tau": tau, "n": n}


def kendall_tau_b(X: np.ndarray, Y: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Kendall tau-b of each row pair of ``X``, ``Y`` (shape ``(B, n)``), vectorised.

    ``tau_b = sum_{i<j} sx_ij sy_ij / sqrt(sum_{i<j} |sx_ij| * sum_{i<j} |sy_ij|)`` with
    ``sx_ij = sign(x_i - x_j)``: concordant minus discordant pairs over the pairs untied in x
    and in y (Kendall 1945), the statistic ``scipy.stats.kendalltau`` computes.
    """
    X, Y = np.atleast_2d(X).astype(float), np.atleast_2d(Y).astype(float)
    n = X.shape[1]
    iu = np.triu_indices(n, 1)
    out = np.empty(X.shape[0])
    for s in range(0, X.shape[0], chunk):
        xs, ys = X[s : s + chunk], Y[s : s + chunk]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])[:, iu[0], iu[1]]
        sy = np.sign(ys[:, :, None] - ys[:, None, :])[:, iu[0], iu[1]]
        den = np.sqrt(np.abs(sx).sum(1) * np.abs(sy).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + chunk] = (sx * sy).sum(1) / den
    return out


def kendall(
    x, y, rng: np.random.Generator, n_perm: int = 2000, n_boot: int = 2000, conf: float = CONF
) -> TestResult:
    """Kendall tau-b, percentile bootstrap CI (resampling pairs), permutation p-value."""
    a, b = _pairs(x, y)
    n = a.size
    if n < 4 or a.std() == 0 or b.std() == 0:
        return TestResult.empty(n)
    tau = float(kendall_tau_b(a[None], b[None])[0])
    perms = np.stack([rng.permutation(b) for _ in range(n_perm)])
    null = kendall_tau_b(np.broadcast_to(a, perms.shape), perms)
    idx = rng.integers(0, n, (n_boot, n))
    boots = kendall_tau_b(a[idx], b[idx])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [(1 - conf) / 2, (1 + conf) / 2]) if boots.size else (np.nan, np.nan)
    return TestResult(tau, tau, float(lo), float(hi), permutation_p(tau, null), n)


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    se: float
    statistic: float
    p: float
    ci_low: float
    ci_high: float
    n: int
    clusters: int


def ols_cluster(y, X, groups, names: list[str] | None = None, conf: float = CONF) -> list[Coefficient]:
    """OLS ``y = X beta + e`` with cluster-robust SEs by ``groups`` (statsmodels, t with G-1 df).

    ``X`` must already contain the intercept column if one is wanted. Needs >= 2 clusters
    and more rows than columns; otherwise returns ``[]``.
    """
    import statsmodels.api as sm

    y = np.asarray(y, float)
    X = np.asarray(X, float)
    groups = np.asarray(groups)
    ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    y, X, groups = y[ok], X[ok], groups[ok]
    _, gcodes = np.unique(groups, return_inverse=True)
    n_clusters = int(gcodes.max() + 1) if gcodes.size else 0
    if n_clusters < 2 or y.size <= X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        return []
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": gcodes}, use_t=True)
    ci = np.asarray(fit.conf_int(alpha=1 - conf))
    names = names or [f"x{i}" for i in range(X.shape[1])]
    return [
        Coefficient(
            names[i],
            float(fit.params[i]),
            float(fit.bse[i]),
            float(fit.tvalues[i]),
            float(fit.pvalues[i]),
            float(ci[i, 0]),
            float(ci[i, 1]),
            int(y.size),
            n_clusters,
        )
        for i in range(X.shape[1])
    ]


def slope(x, y) -> float:
    """OLS slope of ``y`` on ``x`` with an intercept: ``cov(x, y) / var(x)``; NaN if ``var(x) = 0``."""
    a, b = _pairs(x, y)
    if a.size < 2:
        return float("nan")
    xc = a - a.mean()
    sxx = float((xc**2).sum())
    return float((xc * (b - b.mean())).sum() / sxx) if sxx > 0 else float("nan")
