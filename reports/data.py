"""Shape stored results into the frames the report shows: one module for the site and the notebooks.

Everything here reads the results store (``<results>/cells``, ``<results>/metrics``,
``<results>/claims/claims.parquet``) and returns tidy pandas frames; nothing trains or
evaluates a model. A quantity that the store does not hold yields an empty frame, and
the caller shows a note instead of a figure or a column.

Keys: a *scenario* is ``(arch, dataset)``; a leaderboard *entry* is ``(pruner, retrain)``.

Every claim quantity is computed by the ``analysis`` package, which implements
``shared/design/claims.md`` and writes the claims table; this module only reshapes its
outputs for display, so the report's numbers are the claims table's: recall distortion
(``analysis.intensification``), prune potential and excess error (``analysis.potential``),
run stability and its correlations (``analysis.generalization_stability``), recipe differences
(``analysis.retrain_recipe``), t intervals (``analysis.stats``) and reading the store
(``analysis.load.read_table``).
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import generalization_stability, intensification, potential
from analysis.load import read_table
from analysis.retrain_recipe import recipe_differences
from analysis.stats import correlation_estimates, t_half_width
from analysis.table import COLUMNS as CLAIM_COLUMNS

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


def load_schema(path: Path | str = SCHEMA_PATH) -> dict:
    """The display schema (column names, units, directions, claim cards) from its TOML file."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def open_notebook(
    results_dir: Path | str,
    archs: Sequence[str] | str | None = None,
    datasets: Sequence[str] | str | None = None,
    pruners: Sequence[str] | str | None = None,
) -> tuple[dict, Results, float | None]:
    """The first cell of every report notebook: display options, then the display schema, the
    filtered results and the reference sparsity (the stored one nearest the schema's)."""
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.precision", 4)
    schema = load_schema()
    res = read_cache(results_dir, archs, datasets, pruners)
    if res is None:
        res = load_results(results_dir, archs=archs, datasets=datasets, pruners=pruners)
    return schema, res, reference_sparsity(res, schema["settings"]["reference_sparsity"])


#: the site builder loads the store once and hands its notebooks the loaded results in this file
CACHE_ENV = "PRUNEBENCH_REPORT_CACHE"


def _cache_key(results_dir, archs, datasets, pruners) -> list:
    return [str(Path(results_dir).resolve()), *(_key(v) for v in (archs, datasets, pruners))]


def write_cache(res: Results, path: Path, archs=None, datasets=None, pruners=None) -> Path:
    """Save ``res`` (loaded with these filters) for the notebooks of one build (atomic write)."""
    import pickle

    path = Path(path)
    # notes of computing the claims table: a notebook does not compute it, so does not note it
    notes = [n for n in res.notes if not n.startswith(("claims analysis failed", "claims table missing"))]
    payload = {
        "key": _cache_key(res.results_dir, archs, datasets, pruners),
        "results": Results(res.results_dir, res.cells, res.metrics, res.claims, notes, res.metric_rows),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def read_cache(results_dir, archs=None, datasets=None, pruners=None) -> Results | None:
    """The results the site builder saved (``CACHE_ENV``) if they are of this store and filters."""
    import os
    import pickle

    path = os.environ.get(CACHE_ENV)
    if not path or not Path(path).is_file():
        return None
    try:
        with open(path, "rb") as handle:
            payload = pickle.load(handle)
    except Exception:
        return None
    if payload.get("key") != _cache_key(results_dir, archs, datasets, pruners):
        return None
    return payload["results"]


@dataclass
class Results:
    """Cells, metric rows and the claims table of one results directory (after filters)."""

    results_dir: Path
    cells: pd.DataFrame
    metrics: pd.DataFrame
    claims: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    #: metric rows of the successful cells in the store (``metrics`` holds only the rows the
    #: report reads); None: counted on first use
    stored_metric_rows: int | None = None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: tuple, compute):
        """``compute()`` once per ``key`` for these results (the figures ask per scenario for
        frames computed over all of them); a copy, so callers may change what they get."""
        if key not in self._memo:
            self._memo[key] = compute()
        value = self._memo[key]
        return value.copy() if isinstance(value, pd.DataFrame) else value

    @property
    def metric_rows(self) -> int:
        """Metric rows stored for the successful cells (all of them, also those not loaded)."""
        if self.stored_metric_rows is None:
            ids = self.ok_cells["cell_id"]
            self.stored_metric_rows = _count_metric_rows(self.results_dir / "metrics", ids)
        return self.stored_metric_rows

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


def _metric_files(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.glob("*.parquet") if not p.name.startswith("."))


def _report_rows():
    """Metric rows no report view reads: per-class recall on any set but the clean one, and every
    metric but accuracy on the corruption sets (most rows of a store; skipping them at read time
    makes loading several times faster). Null-safe: ``isin`` never yields null."""
    import pyarrow.dataset as ds

    metric, kind = ds.field("metric"), ds.field("kind")
    unread = (metric.isin(["recall"]) & ~kind.isin(["clean"])) | (
        kind.isin(["corruption"]) & ~metric.isin(["accuracy"])
    )
    return ~unread


def _read_metrics(directory: Path, schema, ok_ids: pd.Series) -> pd.DataFrame:
    """The metric rows of the ``ok_ids`` cells that the report reads (``_report_rows``), in store
    order (files sorted by name), typed as ``_read_table`` types them."""
    import pyarrow.dataset as ds

    files = _metric_files(directory)
    try:
        dataset = ds.dataset(files, schema=schema, format="parquet") if files else None
        ids = ok_ids.dropna().astype(str).unique().tolist()
        table = dataset.to_table(filter=ds.field("cell_id").isin(ids) & _report_rows()) if files else None
    except Exception:  # files of an older or mixed schema: the general reader
        df = _read_table(directory, schema)
        df = df[df["cell_id"].isin(ok_ids)]
        m = df["metric"].isin(["recall"]) & ~df["kind"].isin(["clean"])
        m |= df["kind"].isin(["corruption"]) & ~df["metric"].isin(["accuracy"])
        return df[~m]
    if table is None or table.num_rows == 0:
        return schema.empty_table().to_pandas()
    return table.replace_schema_metadata(None).to_pandas()


def _count_metric_rows(directory: Path, ok_ids: pd.Series) -> int:
    """Metric rows stored for the ``ok_ids`` cells (scans only the ``cell_id`` column)."""
    import pyarrow.dataset as ds

    files = _metric_files(directory)
    if not files:
        return 0
    ids = ok_ids.dropna().astype(str).unique().tolist()
    try:
        return int(ds.dataset(files, format="parquet").count_rows(filter=ds.field("cell_id").isin(ids)))
    except Exception:  # files of mixed schemas: the general reader
        return int(read_table(directory, ["cell_id"])["cell_id"].isin(ids).sum())


def _read_table(directory: Path, schema) -> pd.DataFrame:
    """Every column of ``schema`` (typed, also when the folder holds no file)."""
    df = read_table(directory, schema.names)
    return schema.empty_table().to_pandas() if df.empty else df


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
    ``metrics`` holds the rows of the successful cells that the report reads (``_report_rows``:
    not the per-class recall on shifted sets, nor the corruption sets' metrics but accuracy);
    ``metric_rows`` counts all of them.
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
    metrics = _read_metrics(root / "metrics", METRIC_SCHEMA, cells.loc[cells["status"] == "ok", "cell_id"])
    metrics = metrics.astype({"class": "Int64", "step": "Int64"}).reset_index(drop=True)
    claims = load_claims(root, compute=compute_claims, notes=notes)
    if claims is not None:
        claims = claims[_match(claims["arch"], archs) | claims["arch"].isna()]
        claims = claims[_match(claims["dataset"], datasets) | claims["dataset"].isna()]
        claims = claims[_match(claims["pruner"], pruners) | claims["pruner"].isna()].reset_index(drop=True)
    return Results(root, cells, metrics, claims, notes)


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


def _key(v):
    if isinstance(v, list | tuple | set | frozenset):
        return tuple(_key(x) for x in (sorted(v) if isinstance(v, set | frozenset) else v))
    return v


def cached(fn):
    """Compute ``fn(res, ...)`` once per :class:`Results` and arguments (``Results.memo``)."""

    @functools.wraps(fn)
    def wrapper(res: Results, *args, **kwargs):
        key = (fn.__name__, _key(args), tuple(sorted((k, _key(v)) for k, v in kwargs.items())))
        return res.memo(key, lambda: fn(res, *args, **kwargs))

    return wrapper


# -- statistics -----------------------------------------------------------------------------


def mean_ci(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean of ``value`` per group with a 95% t-interval over the group's rows (seeds)."""
    if df.empty:
        return pd.DataFrame(columns=[*by, "mean", "ci_low", "ci_high", "n"])
    g = df.groupby(by, dropna=False, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    half = t_half_width(g["std"].to_numpy(float), g["count"].to_numpy(float))
    g["ci_low"] = g["mean"] - half
    g["ci_high"] = g["mean"] + half
    return g.rename(columns={"count": "n"}).drop(columns="std")


# -- metric selection -----------------------------------------------------------------------


@cached
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


@cached
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


@cached
def accuracy_curve(res: Results, phase: str = "retrained") -> pd.DataFrame:
    """Mean clean test accuracy and 95% CI over seeds per (scenario, entry, sparsity)."""
    return mean_ci(accuracy_by_seed(res, phase), [*SCENARIO, *ENTRY, "pruner_kind", "sparsity"])


@cached
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


@cached
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


def _with_cell_keys(df: pd.DataFrame, res: Results) -> pd.DataFrame:
    """``df`` (one row per ``cell_id`` and more) with the cell's keys (``CELL_KEYS``) from ``res``."""
    keys = [c for c in CELL_KEYS if c in res.ok_cells.columns]
    rest = [c for c in df.columns if c not in keys]
    return res.ok_cells[keys].merge(df[["cell_id", *rest]], on="cell_id", how="inner")


# -- prune potential and excess error (Liebenwein et al. 2021): analysis.potential ----------


@cached
def _set_errors(res: Results) -> pd.DataFrame:
    """``analysis.potential.long_errors`` on the individual test distributions (without the
    ``corruption_mean`` aggregate, which only the claims table tests)."""
    long = potential.long_errors(res.ok_cells, res.metrics)
    return long[long["eval_set"] != potential.CORRUPTION_MEAN] if not long.empty else long


@cached
def prune_potential(res: Results, delta: float = potential.DELTA) -> pd.DataFrame:
    """Prune potential per (scenario, entry, seed, distribution) (Liebenwein et al. 2021).

    ``analysis.potential.prune_potential``: the largest sparsity whose model has
    ``err(pruned, D') <= err(dense, D') + delta`` against the dense parent of the same seed, 0
    when no sparsity qualifies. ``delta`` is a fraction of top-1 error (``potential.DELTA =
    0.005``, 0.5 points, as in the claims table). ``distribution`` is the clean test set
    (``test``) or a shifted set (corruption type, severities averaged): ``shifted``.
    """
    cols = [*SCENARIO, *ENTRY, "seed", "distribution", "shifted", "value"]
    long = _set_errors(res)
    if long.empty:
        return pd.DataFrame(columns=cols)
    pp = potential.potentials(long, per_recipe=True, delta=delta)
    pp = pp.rename(columns={"eval_set": "distribution", "potential": "value"})
    pp["shifted"] = pp["distribution"] != potential.CLEAN
    return pp[cols]


@cached
def excess_error(res: Results) -> pd.DataFrame:
    """``[err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]`` per cell and shifted D'
    (``analysis.potential.excess_error``; a fraction, x100 = points)."""
    long = _set_errors(res)
    if long.empty or not (long["eval_set"] != potential.CLEAN).any():
        return pd.DataFrame(columns=[*CELL_KEYS, "distribution", "value"])
    ex = potential.cell_excess(long)[["cell_id", "eval_set", "excess"]]
    return _with_cell_keys(ex.rename(columns={"eval_set": "distribution", "excess": "value"}), res)


# -- recall distortion (Good et al. 2022; reconstructed): analysis.intensification ----------


@cached
@cached
def _class_measures(res: Results) -> pd.DataFrame:
    return intensification.class_measures(res.ok_cells, res.metrics)


@cached
def recall_distortion(res: Results) -> pd.DataFrame:
    """Per cell and class: ``rho`` = r_k/acc (dense), ``rho_pruned`` = r_k'/acc', ``d = rho_pruned - rho``.

    Reconstructed definition (shared/design/claims.md section 1), computed by
    ``analysis.intensification.class_measures``: ``d_k`` is stored with the sign
    ``rho_k' - rho_k`` (the authors' code stores the opposite sign). Class k is intensified
    when ``d_k * (rho_k - 1) > 0``.
    """
    cm = _class_measures(res)
    if cm.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "class", "rho", "rho_pruned", "d"])
    cm = cm[["cell_id", "class", "rho", "rho_p", "d"]].rename(columns={"rho_p": "rho_pruned"})
    return _with_cell_keys(cm, res).dropna(subset=["d"]).reset_index(drop=True)


@cached
def distortion_summary(res: Results) -> pd.DataFrame:
    """Per cell: ``alpha`` (share of classes with rho != 1 that are intensified) and ``slope`` (b, the
    least-squares slope of d_k on rho_k - 1 across the cell's classes), by
    ``analysis.intensification.cell_distortion``: the values the claims table tests."""
    keys = [c for c in CELL_KEYS if c in res.ok_cells.columns]
    cm = _class_measures(res)
    if cm.empty:
        return pd.DataFrame(columns=[*keys, "alpha", "slope"])
    return _with_cell_keys(intensification.cell_distortion(cm).rename(columns={"b": "slope"}), res)


@cached
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


@cached
def recipe_difference(res: Results, recipe: str = "lr_rewind") -> pd.DataFrame:
    """Clean test accuracy of ``recipe`` minus fine-tuning, paired by (scenario, pruner, sparsity, seed)
    (``analysis.retrain_recipe.recipe_differences``)."""
    keys = [*SCENARIO, "pruner", "sparsity", "seed"]
    d = recipe_differences(res.ok_cells, res.metrics)
    if d.empty:
        return pd.DataFrame(columns=[*keys, "value"])
    return d[d["recipe"] == recipe].rename(columns={"diff": "value"})[[*keys, "value"]]


# -- stability study (Bartoldson et al. 2020) -----------------------------------------------


@cached
def stability_runs(res: Results) -> pd.DataFrame:
    """One row per stability-study run (``analysis.generalization_stability.run_table``):
    ``stability`` (mean of 100 * (1 - I) over pruning events, 100 for a run without events),
    ``best_acc`` (best test accuracy at or after the last event) and ``gap`` (train minus test
    accuracy at that epoch)."""
    scope = ["cell_id", "target", "schedule", "score", "variant", "seed"]
    cols = [*SCENARIO, *scope, "stability", "best_acc", "gap"]
    runs = generalization_stability.run_table(res.ok_cells, res.metrics)
    if runs.empty:
        return pd.DataFrame(columns=cols)
    return runs[cols].dropna(subset=["stability", "best_acc"]).reset_index(drop=True)


def stability_correlation(runs: pd.DataFrame) -> dict:
    """Pearson r (Fisher-z 95% CI) and Kendall tau of run stability vs best test accuracy over the
    permanent-pruning runs: the estimates of the claims table's ``stability_accuracy`` rows."""
    perm = generalization_stability.permanent_runs(runs)
    return correlation_estimates(perm["stability"], perm["best_acc"])


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
        "metric_rows": res.metric_rows,
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
