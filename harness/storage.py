"""The results store: tidy Parquet tables under one directory (schema in results/README.md).

Layout::

    <results>/cells/<cell_id>.parquet      one row per cell (spec, status, timings, environment)
    <results>/metrics/<cell_id>.parquet    the cell's metric rows (long form)
    <results>/parents/<parent_id>/         dense parent: model.pt, rewind.pt, metrics.parquet
    <results>/cache/                       generated shift sets, built once and reused by every cell
    <results>/locks/                       lock files of cells and parents in progress

``pandas.read_parquet("<results>/cells")`` reads a whole table. A cell's files are written to
a hidden temporary name, fsynced and renamed (metrics first, the cell row last): the cell
row is the commit record, and metric files without one are removed when a run starts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1

CELL_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("parent_id", pa.string()),
        ("study", pa.string()),
        ("arch", pa.string()),
        ("dataset", pa.string()),
        ("pruner", pa.string()),
        ("pruner_kind", pa.string()),
        ("pruner_timing", pa.string()),
        ("pruner_version", pa.string()),
        ("sparsity", pa.float64()),
        ("seed", pa.int64()),
        ("retrain", pa.string()),
        ("schedule", pa.string()),
        ("score", pa.string()),
        ("variant", pa.string()),
        ("spec_json", pa.string()),
        ("preset", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("traceback", pa.string()),
        ("dense_train_s", pa.float64()),
        ("prune_s", pa.float64()),
        ("retrain_s", pa.float64()),
        ("eval_s", pa.float64()),
        ("total_s", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("device", pa.string()),
        ("torch_version", pa.string()),
        ("numpy_version", pa.string()),
        ("python_version", pa.string()),
        ("git_commit", pa.string()),
        ("host", pa.string()),
        ("schema_version", pa.int64()),
    ]
)

METRIC_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("phase", pa.string()),
        ("eval_set", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.int64()),
        ("metric", pa.string()),
        ("class", pa.int64()),
        ("step", pa.int64()),
        ("value", pa.float64()),
    ]
)


class StoreError(Exception):
    """The results directory cannot be used as it is."""


def atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` so that readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultsStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.metrics_dir = self.root / "metrics"
        self.parents_dir = self.root / "parents"
        self.locks_dir = self.root / "locks"
        self.cache_dir = self.root / "cache"

    # -- set-up ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the layout, check it is writable, drop uncommitted leftovers."""
        try:
            for d in (self.cells_dir, self.metrics_dir, self.parents_dir, self.locks_dir):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"results dir {str(self.root)!r} is not writable: {exc.strerror}") from None
        committed = {p.stem for p in self.cells_dir.glob("*.parquet")}
        for metrics_file in self.metrics_dir.glob("*.parquet"):
            if metrics_file.stem not in committed:
                metrics_file.unlink(missing_ok=True)

    # -- cells ----------------------------------------------------------------------
    def cell_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.parquet"

    def cell_status(self) -> dict[str, str]:
        """cell_id -> status of every committed cell."""
        if not self.cells_dir.exists() or not any(self.cells_dir.glob("*.parquet")):
            return {}
        table = pq.read_table(self.cells_dir, columns=["cell_id", "status"])
        return dict(zip(table["cell_id"].to_pylist(), table["status"].to_pylist(), strict=True))

    def cell_status_of(self, cell_id: str) -> str | None:
        path = self.cell_path(cell_id)
        if not path.exists():
            return None
        return pq.read_table(path, columns=["status"])["status"][0].as_py()

    def write_cell(self, cell_row: dict, metric_rows: list[dict]) -> None:
        cell_id = cell_row["cell_id"]
        if metric_rows:
            metrics = pa.Table.from_pylist(
                [{"cell_id": cell_id, **r} for r in metric_rows], schema=METRIC_SCHEMA
            )
            atomic_write_table(metrics, self.metrics_dir / f"{cell_id}.parquet")
        cell = pa.Table.from_pylist([{**cell_row, "schema_version": SCHEMA_VERSION}], schema=CELL_SCHEMA)
        atomic_write_table(cell, self.cell_path(cell_id))

    def read_cells(self) -> pd.DataFrame:
        if not any(self.cells_dir.glob("*.parquet")):
            return CELL_SCHEMA.empty_table().to_pandas()
        return pq.read_table(self.cells_dir, schema=CELL_SCHEMA).to_pandas()

    def read_metrics(self) -> pd.DataFrame:
        if not any(self.metrics_dir.glob("*.parquet")):
            return METRIC_SCHEMA.empty_table().to_pandas()
        return pq.read_table(self.metrics_dir, schema=METRIC_SCHEMA).to_pandas()

    # -- dense parents ----------------------------------------------------------------
    def parent_dir(self, parent_id: str) -> Path:
        return self.parents_dir / parent_id

    def has_parent(self, parent_id: str) -> bool:
        return (self.parent_dir(parent_id) / "metrics.parquet").exists()

    def write_parent(
        self, parent_id: str, state: dict, rewind_state: dict, rows: list[dict], info: dict
    ) -> None:
        import json

        import torch

        d = self.parent_dir(parent_id)
        d.mkdir(parents=True, exist_ok=True)
        for name, obj in (("model.pt", state), ("rewind.pt", rewind_state)):
            tmp = d / f".tmp-{name}"
            torch.save(obj, tmp)
            os.replace(tmp, d / name)
        (d / ".tmp-parent.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        os.replace(d / ".tmp-parent.json", d / "parent.json")
        # metrics.parquet last: its presence marks the parent complete
        table = pa.Table.from_pylist([{"cell_id": parent_id, **r} for r in rows], schema=METRIC_SCHEMA)
        atomic_write_table(table, d / "metrics.parquet")

    def read_parent(self, parent_id: str) -> tuple[dict, dict, list[dict], dict]:
        import json

        import torch

        d = self.parent_dir(parent_id)
        state = torch.load(d / "model.pt", weights_only=True)
        rewind = torch.load(d / "rewind.pt", weights_only=True)
        rows = pq.read_table(d / "metrics.parquet").drop(["cell_id"]).to_pylist()
        return state, rewind, rows, json.loads((d / "parent.json").read_text())
