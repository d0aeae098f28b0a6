"""The statistics helpers against scipy / statsmodels reference values and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis import stats as S


def test_bh_matches_statsmodels_and_keeps_nan():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005, np.nan, 0.5])
    q = S.bh(p)
    ref = multipletests(p[np.isfinite(p)], method="fdr_bh")[1]
    assert np.allclose(q[np.isfinite(p)], ref)
    assert math.isnan(q[5])
    # hand case: p = (0.01, 0.02) -> q = (0.02, 0.02)
    assert np.allclose(S.bh([0.01, 0.02]), [0.02, 0.02])


def test_one_sample_t_matches_scipy():
    x = np.array([0.3, 0.1, 0.45, 0.2, 0.25, -0.05])
    r = S.one_sample_t(x, mu=0.1)
    ref = stats.ttest_1samp(x, 0.1)
    ci = ref.confidence_interval(0.95)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p == pytest.approx(ref.pvalue)
    assert r.estimate == pytest.approx(x.mean() - 0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low - 0.1, ci.high - 0.1))
    assert r.n == 6


def test_degenerate_samples_give_nan_p():
    assert math.isnan(S.one_sample_t([0.6, 0.6, 0.6 + 1e-16]).p)
    assert math.isnan(S.one_sample_t([1.0]).p)
    assert math.isnan(S.wilcoxon_signed_rank([0.0, 0.0, 0.0]).p)
    assert math.isnan(S.welch([1, 1, 1], [1, 1, 1]).p)


def test_welch_and_student_match_scipy():
    a = np.array([1.2, 0.8, 1.9, 1.4, 1.1])
    b = np.array([0.2, 0.9, 0.4, 0.1, 0.7, 0.3, 0.5])
    for fn, eq in ((S.welch, False), (S.student, True)):
        r = fn(a, b)
        ref = stats.ttest_ind(a, b, equal_var=eq)
        ci = ref.confidence_interval(0.95)
        assert r.statistic == pytest.approx(ref.statistic)
        assert r.p == pytest.approx(ref.pvalue)
        assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
        assert r.estimate == pytest.approx(a.mean() - b.mean())


def test_wilcoxon_matches_scipy_and_hodges_lehmann_by_hand():
    x = np.array([0.5, -0.2, 1.1, 0.7, 0.3, 0.9, -0.4, 0.6])
    r = S.wilcoxon_signed_rank(x)
    assert r.p == pytest.approx(stats.wilcoxon(x).pvalue)
    # HL by hand: median of the Walsh averages
    i, j = np.triu_indices(len(x))
    assert r.estimate == pytest.approx(np.median((x[i] + x[j]) / 2))
    # [1, 2, 3]: Walsh averages 1, 1.5, 2, 2, 2.5, 3 -> 2; n = 3 is too small for a 95% CI
    est, lo, hi = S.hodges_lehmann([1.0, 2.0, 3.0])
    assert est == 2.0 and math.isnan(lo) and math.isnan(hi)


def test_signed_rank_distribution_small_n():
    # n = 3: T+ in 0..6 with counts 1,1,1,2,1,1,1 over 8 sign patterns
    assert np.allclose(S._signed_rank_cdf(3), np.cumsum([1, 1, 1, 2, 1, 1, 1]) / 8)
    # n = 6: P(T+ <= 0) = 1/64 <= 0.025 -> the 95% CI is (min, max) of the Walsh averages
    x = np.array([0.1, 0.4, 0.2, 0.9, 0.5, 0.3])
    _, lo, hi = S.hodges_lehmann(x)
    assert (lo, hi) == (0.1, 0.9)


def test_pearson_fisher_ci_by_hand_and_permutation_p():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    r = S.pearson(x, y, rng, n_perm=999)
    ref = stats.pearsonr(x, y)
    assert r.estimate == pytest.approx(ref.statistic)
    z = math.atanh(ref.statistic)
    assert r.ci_low == pytest.approx(math.tanh(z - 1.959963984540054 / math.sqrt(37)))
    assert r.ci_high == pytest.approx(math.tanh(z + 1.959963984540054 / math.sqrt(37)))
    assert r.p == pytest.approx(ref.pvalue, abs=0.01)  # permutation p near the t-test p
    assert r.p >= 1 / 1000


def test_kendall_matches_scipy_tau():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=25), rng.normal(size=25)
    r = S.kendall(x, y, rng, n_perm=300, n_boot=300)
    ref = stats.kendalltau(x, y)
    assert r.estimate == pytest.approx(ref.statistic)
    assert r.ci_low < r.estimate < r.ci_high
    assert r.p == pytest.approx(ref.pvalue, abs=0.1)


def test_ols_cluster_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(6), 10)
    x = rng.normal(size=60)
    y = 1.0 + 0.5 * x + rng.normal(size=6)[g] + rng.normal(size=60)
    X = np.column_stack([np.ones(60), x])
    coefs = S.ols_cluster(y, X, g, ["const", "x"])
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}, use_t=True)
    assert coefs[1].estimate == pytest.approx(ref.params[1])
    assert coefs[1].se == pytest.approx(ref.bse[1])
    assert coefs[1].p == pytest.approx(ref.pvalues[1])
    assert coefs[1].clusters == 6
    # t with G - 1 = 5 degrees of freedom
    half = coefs[1].ci_high - coefs[1].estimate
    assert half == pytest.approx(stats.t.ppf(0.975, 5) * coefs[1].se)
    assert S.ols_cluster(y[:10], X[:10], g[:10]) == []  # one cluster: no inference


def test_slope_is_polyfit_slope():
    x, y = np.array([0.0, 1.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.5, 5.0])
    assert S.slope(x, y) == pytest.approx(np.polyfit(x, y, 1)[0])
    assert math.isnan(S.slope([1.0, 1.0], [0.0, 2.0]))


def test_vectorised_kendall_equals_scipy_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, (20, 15)).astype(float)
    y = rng.normal(size=(20, 15)).round(1)
    ours = S.kendall_tau_b(x, y)
    ref = [stats.kendalltau(a, b).statistic for a, b in zip(x, y, strict=True)]
    assert ours == pytest.approx(ref)


def test_wilcoxon_exact_with_ties_by_enumeration_and_approx_for_large_n():
    x = np.array([0.1, 0.1, -0.1, 0.2, 0.0, 0.3])  # ties and a zero
    nz = x[x != 0]
    ranks = stats.rankdata(np.abs(nz))
    t = ranks[nz > 0].sum()
    import itertools

    null = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product([0, 1], repeat=5)
    ]
    centre = ranks.sum() / 2
    expected = np.mean([abs(v - centre) >= abs(t - centre) for v in null])
    assert S.wilcoxon_signed_rank(x).p == pytest.approx(expected)
    big = np.random.default_rng(4).normal(0.3, 1, 40)
    assert S.wilcoxon_signed_rank(big).p == pytest.approx(stats.wilcoxon(big, method="approx").pvalue)
