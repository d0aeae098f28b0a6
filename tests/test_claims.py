"""The claims analysis on synthetic study frames with planted effects, and hand-checked cases.

The study definitions are the real files (``benchmarks/studies/*.toml``): the analysis is
tested with the hypotheses it runs on the default preset.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import evidence as E
from analysis import intensification as it
from analysis import power as P
from analysis.claims import analyze_studies, render_primary, run_analysis
from analysis.load import study_frames
from analysis.mask_sanity import mask_column
from analysis.verdict import Evidence, decide
from core.studies import Hypothesis, claims
from tests import claims_synth as S

GRID = {0.5: 0.92, 0.75: 0.97, 0.9: 1.05, 0.95: 1.2, 0.98: 1.5}


def study(name, cells, metrics):
    return study_frames(name, S.study_definition(name), cells, metrics)


def rows_of(rows, claim=None, hypothesis=None):
    return [
        r
        for r in rows
        if (claim is None or r.claim == claim) and (hypothesis is None or r.hypothesis == hypothesis)
    ]


def primary(rows, claim):
    (r,) = [r for r in rows if r.claim == claim and r.primary]
    return r


# -- definitions --------------------------------------------------------------------------------


def test_alpha_is_the_through_origin_slope_and_a_weighted_mean_of_intensification_ratios():
    rng = np.random.default_rng(0)
    b0, b1 = rng.normal(0, 0.2, 10), rng.normal(0, 0.2, 10)
    slope = np.linalg.lstsq(b0[:, None], b1, rcond=None)[0][0]
    assert it.alpha_slope(b0, b1) == pytest.approx(slope)
    ratios, weights = b1 / b0, b0**2
    assert it.alpha_slope(b0, b1) == pytest.approx(np.sum(weights * ratios) / np.sum(weights))
    recall, acc = np.array([0.5, 0.7, 0.9]), 0.7
    assert it.normalized_balance(recall, acc) == pytest.approx((recall - 0.7) / 0.7)
    assert [it.ratio(s) for s in (0.5, 0.75, 0.9, 0.95, 0.98)] == [2, 4, 10, 20, 50]
    assert it.label(0.8, 0.95) == "<" and it.label(1.01, 1.3) == ">" and it.label(0.9, 1.1) == "?"


def _h(**kw) -> Hypothesis:
    base = {
        "id": "h",
        "statement": "s",
        "test": "t_one_sample",
        "direction": "less",
        "alpha": 0.05,
        "effect": -0.1,
    }
    return Hypothesis(**{**base, **kw})


@pytest.mark.parametrize(
    ("h", "ev", "verdict"),
    [
        (_h(), Evidence("t", 20, -0.2, -0.3, -0.1, 0.001, 0.05, 0.99), "reproduced"),
        (_h(), Evidence("t", 20, 0.2, 0.1, 0.3, 0.001, 0.05, 0.99), "contradicted"),
        (_h(), Evidence("t", 20, -0.01, -0.04, 0.02, 0.4, 0.05, 0.99), "not detected"),
        (_h(), Evidence("t", 5, -0.01, -0.3, 0.28, 0.9, 0.35, 0.2), "underpowered"),
        (_h(), Evidence.missing("t", 1), "underpowered"),
        (
            _h(direction="two-sided", effect=-0.2),
            Evidence("t", 9, -0.3, -0.4, -0.2, 0.01, 0.1, 0.9),
            "reproduced",
        ),
        (
            _h(direction="two-sided", effect=-0.2),
            Evidence("t", 9, 0.3, 0.2, 0.4, 0.01, 0.1, 0.9),
            "contradicted",
        ),
        (
            _h(direction="equivalence", margin=0.01, effect=None),
            Evidence("t", 30, 0.0, -0.004, 0.004, 0.001, 0.006, 0.9),
            "reproduced",
        ),
        (
            _h(direction="equivalence", margin=0.01, effect=None),
            Evidence("t", 30, -0.05, -0.06, -0.04, 0.9, 0.006, 0.9),
            "contradicted",
        ),
        (
            _h(direction="equivalence", margin=0.01, effect=None),
            Evidence("t", 4, 0.0, -0.02, 0.02, 0.3, 0.03, 0.1),
            "underpowered",
        ),
    ],
)
def test_verdict_words(h, ev, verdict):
    assert decide(h, ev) == verdict


def test_power_and_mde_agree_with_each_other_and_a_simulation():
    sd, n, alpha = 0.05, 20, 0.01
    mde = P.mde_t(sd, n, alpha)
    assert P.power_t(mde, sd, n, alpha) == pytest.approx(0.8, abs=1e-3)
    assert P.power_t(-mde, sd, n, alpha) == pytest.approx(0.8, abs=1e-3)  # two-sided: either sign
    rng = np.random.default_rng(1)
    h = _h(alpha=alpha, direction="two-sided", effect=mde, null=0.0)
    hits = [E.t_one_sample(rng.normal(mde, sd, n), h).p < alpha for _ in range(2000)]
    assert np.mean(hits) == pytest.approx(0.8, abs=0.03)
    r = P.mde_r(60, 0.05)
    assert P.power_r(r, 60, 0.05) == pytest.approx(0.8, abs=1e-3) and 0.3 < r < 0.4
    margin = P.tost_margin_mde(0.01, 30, 0.05)
    assert P.tost_power(margin, 0.01, 30, 0.05) == pytest.approx(0.8, abs=0.02)
    assert P.mde_welch(1.0, 30, 30, 0.05) == pytest.approx(0.74, abs=0.02)  # the textbook d for n = 30


def test_tost_matches_two_one_sided_tests():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.9, 0.01, 25), rng.normal(0.9, 0.01, 25)
    h = _h(test="tost_paired", direction="equivalence", margin=0.01, effect=None)
    ev = E.tost_paired(a, b, h)
    from scipy import stats

    d = a - b
    p_low = stats.ttest_1samp(d, -0.01, alternative="greater").pvalue
    p_high = stats.ttest_1samp(d, 0.01, alternative="less").pvalue
    assert ev.p == pytest.approx(max(p_low, p_high))
    assert (ev.p < 0.05) == (ev.ci_low > -0.01 and ev.ci_high < 0.01)


# -- intensification ------------------------------------------------------------------------------


def _intensification(rng, alpha=GRID, **kw):
    parts = [
        S.intensification(
            rng,
            alpha,
            pruners=("global_magnitude", "taylor", "random", "undecayed"),
            pruner_alpha={"undecayed": -0.3, "random": -1.0},
            **kw,
        )
    ]
    parts.append(
        S.intensification(
            rng,
            {s: a + 0.2 for s, a in alpha.items()},
            dataset="mnist1d_hard",
            pruners=("global_magnitude", "undecayed"),
            **kw,
        )
    )
    parts.append(
        S.intensification(
            rng, {s: a - 0.1 for s, a in alpha.items()}, arch="mlp_512x2", pruners=("global_magnitude",), **kw
        )
    )
    return pd.concat([p[0] for p in parts], ignore_index=True), pd.concat(
        [p[1] for p in parts], ignore_index=True
    )


def test_planted_intensification_is_reproduced_with_labels_beside_the_papers():
    cells, metrics = _intensification(np.random.default_rng(3))
    rows = it.analyze(study("intensification", cells, metrics))
    low, high = primary(rows, "deintensification_low_ratio"), primary(rows, "intensification_high_ratio")
    assert low.verdict == "reproduced" and low.estimate == pytest.approx(0.92 - 1, abs=0.02) and low.n == 20
    assert high.verdict == "reproduced" and high.ci_level == pytest.approx(0.99)
    assert 0 <= low.stability <= 1 and low.stability > 0.8
    up = primary(rows, "up_vs_magnitude")
    assert up.verdict == "reproduced" and up.estimate == pytest.approx(-0.3, abs=0.03)
    labels = it.label_table(rows)
    mp = labels[
        (labels.pruner == "global_magnitude") & (labels.arch == "mlp_256x2") & (labels.dataset == "mnist1d")
    ]
    got = mp["labels"].iloc[0].split()
    assert len(got) == 5 and got[0] == "<" and got[2:] == [">", ">", ">"]
    rp = labels[labels.pruner == "random"]["labels"].iloc[0]
    assert rp.split() == ["<"] * 5
    harder = rows_of(rows, "intensification_high_ratio", "harder_task")
    assert harder and all(r.verdict == "reproduced" for r in harder if r.pruner == "global_magnitude")
    smaller = rows_of(rows, "intensification_high_ratio", "smaller_model")
    assert smaller and all(r.verdict == "reproduced" for r in smaller)
    trend = rows_of(rows, "intensification_high_ratio", "trend")
    mp_trend = [
        r
        for r in trend
        if r.pruner == "global_magnitude" and r.dataset == "mnist1d" and r.arch == "mlp_256x2"
    ]
    assert len(mp_trend) == 4 and all(r.verdict == "reproduced" for r in mp_trend)


def test_no_intensification_is_not_detected_when_the_design_is_powered():
    cells, metrics = _intensification(np.random.default_rng(4), alpha={s: 1.0 for s in GRID}, noise=0.005)
    rows = it.analyze(study("intensification", cells, metrics))
    for claim in ("deintensification_low_ratio", "intensification_high_ratio"):
        r = primary(rows, claim)
        assert r.verdict == "not detected", (claim, r)
        assert r.mde <= abs(r.effect)


def test_few_seeds_are_underpowered_not_inconclusive():
    cells, metrics = _intensification(
        np.random.default_rng(5), alpha={s: 1.0 for s in GRID}, seeds=3, noise=0.1
    )
    rows = it.analyze(study("intensification", cells, metrics))
    assert primary(rows, "deintensification_low_ratio").verdict == "underpowered"


def test_collapsed_scopes_are_flagged_and_left_out_of_verdicts():
    cells, metrics = _intensification(np.random.default_rng(6), drop=0.6)  # accuracy near chance
    rows = it.analyze(study("intensification", cells, metrics))
    assert primary(rows, "intensification_high_ratio").verdict == "collapsed"
    assert it.label_table(rows)["labels"].str.contains("collapsed").all()


# -- per-class damage ------------------------------------------------------------------------------


def test_per_class_damage_finds_a_planted_class_and_reports_the_pie_fraction():
    from analysis import per_class

    rng = np.random.default_rng(7)
    cells, metrics = S.intensification(rng, {0.9: 1.0}, class_shift={3: -0.08}, predictions=200)
    rows = per_class.analyze(study("per_class_damage", cells, metrics))
    r = primary(rows, "per_class_damage")
    assert r.verdict == "reproduced" and r.estimate < 0 and r.label.startswith("1/")
    assert "PIE fraction" in r.description and "0 helped, 1 hurt" in r.description
    cells, metrics = S.intensification(rng, {0.9: 1.0}, noise=0.005, predictions=200)
    null = primary(per_class.analyze(study("per_class_damage", cells, metrics)), "per_class_damage")
    assert null.verdict in ("not detected", "underpowered") and null.label == "0/10"


def test_pie_fraction_counts_examples_whose_modal_label_changes():
    from analysis.per_class import pie_fraction

    dense = pd.DataFrame([[0, 1, 2, 3]] * 5)
    pruned = pd.DataFrame([[0, 1, 2, 0]] * 3 + [[0, 1, 2, 3]] * 2)
    assert pie_fraction(dense, pruned) == pytest.approx(0.25)


# -- generalization-stability ----------------------------------------------------------------------


def test_stability_correlation_and_noise_injection():
    from analysis import generalization_stability as gs

    rng = np.random.default_rng(8)
    cells, metrics = S.stability(rng, r=-0.7, noise_gain=0.02)
    rows = gs.analyze(study("stability", cells, metrics))
    corr = primary(rows, "generalization_stability")
    assert corr.verdict == "reproduced" and corr.estimate < -0.3 and corr.n == 60
    assert "fits the >= 99% regime" in corr.description
    noise = primary(rows, "noise_injection")
    assert noise.verdict == "reproduced" and noise.estimate == pytest.approx(0.02, abs=0.005)
    val = rows_of(rows, "generalization_stability", "stability_vs_generalization_val")
    assert val and val[0].verdict == "reproduced"
    cells, metrics = S.stability(rng, r=0.0, fit=0.95)
    null = primary(gs.analyze(study("stability", cells, metrics)), "generalization_stability")
    assert null.verdict == "not detected" and "out of the paper's regime" in null.description


# -- prune potential and mask sanity ----------------------------------------------------------------


def test_prune_potential_gap():
    from analysis import potential

    definition = S.study_definition("prune_potential")
    cells, metrics = S.potential(np.random.default_rng(9), gap_drop=0.2)
    rows = potential.analyze(study_frames("prune_potential", definition, cells, metrics))
    r = primary(rows, "prune_potential")
    assert r.verdict == "reproduced" and r.estimate > 0.1
    assert potential.prune_potential([0.8, 0.9, 0.95], [0.1, 0.104, 0.2], 0.1) == 0.9
    assert potential.prune_potential([0.8], [0.2], 0.1) == 0.0
    excess = rows_of(rows, "prune_potential", "excess_error_0.9")
    assert excess and all(e.estimate > 0 for e in excess)


def test_mask_sanity_equivalence_and_positive_control():
    from analysis import mask_sanity

    effects = {"snip": 0.0, "grasp": 0.001, "synflow": -0.001, "global_magnitude": -0.05}
    cells, metrics = S.mask_controls(np.random.default_rng(10), effects)
    rows = mask_sanity.analyze(study("mask_sanity", cells, metrics))
    r = primary(rows, "mask_sanity")
    assert r.verdict == "reproduced" and r.n == 30 and r.pruner == "snip+grasp+synflow"
    control = rows_of(rows, "mask_sanity", "magnitude_shuffle_hurts")
    assert control[0].verdict == "reproduced"
    column = mask_column(rows)
    assert column["global_magnitude"] == "mask > densities"
    assert column["snip"] == "= densities"


# -- the whole table ----------------------------------------------------------------------------------


def test_run_analysis_writes_primary_verdicts_and_is_deterministic(tmp_path):
    rng = np.random.default_rng(11)
    cells, metrics = _intensification(rng)
    st_cells, st_metrics = S.stability(rng, r=-0.6, noise_gain=0.02)
    S.write_store(
        tmp_path,
        {
            "intensification": (S.study_definition("intensification"), cells, metrics),
            "stability": (S.study_definition("stability"), st_cells, st_metrics),
        },
    )
    table, primaries = run_analysis(tmp_path)
    again, primaries_again = run_analysis(tmp_path)
    pd.testing.assert_frame_equal(table, again)
    assert primaries == primaries_again
    by_claim = {p["claim"]: p for p in primaries}
    assert set(by_claim) == {
        "deintensification_low_ratio",
        "intensification_high_ratio",
        "up_vs_magnitude",
        "generalization_stability",
        "noise_injection",
    }
    for p in primaries:
        assert p["verdict"] == "reproduced", p
        assert all(
            p[k] is not None for k in ("n", "estimate", "ci_low", "ci_high", "mde", "power", "stability")
        )
    text = render_primary(primaries)
    assert text.count("\n- ") == 5 and "MDE" in text and "bootstrap stability" in text and "paper" in text
    saved = json.loads((tmp_path / "claims" / "primary.json").read_text())
    assert [p["verdict"] for p in saved] == [p["verdict"] for p in primaries]
    labels = pd.read_parquet(tmp_path / "claims" / "labels.parquet")
    assert {"labels", "alpha_hat", "t"} <= set(labels.columns)
    secondary = table[~table["primary"]]
    assert secondary["q"].notna().any() and (secondary["q"] >= secondary["p"] - 1e-12).all()


def test_every_study_file_declares_one_primary_per_claim():
    from benchmarks.studies import load_study, study_names

    for name in study_names():
        s = load_study(name)
        for claim in claims(s.definition, name):
            assert sum(h.primary for h in claim.hypotheses) == 1
            assert claim.primary.effect is not None or claim.primary.margin
        assert s.definition["analysis"]


def test_analyze_studies_with_no_studies_is_empty():
    table, primaries = analyze_studies([])
    assert table.empty and primaries == []
