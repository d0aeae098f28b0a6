"""Prune potential and excess error per test distribution (Liebenwein, Baykal, Carter, Gifford
& Rus, "Lost in Pruning: The Effects of Pruning Neural Networks beyond Test Accuracy",
MLSys 2021).

For a pruner, a (dense parent, retraining recipe) and a test distribution ``D'``
(``shared/design/claims.md`` section 4), with errors as fractions (``DELTA = 0.005`` is 0.5
points of top-1 error) and ``D`` the clean test set:

- prune potential ``P(D') = max {s : err(pruned_s, D') <= err(dense, D') + DELTA}``, 0 if
  no sparsity qualifies (the pruned model is the retrained one);
- excess error ``e = [err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]``.

Test distributions: ``test`` (clean) and every other evaluation set with an ``accuracy`` row
(corruption types, shifted / OOD sets that have labels). **Choice**: a corruption type's
error is the mean over its severities (claims.md section 5, "corruption error for one
type"), so each corruption type is one ``eval_set``; ``corruption_mean`` is the mean over
all corruption types and severities (the mCE-style aggregate).

Rows: ``prune_potential`` - descriptive mean potential on the clean test set, then per shifted
set ``P(D') - P(D)`` paired by seed (t; pooled over (arch, dataset) parents also Wilcoxon),
claimed -; ``excess_error`` per (pruner, arch, dataset, eval_set, sparsity) over seeds (t)
and pooled over parents (t, Wilcoxon), claimed +. Recipes are averaged per seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import group_positions, prune_cells
from analysis.stats import one_sample_t_many, wilcoxon_signed_rank
from analysis.table import make_row, missing_row

DELTA = 0.005
CLEAN = "test"
CORRUPTION_MEAN = "corruption_mean"
SKIP_SETS = {"train", "val", "model"}


def prune_potential(sparsities, err_pruned, err_dense: float, delta: float = DELTA) -> float:
    """Largest sparsity with ``err_pruned <= err_dense + delta``; 0 when none qualifies."""
    s, e = np.asarray(sparsities, float), np.asarray(err_pruned, float)
    ok = np.isfinite(e) & (e <= err_dense + delta + 1e-12)
    return float(s[ok].max()) if ok.any() else 0.0


def excess_error(err_pruned_shift, err_pruned_clean, err_dense_shift, err_dense_clean):
    """``[err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]``."""
    return (np.asarray(err_pruned_shift, float) - np.asarray(err_pruned_clean, float)) - (
        np.asarray(err_dense_shift, float) - np.asarray(err_dense_clean, float)
    )


def set_errors(metrics: pd.DataFrame, phase: str) -> pd.DataFrame:
    """``cell_id x eval_set`` top-1 error, severities averaged, plus ``corruption_mean``."""
    rows = metrics[(metrics.phase == phase) & (metrics.metric == "accuracy") & metrics["class"].isna()]
    rows = rows[~rows.eval_set.isin(SKIP_SETS)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(err=1.0 - rows["value"])
    out = rows.groupby(["cell_id", "eval_set"])["err"].mean().unstack()
    corr = rows[rows["kind"] == "corruption"]
    if not corr.empty:
        out[CORRUPTION_MEAN] = corr.groupby("cell_id")["err"].mean()
    return out


def long_errors(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, eval_set): dense/pruned errors on D' and on the clean set, scope."""
    pc = prune_cells(cells)
    e0, e1 = set_errors(metrics, "dense"), set_errors(metrics, "retrained")
    if pc.empty or e0.empty or e1.empty or CLEAN not in e0 or CLEAN not in e1:
        return pd.DataFrame()
    sets = [s for s in e0.columns if s in e1.columns]
    recs = []
    for s in sets:
        part = pd.DataFrame(
            {"err_d": e0[s], "err_p": e1[s], "err_d_clean": e0[CLEAN], "err_p_clean": e1[CLEAN]}
        )
        part = part.dropna().reset_index().rename(columns={"index": "cell_id"})
        part["eval_set"] = s
        recs.append(part)
    long = pd.concat(recs, ignore_index=True)
    scope = pc[["cell_id", "parent_id", "arch", "dataset", "pruner", "sparsity", "seed", "retrain"]]
    return long.merge(scope, on="cell_id")


def potentials(long: pd.DataFrame, per_recipe: bool = False, delta: float = DELTA) -> pd.DataFrame:
    """Prune potential per (pruner, arch, dataset, eval_set, seed), averaged over recipes
    (``per_recipe``: one row per recipe too, with a ``retrain`` column, not averaged).

    ``prune_potential`` of each group, vectorised: the dense error is the group's mean ``err_d``."""
    keys = ["pruner", "arch", "dataset", "eval_set", "seed", "parent_id", "retrain"]
    if long.empty:
        pp = pd.DataFrame({c: [] for c in [*keys, "potential"]})
        return pp if per_recipe else pp.drop(columns="retrain")
    grouped = long.groupby(keys, sort=True)
    err_d = grouped["err_d"].transform("mean").to_numpy(float)
    e = long["err_p"].to_numpy(float)
    ok = np.isfinite(e) & (e <= err_d + delta + 1e-12)
    s_ok = np.where(ok, long["sparsity"].to_numpy(float), -np.inf)
    pp = pd.Series(s_ok, index=long.index).groupby([long[k] for k in keys], sort=True).max()
    pp = pp.where(np.isfinite(pp), 0.0).astype(float).rename("potential").reset_index()
    return pp if per_recipe else pp.groupby(keys[:-1], as_index=False)["potential"].mean()


def cell_excess(long: pd.DataFrame, shifted: list[str] | None = None) -> pd.DataFrame:
    """``long`` restricted to the shifted sets (all but the clean one unless ``shifted`` names
    them), with the cell's ``excess`` error on each."""
    sets = [s for s in long["eval_set"].unique() if s != CLEAN] if shifted is None else shifted
    ex = long[long["eval_set"].isin(sets)].copy()
    ex["excess"] = excess_error(ex["err_p"], ex["err_p_clean"], ex["err_d"], ex["err_d_clean"])
    return ex


def _rows(pending: list[tuple[str, str, np.ndarray, dict]]) -> list[dict]:
    """Rows of ``(claim, test, sample, make_row kwargs)``: Wilcoxon for ``wilcoxon[...]`` tests,
    else the one-sample t, all t tests in one vectorised batch."""
    t_idx = [i for i, p in enumerate(pending) if not p[1].startswith("wilcoxon")]
    t_res = dict(zip(t_idx, one_sample_t_many([pending[i][2] for i in t_idx]), strict=True))
    return [
        make_row(claim, test, t_res[i] if i in t_res else wilcoxon_signed_rank(x), **kw)
        for i, (claim, test, x, kw) in enumerate(pending)
    ]


def analyze(cells: pd.DataFrame, metrics: pd.DataFrame) -> list[dict]:
    long = long_errors(cells, metrics)
    if long.empty:
        return [
            missing_row(c, "no clean test accuracy for dense and retrained phases")
            for c in ("prune_potential", "excess_error")
        ]
    pp = potentials(long)
    shifted = sorted(set(pp.eval_set) - {CLEAN})
    clean = pp[pp.eval_set == CLEAN]
    pending: list[tuple[str, str, np.ndarray, dict]] = []
    cv = clean["potential"].to_numpy(float)
    for (pr, ar, ds), idx in group_positions(clean, ["pruner", "arch", "dataset"]):
        kw = {"direction": None, "eval_set": CLEAN, "pruner": pr, "arch": ar, "dataset": ds}
        kw["description"] = f"mean prune potential on the clean test set (delta {DELTA * 100:g} points)"
        pending.append(("prune_potential", "mean[prune_potential]", cv[idx], kw))
    if not shifted:
        why = "no shifted evaluation sets (corruption/OOD accuracy rows) in the results"
        return [*_rows(pending), missing_row("prune_potential", why), missing_row("excess_error", why)]

    wide = pp.pivot_table(
        index=["pruner", "arch", "dataset", "seed", "parent_id"], columns="eval_set", values="potential"
    ).reset_index()
    for s in shifted:
        if s not in wide:
            continue
        wide_s = wide.dropna(subset=[s, CLEAN])
        diff = (wide_s[s] - wide_s[CLEAN]).to_numpy(float)
        desc = f"prune potential on {s} - on clean test, paired by seed"
        for (pr, ar, ds), idx in group_positions(wide_s, ["pruner", "arch", "dataset"]):
            kw = {"direction": -1, "description": desc, "eval_set": s}
            kw |= {"pruner": pr, "arch": ar, "dataset": ds}
            pending.append(("prune_potential", "t_paired[shift-clean]", diff[idx], kw))
        parents = (wide_s["arch"].astype(str) + "\0" + wide_s["dataset"].astype(str)).to_numpy()
        for pr, idx in group_positions(wide_s, "pruner"):
            if len(set(parents[idx])) < 2:
                continue
            kw = {"direction": -1, "description": desc + " (pooled over arch, dataset)", "eval_set": s}
            for test in ("t_paired[shift-clean]", "wilcoxon[shift-clean]"):
                pending.append(("prune_potential", test, diff[idx], {**kw, "pruner": pr}))

    seed_keys = ["pruner", "arch", "dataset", "eval_set", "sparsity", "seed", "parent_id"]
    ex = cell_excess(long, shifted).groupby(seed_keys, as_index=False)["excess"].mean()
    xv = ex["excess"].to_numpy(float)
    desc = "excess error (fraction; x100 = points) of the retrained model on the shifted set"
    scope = ["pruner", "arch", "dataset", "eval_set", "sparsity"]
    for (pr, ar, ds, s, sp), idx in group_positions(ex, scope):
        kw = {"direction": +1, "description": desc + ", over seeds"}
        kw |= {"pruner": pr, "arch": ar, "dataset": ds, "eval_set": s, "sparsity": sp}
        pending.append(("excess_error", "t_one_sample[excess]", xv[idx], kw))
    parents = (ex["arch"].astype(str) + "\0" + ex["dataset"].astype(str)).to_numpy()
    for (pr, s, sp), idx in group_positions(ex, ["pruner", "eval_set", "sparsity"]):
        if len(set(parents[idx])) < 2:
            continue
        kw = {"direction": +1, "description": desc + ", pooled over (arch, dataset) parents"}
        kw |= {"pruner": pr, "eval_set": s, "sparsity": sp}
        for test in ("t_one_sample[excess]", "wilcoxon[excess]"):
            pending.append(("excess_error", test, xv[idx], kw))
    return _rows(pending)
