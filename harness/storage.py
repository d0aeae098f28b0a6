"""The results store: tidy Parquet tables under one directory (schema in results/README.md).

Layout::

    <results>/store.json                   the store's schema version, checked on every run

    <results>/cells/<cell_id>.parquet      one row per cell (spec, status, timings, environment)
    <results>/metrics/<cell_id>.parquet    the cell's metric rows (long form)
    <results>/parents/<parent_id>/         dense parent: model.pt, rewind.pt, metrics.parquet
    <results>/cache/                       generated shift sets, built once and reused by every cell
    <results>/locks/                       lock files of cells and parents in progress
    <results>/damaged/                     unreadable files moved aside (never silently skipped)

``pandas.read_parquet("<results>/cells")`` reads a whole table. A cell's files are written to
a hidden temporary name, fsynced and renamed (metrics first, the cell row last): the cell
row is the commit record, and metric files without one are removed when a run starts.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

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


STALE_TMP_SECONDS = 600  # a temporary file older than this belongs to a killed run


class StoreError(Exception):
    """The results directory cannot be used as it is."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(handle)`` to a hidden temporary file, fsync, rename onto ``path``.

    Readers see the old file or the whole new one, never a part; a crash leaves at most a
    ``.tmp-*`` file, which readers ignore and the next run removes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write a Parquet table atomically, tagged with the schema version."""
    meta = {**(table.schema.metadata or {}), b"prunebench_schema_version": str(SCHEMA_VERSION).encode()}
    atomic_write(path, lambda handle: pq.write_table(table.replace_schema_metadata(meta), handle))


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
        """Open the store for writing: check writability, schema version and every file.

        Raises ``StoreError`` (one line, naming the path) for an unwritable directory, a
        store of another schema version, or a damaged Parquet file; a damaged file is moved
        to ``damaged/`` first, so the next run recomputes that cell instead of skipping it.
        """
        self._check_version()
        try:
            for d in (self.cells_dir, self.metrics_dir, self.parents_dir, self.locks_dir):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"results dir {str(self.root)!r} is not writable: {exc.strerror}") from None
        if not self.version_file.exists():
            payload = json.dumps({"schema_version": SCHEMA_VERSION}).encode()
            atomic_write(self.version_file, lambda handle: handle.write(payload))
        self._remove_stale_temporaries()
        self.check_files()
        committed = {p.stem for p in self.cells_dir.glob("*.parquet")}
        for metrics_file in self.metrics_dir.glob("*.parquet"):
            if metrics_file.stem not in committed:
                metrics_file.unlink(missing_ok=True)

    @property
    def version_file(self) -> Path:
        return self.root / "store.json"

    def _check_version(self) -> None:
        if not self.version_file.exists():
            if any(self.cells_dir.glob("*.parquet")):
                raise StoreError(
                    f"results dir {str(self.root)!r} holds cells but no store.json: written by an "
                    f"incompatible prunebench; use another --results dir"
                )
            return
        try:
            found = json.loads(self.version_file.read_text())["schema_version"]
        except (ValueError, KeyError, OSError):
            raise StoreError(f"{self.version_file}: unreadable store version file") from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"results dir {str(self.root)!r} was written with schema version {found}; this prunebench "
                f"reads and writes version {SCHEMA_VERSION}: use another --results dir"
            )

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for d in (self.cells_dir, self.metrics_dir, self.root / "cache"):
            for tmp in d.glob(".tmp-*") if d.exists() else ():
                try:
                    if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                        tmp.unlink()
                except FileNotFoundError:
                    pass

    def check_files(self) -> None:
        """Read every part file's footer; move a damaged one aside and say which."""
        for directory, schema in ((self.cells_dir, CELL_SCHEMA), (self.metrics_dir, METRIC_SCHEMA)):
            for path in sorted(directory.glob("*.parquet")):
                try:
                    found = pq.read_schema(path)
                except FileNotFoundError:
                    continue  # removed by a concurrent run between glob and read
                except Exception as exc:  # any unreadable footer is damage
                    target = self.root / "damaged" / directory.name / path.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                    raise StoreError(
                        f"damaged Parquet file {path} ({type(exc).__name__}) moved aside to {target}; "
                        f"run again to recompute that cell"
                    ) from None
                if found.remove_metadata() != schema:
                    raise StoreError(
                        f"{path} does not have the schema version {SCHEMA_VERSION} columns; "
                        f"written by an incompatible prunebench: use another --results dir"
                    )

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
        for name, obj in (("model.pt", state), ("rewind.pt", rewind_state)):
            atomic_write(d / name, lambda handle, obj=obj: torch.save(obj, handle))
        payload = json.dumps(info, indent=1, sort_keys=True).encode()
        atomic_write(d / "parent.json", lambda handle: handle.write(payload))
        # metrics.parquet last: its presence marks the parent complete
        table = pa.Table.from_pylist([{"cell_id": parent_id, **r} for r in rows], schema=METRIC_SCHEMA)
        atomic_write_table(table, d / "metrics.parquet")

    def read_parent(self, parent_id: str) -> tuple[dict, dict, list[dict], dict]:
        import torch

        d = self.parent_dir(parent_id)
        state = torch.load(d / "model.pt", weights_only=True)
        rewind = torch.load(d / "rewind.pt", weights_only=True)
        rows = pq.read_table(d / "metrics.parquet").drop(["cell_id"]).to_pylist()
        return state, rewind, rows, json.loads((d / "parent.json").read_text())
