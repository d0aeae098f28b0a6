"""The claims table end to end on synthetic stores with planted effects, plus hand-computed cases.

``synth_prune`` / ``synth_stability`` build tidy ``cells`` / ``metrics`` frames with the
results schema; the simulation tests (``test_claims_simulation.py``) reuse them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import CLAIM_IDS, COLUMNS, VERDICTS, render_summary, run_analysis, verdict_summary
from analysis import generalization_stability as gs
from analysis import intensification as it
from analysis import per_class as pc
from analysis import potential as pot
from analysis.claims import analyze_frames


def _m(cid, phase, eval_set, metric, value, cls=None, kind="clean", severity=0, step=None):
    return {
        "cell_id": cid,
        "phase": phase,
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": metric,
        "class": cls,
        "step": step,
        "value": float(value),
    }


def synth_prune(
    rng: np.random.Generator,
    *,
    seeds: int = 8,
    b: float = 0.0,
    noise: float = 0.05,
    pruners=("global_magnitude",),
    archs=("mlp_256x2",),
    datasets=("mnist1d",),
    sparsities=(0.9,),
    retrain=("finetune",),
    classes: int = 10,
    class_shift: dict | None = None,
    recipe_gain: float = 0.0,
    shift_sets=(),
    excess: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A prune-study store whose distortion is ``d_k = b (rho_k - 1) + e_k - mean(e)``.

    Dense recall of class k for a seed: a class difficulty shared by the seeds plus N(0, 0.02).
    ``class_shift`` adds ``{class: delta}`` to pruned recalls (Hooker); ``recipe_gain`` to
    the accuracy of recipes other than finetune; shifted sets lose ``0.1`` accuracy dense and
    ``0.1 + excess * sparsity`` pruned.
    """
    cells, rows = [], []
    for ai, arch in enumerate(archs):
        for ds in datasets:
            base = rng.uniform(0.65, 0.95, classes)  # class difficulty, shared by the seeds
            for seed in range(seeds):
                parent = f"p{arch}{ds}{seed}"
                r = np.clip(base + rng.normal(0, 0.02, classes), 0, 1)
                acc = r.mean()
                params = 1e5 * (ai + 1)
                for pr in pruners:
                    for sp in sparsities:
                        e = rng.normal(0, noise, classes)
                        rho = r / acc
                        rho_p = rho + b * (rho - 1) + e - e.mean()
                        acc_p0 = acc - 0.05 * sp + rng.normal(0, 0.01)
                        for rt in retrain:
                            cid = f"c{len(cells):06d}"
                            acc_p = acc_p0 + (recipe_gain if rt != "finetune" else 0.0) + rng.normal(0, 0.002)
                            rp = rho_p * acc_p
                            if class_shift:
                                for k, v in class_shift.items():
                                    rp[k] += v
                            cells.append(
                                {
                                    "cell_id": cid,
                                    "parent_id": parent,
                                    "study": "prune",
                                    "arch": arch,
                                    "dataset": ds,
                                    "pruner": pr,
                                    "sparsity": sp,
                                    "seed": seed,
                                    "retrain": rt,
                                    "status": "ok",
                                }
                            )
                            rows += [
                                _m(cid, "dense", "test", "accuracy", acc),
                                _m(cid, "retrained", "test", "accuracy", acc_p),
                                _m(cid, "dense", "model", "params_total", params, kind="model"),
                            ]
                            rows += [_m(cid, "dense", "test", "recall", r[k], k) for k in range(classes)]
                            rows += [_m(cid, "retrained", "test", "recall", rp[k], k) for k in range(classes)]
                            for s in shift_sets:
                                for sev in (1, 2):
                                    rows.append(
                                        _m(
                                            cid,
                                            "dense",
                                            s,
                                            "accuracy",
                                            acc - 0.1,
                                            kind="corruption",
                                            severity=sev,
                                        )
                                    )
                                    rows.append(
                                        _m(
                                            cid,
                                            "retrained",
                                            s,
                                            "accuracy",
                                            acc_p - 0.1 - excess * sp + rng.normal(0, 0.005),
                                            kind="corruption",
                                            severity=sev,
                                        )
                                    )
    return pd.DataFrame(cells), pd.DataFrame(rows)


def synth_stability(
    rng: np.random.Generator,
    *,
    seeds: int = 10,
    slope: float = 0.0,
    noise: float = 0.01,
    variants=("permanent",),
    noise_gain: float = 0.0,
    l_gain: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stability runs (final summary rows only): ``best_acc = 0.8 + slope (S - 95) + noise``."""
    cells, rows = [], []
    for seed in range(seeds):
        for tg in ("prune_s", "prune_l", "prune_r", "none"):
            for sch in ("many_small", "few_large"):
                for var in variants if tg != "none" else ("none",):
                    if tg == "none" and sch != "many_small":
                        continue
                    cid = f"s{len(cells):06d}"
                    stab = 100.0 if tg == "none" else 95 + rng.normal(0, 2)
                    acc = 0.8 + slope * (stab - 95) + rng.normal(0, noise)
                    acc += noise_gain if var.startswith("noise") else 0.0
                    acc += l_gain if tg == "prune_l" else 0.0
                    spec = {
                        "target": tg,
                        "score": "l2" if tg != "none" else "none",
                        "schedule": sch if tg != "none" else "none",
                        "variant": var,
                    }
                    cells.append(
                        {
                            "cell_id": cid,
                            "study": "stability",
                            "arch": "mlp_256x2",
                            "dataset": "mnist1d",
                            "seed": seed,
                            "status": "ok",
                            "spec_json": json.dumps(spec),
                        }
                    )
                    rows += [
                        _m(cid, "final", "test", "stability", stab),
                        _m(cid, "final", "test", "best_test_accuracy", acc),
                        _m(cid, "final", "test", "generalization_gap", 0.1 - (acc - 0.8)),
                    ]
    return pd.DataFrame(cells), pd.DataFrame(rows)


def write_store(root, cells: pd.DataFrame, metrics: pd.DataFrame) -> None:
    (root / "cells").mkdir(parents=True)
    (root / "metrics").mkdir(parents=True)
    for cid, g in metrics.groupby("cell_id"):
        pq.write_table(pa.Table.from_pandas(g.reset_index(drop=True)), root / "metrics" / f"{cid}.parquet")
    for _, c in cells.iterrows():
        pq.write_table(
            pa.Table.from_pandas(c.to_frame().T.reset_index(drop=True)),
            root / "cells" / f"{c['cell_id']}.parquet",
        )


# -- definitions by hand ------------------------------------------------------------------------


def test_intensification_definitions_by_hand():
    rho = it.normalized_recall([0.9, 0.7], 0.8)
    rho_p = it.normalized_recall([0.95, 0.55], 0.75)
    assert rho == pytest.approx([1.125, 0.875])
    d = it.distortion(rho, rho_p)
    assert d == pytest.approx([0.95 / 0.75 - 1.125, 0.55 / 0.75 - 0.875])
    assert list(it.is_intensified(d, rho)) == [True, True]
    assert it.intensification_ratio(d, rho) == 1.0
    assert it.distortion_slope(d, rho) == pytest.approx((d[0] - d[1]) / 0.25)
    # a class at rho = 1 is left out of alpha; d = 0 is not intensified
    assert it.intensification_ratio([0.1, 0.0, -0.2], [1.0, 1.1, 1.2]) == 0.0
    assert it.intensification_ratio([0.1, 0.3], [1.0, 1.0]) != it.intensification_ratio(
        [0.1, 0.3], [1.0, 1.0]
    )


def test_prune_potential_and_excess_error_by_hand():
    s = [0.5, 0.8, 0.9, 0.95]
    assert pot.prune_potential(s, [0.100, 0.104, 0.108, 0.2], 0.1) == 0.8
    assert pot.prune_potential(s, [0.2, 0.2, 0.2, 0.2], 0.1) == 0.0
    assert pot.prune_potential(s, [0.2, 0.104, 0.3, 0.2], 0.1) == 0.8  # the largest that qualifies
    assert pot.excess_error(0.30, 0.10, 0.20, 0.08) == pytest.approx(0.08)


def test_stability_definitions_by_hand():
    assert gs.instability(0.8, 0.6) == pytest.approx(0.25)
    assert gs.event_stability(0.8, 0.6) == pytest.approx(75.0)
    assert gs.run_stability([0.8, 0.5], [0.6, 0.5]) == pytest.approx(87.5)
    assert gs.run_stability([], []) == 100.0
    best, gap = gs.generalization([0, 1, 2, 3], [0.7, 0.9, 0.95, 0.99], [0.72, 0.85, 0.8, 0.84], 2)
    assert (best, gap) == pytest.approx((0.84, 0.15))


def test_per_class_welch_definition():
    x0, xp = pc.class_shift_samples([0.9, 0.92, 0.88], [0.9, 0.9, 0.9], [0.7, 0.72, 0.69], [0.85, 0.86, 0.84])
    assert x0 == pytest.approx([0.0, 0.02, -0.02])
    assert xp == pytest.approx([-0.15, -0.13, -0.16])
    res = pc.welch_class_test(x0, xp)
    assert res.estimate == pytest.approx(xp.mean() - x0.mean()) and res.p < 0.01
    assert pc.simes_p([0.01, 0.04, 0.5]) == pytest.approx(0.03)


# -- the whole table on a synthetic store -----------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = np.random.default_rng(7)
    cells, metrics = synth_prune(
        rng,
        seeds=6,
        b=0.6,
        noise=0.03,
        pruners=("global_magnitude", "undecayed"),
        archs=("mlp_256x2", "cnn_32x3"),
        datasets=("mnist1d",),
        sparsities=(0.5, 0.9),
        retrain=("finetune", "lr_rewind"),
        class_shift={0: -0.3},
        recipe_gain=0.02,
        shift_sets=("gaussian_noise",),
        excess=0.05,
    )
    sc, sm = synth_stability(rng, slope=-0.01, variants=("permanent", "noise_zero"), l_gain=0.05)
    root = tmp_path_factory.mktemp("store")
    write_store(root, pd.concat([cells, sc], ignore_index=True), pd.concat([metrics, sm], ignore_index=True))
    return root, run_analysis(root)


def test_claims_table_files_and_columns(planted):
    root, table = planted
    assert list(table.columns) == COLUMNS
    assert set(table["verdict"]) <= set(VERDICTS)
    assert set(table["claim"]) == set(CLAIM_IDS)
    back = pd.read_parquet(root / "claims" / "claims.parquet")
    pd.testing.assert_frame_equal(back, table)
    js = json.loads((root / "claims" / "claims.json").read_text())
    assert len(js) == len(table) and set(js[0]) == set(COLUMNS)
    assert not list((root / "claims").glob(".tmp-*"))
    assert (root / "claims" / "per_class.parquet").exists()
    ok = table[table["test"] != "missing_input"]
    assert (ok["n"] > 0).all()
    for claim, g in table.groupby("claim"):  # q is BH within each claim
        p = g["p"].to_numpy(float)
        if np.isfinite(p).any():
            from analysis.stats import bh

            assert np.allclose(g["q"].to_numpy(float), bh(p), equal_nan=True), claim


def test_filtered_load_gives_the_same_table(planted):
    """``run_analysis`` reads only the metric rows the claims use; the full store gives the same table."""
    from analysis.load import claim_rows, load_claim_results, load_results

    root, table = planted
    cells, metrics = load_results(root)
    full, _ = analyze_frames(cells, metrics)
    pd.testing.assert_frame_equal(full, table)
    c2, m2 = load_claim_results(root)
    pd.testing.assert_frame_equal(c2, cells)
    expected = claim_rows(cells, metrics)

    def nulls_as_none(df):  # an all-null column reads as None or NaN depending on the reader
        return df.astype(object).where(df.notna(), None)

    pd.testing.assert_frame_equal(nulls_as_none(m2), nulls_as_none(expected))


def test_planted_effects_are_found(planted):
    _, t = planted

    def v(claim, **kw):
        g = t[t.claim == claim]
        for k, val in kw.items():
            g = g[g[k] == val] if val is not None else g[g[k].isna()]
        return g

    assert (v("intensification", test="ols_cluster[d~rho-1]")["verdict"] == "supported").all()
    assert (v("intensification", test="t_one_sample[b]")["verdict"] == "supported").all()
    sup = v("intensification", test="t_one_sample[b]")
    assert ((sup.ci_low < 0.6) & (sup.ci_high > 0.6)).mean() >= 0.5  # planted slope inside most CIs
    assert (v("per_class_damage")["verdict"] == "supported").all()
    assert (v("retrain_recipe", test="wilcoxon[lr_rewind-finetune]")["verdict"] == "supported").all()
    assert (v("excess_error", test="t_one_sample[excess]", arch=None)["verdict"] == "supported").all()
    assert (v("stability_accuracy")["verdict"] == "supported").all()
    assert (v("prune_l_vs_prune_s", test="t_student[prune_l-prune_s]")["verdict"] == "supported").all()
    # UP and magnitude are planted equal: no contradiction / support beyond chance
    assert (v("up_vs_magnitude")["verdict"] == "inconclusive").all()
    assert (v("noise_vs_permanent", test="t_paired[noise_zero-permanent]")["verdict"] == "inconclusive").all()


def test_summary_and_rendering(planted):
    _, t = planted
    s = verdict_summary(t)
    assert list(s["claim"]) == list(CLAIM_IDS)
    row = s.set_index("claim").loc["per_class_damage"]
    assert row["overall"] == f"supported in {row['supported']} of {row['rows']}" and row["supported"] > 0
    assert row["contradicted"] == 0
    text = render_summary(t)
    assert "intensification" in text and "overall" in text
    md = render_summary(t, markdown=True)
    assert md.startswith("| claim |") and md.count("\n") == len(CLAIM_IDS) + 1


def test_missing_inputs_are_skipped_not_crashed(tmp_path):
    rng = np.random.default_rng(0)
    cells, metrics = synth_prune(rng, seeds=3)  # one pruner, one recipe, no shift, no stability study
    table, _ = analyze_frames(cells, metrics)
    missing = set(table[table.test == "missing_input"]["claim"])
    assert {
        "up_vs_magnitude",
        "stability_accuracy",
        "noise_vs_permanent",
        "excess_error",
        "retrain_recipe",
    } <= missing
    assert set(table["claim"]) == set(CLAIM_IDS)
    empty, _ = analyze_frames(cells.iloc[:0], metrics.iloc[:0])
    assert set(empty["claim"]) == set(CLAIM_IDS) and (empty["test"] == "missing_input").all()
    out = run_analysis(tmp_path)  # an empty results dir
    assert (tmp_path / "claims" / "claims.parquet").exists() and len(out) == len(CLAIM_IDS)


def test_real_stability_rows_feed_the_analysis():
    """Rows from benchmarks.stability (events + epochs) give the run table the analysis uses."""
    from dataclasses import replace

    import torch

    from benchmarks import stability as st

    torch.set_num_threads(1)
    spec = st.StabilitySpec(
        "mlp_256x2",
        "digits",
        0,
        "prune_l",
        "l2",
        "few_large",
        "permanent",
        0.5,
        replace(st.STABILITY_TRAIN, epochs=6),
    )
    rows = st.run_stability(spec)
    cid = spec.cell_id()
    cells = pd.DataFrame(
        [
            {
                "cell_id": cid,
                "study": "stability",
                "arch": spec.arch,
                "dataset": spec.dataset,
                "seed": 0,
                "status": "ok",
                "spec_json": json.dumps(spec.to_dict()),
            }
        ]
    )
    metrics = pd.DataFrame([{"cell_id": cid, **r} for r in rows])
    runs = gs.run_table(cells, metrics)
    fin = {
        r["metric"]: r["value"]
        for r in rows
        if r["phase"] == "final" and r["eval_set"] == "test" and r["class"] is None
    }
    assert runs.loc[0, "stability"] == pytest.approx(fin["stability"])
    assert runs.loc[0, "best_acc"] == pytest.approx(fin["best_test_accuracy"])
    assert runs.loc[0, "gap"] == pytest.approx(fin["generalization_gap"])
    assert runs.loc[0, "target"] == "prune_l" and not math.isnan(runs.loc[0, "stability"])
