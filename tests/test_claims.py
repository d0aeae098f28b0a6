"""The claims analysis on synthetic study frames with planted effects, and hand-checked cases.

The study definitions are the real files (``benchmarks/studies/*.toml``): the analysis is
tested with the hypotheses it runs on the default preset. The verdict rules themselves
(``analysis.verdict``) are unit-tested in ``tests/test_claims_rules.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import intensification as it
from analysis.claims import analyze_studies, render_primary, run_analysis
from analysis.distortion import cell_table
from analysis.load import study_frames
from analysis.mask_sanity import mask_column
from core.hypotheses import VERDICTS, StudyError, claims
from tests import claims_synth as S

GRID = {0.5: 0.92, 0.75: 0.97, 0.9: 1.05, 0.95: 1.2, 0.98: 1.5}
MAIN = {"arch": "lenet5", "dataset": "mnist5k"}  # the primaries' setting


def study(name, cells, metrics, definition=None):
    return study_frames(name, definition or S.study_definition(name), cells, metrics)


def rows_of(rows, claim=None, hypothesis=None):
    return [
        r
        for r in rows
        if (claim is None or r.claim == claim) and (hypothesis is None or r.hypothesis == hypothesis)
    ]


def primary(rows, claim):
    (r,) = [r for r in rows if r.claim == claim and r.primary]
    return r


def gates(row) -> dict:
    return {g["gate"]: g for g in json.loads(row.gates)}


# -- definitions --------------------------------------------------------------------------------


def test_alpha_is_the_through_origin_slope_and_beta_times_a_over_a_t():
    rng = np.random.default_rng(0)
    b0, b1 = rng.normal(0, 0.2, 10), rng.normal(0, 0.2, 10)
    slope = np.linalg.lstsq(b0[:, None], b1, rcond=None)[0][0]
    assert it.alpha_slope(b0, b1) == pytest.approx(slope)
    ratios, weights = b1 / b0, b0**2
    assert it.alpha_slope(b0, b1) == pytest.approx(np.sum(weights * ratios) / np.sum(weights))
    recall, acc = np.array([0.5, 0.7, 0.9]), 0.7
    assert it.normalized_balance(recall, acc) == pytest.approx((recall - 0.7) / 0.7)
    assert [it.ratio(s) for s in (0.0, 0.5, 0.75, 0.9, 0.95, 0.98)] == [1, 2, 4, 10, 20, 50]
    assert it.label(0.8, 0.95) == "<" and it.label(1.01, 1.3) == ">" and it.label(0.9, 1.1) == "?"
    # alpha_t = beta_t * A / A_t exactly, cell by cell (balanced accuracies)
    cells, metrics = S.intensification(rng, GRID, seeds=6, drop=0.2, control=1.0, **MAIN)
    table = cell_table(cells, metrics)
    assert len(table) == 6 * 6
    assert np.allclose(
        table["alpha"], table["beta"] * table["dense_balanced"] / table["balanced"], rtol=1e-12
    )


def test_balanced_accuracy_keeps_alpha_on_a_test_split_that_is_not_class_balanced():
    """Top-1 accuracy weighted by unequal class counts must not move alpha (A = mean recall)."""
    weights = np.linspace(0.8, 1.2, 10)
    even = S.intensification(np.random.default_rng(1), GRID, seeds=4, **MAIN)
    uneven = S.intensification(np.random.default_rng(1), GRID, seeds=4, weights=weights, **MAIN)
    a, b = cell_table(*even), cell_table(*uneven)
    assert not np.allclose(a["accuracy"], b["accuracy"])  # the stored top-1 accuracies differ
    assert np.allclose(a["alpha"], b["alpha"]) and np.allclose(a["beta"], b["beta"])


# -- intensification ------------------------------------------------------------------------------


def _intensification(rng, alpha=GRID, control=1.0, **kw):
    parts = [
        S.intensification(
            rng,
            alpha,
            pruners=("global_magnitude", "taylor", "random", "undecayed"),
            pruner_alpha={"undecayed": -0.3, "random": -1.0},
            control=control,
            **MAIN,
            **kw,
        ),
        S.intensification(rng, alpha, pruners=("global_magnitude", "undecayed"), **kw),
        S.intensification(
            rng,
            {s: a + 0.2 for s, a in alpha.items()},
            dataset="mnist1d_hard",
            pruners=("global_magnitude",),
            **kw,
        ),
        S.intensification(rng, {s: a - 0.1 for s, a in alpha.items()}, arch="mlp_512x2", **kw),
    ]
    return pd.concat([p[0] for p in parts], ignore_index=True), pd.concat(
        [p[1] for p in parts], ignore_index=True
    )


def test_planted_intensification_is_reproduced_with_every_number_beside_the_labels():
    cells, metrics = _intensification(np.random.default_rng(3))
    rows = it.analyze(study("intensification", cells, metrics))
    low, high = primary(rows, "deintensification_low_ratio"), primary(rows, "intensification_high_ratio")
    assert low.verdict == "reproduced" and low.ci_low <= 0.92 - 1 <= low.ci_high and low.n == 20
    assert high.verdict == "reproduced" and high.ci_level == pytest.approx(0.99) and high.sesoi == 0.1
    assert low.stability > 0.8 and all(g["passed"] for g in gates(low).values())
    assert set(gates(low)) == {"null control", "convergence", "collapse"}
    details = json.loads(high.details)
    assert details["alpha_1"] == pytest.approx(1.0, abs=0.02) and details["last_epoch_share"] == 0
    assert details["alpha_t"] == pytest.approx(details["beta_t"] * details["a_over_a_t"], rel=0.02)
    up = primary(rows, "up_vs_magnitude")
    assert up.verdict == "reproduced" and up.ci_low <= -0.3 <= up.ci_high
    assert json.loads(up.details)["decided_on"] == "alpha"  # the arms end at the same accuracy
    labels = it.label_table(rows)
    mp = labels[(labels.pruner == "global_magnitude") & (labels.arch == "lenet5")].iloc[0]
    got = mp["labels"].split()
    assert len(got) == 5 and got[0] == "<" and got[2:] == [">", ">", ">"] and mp["t"] == "2 4 10 20 50"
    for col in ("alpha_hat", "beta_hat", "a_over_a_t", "alpha_minus_alpha_1", "last_epoch_share"):
        assert len(mp[col].split(", ")) == 5, col
    assert labels[labels.pruner == "random"]["labels"].iloc[0].split() == ["<"] * 5
    harder = rows_of(rows, "intensification_high_ratio", "harder_task")
    assert harder and all(r.verdict == "reproduced" for r in harder)
    smaller = rows_of(rows, "intensification_high_ratio", "smaller_model")
    assert smaller and all(r.verdict == "reproduced" for r in smaller)
    mp_trend = [
        r
        for r in rows_of(rows, "intensification_high_ratio", "trend")
        if r.pruner == "global_magnitude" and r.arch == "lenet5"
    ]
    assert len(mp_trend) == 4 and all(r.verdict == "reproduced" for r in mp_trend)


def test_fine_tuning_alone_is_not_reproduced_as_intensification():
    """alpha_t = alpha_1 = 1.15 != 1: fine-tuning moves alpha, pruning adds nothing. The paper's
    label (alpha_50 > 1) says '>', the null-controlled primary must not say reproduced."""
    alpha = {0.5: 1.15, 0.98: 1.15}
    cells, metrics = S.intensification(
        np.random.default_rng(4), alpha, seeds=40, noise=0.01, control=1.15, **MAIN
    )
    rows = it.analyze(study("intensification", cells, metrics))
    high = primary(rows, "intensification_high_ratio")
    assert high.verdict == "absent", high.reason
    label50 = next(r for r in rows_of(rows, hypothesis="labels") if r.sparsity == 0.98)
    assert label50.label == ">"  # what the uncontrolled test would have said


def test_missing_null_control_puts_the_primary_out_of_regime():
    cells, metrics = S.intensification(np.random.default_rng(5), GRID, **MAIN)  # no t = 1 cells
    rows = it.analyze(study("intensification", cells, metrics))
    r = primary(rows, "deintensification_low_ratio")
    assert r.verdict == "out of regime" and "null control failed: no t = 1 cells" in r.reason
    assert r.point_verdict in VERDICTS


def test_unconverged_recipe_and_relative_collapse_are_out_of_regime():
    cells, metrics = S.intensification(np.random.default_rng(6), GRID, control=1.0, last_share=0.5, **MAIN)
    r = primary(it.analyze(study("intensification", cells, metrics)), "intensification_high_ratio")
    assert r.verdict == "out of regime" and "convergence failed" in r.reason
    assert (
        not gates(r)["convergence"]["passed"] and "kept their last epoch" in gates(r)["convergence"]["detail"]
    )
    # well above chance (+10 points) but under half of the dense accuracy above chance
    cells, metrics = S.intensification(np.random.default_rng(6), GRID, control=1.0, drop=0.4, **MAIN)
    rows = it.analyze(study("intensification", cells, metrics))
    r = primary(rows, "intensification_high_ratio")
    detail = gates(r)["collapse"]["detail"]
    assert r.verdict == "out of regime" and r.collapsed and "(A_t - chance)/(A - chance)" in detail
    assert float(detail.split("mean A_t ")[1].split(",")[0]) > 0.2  # not within 10 points of chance
    assert it.label_table(rows)["labels"].str.contains("collapsed").all()


def test_up_vs_mp_is_decided_on_beta_when_the_arms_end_at_different_accuracies():
    cells, metrics = S.intensification(
        np.random.default_rng(7), {0.98: 1.5}, seeds=20, pruners=("global_magnitude", "undecayed"),
        pruner_drop={"undecayed": 0.08}, control=1.0, absolute=True, **MAIN,
    )  # fmt: skip
    r = primary(it.analyze(study("intensification", cells, metrics)), "up_vs_magnitude")
    d = json.loads(r.details)
    assert d["decided_on"] == "beta" and d["a_t_difference"][2] < 0  # UP ends lower
    assert "alpha_difference" in d and "beta_difference" in d and "decided on beta" in r.description
    # no UP effect on beta: the alpha difference is the accuracy drop alone (A/A_t), not distortion
    assert d["alpha_difference"][1] > 0 and r.verdict in ("absent", "inconclusive")


# -- per-class damage ------------------------------------------------------------------------------


def test_per_class_damage_is_paired_by_parent_at_the_matched_drop():
    from analysis import per_class

    rng = np.random.default_rng(7)
    cells, metrics = S.intensification(
        rng, {0.5: 1.0, 0.9: 1.0}, class_shift={3: -0.05}, predictions=200, recall_sd=0.06, drop=0.0, **MAIN
    )
    drops = {0.5: 0.01, 0.9: 0.04}  # the 0.9 cells lose about 4 points: Hooker's drop
    for s, drop in drops.items():
        ids = cells[cells.sparsity == s].cell_id
        sel = (
            metrics.cell_id.isin(ids)
            & (metrics.phase == "retrained")
            & metrics.metric.isin(["accuracy", "recall"])
        )
        metrics.loc[sel, "value"] -= drop
    rows = per_class.analyze(study("per_class_damage", cells, metrics))
    r = primary(rows, "per_class_damage")
    assert r.sparsity == 0.9 and r.test == "paired_classes"
    assert r.verdict == "reproduced" and r.estimate < 0 and r.label.startswith("1/")
    assert "PIE fraction" in r.description and "0 helped, 1 hurt" in r.description
    welch = next(x for x in rows_of(rows, hypothesis="classes_changed_welch") if x.sparsity == 0.9)
    assert welch.ci_high - welch.ci_low > 2 * (r.ci_high - r.ci_low)  # unpaired: the parents' spread stays
    cells, metrics = S.intensification(
        rng, {0.9: 1.0}, noise=0.005, seeds=40, predictions=200, drop=0.0, **MAIN
    )
    null = primary(per_class.analyze(study("per_class_damage", cells, metrics)), "per_class_damage")
    assert null.verdict == "absent" and null.label == "0/10"  # every class within +-2 points


# -- generalization-stability ----------------------------------------------------------------------


def test_stability_correlation_noise_injection_and_their_gates():
    from analysis import generalization_stability as gs

    rng = np.random.default_rng(8)
    cells, metrics = S.stability(rng, r=-0.7, noise_gain=0.02)
    rows = gs.analyze(study("stability", cells, metrics))
    corr = primary(rows, "generalization_stability")
    assert corr.verdict == "reproduced" and corr.test == "pearson_blocked" and corr.n == 60
    assert gates(corr)["fit"]["passed"] and gates(corr)["positive control"]["passed"]
    d = json.loads(corr.details)
    assert d["raw_r"][0] < 0 and d["run_stability_min"] < d["run_stability_max"]
    assert d["authors_run_stability"] == [97.0, 99.7]
    assert {r.pruner for r in rows_of(rows, hypothesis="stability_vs_generalization_by_rate")} == {
        "every=1",
        "every=4",
    }
    noise = primary(rows, "noise_injection")
    assert noise.verdict == "reproduced" and noise.estimate == pytest.approx(0.02, abs=0.005)
    members = [r for r in rows_of(rows, "noise_injection", "noise_minus_baseline") if not r.primary]
    assert {r.pruner for r in members} == {"noise_zero:none", "noise_gauss:none"}
    assert {r.pruner for r in rows_of(rows, hypothesis="noise_equivalent_to_prune_l")} == {
        "noise_zero:prune_l",
        "noise_gauss:prune_l",
    }
    # the premise fails: Prune_L does not beat the baseline
    cells, metrics = S.stability(rng, r=-0.7, noise_gain=0.02, prune_gain=0.0)
    rows = gs.analyze(study("stability", cells, metrics))
    for claim in ("generalization_stability", "noise_injection"):
        r = primary(rows, claim)
        assert r.verdict == "out of regime" and "positive control failed: Prune_L - baseline" in r.reason
    cells, metrics = S.stability(rng, r=0.0, fit=0.95)
    r = primary(gs.analyze(study("stability", cells, metrics)), "generalization_stability")
    assert r.verdict == "out of regime" and "fit failed" in r.reason


def test_noise_injection_pooled_only_by_intersection_union():
    from analysis import generalization_stability as gs

    cells, metrics = S.stability(
        np.random.default_rng(9), r=0.0, noise_gain={"noise_zero": 0.02, "noise_gauss": 0.0}
    )
    rows = gs.analyze(study("stability", cells, metrics))
    pooled = primary(rows, "noise_injection")
    assert pooled.point_verdict != "reproduced" and "not reproduced: noise_gauss" in pooled.description
    by = {
        r.pruner: r.verdict for r in rows_of(rows, "noise_injection", "noise_minus_baseline") if not r.primary
    }
    assert by["noise_zero:none"] == "reproduced" and by["noise_gauss:none"] != "reproduced"


# -- prune potential and mask sanity ----------------------------------------------------------------


def test_prune_potential_gap_and_censoring():
    from analysis import potential

    cells, metrics = S.potential(np.random.default_rng(9), gap_drop=0.2)
    rows = potential.analyze(study("prune_potential", cells, metrics))
    r = primary(rows, "prune_potential")
    assert r.verdict == "reproduced" and r.estimate > 0.1
    d = json.loads(r.details)
    assert d["clean_at_cap"] == 1.0 and d["grid_cap"] == 0.95 and 0 <= d["shifted_at_zero"] < 1
    assert "censored: clean at the grid's cap 1.00" in r.description
    assert potential.prune_potential([0.8, 0.9, 0.95], [0.1, 0.104, 0.2], 0.1) == 0.9
    assert potential.prune_potential([0.8], [0.2], 0.1) == 0.0
    excess = rows_of(rows, "prune_potential", "excess_error_0.9")
    assert excess and all(e.estimate > 0 for e in excess)


def test_mask_sanity_per_member_with_the_positive_control():
    from analysis import mask_sanity

    effects = {"snip": 0.0, "grasp": 0.001, "synflow": -0.001, "global_magnitude": -0.05}
    cells, metrics = S.mask_controls(np.random.default_rng(10), effects)
    rows = mask_sanity.analyze(study("mask_sanity", cells, metrics))
    r = primary(rows, "mask_sanity")
    assert r.verdict == "reproduced" and r.n == 10 and r.pruner == "snip+grasp+synflow"
    assert gates(r)["positive control"]["passed"]
    members = [x for x in rows_of(rows, "mask_sanity", "at_init_shuffle_keeps_accuracy") if not x.primary]
    assert sorted(x.pruner for x in members) == ["grasp", "snip", "synflow"]
    column = mask_column(rows)
    assert column["global_magnitude"] == "mask > densities" and column["snip"] == "= densities"
    # carried by one member: GraSP gains, SNIP loses 3 points: no pooled "reproduced"
    effects = {"snip": -0.03, "grasp": 0.06, "synflow": 0.0, "global_magnitude": -0.05}
    rows = mask_sanity.analyze(study("mask_sanity", *S.mask_controls(np.random.default_rng(11), effects)))
    r = primary(rows, "mask_sanity")
    assert r.verdict == "contradicted" and "snip" in r.reason and r.pruner == "snip+grasp+synflow"
    # the positive control loses less than the margin: out of regime
    effects = {"snip": 0.0, "grasp": 0.0, "synflow": 0.0, "global_magnitude": -0.005}
    r = primary(
        mask_sanity.analyze(study("mask_sanity", *S.mask_controls(np.random.default_rng(12), effects))),
        "mask_sanity",
    )
    assert r.verdict == "out of regime" and "positive control failed: global_magnitude" in r.reason


# -- the whole table ----------------------------------------------------------------------------------


def test_run_analysis_writes_primary_verdicts_and_is_byte_identical_on_rerun(tmp_path):
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
    first = (tmp_path / "claims" / "primary.json").read_bytes()
    again, _primaries_again = run_analysis(tmp_path)
    assert (tmp_path / "claims" / "primary.json").read_bytes() == first
    pd.testing.assert_frame_equal(table, again)
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
        for k in ("n", "estimate", "ci_low", "ci_high", "sesoi", "power", "stability", "gates", "reason"):
            assert p[k] is not None, (p["claim"], k)
        assert p["gates"] and all(g["passed"] for g in p["gates"])
    text = render_primary(primaries)
    assert text.count("\n- ") == 5 and "SESOI" in text and "bootstrap stability" in text
    assert "gates: null control pass (t = 1 control on 20 of 20 parents" in text
    assert "positive control pass (Prune_L - baseline" in text
    labels = pd.read_parquet(tmp_path / "claims" / "labels.parquet")
    assert {"labels", "alpha_hat", "beta_hat", "a_over_a_t", "alpha_1", "last_epoch_share"} <= set(
        labels.columns
    )
    secondary = table[~table["primary"] & table["p"].notna()]
    assert secondary["q"].notna().all() and (secondary["q"] >= secondary["p"] - 1e-12).all()
    no_control = table[(table["hypothesis"] == "alpha_minus_control") & (table["arch"] != "lenet5")]
    assert len(no_control) and (no_control["verdict"] == "out of regime").all()  # mlp: no t = 1 cells
    assert set(table["verdict"]) <= set(VERDICTS)


def test_every_study_file_declares_one_primary_with_its_sesoi():
    from benchmarks.designs import load_study, study_names

    for name in study_names():
        s = load_study(name)
        for claim in claims(s.definition, name):
            assert sum(h.primary for h in claim.hypotheses) == 1
            p = claim.primary
            assert (p.effect is not None or p.margin) and p.smallest_effect > 0, (name, claim.id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regime": {"max_last_share": 0.2}}, "regime.max_last_share: unknown key; valid:"),
        ({"regime": {"min_stability": 1.5}}, "regime.min_stability: 1.5 is not a number in (0, 1]"),
        ({"drop_sesoi": True}, "sesoi: missing; a primary hypothesis states its smallest effect"),
        ({"sesoi": -0.1}, "sesoi: -0.1 is not a positive number"),
    ],
)
def test_bad_regime_or_sesoi_names_the_key(change, message):
    d = S.study_definition("intensification")
    h = d["claim"][0]["hypothesis"][0]
    if change.pop("drop_sesoi", False):
        del h["sesoi"]
    if "sesoi" in change:
        h["sesoi"] = change.pop("sesoi")
    d.update(change)
    with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        claims(d, "intensification")


def test_analyze_studies_with_no_studies_is_empty():
    table, primaries = analyze_studies([])
    assert table.empty and primaries == []


def test_a_study_without_cells_of_its_primary_scope_says_so():
    cells, metrics = S.intensification(np.random.default_rng(13), GRID, seeds=4)  # mlp only
    _, primaries = analyze_studies([study("intensification", cells, metrics)])
    p = {x["claim"]: x for x in primaries}["deintensification_low_ratio"]
    assert p["verdict"] == "out of regime" and p["reason"].startswith("not tested: no cells")


def test_a_second_disjoint_seed_block_leaves_every_settled_verdict_unchanged(tmp_path):
    """The same studies on two blocks of seeds (two generator states): compare-verdicts agrees."""
    from analysis.compare import compare_primaries

    primaries = []
    for block in (0, 1):
        rng = np.random.default_rng(1000 + block)
        cells, metrics = S.intensification(
            rng, GRID, seeds=20, pruners=("global_magnitude", "undecayed"), pruner_alpha={"undecayed": -0.3},
            control=1.0, **MAIN,
        )  # fmt: skip
        st_cells, st_metrics = S.stability(rng, r=-0.6, noise_gain={"noise_zero": 0.02, "noise_gauss": 0.0})
        root = S.write_store(
            tmp_path / f"block{block}",
            {
                "intensification": (S.study_definition("intensification"), cells, metrics),
                "stability": (S.study_definition("stability"), st_cells, st_metrics),
            },
            per_cell=False,
        )
        primaries.append(run_analysis(root)[1])
    rows = compare_primaries(*primaries)
    assert len(rows) == 5 and not [r for r in rows if r["status"] == "differ"], rows
    assert sum(r["status"] == "agree" and r["verdict"] != "unsettled" for r in rows) >= 3
