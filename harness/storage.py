"""The results store's writer: tidy Parquet tables under one directory (schema in results/README.md).

Layout::

    <results>/store.json                   the store's schema version, checked on every run
    <results>/cells/<cell_id>.parquet      one row per cell (spec, status, budget, timings, environment)
    <results>/metrics/<cell_id>.parquet    the cell's metric rows (long form)
    <results>/parents/<parent_id>/         dense parent: model.pt, rewind.pt, parent.json,
                                           dense-<eval id>.parquet (its rows per evaluation config),
                                           states/ (intermediate states its cells share: IMP rounds)
    <results>/studies/<name>.json          each study's definition and cell ids (``core.studies``)
    <results>/leaderboard.json             the preset's grid, the leaderboard's cell ids, the latency protocol
    <results>/cache/                       generated shift sets, built once and reused by every cell
    <results>/locks/                       lock files of cells and parents in progress
    <results>/damaged/                     unreadable files moved aside (never silently skipped)

Every file goes through ``core.atomic`` (hidden temporary name, fsync, rename); a cell's
metrics are written first and its cell row last, so the cell row is the commit record and
metric files without one are removed when a run starts. Reading is ``core.store``'s job.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import atomic_write, atomic_write_bytes, atomic_write_parquet, remove_stale_temporaries
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from core.store import StoreReader, part_files

VERSION_META = {b"prunebench_schema_version": str(SCHEMA_VERSION).encode()}


class StoreError(Exception):
    """The results directory cannot be used as it is."""


class ResultsStore(StoreReader):
    def __init__(self, root: Path | str) -> None:
        super().__init__(root)
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
            atomic_write_bytes(self.version_file, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
        remove_stale_temporaries((self.cells_dir, self.metrics_dir, self.cache_dir))
        self.check_files()
        committed = {Path(p).stem for p in part_files(self.cells_dir)}
        for metrics_file in part_files(self.metrics_dir):
            if Path(metrics_file).stem not in committed:
                Path(metrics_file).unlink(missing_ok=True)

    @property
    def version_file(self) -> Path:
        return self.root / "store.json"

    def _check_version(self) -> None:
        if not self.version_file.exists():
            if part_files(self.cells_dir):
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

    def check_files(self) -> None:
        """Read every part file's footer; move a damaged one aside and say which."""
        for directory, schema in ((self.cells_dir, CELL_SCHEMA), (self.metrics_dir, METRIC_SCHEMA)):
            for path in map(Path, part_files(directory)):
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
            atomic_write_parquet(self.metrics_dir / f"{cell_id}.parquet", metrics, VERSION_META)
        cell = pa.Table.from_pylist([{**cell_row, "schema_version": SCHEMA_VERSION}], schema=CELL_SCHEMA)
        atomic_write_parquet(self.cell_path(cell_id), cell, VERSION_META)

    # -- manifests --------------------------------------------------------------------
    def write_manifest(self, name: str, manifest: dict) -> None:
        atomic_write_bytes(
            self.studies_dir / f"{name}.json", json.dumps(manifest, indent=1, sort_keys=True).encode()
        )

    def write_leaderboard(self, manifest: dict) -> None:
        """``manifest`` plus ``latency_protocol``: the sentence stating how latency was timed
        (``benchmarks.cost.latency_protocol_text``), for the report page to quote."""
        from benchmarks.cost import latency_protocol_text

        manifest = {**manifest, "latency_protocol": manifest.get("latency_protocol", latency_protocol_text())}
        atomic_write_bytes(
            self.root / "leaderboard.json", json.dumps(manifest, indent=1, sort_keys=True).encode()
        )

    # -- dense parents ----------------------------------------------------------------
    def parent_dir(self, parent_id: str) -> Path:
        return self.parents_dir / parent_id

    def has_parent(self, parent_id: str) -> bool:
        return (self.parent_dir(parent_id) / "parent.json").exists()

    def write_parent(self, parent_id: str, state: dict, rewind_state: dict, info: dict) -> None:
        d = self.parent_dir(parent_id)
        for name, obj in (("model.pt", state), ("rewind.pt", rewind_state)):
            atomic_write(d / name, lambda handle, obj=obj: _torch_save(obj, handle))
        # parent.json last: its presence marks the parent complete
        atomic_write_bytes(d / "parent.json", json.dumps(info, indent=1, sort_keys=True).encode())

    def read_parent(self, parent_id: str) -> tuple[dict, dict, dict]:
        import torch

        d = self.parent_dir(parent_id)
        state = torch.load(d / "model.pt", weights_only=True)
        rewind = torch.load(d / "rewind.pt", weights_only=True)
        return state, rewind, json.loads((d / "parent.json").read_text())

    def dense_rows_path(self, parent_id: str, eval_id: str) -> Path:
        return self.parent_dir(parent_id) / f"dense-{eval_id}.parquet"

    def write_dense_rows(self, parent_id: str, eval_id: str, rows: list[dict]) -> None:
        table = pa.Table.from_pylist([{"cell_id": parent_id, **r} for r in rows], schema=METRIC_SCHEMA)
        atomic_write_parquet(self.dense_rows_path(parent_id, eval_id), table, VERSION_META)

    def read_dense_rows(self, parent_id: str, eval_id: str) -> list[dict] | None:
        path = self.dense_rows_path(parent_id, eval_id)
        if not path.exists():
            return None
        return pq.read_table(path).drop(["cell_id"]).to_pylist()


class ParentStates:
    """The ``StateCache`` of one dense parent: states its cells share (``pruners.base``),
    stored under ``parents/<id>/states/<key>.pt``."""

    def __init__(self, store: ResultsStore, parent_id: str) -> None:
        self.dir = store.parent_dir(parent_id) / "states"

    def get(self, key: str):
        import torch

        path = self.dir / f"{key}.pt"
        if not path.exists():
            return None
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a torn or foreign file is recomputed, never trusted
            return None

    def put(self, key: str, state) -> None:
        atomic_write(self.dir / f"{key}.pt", lambda handle: _torch_save(state, handle))


def _torch_save(obj, handle) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    handle.write(buffer.getvalue())
