"""Intensification of recall distortion (Good, Lin, Yu, Sieg, Ferraro, Pfister & Tolias,
"Recall Distortion in Neural Network Pruning and the Undecayed Pruning Algorithm", NeurIPS 2022).

*Reconstructed* (``shared/design/claims.md`` section 1: from the abstract and the authors'
public analysis code; the paper's own wording could not be checked). Per class ``k`` of a
cell, with ``r_k`` recall and ``acc`` accuracy on the clean test set, unprimed the dense
parent, primed the pruned-and-retrained model (phase ``retrained``):

- normalised recall ``rho_k = r_k / acc``, ``rho_k' = r_k' / acc'``
- distortion ``d_k = rho_k' - rho_k``. **Sign convention**: positive ``d_k`` means the class's
  normalised recall went *up*. (The authors' code stores ``(r_k - acc)/acc - (r_k' - acc')/acc'
  = -d_k``.)
- class ``k`` is intensified when ``d_k * (rho_k - 1) > 0`` (strictly: ``d_k = 0`` is not)
- ``alpha`` = share of the classes with ``rho_k != 1`` that are intensified (> 0.5 intensification)
- ``b`` = OLS slope (with intercept) of ``d_k`` on ``rho_k - 1`` across the classes of a cell.

The unit of the tests is one dense parent (arch, dataset, seed): a cell's ``alpha``/``b``
are averaged over its retraining recipes first. Claims (rows of the claims table):

- ``intensification`` per (pruner, arch, dataset, sparsity) and pooled per (pruner,
  sparsity): t and Wilcoxon on ``alpha - 0.5``, t on ``b``, and OLS of ``d_k`` on
  ``rho_k - 1`` with cluster-robust SEs by parent (seed); claimed direction +.
- ``intensification_trend``: OLS of ``alpha`` (and ``b``) on sparsity, dense test error,
  log10 parameter count and pruner dummies, clusters = parents; claimed signs: sparsity +,
  dense error + (harder task), log10 params - (smaller model); pruner dummies descriptive.
- ``up_vs_magnitude``: Wilcoxon on ``alpha_undecayed - alpha_global_magnitude`` paired by
  (arch, dataset, sparsity, seed); claimed direction - (UP weakens intensification).
- ``deintensification_low_sparsity``: at sparsities <= ``LOW_SPARSITY``, t/Wilcoxon on
  ``alpha - 0.5``; claimed direction -.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import group_positions, prune_cells, recalls, scalar
from analysis.stats import TestResult, ols_cluster, one_sample_t, slope, wilcoxon_signed_rank
from analysis.table import make_row, missing_row

LOW_SPARSITY = 0.5
UP, MAGNITUDE = "undecayed", "global_magnitude"


# -- definitions (one function each) ----------------------------------------------------------


def normalized_recall(recall, accuracy) -> np.ndarray:
    """``rho_k = r_k / acc`` (Good et al. 2022, reconstructed); NaN when ``acc = 0``."""
    acc = np.asarray(accuracy, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(acc > 0, np.asarray(recall, float) / acc, np.nan)


def distortion(rho_dense, rho_pruned) -> np.ndarray:
    """``d_k = rho_k' - rho_k`` (positive: the class's normalised recall rose)."""
    return np.asarray(rho_pruned, float) - np.asarray(rho_dense, float)


def is_intensified(d, rho_dense) -> np.ndarray:
    """Class intensified: ``d_k * (rho_k - 1) > 0`` (moved further from 1, the way it deviated)."""
    return np.asarray(d, float) * (np.asarray(rho_dense, float) - 1.0) > 0


def intensification_ratio(d, rho_dense) -> float:
    """``alpha`` = share of classes with ``rho_k != 1`` (and finite) that are intensified."""
    d, rho = np.asarray(d, float), np.asarray(rho_dense, float)
    ok = np.isfinite(d) & np.isfinite(rho) & (rho != 1.0)
    return float(is_intensified(d[ok], rho[ok]).mean()) if ok.any() else float("nan")


def distortion_slope(d, rho_dense) -> float:
    """``b``: OLS slope of ``d_k`` on ``rho_k - 1`` across classes (> 0 intensification)."""
    return slope(np.asarray(rho_dense, float) - 1.0, d)


# -- per cell ---------------------------------------------------------------------------------


def class_measures(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, class): ``rho``, ``rho_p``, ``d`` and the cell's scope columns."""
    pc = prune_cells(cells)
    if pc.empty:
        return pd.DataFrame()
    r0, r1 = recalls(metrics, "dense"), recalls(metrics, "retrained")
    a0, a1 = scalar(metrics, "dense", "accuracy"), scalar(metrics, "retrained", "accuracy")
    ids = [c for c in pc["cell_id"] if c in r0.index and c in r1.index and c in a0.index and c in a1.index]
    if not ids:
        return pd.DataFrame()
    classes = r0.columns.intersection(r1.columns)
    rho = normalized_recall(r0.loc[ids, classes].to_numpy(), a0.loc[ids].to_numpy()[:, None])
    rho_p = normalized_recall(r1.loc[ids, classes].to_numpy(), a1.loc[ids].to_numpy()[:, None])
    d = distortion(rho, rho_p)
    k = len(classes)
    out = pd.DataFrame(
        {
            "cell_id": np.repeat(ids, k),
            "class": np.tile(np.asarray(classes), len(ids)),
            "rho": rho.ravel(),
            "rho_p": rho_p.ravel(),
            "d": d.ravel(),
        }
    )
    scope = pc.set_index("cell_id").loc[
        ids, ["parent_id", "arch", "dataset", "pruner", "sparsity", "seed", "retrain"]
    ]
    return out.join(scope, on="cell_id")


def cell_distortion(cm: pd.DataFrame) -> pd.DataFrame:
    """``alpha`` and ``b`` per cell (``cell_id`` column) of a ``class_measures`` table.

    ``intensification_ratio`` and ``distortion_slope`` of each cell's classes, vectorised over
    cells (a cells x classes matrix, NaN-padded; cells in order of first appearance)."""
    if cm.empty:
        return pd.DataFrame(columns=["cell_id", "alpha", "b"])
    codes, ids = pd.factorize(cm["cell_id"], sort=False)
    pos = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    shape = (len(ids), int(pos.max()) + 1)
    D, R = np.full(shape, np.nan), np.full(shape, np.nan)
    D[codes, pos], R[codes, pos] = cm["d"].to_numpy(float), cm["rho"].to_numpy(float)
    fin = np.isfinite(D) & np.isfinite(R)
    ok = fin & (R != 1.0)
    n_ok = ok.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(n_ok > 0, (ok & is_intensified(np.where(ok, D, 0.0), R)).sum(1) / n_ok, np.nan)
        n = fin.sum(1)
        x, y = np.where(fin, R - 1.0, 0.0), np.where(fin, D, 0.0)
        xc = np.where(fin, x - (x.sum(1) / n)[:, None], 0.0)
        yc = np.where(fin, y - (y.sum(1) / n)[:, None], 0.0)
        sxx = (xc**2).sum(1)
        b = np.where((n >= 2) & (sxx > 0), (xc * yc).sum(1) / sxx, np.nan)
    return pd.DataFrame({"cell_id": np.asarray(ids, dtype=object), "alpha": alpha, "b": b})


def cell_measures(cells: pd.DataFrame, metrics: pd.DataFrame, cm: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell (pruner, arch, dataset, sparsity, seed, recipe): ``alpha``, ``b``, dense
    error, parameter count and scope. ``cm``: the ``class_measures`` table, when already computed."""
    cm = class_measures(cells, metrics) if cm is None else cm
    if cm.empty:
        return pd.DataFrame()
    out = cell_distortion(cm)
    pc = prune_cells(cells).set_index("cell_id")
    out = out.join(
        pc[["parent_id", "arch", "dataset", "pruner", "sparsity", "seed", "retrain"]], on="cell_id"
    )
    out["dense_error"] = 1.0 - out["cell_id"].map(scalar(metrics, "dense", "accuracy"))
    params = scalar(metrics, "dense", "params_total", eval_set="model", kind="model")
    out["log10_params"] = np.log10(out["cell_id"].map(params).astype(float))
    return out


def parent_level(cm: pd.DataFrame) -> pd.DataFrame:
    """``alpha``, ``b`` per (pruner, arch, dataset, sparsity, parent), averaged over recipes."""
    keys = ["pruner", "arch", "dataset", "sparsity", "seed", "parent_id"]
    return cm.groupby(keys, as_index=False)[["alpha", "b", "dense_error", "log10_params"]].mean()


# -- tests ------------------------------------------------------------------------------------


def _alpha_tests(claim: str, alpha: pd.Series, b: pd.Series | None, direction: int, scope: dict, what: str):
    rows = []
    x = alpha.to_numpy(float) - 0.5
    rows.append(
        make_row(
            claim,
            "t_one_sample[alpha-0.5]",
            one_sample_t(x),
            direction=direction,
            description=f"mean alpha - 0.5 over {what} (t)",
            **scope,
        )
    )
    rows.append(
        make_row(
            claim,
            "wilcoxon[alpha-0.5]",
            wilcoxon_signed_rank(x),
            direction=direction,
            description=f"Hodges-Lehmann alpha - 0.5 over {what} (Wilcoxon)",
            **scope,
        )
    )
    if b is not None:
        rows.append(
            make_row(
                claim,
                "t_one_sample[b]",
                one_sample_t(b.to_numpy(float)),
                direction=direction,
                description=f"mean slope b of d_k on rho_k-1 over {what} (t)",
                **scope,
            )
        )
    return rows


def _pooled_regression(claim: str, g: pd.DataFrame, scope: dict) -> dict:
    """``d_k = a + beta (rho_k - 1)``, cluster-robust SEs by parent; estimate ``beta``."""
    g = g[np.isfinite(g["d"]) & np.isfinite(g["rho"])]
    X = np.column_stack([np.ones(len(g)), g["rho"].to_numpy() - 1.0])
    coefs = ols_cluster(g["d"].to_numpy(), X, g["parent_id"].to_numpy(), ["const", "rho-1"])
    if coefs:
        c = coefs[1]
        res = TestResult(c.statistic, c.estimate, c.ci_low, c.ci_high, c.p, c.clusters)
    else:
        res = TestResult.empty(g["parent_id"].nunique())
    return make_row(
        claim,
        "ols_cluster[d~rho-1]",
        res,
        direction=+1,
        description="pooled slope of d_k on rho_k-1, SEs clustered by seed (n = seeds)",
        **scope,
    )


def analyze(cells: pd.DataFrame, metrics: pd.DataFrame) -> list[dict]:
    """All rows of the four intensification claims (missing-input rows where untestable)."""
    names = ("intensification", "intensification_trend", "up_vs_magnitude", "deintensification_low_sparsity")
    cm_class = class_measures(cells, metrics)
    if cm_class.empty:
        return [missing_row(c, "no pruning cells with dense and retrained per-class recall") for c in names]
    cm = cell_measures(cells, metrics, cm_class)
    pl = parent_level(cm)
    rows: list[dict] = []

    # intensification per (pruner, arch, dataset, sparsity), then pooled per (pruner, sparsity)
    scope_keys = ["pruner", "arch", "dataset", "sparsity"]
    class_groups = dict(group_positions(cm_class, scope_keys))
    cm_reg = cm_class[["d", "rho", "parent_id"]]  # the columns the pooled regression reads
    for (pr, ar, ds, sp), g in pl.groupby(scope_keys):
        scope = {"pruner": pr, "arch": ar, "dataset": ds, "sparsity": sp}
        rows += _alpha_tests("intensification", g["alpha"], g["b"], +1, scope, "seeds")
        gc = cm_reg.iloc[class_groups.get((pr, ar, ds, sp), np.array([], dtype=int))]
        rows.append(_pooled_regression("intensification", gc, scope))
    for (pr, sp), g in pl.groupby(["pruner", "sparsity"]):
        if g[["arch", "dataset"]].drop_duplicates().shape[0] < 2:
            continue
        scope = {"pruner": pr, "sparsity": sp}
        rows += _alpha_tests(
            "intensification", g["alpha"], g["b"], +1, scope, "(arch, dataset, seed) parents"
        )

    rows += trend_rows(pl)
    rows += up_rows(pl)
    rows += low_sparsity_rows(pl)
    return rows


TREND_SIGNS = {"sparsity": +1, "dense_error": +1, "log10_params": -1}


def _trend(y: str, g: pd.DataFrame, covariates: list[str], scope: dict) -> list[dict]:
    g = g.dropna(subset=[y, *covariates])
    cols, names = [np.ones(len(g))], ["const"]
    for c in covariates:
        if g[c].nunique() > 1:
            cols.append(g[c].to_numpy(float))
            names.append(c)
    pruners = sorted(g["pruner"].unique())
    for p in pruners[1:]:
        cols.append((g["pruner"] == p).to_numpy(float))
        names.append(f"pruner={p}")
    coefs = ols_cluster(g[y].to_numpy(), np.column_stack(cols), g["parent_id"].to_numpy(), names)
    rows = []
    ref = f"; pruner baseline {pruners[0]}" if len(pruners) > 1 else ""
    for c in coefs[1:]:
        res = TestResult(c.statistic, c.estimate, c.ci_low, c.ci_high, c.p, c.n)
        direction = TREND_SIGNS.get(c.name)
        claimed = {1: "claimed +", -1: "claimed -", None: "descriptive"}[direction]
        rows.append(
            make_row(
                "intensification_trend",
                f"ols_cluster[{y}~{c.name}]",
                res,
                direction=direction,
                description=f"coefficient of {c.name} on cell {y} ({claimed}), {c.clusters} seed clusters"
                f"{ref}",
                **scope,
            )
        )
    return rows


def trend_rows(pl: pd.DataFrame) -> list[dict]:
    """Trend regressions: pooled (all covariates), per (arch, dataset) and per pruner."""
    rows = []
    for y in ("alpha", "b"):
        rows += _trend(y, pl, ["sparsity", "dense_error", "log10_params"], {})
        for (ar, ds), g in pl.groupby(["arch", "dataset"]):
            rows += _trend(y, g, ["sparsity"], {"arch": ar, "dataset": ds})
        for pr, g in pl.groupby("pruner"):
            rows += _trend(y, g, ["sparsity", "dense_error", "log10_params"], {"pruner": pr})
    if not rows:
        rows.append(missing_row("intensification_trend", "too few cells or seeds for the trend regression"))
    return rows


def up_rows(pl: pd.DataFrame) -> list[dict]:
    """UP vs magnitude: Wilcoxon on paired ``alpha_UP - alpha_magnitude``, claimed negative."""
    have = set(pl["pruner"])
    if not {UP, MAGNITUDE} <= have:
        missing = ", ".join(sorted({UP, MAGNITUDE} - have))
        return [missing_row("up_vs_magnitude", f"pruner(s) {missing} not in the results")]
    keys = ["arch", "dataset", "sparsity", "seed"]
    wide = pl[pl.pruner.isin([UP, MAGNITUDE])].pivot_table(index=keys, columns="pruner", values="alpha")
    wide = wide.dropna().reset_index()
    wide["diff"] = wide[UP] - wide[MAGNITUDE]
    desc = "Hodges-Lehmann alpha_UP - alpha_magnitude, pairs (arch, dataset, sparsity, seed)"
    scopes = [({"arch": ar, "dataset": ds}, g, desc) for (ar, ds), g in wide.groupby(["arch", "dataset"])]
    scopes += [({"sparsity": sp}, g, desc) for sp, g in wide.groupby("sparsity")]
    scopes.append(({}, wide, desc + ", all pooled"))
    return [
        make_row(
            "up_vs_magnitude",
            "wilcoxon[UP-magnitude]",
            wilcoxon_signed_rank(g["diff"]),
            direction=-1,
            description=text,
            pruner=UP,
            **scope,
        )
        for scope, g, text in scopes
    ]


def low_sparsity_rows(pl: pd.DataFrame) -> list[dict]:
    """De-intensification at sparsities <= LOW_SPARSITY: ``alpha < 0.5`` claimed."""
    low = pl[pl["sparsity"] <= LOW_SPARSITY + 1e-12]
    claim = "deintensification_low_sparsity"
    if low.empty:
        return [missing_row(claim, f"no cells at sparsity <= {LOW_SPARSITY}")]
    rows = []
    for (pr, ar, ds, sp), g in low.groupby(["pruner", "arch", "dataset", "sparsity"]):
        rows += _alpha_tests(
            claim, g["alpha"], None, -1, {"pruner": pr, "arch": ar, "dataset": ds, "sparsity": sp}, "seeds"
        )[:1]
    for (pr, sp), g in low.groupby(["pruner", "sparsity"]):
        rows += _alpha_tests(claim, g["alpha"], None, -1, {"pruner": pr, "sparsity": sp}, "parents")
    for sp, g in low.groupby("sparsity"):
        per_parent = g.groupby("parent_id")["alpha"].mean()
        rows += _alpha_tests(claim, per_parent, None, -1, {"sparsity": sp}, "parents (mean over pruners)")
    return rows
