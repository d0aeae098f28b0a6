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

from harness.storage import METRIC_SCHEMA  # one definition of the stored metric rows

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


CLAIM_PHASES = ("dense", "retrained")
SKIP_ACCURACY_SETS = ("train", "val", "model")
CELL_TYPES = {"sparsity": pa.float64(), "seed": pa.int64()}
CELL_SCHEMA = pa.schema([(c, CELL_TYPES.get(c, pa.string())) for c in CELL_COLUMNS])


def _claim_filter(stability_ids: list[str]):
    """The metric rows the claim modules read, as a pyarrow expression (``claim_rows`` in pandas)."""
    import pyarrow.compute as pc

    f = pc.field
    phase = f("phase").isin(list(CLAIM_PHASES))
    acc = (f("metric") == "accuracy") & f("class").is_null() & ~f("eval_set").isin(list(SKIP_ACCURACY_SETS))
    rec = (f("metric") == "recall") & (f("eval_set") == "test") & (f("kind") == "clean")
    params = (f("phase") == "dense") & (f("metric") == "params_total")
    return (phase & (acc | rec)) | params | f("cell_id").isin(stability_ids)


def claim_rows(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``metrics`` the claim modules use (the others never change a claims row):
    dense/retrained whole-set accuracy on every evaluation set but train/val/model, clean test
    per-class recall, the dense parameter count, and every row of a stability-study cell."""
    phase = metrics["phase"].isin(CLAIM_PHASES)
    acc = (
        (metrics["metric"] == "accuracy")
        & metrics["class"].isna()
        & metrics["eval_set"].notna()
        & ~metrics["eval_set"].isin(SKIP_ACCURACY_SETS)
    )
    rec = (metrics["metric"] == "recall") & (metrics["eval_set"] == "test") & (metrics["kind"] == "clean")
    params = (metrics["phase"] == "dense") & (metrics["metric"] == "params_total")
    stab = cells.loc[cells["study"] == "stability", "cell_id"] if "study" in cells else []
    keep = (phase & (acc | rec)) | params | metrics["cell_id"].isin(set(stab))
    return metrics[keep.fillna(False).astype(bool)].reset_index(drop=True)


def _scan(directory: Path, schema: pa.Schema) -> pd.DataFrame | None:
    """``read_table(directory, schema.names)`` in one multi-file scan (absent columns null);
    None when the files do not fit ``schema`` (the caller falls back to ``read_table``)."""
    import pyarrow.dataset as ds

    files = sorted(str(p) for p in directory.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        return None
    try:
        df = ds.dataset(files, schema=schema, format="parquet").to_table().to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return _absent_as_none(df, files[0])


def _absent_as_none(df: pd.DataFrame, first_file: str) -> pd.DataFrame:
    """A column the (first) file does not hold and that is all null: None, as ``read_table`` fills it."""
    present = set(pq.read_schema(first_file).names)
    for c in df.columns:
        if c not in present and df[c].isna().all():
            df[c] = None
    return df


def load_claim_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_results`` restricted to the metric rows the claims use (``claim_rows``), with the
    filter pushed into the Parquet scan: the claims table is the same as from ``load_results``."""
    import pyarrow.dataset as ds

    root = Path(results_dir)
    cells = _scan(root / "cells", CELL_SCHEMA)
    cells = read_table(root / "cells", CELL_COLUMNS) if cells is None else cells
    cells = cells[cells["status"].fillna("ok") == "ok"].reset_index(drop=True)
    files = sorted(str(p) for p in (root / "metrics").glob("*.parquet") if not p.name.startswith("."))
    stab = [str(c) for c in cells.loc[cells["study"] == "stability", "cell_id"]]
    if not files:
        return cells, pd.DataFrame({c: [] for c in METRIC_COLUMNS})
    try:
        table = ds.dataset(files, schema=METRIC_SCHEMA, format="parquet").to_table(
            columns=METRIC_COLUMNS, filter=_claim_filter(stab)
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # files of an incompatible schema: read everything, filter in pandas
        metrics = read_table(root / "metrics", METRIC_COLUMNS)
        metrics = metrics[metrics["cell_id"].isin(set(cells["cell_id"]))]
        return cells, claim_rows(cells, metrics)
    metrics = _absent_as_none(table.to_pandas(), files[0])
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


def group_positions(df: pd.DataFrame, keys: list[str] | str):
    """``[(key, positions)]`` of ``df.groupby(keys)`` (sorted keys, NaN keys dropped), with
    ``positions`` the row positions of the group in frame order: the groups ``groupby``
    iterates, without building a sub-frame per group."""
    if len(df) == 0:
        return []
    codes = df.groupby(keys, sort=True).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    order, sorted_codes = order[sorted_codes >= 0], sorted_codes[sorted_codes >= 0]
    if order.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    parts = np.split(order, starts[1:])
    cols = [keys] if isinstance(keys, str) else list(keys)
    first = df.iloc[order[starts]][cols]
    values = [first[c].tolist() for c in cols]
    out = []
    for i, pos in enumerate(parts):
        key = values[0][i] if isinstance(keys, str) else tuple(v[i] for v in values)
        out.append((key, pos))
    return out


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded by a row's scope, so randomised tests are reproducible run to run."""
    import hashlib

    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
