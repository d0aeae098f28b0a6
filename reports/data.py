"""Shape stored results into the frames the report shows: one module for the site and the notebooks.

Everything here reads the results store (``<results>/cells``, ``<results>/metrics``,
``<results>/claims/claims.parquet``) and returns tidy pandas frames; nothing trains or
evaluates a model. A quantity that the store does not hold yields an empty frame, and
the caller shows a note instead of a figure or a column.

Keys: a *scenario* is ``(arch, dataset)``; a leaderboard *entry* is ``(pruner, retrain)``.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SCENARIO = ["arch", "dataset"]
ENTRY = ["pruner", "retrain"]
CELL_KEYS = [
    "cell_id",
    "parent_id",
    "study",
    *SCENARIO,
    "pruner",
    "pruner_kind",
    "retrain",
    "sparsity",
    "seed",
]
SCHEMA_PATH = Path(__file__).with_name("display_schema.toml")

# Stability-study metric names this module reads (study == "stability"): a run's pruning
# events (phase "event", step = event index) carry the test accuracy just before and just
# after the event; per-epoch rows (phase "epoch", step = epoch) carry train/test accuracy.
# A phase "final" row named "stability" or "best_test_accuracy", when present, is used as is.
EVENT_PRE = ("accuracy_pre", "acc_pre")
EVENT_POST = ("accuracy_post", "acc_post")


def load_schema(path: Path | str = SCHEMA_PATH) -> dict:
    """The display schema (column names, units, directions, claim cards) from its TOML file."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


@dataclass
class Results:
    """Cells, metric rows and the claims table of one results directory (after filters)."""

    results_dir: Path
    cells: pd.DataFrame
    metrics: pd.DataFrame
    claims: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)

    @property
    def ok_cells(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] == "ok"]

    def prune_cells(self) -> pd.DataFrame:
        """Successful cells of the one-shot pruning study."""
        cells = self.ok_cells
        return cells[cells["study"] == "prune"]

    def scenarios(self, study: str = "prune") -> list[tuple[str, str]]:
        """The (arch, dataset) pairs with successful cells of ``study``."""
        cells = self.ok_cells[self.ok_cells["study"] == study]
        return sorted({(a, d) for a, d in zip(cells["arch"], cells["dataset"], strict=True)})

    def has_metric(self, metric: str, kind: str | None = None) -> bool:
        m = self.metrics
        mask = m["metric"] == metric
        if kind is not None:
            mask &= m["kind"] == kind
        return bool(mask.any())


def _read_table(directory: Path, schema) -> pd.DataFrame:
    if not directory.is_dir() or not any(directory.glob("*.parquet")):
        return schema.empty_table().to_pandas()
    # hidden temporaries (.tmp-*) are ignored by pyarrow's dataset discovery
    return pq.read_table(directory, schema=schema).to_pandas()


def _match(values: pd.Series, patterns: Sequence[str] | str | None) -> pd.Series:
    if patterns is None:
        return pd.Series(True, index=values.index)
    if isinstance(patterns, str):
        patterns = [patterns]
    uniq = {v: any(fnmatch.fnmatchcase(str(v), p) for p in patterns) for v in values.dropna().unique()}
    return values.map(uniq).fillna(False).astype(bool)


def load_results(
    results_dir: Path | str,
    archs: Sequence[str] | str | None = None,
    datasets: Sequence[str] | str | None = None,
    pruners: Sequence[str] | str | None = None,
    compute_claims: bool = False,
) -> Results:
    """Read a results store; keep the cells whose arch, dataset and pruner match the glob filters.

    ``compute_claims``: when the claims table is missing and ``analysis.claims`` is importable,
    run its ``run_analysis(results_dir)`` first (it writes ``<results>/claims/claims.parquet``).
    """
    from harness.storage import CELL_SCHEMA, METRIC_SCHEMA

    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"results dir {str(root)!r} does not exist; run `python -m harness run-all` first"
        )
    notes: list[str] = []
    cells = _read_table(root / "cells", CELL_SCHEMA)
    keep = (
        _match(cells["arch"], archs) & _match(cells["dataset"], datasets) & _match(cells["pruner"], pruners)
    )
    cells = cells[keep].reset_index(drop=True)
    metrics = _read_table(root / "metrics", METRIC_SCHEMA)
    metrics = metrics[metrics["cell_id"].isin(cells.loc[cells["status"] == "ok", "cell_id"])]
    metrics = metrics.astype({"class": "Int64", "step": "Int64"}).reset_index(drop=True)
    claims = load_claims(root, compute=compute_claims, notes=notes)
    if claims is not None:
        claims = claims[_match(claims["arch"], archs) | claims["arch"].isna()]
        claims = claims[_match(claims["dataset"], datasets) | claims["dataset"].isna()]
        claims = claims[_match(claims["pruner"], pruners) | claims["pruner"].isna()].reset_index(drop=True)
    return Results(root, cells, metrics, claims, notes)


CLAIM_COLUMNS = [
    "claim",
    "test",
    "arch",
    "dataset",
    "pruner",
    "eval_set",
    "sparsity",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "q",
    "n",
    "verdict",
    "description",
]


def load_claims(
    results_dir: Path, compute: bool = False, notes: list[str] | None = None
) -> pd.DataFrame | None:
    """The claims table, or None (with a note) when it does not exist."""
    notes = notes if notes is not None else []
    path = Path(results_dir) / "claims" / "claims.parquet"
    if not path.exists() and compute:
        try:
            from analysis.claims import run_analysis
        except ImportError as exc:
            notes.append(f"claims table missing and the analysis package is not importable ({exc})")
        else:
            try:
                run_analysis(results_dir)
            except Exception as exc:
                notes.append(f"claims analysis failed: {type(exc).__name__}: {exc}")
    if not path.exists():
        notes.append(f"no claims table at {path}: claim cards are not shown")
        return None
    claims = pd.read_parquet(path)
    for col in CLAIM_COLUMNS:
        if col not in claims.columns:
            claims[col] = None
    return claims


# -- statistics -----------------------------------------------------------------------------


def t_quantile(n: np.ndarray | int) -> np.ndarray:
    """The 97.5% quantile of Student's t with n - 1 degrees of freedom (NaN for n < 2)."""
    from scipy.special import stdtrit  # lighter than importing scipy.stats

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(n > 1, stdtrit(np.maximum(n - 1, 1), 0.975), np.nan)


def mean_ci(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean of ``value`` per group with a 95% t-interval over the group's rows (seeds)."""
    if df.empty:
        return pd.DataFrame(columns=[*by, "mean", "ci_low", "ci_high", "n"])
    g = df.groupby(by, dropna=False, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    half = t_quantile(g["count"].to_numpy()) * g["std"].to_numpy() / np.sqrt(g["count"].to_numpy())
    g["ci_low"] = g["mean"] - half
    g["ci_high"] = g["mean"] + half
    return g.rename(columns={"count": "n"}).drop(columns="std")


# -- metric selection -----------------------------------------------------------------------


def metric_rows(
    res: Results,
    metric: str | Iterable[str],
    phase: str | Iterable[str] | None = "retrained",
    eval_set: str | Iterable[str] | None = None,
    kind: str | Iterable[str] | None = None,
    study: str | None = "prune",
) -> pd.DataFrame:
    """Metric rows joined with their cell's keys (arch, dataset, pruner, retrain, sparsity, seed)."""

    def isin(col: pd.Series, v) -> pd.Series:
        return col == v if isinstance(v, str) else col.isin(list(v))

    m = res.metrics
    mask = isin(m["metric"], metric)
    if phase is not None:
        mask &= isin(m["phase"], phase)
    if eval_set is not None:
        mask &= isin(m["eval_set"], eval_set)
    if kind is not None:
        mask &= isin(m["kind"], kind)
    cells = res.ok_cells if study is None else res.ok_cells[res.ok_cells["study"] == study]
    return m[mask].merge(cells[[c for c in CELL_KEYS if c in cells.columns]], on="cell_id", how="inner")


def dense_rows(res: Results, metric: str, eval_set="test", kind="clean") -> pd.DataFrame:
    """The dense parent's rows, one per (parent, eval_set, severity, class): copied into every cell."""
    rows = metric_rows(res, metric, phase="dense", eval_set=eval_set, kind=kind)
    keys = ["parent_id", "eval_set", "severity", "class"]
    return rows.drop_duplicates(keys)


def accuracy_by_seed(res: Results, phase: str = "retrained", with_dense: bool = True) -> pd.DataFrame:
    """Clean test accuracy per (scenario, entry, sparsity, seed); the dense parent at sparsity 0."""
    rows = metric_rows(res, "accuracy", phase=phase, eval_set="test", kind="clean")
    cols = [*SCENARIO, *ENTRY, "pruner_kind", "sparsity", "seed", "value"]
    out = rows[cols]
    if with_dense and not rows.empty:
        dense = metric_rows(res, "accuracy", phase="dense", eval_set="test", kind="clean")
        dense = dense.drop_duplicates([*SCENARIO, *ENTRY, "seed"])[cols].assign(sparsity=0.0)
        out = pd.concat([dense, out], ignore_index=True)
    return out.sort_values([*SCENARIO, *ENTRY, "sparsity", "seed"]).reset_index(drop=True)


def accuracy_curve(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Mean clean test accuracy and 95% CI over seeds per (scenario, entry, sparsity)."""
    return mean_ci(accuracy_by_seed(res, phase), [*SCENARIO, *ENTRY, "pruner_kind", "sparsity"])


def auc_by_seed(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Normalised area under the accuracy-sparsity curve per (scenario, entry, seed).

    Trapezoids from sparsity 0 (the dense parent) to the largest stored sparsity, divided by
    that range, so the value is an accuracy (a fraction).
    """
    acc = accuracy_by_seed(res, phase, with_dense=True)
    if acc.empty:
        return pd.DataFrame(columns=[*SCENARIO, *ENTRY, "seed", "value"])
    acc = acc.groupby([*SCENARIO, *ENTRY, "seed", "sparsity"], as_index=False)["value"].mean()

    def area(g: pd.DataFrame) -> float:
        x, y = g["sparsity"].to_numpy(), g["value"].to_numpy()
        if len(x) < 2 or x[-1] <= x[0]:
            return float("nan")
        return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))

    out = acc.groupby([*SCENARIO, *ENTRY, "seed"]).apply(area, include_groups=False)
    return out.rename("value").reset_index()


def reference_sparsity(res: Results, target: float) -> float | None:
    """The stored sparsity nearest to ``target`` (None without prune cells)."""
    values = np.unique(res.prune_cells()["sparsity"].dropna().to_numpy())
    if values.size == 0:
        return None
    return float(values[np.argmin(np.abs(values - target))])


def at_sparsity(df: pd.DataFrame, sparsity: float | None) -> pd.DataFrame:
    if sparsity is None or df.empty:
        return df.iloc[0:0]
    return df[np.isclose(df["sparsity"].astype(float), sparsity)]


def per_cell_mean(rows: pd.DataFrame) -> pd.DataFrame:
    """Average a cell's rows (e.g. over corruption types and severities, or OOD sets)."""
    keys = [c for c in CELL_KEYS if c in rows.columns]
    if rows.empty:
        return pd.DataFrame(columns=[*keys, "value"])
    return rows.groupby(keys, as_index=False, dropna=False)["value"].mean()


def corruption_accuracy(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Accuracy on every corruption type x severity, per cell."""
    return metric_rows(res, "accuracy", phase=phase, kind="corruption")


def ood_auroc(res: Results, score: str = "msp", phase: str = "retrained") -> pd.DataFrame:
    """OOD detection AUROC (by ``score``: msp or energy), one row per cell and OOD set."""
    return metric_rows(res, f"auroc_{score}", phase=phase, kind="ood")


def calibration(res: Results, metric: str = "ece", phase: str = "retrained") -> pd.DataFrame:
    """A calibration metric (ece, nll, brier) on the clean test set, per cell."""
    return metric_rows(res, metric, phase=phase, eval_set="test", kind="clean")


def flops_reduction(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Dense FLOPs / effective FLOPs per cell (empty when FLOPs are not stored)."""
    rows = metric_rows(res, ["flops_dense", "flops_effective"], phase=phase, eval_set="model")
    if rows.empty:
        return rows.assign(value=[])
    keys = [c for c in CELL_KEYS if c in rows.columns]
    wide = rows.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    if not {"flops_dense", "flops_effective"} <= set(wide.columns):
        return pd.DataFrame(columns=[*keys, "value"])
    wide["value"] = wide["flops_dense"] / wide["flops_effective"].where(wide["flops_effective"] > 0)
    return wide[[*keys, "value"]]


# -- prune potential ------------------------------------------------------------------------


def distribution_accuracy(res: Results, phase: str) -> pd.DataFrame:
    """Accuracy per cell and test distribution: the clean test set and each corruption type
    (mean over its severities). ``distribution`` names it; ``shifted`` flags the corruptions."""
    rows = metric_rows(res, "accuracy", phase=phase, kind=["clean", "corruption"])
    rows = rows[(rows["kind"] == "corruption") | (rows["eval_set"] == "test")]
    if rows.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "distribution", "shifted", "value"])
    keys = [c for c in CELL_KEYS if c in rows.columns]
    out = rows.groupby([*keys, "eval_set", "kind"], as_index=False, dropna=False)["value"].mean()
    out["shifted"] = out["kind"] == "corruption"
    return out.rename(columns={"eval_set": "distribution"}).drop(columns="kind")


def prune_potential(res: Results, delta: float = 0.005, phase: str = "retrained") -> pd.DataFrame:
    """Prune potential per (scenario, entry, seed, distribution) (Liebenwein et al. 2021).

    The largest sparsity whose model has ``err(pruned, D') <= err(dense, D') + delta`` against
    the dense parent of the same seed; 0 when no sparsity qualifies.
    """
    pruned = distribution_accuracy(res, phase)
    dense = distribution_accuracy(res, "dense")
    if pruned.empty or dense.empty:
        return pd.DataFrame(columns=[*SCENARIO, *ENTRY, "seed", "distribution", "shifted", "value"])
    dense = dense.drop_duplicates(["parent_id", "distribution"])[["parent_id", "distribution", "value"]]
    both = pruned.merge(dense, on=["parent_id", "distribution"], suffixes=("", "_dense"))
    # err <= err_dense + delta  <=>  acc >= acc_dense - delta (small tolerance for float noise)
    both["qualifies"] = both["value"] >= both["value_dense"] - delta - 1e-12
    both["pp"] = np.where(both["qualifies"], both["sparsity"], 0.0)
    keys = [*SCENARIO, *ENTRY, "seed", "distribution", "shifted"]
    return both.groupby(keys, as_index=False)["pp"].max().rename(columns={"pp": "value"})


def excess_error(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """``[err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]`` per cell and shifted D'."""
    pruned = distribution_accuracy(res, phase)
    dense = distribution_accuracy(res, "dense").drop_duplicates(["parent_id", "distribution"])
    if pruned.empty or not pruned["shifted"].any():
        return pd.DataFrame(columns=[*CELL_KEYS, "distribution", "value"])
    p_clean = pruned[~pruned["shifted"]][["cell_id", "value"]].rename(columns={"value": "p_clean"})
    d_clean = dense[~dense["shifted"]][["parent_id", "value"]].rename(columns={"value": "d_clean"})
    d_shift = dense[dense["shifted"]][["parent_id", "distribution", "value"]].rename(
        columns={"value": "d_shift"}
    )
    out = pruned[pruned["shifted"]].merge(p_clean, on="cell_id").merge(d_clean, on="parent_id")
    out = out.merge(d_shift, on=["parent_id", "distribution"])
    # errors are 1 - accuracy: (1-a) differences flip sign
    out["value"] = (out["p_clean"] - out["value"]) - (out["d_clean"] - out["d_shift"])
    return out.drop(columns=["p_clean", "d_clean", "d_shift", "shifted"])


# -- recall distortion (Good et al. 2022; reconstructed) ------------------------------------


def recall_distortion(res: Results, phase: str = "retrained", eval_set: str = "test") -> pd.DataFrame:
    """Per cell and class: ``rho`` = r_k/acc (dense), ``rho_pruned`` = r_k'/acc', ``d = rho_pruned - rho``.

    Reconstructed definition (shared/design/claims.md section 1): ``d_k`` is stored with the
    sign ``rho_k' - rho_k`` (the authors' code stores the opposite sign). Class k is
    intensified when ``d_k * (rho_k - 1) > 0``.
    """
    rec = metric_rows(res, ["recall", "accuracy"], phase=[phase, "dense"], eval_set=eval_set, kind="clean")
    if rec.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "class", "rho", "rho_pruned", "d"])
    acc = rec[rec["metric"] == "accuracy"].pivot_table(index="cell_id", columns="phase", values="value")
    r = rec[rec["metric"] == "recall"]
    keys = [c for c in CELL_KEYS if c in r.columns]
    wide = r.pivot_table(index=[*keys, "class"], columns="phase", values="value").reset_index()
    if phase not in wide.columns or "dense" not in wide.columns:
        return pd.DataFrame(columns=[*CELL_KEYS, "class", "rho", "rho_pruned", "d"])
    wide = wide.merge(acc.rename(columns={"dense": "acc_dense", phase: "acc_pruned"}), on="cell_id")
    wide["rho"] = wide["dense"] / wide["acc_dense"]
    wide["rho_pruned"] = wide[phase] / wide["acc_pruned"]
    wide["d"] = wide["rho_pruned"] - wide["rho"]
    wide["class"] = wide["class"].astype("int64")
    return wide[[*keys, "class", "rho", "rho_pruned", "d"]].dropna(subset=["d"])


def distortion_summary(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Per cell: ``alpha`` (share of classes with rho != 1 that are intensified) and ``slope``
    (least squares of d_k on rho_k - 1 across the cell's classes)."""
    d = recall_distortion(res, phase)
    keys = [c for c in CELL_KEYS if c in d.columns]
    if d.empty:
        return pd.DataFrame(columns=[*keys, "alpha", "slope", "classes"])
    x = d["rho"] - 1.0
    y = d["d"]
    frame = d[keys].copy()
    off = ~np.isclose(x, 0.0)
    frame["deviating"] = off.astype(float)
    frame["intensified"] = ((x * y > 0) & off).astype(float)
    frame["x"], frame["y"], frame["xx"], frame["xy"], frame["one"] = x, y, x * x, x * y, 1.0
    s = frame.groupby(keys, as_index=False, dropna=False).sum(numeric_only=False)
    n = s["one"]
    sxx = s["xx"] - s["x"] ** 2 / n
    sxy = s["xy"] - s["x"] * s["y"] / n
    out = s[keys].copy()
    out["alpha"] = s["intensified"] / s["deviating"].where(s["deviating"] > 0)
    out["slope"] = sxy / sxx.where(sxx > 1e-15)
    out["classes"] = n.astype(int)
    return out


def pooled_slope(d: pd.DataFrame) -> float:
    """Least-squares slope of d on rho - 1 over all rows (pooled classes and seeds)."""
    if len(d) < 2:
        return float("nan")
    x = (d["rho"] - 1.0).to_numpy(float)
    y = d["d"].to_numpy(float)
    sxx = float(np.sum((x - x.mean()) ** 2))
    return float(np.sum((x - x.mean()) * (y - y.mean())) / sxx) if sxx > 0 else float("nan")


def per_class_recall_change(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Recall of the pruned model minus the dense parent's, per cell and class."""
    rec = metric_rows(res, "recall", phase=[phase, "dense"], eval_set="test", kind="clean")
    if rec.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "class", "value"])
    keys = [c for c in CELL_KEYS if c in rec.columns]
    wide = rec.pivot_table(index=[*keys, "class"], columns="phase", values="value").reset_index()
    if phase not in wide.columns:
        return pd.DataFrame(columns=[*CELL_KEYS, "class", "value"])
    wide["value"] = wide[phase] - wide["dense"]
    return wide[[*keys, "class", "value"]]


# -- retraining recipes ---------------------------------------------------------------------


def recipe_difference(res: Results, a: str = "lr_rewind", b: str = "finetune") -> pd.DataFrame:
    """Clean test accuracy of recipe ``a`` minus ``b``, paired by (scenario, pruner, sparsity, seed)."""
    acc = accuracy_by_seed(res, with_dense=False)
    keys = [*SCENARIO, "pruner", "sparsity", "seed"]
    left = acc[acc["retrain"] == a][[*keys, "value"]]
    right = acc[acc["retrain"] == b][[*keys, "value"]]
    out = left.merge(right, on=keys, suffixes=("_a", "_b"))
    out["value"] = out["value_a"] - out["value_b"]
    return out[[*keys, "value"]]


# -- stability study (Bartoldson et al. 2020) -----------------------------------------------


def stability_runs(res: Results) -> pd.DataFrame:
    """One row per stability-study run: ``stability`` (mean of 100 * (1 - I) over pruning events,
    100 for a run without events), ``best_acc`` (best test accuracy at or after the last event)
    and ``gap`` (train minus test accuracy at that epoch)."""
    cells = res.ok_cells[res.ok_cells["study"] == "stability"]
    cols = [*SCENARIO, "cell_id", "schedule", "score", "variant", "seed", "stability", "best_acc", "gap"]
    if cells.empty:
        return pd.DataFrame(columns=cols)
    m = res.metrics[res.metrics["cell_id"].isin(cells["cell_id"])]
    out = cells[[*SCENARIO, "cell_id", "schedule", "score", "variant", "seed"]].set_index("cell_id")

    final = m[m["phase"] == "final"]
    ev = m[(m["phase"] == "event") & (m["eval_set"] == "test")]
    pre = ev[ev["metric"].isin(EVENT_PRE)].groupby(["cell_id", "step"])["value"].first()
    post = ev[ev["metric"].isin(EVENT_POST)].groupby(["cell_id", "step"])["value"].first()
    inst = ((pre - post) / pre).dropna()
    stab = (100 * (1 - inst)).groupby(level="cell_id").mean()
    last_event = inst.reset_index().groupby("cell_id")["step"].max()
    given = final[final["metric"] == "stability"].groupby("cell_id")["value"].first()
    out["stability"] = given.combine_first(stab).reindex(out.index)
    if not ev.empty:
        out["stability"] = out["stability"].fillna(100.0)  # a run that never prunes

    ep = m[(m["phase"] == "epoch") & (m["metric"] == "accuracy")]
    test = ep[ep["eval_set"] == "test"][["cell_id", "step", "value"]]
    train = ep[ep["eval_set"] == "train"][["cell_id", "step", "value"]]
    test = test.merge(last_event.rename("last").reset_index(), on="cell_id", how="left")
    test = test[test["last"].isna() | (test["step"] >= test["last"])]
    best = test.sort_values("value").groupby("cell_id").tail(1)
    best = best.merge(train, on=["cell_id", "step"], how="left", suffixes=("", "_train"))
    best = best.set_index("cell_id")
    given_best = final[final["metric"] == "best_test_accuracy"].groupby("cell_id")["value"].first()
    out["best_acc"] = given_best.combine_first(best["value"]).reindex(out.index)
    out["gap"] = (best["value_train"] - best["value"]).reindex(out.index)
    return out.reset_index()[cols].dropna(subset=["stability", "best_acc"])


def correlation(x: Sequence[float], y: Sequence[float]) -> dict:
    """Pearson r with a Fisher-z 95% CI, and Kendall tau, of two samples."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3 or np.std(x) == 0 or np.std(y) == 0:
        return {"r": float("nan"), "r_low": float("nan"), "r_high": float("nan"), "tau": float("nan"), "n": n}
    r = float(np.corrcoef(x, y)[0, 1])
    z, se = math.atanh(max(min(r, 0.999999), -0.999999)), 1 / math.sqrt(max(n - 3, 1))
    tau = float(stats.kendalltau(x, y).statistic)
    return {"r": r, "r_low": math.tanh(z - 1.96 * se), "r_high": math.tanh(z + 1.96 * se), "tau": tau, "n": n}


# -- provenance -----------------------------------------------------------------------------


def provenance(res: Results) -> dict:
    """Commit, dates, environment, preset and counts of the stored cells."""
    cells = res.cells

    def uniq(col: str) -> list[str]:
        if col not in cells.columns:
            return []
        return sorted({str(v) for v in cells[col].dropna().unique()})

    failed = cells[cells["status"] != "ok"]
    reasons = failed["reason"].fillna("unknown").value_counts().head(5)
    finished = cells["finished_at"].dropna() if "finished_at" in cells.columns else pd.Series([])
    return {
        "results_dir": str(res.results_dir),
        "commits": uniq("git_commit"),
        "presets": uniq("preset"),
        "studies": uniq("study"),
        "torch": uniq("torch_version"),
        "numpy": uniq("numpy_version"),
        "python": uniq("python_version"),
        "devices": uniq("device"),
        "hosts": uniq("host"),
        "cells": len(cells),
        "ok": int((cells["status"] == "ok").sum()),
        "failed": len(failed),
        "failure_reasons": [{"reason": str(k), "count": int(v)} for k, v in reasons.items()],
        "first_finished": str(finished.min()) if len(finished) else "",
        "last_finished": str(finished.max()) if len(finished) else "",
        "metric_rows": len(res.metrics),
    }


def claims_for(res: Results, notebook: str, schema: dict | None = None) -> pd.DataFrame:
    """The claims-table rows of the claims a notebook covers (empty without a claims table)."""
    if res.claims is None:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    schema = schema or load_schema()
    fam = res.claims["claim"].astype(str).map(lambda c: claim_family(c, schema))
    return res.claims[fam == notebook][CLAIM_COLUMNS].reset_index(drop=True)


def claim_family(claim: str, schema: dict | None = None) -> str:
    """The notebook that covers a claim (the overview for a claim the schema does not list)."""
    schema = schema or load_schema()
    return schema.get("claims", {}).get(str(claim), {}).get("notebook", "overview")
