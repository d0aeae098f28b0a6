"""The verdict rules of ``shared/design/claims.md`` 0b (``analysis.verdict``), each on hand-made
evidence; the comparison of two stores' verdicts (``analysis.compare``, ``harness
compare-verdicts``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from analysis import evidence as E
from analysis.compare import compare_primaries
from analysis.verdict import Evidence, Gate, decide, judge, n_to_settle, point_verdict, pooled
from core.hypotheses import VERDICTS, Hypothesis


def _h(**kw) -> Hypothesis:
    base = {
        "id": "h",
        "statement": "s",
        "test": "t_one_sample",
        "direction": "less",
        "alpha": 0.05,
        "effect": -0.1,
        "effect_source": "paper",
        "sesoi": 0.05,
    }
    return Hypothesis(**{**base, **kw})


def margin(direction: str) -> Hypothesis:
    return _h(direction=direction, margin=0.01, sesoi=None, effect=None)


def ev(est, lo, hi, n=20, power=0.99, p=0.5):
    return Evidence("t", n, est, lo, hi, p, 0.05, power)


@pytest.mark.parametrize(
    ("h", "e", "verdict", "reason"),
    [
        (_h(), ev(-0.2, -0.3, -0.1), "reproduced", "excludes 0 in the paper's direction"),
        (_h(), ev(0.2, 0.1, 0.3), "contradicted", "opposite effect"),
        (_h(), ev(0.03, 0.01, 0.05), "inconclusive", "covers 0"),  # opposite, but within the SESOI
        (_h(), ev(0.0, -0.04, 0.04), "absent", "inside +-SESOI"),
        (_h(sesoi=0.01), ev(0.0, -0.04, 0.04), "contradicted", "paper's effect excluded"),
        (_h(sesoi=0.01, effect_source="stated"), ev(0.0, -0.04, 0.04), "inconclusive", "covers 0"),
        (_h(), ev(-0.05, -0.2, 0.1), "inconclusive", "n = "),
        (_h(), ev(-0.05, -0.2, 0.1, power=0.3), "inconclusive (underpowered)", "power 0.30"),
        (_h(), Evidence.missing("t", 1), "inconclusive (underpowered)", "no interval"),
        (_h(direction="any", effect=0.1), ev(-0.2, -0.3, -0.1), "reproduced", ""),  # either way
        (_h(direction="two-sided", effect=-0.2), ev(0.3, 0.2, 0.4), "contradicted", "opposite"),
        (margin("noninferiority"), ev(0.0, -0.005, 0.01), "reproduced", "clears -margin"),
        (margin("noninferiority"), ev(-0.05, -0.06, -0.04), "contradicted", "below -margin"),
        (margin("noninferiority"), ev(0, -0.02, 0.02, power=0.9), "inconclusive", "covers -margin"),
        (margin("equivalence"), ev(0.0, -0.004, 0.004), "reproduced", "inside +-margin"),
        (margin("equivalence"), ev(-0.05, -0.06, -0.04), "contradicted", "outside +-margin"),
        (margin("equivalence"), ev(0, -0.02, 0.02, 4, 0.1), "inconclusive (underpowered)", "crosses"),
    ],
)  # fmt: skip
def test_point_verdict_words_and_reasons(h, e, verdict, reason):
    d = point_verdict(h, e)
    assert (d.verdict, reason in d.reason) == (verdict, True), d
    assert d.verdict in VERDICTS


def test_n_to_settle_is_the_first_decision_at_80_percent_power():
    h = _h()  # alpha 0.05, SESOI 0.05, the paper's effect -0.1
    e = ev(-0.02, -0.11, 0.07, n=20)  # covers 0 and the paper's -0.1; half-width 0.09
    c = stats.norm.ppf(0.975)
    sd = 0.09 * math.sqrt(20) / c
    # candidates: |e| = 0.02 (clear 0: reproduced), SESOI - |e| = 0.03 (absent), the paper's -0.1: 0.08
    expect = math.ceil(((c + stats.norm.ppf(0.8)) * sd / 0.08) ** 2)
    assert n_to_settle(h, e, [0.02, 0.03, 0.08]) == expect
    d = point_verdict(h, e)
    assert (d.verdict, d.n_settle) == ("inconclusive", expect)
    assert f"n = {expect} would settle it" in d.reason and 20 < expect < 60  # excluding -0.1 comes first
    # a stated effect of interest decides nothing when excluded: the next decision is absence
    far = point_verdict(_h(effect_source="stated"), e)
    assert far.n_settle == math.ceil(((c + stats.norm.ppf(0.8)) * sd / 0.03) ** 2) > 6 * expect


def test_gates_come_first_and_unstable_verdicts_are_unsettled():
    h = _h()
    e = ev(-0.2, -0.3, -0.1)
    failed = [Gate("positive control", False, "Prune_L - baseline -0.45 points"), Gate("fit", True, "ok")]
    j = judge(h, e, failed)
    assert j.verdict == "out of regime" and j.point_verdict == "reproduced"
    assert j.reason == "positive control failed: Prune_L - baseline -0.45 points"
    assert judge(h, e, [Gate("convergence", None, "not measured")]).verdict == "reproduced"  # n/a passes
    # a resample that flips the verdict 3 times in 10: stability 0.7 < 0.8
    flips = iter([ev(0.0, -0.04, 0.04)] * 60 + [e] * 140)
    j = judge(h, e, [], resample=lambda idx: next(flips), n_units=20, key=("k",))
    assert j.verdict == "unsettled" and j.point_verdict == "reproduced" and j.stability == pytest.approx(0.7)
    assert "bootstrap stability 0.70 < 0.8; point verdict reproduced" in j.reason and j.n_settle > 0
    j = judge(h, e, [], resample=lambda idx: e, n_units=20, key=("k",))
    assert (j.verdict, j.stability) == ("reproduced", 1.0)
    lenient = judge(
        h,
        e,
        [],
        resample=lambda idx: next(flips, e),
        n_units=20,
        key=("k",),
        thresholds={"min_stability": 0.5},
    )
    assert lenient.verdict == "reproduced"


def test_intersection_union_holds_only_for_every_member():
    h = _h(direction="greater", effect=0.01, sesoi=0.005)
    yes, no, undecided = ev(0.02, 0.01, 0.03), ev(0.0, -0.003, 0.003), ev(0.005, -0.01, 0.02)
    e, d = pooled(h, {"noise_zero": yes, "noise_gauss": yes})
    assert d.verdict == "reproduced" and d.reason == "every member reproduced"
    e, d = pooled(h, {"noise_zero": yes, "noise_gauss": no})
    assert d.verdict == "absent" and d.reason == "absent for noise_gauss; not reproduced: noise_gauss"
    assert (e.estimate, e.ci_low) == (0.0, -0.003)  # the limiting member's numbers
    e, d = pooled(h, {"a": yes, "b": undecided, "c": ev(-0.02, -0.03, -0.01)})
    assert d.verdict == "contradicted" and "not reproduced: b, c" in d.reason
    assert pooled(h, {})[1].verdict == "inconclusive (underpowered)"


def test_a_sample_without_spread_gets_a_consistent_sign_test():
    h = _h(direction="greater", alpha=0.05, effect=0.1)
    for n in range(2, 9):
        e = E.t_one_sample(np.full(n, 0.05), h)
        decided = e.ci_low > 0
        assert decided == (e.p < h.alpha) == (n >= 6), (n, e)  # 2 * 0.5^n <= 0.05 from n = 6
        assert e.p == pytest.approx(2 * 0.5**n)
        if not decided:
            assert math.isinf(e.ci_low) and decide(h, e) == "inconclusive (underpowered)"
            assert point_verdict(h, e).n_settle == 6
        else:
            assert (e.ci_low, e.ci_high) == (pytest.approx(0.05), pytest.approx(0.05))
            assert decide(h, e) == "reproduced"
    zeros = E.t_one_sample(np.zeros(8), h)
    assert zeros.p == 1.0 and (zeros.ci_low, zeros.ci_high) == (0.0, 0.0) and decide(h, zeros) == "absent"


def test_t_one_sample_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1, 15)
    h = _h(direction="two-sided", alpha=0.01, null=0.1)
    e = E.t_one_sample(x, h)
    ref = stats.ttest_1samp(x, 0.1)
    ci = ref.confidence_interval(0.99)
    assert (e.p, e.statistic) == (pytest.approx(ref.pvalue), pytest.approx(ref.statistic))
    assert (e.ci_low + 0.1, e.ci_high + 0.1) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_paired_classes_one_rule_for_estimate_and_verdict():
    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.01, (30, 10))
    d[:, 4] -= 0.03
    h = _h(direction="any", effect=0.05, sesoi=0.02)
    e, _ = E.paired_classes(d, h)
    p = stats.ttest_1samp(d, 0.0, axis=0).pvalue
    assert e.p == pytest.approx(min(1, 10 * p.min())) and e.estimate == pytest.approx(d[:, 4].mean())
    ci = stats.ttest_1samp(d[:, 4], 0.0).confidence_interval(1 - 0.05 / 10)
    assert (e.ci_low, e.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert (e.p < 0.05) == (e.ci_high < 0) and decide(h, e) == "reproduced"
    null, _ = E.paired_classes(rng.normal(0, 0.01, (30, 10)), h)
    assert null.p >= 0.05 and null.ci_low < 0 < null.ci_high  # the envelope of every class
    assert decide(h, null) == "absent"  # every class inside +-2 points


def test_blocked_correlation_is_the_partial_correlation_given_the_seeds():
    rng = np.random.default_rng(2)
    seeds = np.repeat(np.arange(10), 6)
    u = rng.normal(size=10)[seeds]
    x, y = rng.normal(size=60) + 2 * u, rng.normal(size=60) + 2 * u
    h = _h(direction="less", effect=-0.4, sesoi=0.2)
    e = E.pearson_blocked(x, y, seeds, h)
    # OLS residuals on the seed indicators, then r with n - (g - 1) in Fisher's z
    dummies = np.eye(10)[seeds]
    rx = x - dummies @ np.linalg.lstsq(dummies, x, rcond=None)[0]
    ry = y - dummies @ np.linalg.lstsq(dummies, y, rcond=None)[0]
    r = np.corrcoef(rx, ry)[0, 1]
    assert e.estimate == pytest.approx(r)
    se = 1 / math.sqrt(60 - 9 - 3)
    assert e.ci_low == pytest.approx(math.tanh(math.atanh(r) - stats.norm.ppf(0.975) * se))
    assert (e.p < 0.05) == (e.ci_high < 0 or e.ci_low > 0)
    raw = E.pearson(x, y, h)
    assert raw.estimate > 0.5 and abs(e.estimate) < 0.3  # the seeds alone make the raw r large


def test_compare_primaries_flags_a_settled_verdict_that_flips():
    a = [
        {"claim": "x", "verdict": "reproduced", "stability": 0.95},
        {"claim": "y", "verdict": "unsettled", "point_verdict": "absent", "stability": 0.6},
        {"claim": "z", "verdict": "absent", "stability": 0.9},
        {"claim": "w", "verdict": "out of regime", "stability": None},
    ]
    b = [
        {"claim": "x", "verdict": "reproduced", "stability": 0.9},
        {"claim": "y", "verdict": "absent", "stability": 0.85},
        {"claim": "z", "verdict": "unsettled", "point_verdict": "inconclusive", "stability": 0.7},
        {"claim": "w", "verdict": "out of regime", "stability": None},
    ]
    status = {r["claim"]: r["status"] for r in compare_primaries(a, b)}
    assert status == {"x": "agree", "y": "agree (one unsettled)", "z": "unsettled in one", "w": "agree"}
    b[0]["verdict"] = "absent"  # settled in both, another word: a flip
    assert compare_primaries(a, b)[1]["status"] == "differ"  # (rows sorted by claim: w, x, y, z)


def test_compare_verdicts_command(tmp_path, capsys):
    from harness.cli import main

    for name, verdict in (("a", "reproduced"), ("b", "reproduced"), ("c", "contradicted")):
        (tmp_path / name / "claims").mkdir(parents=True)
        (tmp_path / name / "claims" / "primary.json").write_text(
            json.dumps([{"claim": "x", "verdict": verdict, "stability": 0.9}])
        )
    a, b, c = (str(tmp_path / n) for n in "abc")
    assert main(["compare-verdicts", "--results", a, "--other", b]) == 0
    assert "every settled verdict agrees" in capsys.readouterr().out
    assert main(["compare-verdicts", "--results", a, "--other", c]) == 1
    assert "settled verdicts that differ: x" in capsys.readouterr().out
    assert main(["compare-verdicts", "--results", a, "--other", str(tmp_path / "none")]) == 2
    assert "no primary verdicts there (run `python -m harness analyze` first)" in capsys.readouterr().err
