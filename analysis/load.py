"""The stored results as the analyses need them: studies, their cells, pivots of their metric rows.

Reads only the store, through its one reader (``core.store``; no torch, no harness import).
A study's cells are those its manifest lists (``<results>/studies/<name>.json``, written by
``run-all``) that are stored ``ok``; the leaderboard's are those of ``leaderboard.json``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.hypotheses import Claim, claims, regime
from core.store import MetricFilter, StoreReader, select_rows

CELL_COLUMNS = [
    "cell_id",
    "parent_id",
    "cell_type",
    "arch",
    "dataset",
    "pruner",
    "pruner_kind",
    "pruner_timing",
    "sparsity",
    "seed",
    "retrain",
    "control",
    "schedule",
    "score",
    "variant",
    "spec_json",
    "epochs_dense",
    "epochs_prune",
    "epochs_retrain",
    "train_flops",
]

# The metric rows the claim analyses read (the rest never change a claims row).
CLAIM_FILTERS = (
    MetricFilter(
        phases=["dense", "retrained"], metrics=["accuracy"], per_class=False, exclude_eval_sets=["model"]
    ),
    MetricFilter(
        phases=["dense", "retrained"], metrics=["recall", "prediction"], eval_sets=["test"], kinds=["clean"]
    ),
    MetricFilter(phases=["retrained"], metrics=["kept_epoch"], eval_sets=["model"]),
)
STABILITY_FILTER = MetricFilter(phases=["epoch", "event", "final"], per_class=False)


@dataclass
class StudyData:
    """One study as stored: its definition (from the manifest), claims, cells and metric rows."""

    name: str
    definition: dict
    cells: pd.DataFrame
    metrics: pd.DataFrame

    @property
    def claims(self) -> list[Claim]:
        return claims(self.definition, self.name)

    @property
    def analysis(self) -> str:
        return self.definition["analysis"]

    @property
    def regime(self) -> dict[str, float]:
        """The regime gates' thresholds (``core.hypotheses.REGIME_DEFAULTS`` and its ``[regime]``)."""
        return regime(self.definition, self.name)


def load_studies(results_dir: str | Path, reads: dict | None = None) -> list[StudyData]:
    """Every study of the store with its ``ok`` cells and the metric rows the analyses read:
    ``CLAIM_FILTERS``, and per analysis name in ``reads`` the rows it reads beside them
    (``analysis.base.Analysis.reads``) for the studies that name it."""
    reader = StoreReader(results_dir)
    manifests = reader.study_manifests()
    if not manifests:
        return []
    cells = reader.cells(CELL_COLUMNS)
    wanted = set().union(*(m["cell_ids"] for m in manifests.values()))
    cells = cells[cells["cell_id"].isin(wanted)].reset_index(drop=True)
    stability = list(cells.loc[cells["cell_type"] == "stability", "cell_id"])
    own = {m["definition"].get("analysis") for m in manifests.values()}
    extra = [f for name in sorted(own, key=str) for f in (reads or {}).get(name, ())]
    filters = [*CLAIM_FILTERS, *extra] + ([MetricFilter(cell_ids=stability)] if stability else [])
    metrics = reader.metrics(filters)
    out = []
    for name, manifest in sorted(manifests.items()):
        ids = set(manifest["cell_ids"])
        mine = cells[cells["cell_id"].isin(ids)].reset_index(drop=True)
        rows = metrics[metrics["cell_id"].isin(ids)].reset_index(drop=True)
        out.append(StudyData(name, manifest["definition"], mine, rows))
    return out


def study_frames(
    name: str, definition: dict, cells: pd.DataFrame, metrics: pd.DataFrame, reads: tuple = ()
) -> StudyData:
    """A study from frames in memory (synthetic stores in tests), filtered as the store reader does
    (``reads``: its analysis' own metric filters, ``Analysis.reads``)."""
    keep = metrics["cell_id"].isin(
        cells.loc[cells.get("cell_type", pd.Series(dtype=str)) == "stability", "cell_id"]
    )
    rows = pd.concat(
        [select_rows(metrics, (*CLAIM_FILTERS, *reads)), metrics[keep]], ignore_index=True
    ).drop_duplicates()
    return StudyData(name, definition, cells.reset_index(drop=True), rows.reset_index(drop=True))


def prune_cells(cells: pd.DataFrame, control: str | None = "none") -> pd.DataFrame:
    """Pruning cells (not stability runs), by default without a mask control."""
    out = cells[cells["cell_type"] == "prune"]
    if control is not None:
        out = out[out["control"].fillna("none") == control]
    return out.reset_index(drop=True)


def scalar(
    metrics: pd.DataFrame, phase: str, metric: str, eval_set: str = "test", kind: str = "clean"
) -> pd.Series:
    """``cell_id -> value`` of a whole-set metric (first row per cell if duplicated)."""
    m = (
        (metrics["phase"] == phase)
        & (metrics["metric"] == metric)
        & (metrics["eval_set"] == eval_set)
        & (metrics["kind"] == kind)
        & metrics["class"].isna()
    )
    return metrics[m].groupby("cell_id")["value"].first()


def kept_epochs(metrics: pd.DataFrame) -> pd.Series:
    """``cell_id -> kept_epoch``: the retraining epoch each cell kept (lowest validation loss)."""
    return scalar(metrics, "retrained", "kept_epoch", eval_set="model", kind="model")


def recalls(metrics: pd.DataFrame, phase: str, eval_set: str = "test") -> pd.DataFrame:
    """Per-class recall as a ``cell_id x class`` matrix."""
    m = (
        (metrics["phase"] == phase)
        & (metrics["metric"] == "recall")
        & (metrics["eval_set"] == eval_set)
        & (metrics["kind"] == "clean")
    )
    rows = metrics[m]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(cls=rows["class"].astype("int64"))
    return rows.pivot_table(index="cell_id", columns="cls", values="value", aggfunc="first")


def n_classes(metrics: pd.DataFrame) -> int:
    """Number of classes: the distinct classes of the test recall rows (10 when none are stored)."""
    rec = metrics[(metrics["metric"] == "recall") & (metrics["eval_set"] == "test")]
    return int(rec["class"].nunique()) if len(rec) else 10


def predictions(metrics: pd.DataFrame, phase: str) -> pd.DataFrame:
    """Per-example predicted labels on the clean test split: ``cell_id x example`` (``step``)."""
    rows = metrics[(metrics["phase"] == phase) & (metrics["metric"] == "prediction")]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(index="cell_id", columns="step", values="value", aggfunc="first")


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded by a row's scope, so randomised procedures are reproducible run to run."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
