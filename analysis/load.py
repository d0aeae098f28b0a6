"""Read the stored results (``results/README.md``) into pandas, and pivot the rows the claims need.

Only the Parquet tables are read (no torch, no harness import): ``<results>/cells/*.parquet``
and ``<results>/metrics/*.parquet``; hidden temporary files (``.tmp-*``) are ignored and
files written under older schemas (missing columns) are read with those columns null.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CELL_COLUMNS = [
    "cell_id",
    "parent_id",
    "study",
    "arch",
    "dataset",
    "pruner",
    "sparsity",
    "seed",
    "retrain",
    "schedule",
    "score",
    "variant",
    "spec_json",
    "status",
]
METRIC_COLUMNS = ["cell_id", "phase", "eval_set", "kind", "severity", "metric", "class", "step", "value"]


def read_table(directory: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All ``*.parquet`` files of one store folder as one frame (hidden ``.tmp-*`` files skipped).

    ``columns``: the columns to return, in this order (absent ones filled with nulls, so files of
    older schemas read); None returns every column the files hold. The one reader of the store:
    ``load_results`` here and ``reports.data.load_results`` both use it.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        return pd.DataFrame({c: [] for c in columns or []})
    tables = []
    for f in files:
        t = pq.read_table(f)
        if columns is not None:
            t = t.select([c for c in columns if c in t.column_names])
        tables.append(t.replace_schema_metadata(None))
    table = pa.concat_tables(tables, promote_options="default")
    df = table.to_pandas()
    if columns is None:
        return df
    for c in columns:
        if c not in df.columns:
            df[c] = None
    return df[columns]


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cells, metrics)`` of a results directory; only cells with ``status == 'ok'``."""
    root = Path(results_dir)
    cells = read_table(root / "cells", CELL_COLUMNS)
    metrics = read_table(root / "metrics", METRIC_COLUMNS)
    cells = cells[cells["status"].fillna("ok") == "ok"].reset_index(drop=True)
    metrics = metrics[metrics["cell_id"].isin(set(cells["cell_id"]))].reset_index(drop=True)
    return cells, metrics


def prune_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells of the one-shot pruning study (``study == 'prune'``, or no study recorded)."""
    study = cells["study"] if "study" in cells else pd.Series("prune", index=cells.index)
    out = cells[study.fillna("prune") == "prune"].copy()
    if "parent_id" not in out or out["parent_id"].isna().any():
        out["parent_id"] = (
            out["arch"].astype(str) + "|" + out["dataset"].astype(str) + "|" + out["seed"].astype(str)
        )
    if "retrain" not in out:
        out["retrain"] = "finetune"
    out["retrain"] = out["retrain"].fillna("finetune")
    return out


def stability_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells of the stability study, with ``target``, ``score``, ``schedule``, ``variant`` columns.

    The fields come from ``spec_json`` when present (``benchmarks.stability.StabilitySpec``),
    else from the cell columns (``pruner`` read as the target).
    """
    if "study" not in cells:
        return pd.DataFrame(columns=[*cells.columns, "target"])
    out = cells[cells["study"] == "stability"].copy()
    targets, fields = [], {k: [] for k in ("score", "schedule", "variant")}
    for _, r in out.iterrows():
        spec = {}
        if isinstance(r.get("spec_json"), str):
            try:
                spec = json.loads(r["spec_json"])
            except ValueError:
                spec = {}
        targets.append(spec.get("target", r.get("pruner")))
        for k in fields:
            fields[k].append(spec.get(k, r.get(k)))
    out["target"] = targets
    for k, v in fields.items():
        out[k] = v
    return out


def select(
    metrics: pd.DataFrame,
    phase: str,
    metric: str,
    eval_set: str | None = "test",
    kind: str | None = "clean",
) -> pd.DataFrame:
    """Rows of one phase and metric (optionally one eval set / kind)."""
    m = (metrics["phase"] == phase) & (metrics["metric"] == metric)
    if eval_set is not None:
        m &= metrics["eval_set"] == eval_set
    if kind is not None:
        m &= metrics["kind"] == kind
    return metrics[m]


def scalar(
    metrics: pd.DataFrame, phase: str, metric: str, eval_set: str = "test", kind: str = "clean"
) -> pd.Series:
    """``cell_id -> value`` of a whole-set metric (first row per cell if duplicated)."""
    rows = select(metrics, phase, metric, eval_set, kind)
    rows = rows[rows["class"].isna()] if "class" in rows else rows
    return rows.groupby("cell_id")["value"].first()


def recalls(metrics: pd.DataFrame, phase: str, eval_set: str = "test") -> pd.DataFrame:
    """Per-class recall as a ``cell_id x class`` matrix."""
    rows = select(metrics, phase, "recall", eval_set, "clean")
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(cls=rows["class"].astype("int64"))
    return rows.pivot_table(index="cell_id", columns="cls", values="value", aggfunc="first")


def seed_level(df: pd.DataFrame, keys: list[str], value_cols: list[str]) -> pd.DataFrame:
    """Average ``value_cols`` over retraining recipes (and duplicates) within ``keys`` (+ seed)."""
    return df.groupby(keys, dropna=False, as_index=False)[value_cols].mean(numeric_only=True)


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded by a row's scope, so randomised tests are reproducible run to run."""
    import hashlib

    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
