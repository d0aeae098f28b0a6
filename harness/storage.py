"""The results store's writer: tidy Parquet tables under one directory (schema in results/README.md).

Layout::

    <results>/store.json                   the store's schema version, checked on every run
    <results>/cells/<cell_id>.parquet      one row per cell (spec, status, budget, timings, environment,
                                           the row count and SHA-256 of its metrics file)
    <results>/metrics/<cell_id>.parquet    the cell's metric rows (long form)
    <results>/parents/<parent_id>/         dense parent: model.pt, rewind.pt, parent.json (with their
                                           SHA-256), dense-<eval id>.parquet (its rows per evaluation
                                           config), states/ (intermediate states its cells share: IMP
                                           rounds, each with a .sha256 beside it)
    <results>/studies/<name>.json          each study's definition and cell ids (``core.hypotheses``)
    <results>/leaderboard.json             the preset's grid, the leaderboard's cell ids, the latency protocol
    <results>/cache/                       generated shift sets, built once and reused by every cell
    <results>/locks/                       lock files of cells and parents in progress
    <results>/damaged/                     damaged files moved aside (never silently skipped), by path
    <results>/site/                        the report (``harness report``, ``run-all``)

Every file goes through ``core.atomic`` (hidden temporary name, fsync, rename); a cell's
metrics are written first and its cell row last, so the cell row is the commit record, and it
records the SHA-256 of the metrics file it commits. A cell is done only when its row is
readable and its metrics file is the one the row records (``core.integrity``); anything
damaged is moved to ``damaged/`` by ``prepare`` and recomputed, dense parents included.
Metric files without a committed row (a run killed between the two writes) are removed when
no run holds their cell. Reading is ``core.store``'s job.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa

from core.atomic import (
    atomic_write_bytes,
    atomic_write_parquet,
    parquet_bytes,
    remove_stale_temporaries,
)
from core.integrity import Damage, audit, first_line, metrics_problem, read_verified, sha256_bytes
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from core.store import StoreProblem, StoreReader, part_files

VERSION_META = {b"prunebench_schema_version": str(SCHEMA_VERSION).encode()}
CHECKPOINTS = ("model.pt", "rewind.pt")


class StoreError(Exception):
    """The results directory cannot be used as it is."""


class DamagedFile(Exception):
    """A stored file is not what was written; the caller moves it aside and recomputes it."""


class ResultsStore(StoreReader):
    def __init__(self, root: Path | str) -> None:
        super().__init__(root)
        self.parents_dir = self.root / "parents"
        self.locks_dir = self.root / "locks"
        self.cache_dir = self.root / "cache"
        self.damaged_dir = self.root / "damaged"

    # -- set-up ---------------------------------------------------------------------
    def prepare(self) -> tuple[list[Damage], dict[str, str]]:
        """Open the store for writing: check writability, schema version and every file.

        Raises ``StoreError`` (one line, naming the path) for an unwritable directory or a
        store of another schema version. Damaged files are moved to ``damaged/`` (so the
        next steps recompute them); uncommitted metric files are removed. Returns the
        damaged files and ``cell_id -> status`` of the sound cells.
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
        damages, status = self.inspect()
        self.repair(damages)
        self._remove_uncommitted(set(status) | {d.cell_id for d in damages if d.cell_id})
        return damages, status

    def inspect(self, check_version: bool = True) -> tuple[list[Damage], dict[str, str]]:
        """Read only: the damaged files and ``cell_id -> status`` of every sound cell."""
        if check_version:
            self._check_version()
        try:
            return audit(self.root)
        except StoreProblem as exc:
            raise StoreError(str(exc)) from None

    def check_readable(self) -> None:
        """For the commands that read a store (analyze, report, submit, compare): refuse a store
        with damaged files, in one line, instead of reading a wrong or partial number."""
        from core.integrity import describe_damages

        if not self.exists():
            raise StoreError(f"--results {str(self.root)!r}: no results store there")
        # a copy of the tables without store.json is readable: every file's columns are checked
        damages, _ = self.inspect(check_version=self.version_file.exists())
        if damages:
            raise StoreError(
                f"results dir {str(self.root)!r} holds {describe_damages(damages, self.root)}: "
                f"run `harness run-all` on it to move them aside and recompute them"
            )

    def repair(self, damages: list[Damage]) -> None:
        """Move each damaged file to ``damaged/``, with what goes with it: a cell row and its
        metrics file go together; a parent's record goes with a damaged checkpoint."""
        for d in damages:
            paths = [d.path]
            if d.kind in ("cell", "metrics") and d.cell_id:
                paths = [self.cell_path(d.cell_id), self.metrics_dir / f"{d.cell_id}.parquet"]
            elif d.kind == "checkpoint":
                paths.append(d.path.parent / "parent.json")
            for path in paths:
                self.move_aside(path)

    def move_aside(self, path: Path) -> Path | None:
        """``path`` to ``damaged/<its path in the store>`` (``.1``, ``.2``, ... when taken)."""
        target = self.damaged_dir / path.relative_to(self.root)
        n = 0
        while target.exists():
            n += 1
            target = target.with_name(f"{path.name}.{n}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # not there, or moved by a concurrent run
            return None
        return target

    def _remove_uncommitted(self, committed: set[str]) -> None:
        """Metric files without a committed cell row, of cells no run holds (a killed run's)."""
        from filelock import FileLock, Timeout

        for path in map(Path, part_files(self.metrics_dir)):
            if path.stem in committed:
                continue
            lock = FileLock(self.locks_dir / f"{path.stem}.lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # a run is writing that cell now
            try:
                if not self.cell_path(path.stem).exists():
                    path.unlink(missing_ok=True)
            finally:
                lock.release()

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
        except (ValueError, KeyError, TypeError, OSError):
            raise StoreError(f"{self.version_file}: unreadable store version file") from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"results dir {str(self.root)!r} was written with schema version {found}; this prunebench "
                f"reads and writes version {SCHEMA_VERSION}: use another --results dir"
            )

    # -- cells ----------------------------------------------------------------------
    def cell_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.parquet"

    def cell_status_of(self, cell_id: str) -> str | None:
        """The committed status of one cell; a damaged row or metrics file is moved aside
        first (the cell is then not stored: None)."""
        path = self.cell_path(cell_id)
        if not path.exists():
            return None
        try:
            (row,) = read_verified(path).select(["status", "metric_rows", "metrics_sha256"]).to_pylist()
        except FileNotFoundError:
            return None
        except Exception:
            self.repair([Damage("cell", path, "unreadable", cell_id=cell_id)])
            return None
        problem = metrics_problem(self.metrics_dir / f"{cell_id}.parquet", row)
        if problem:
            self.repair([Damage("metrics", self.metrics_dir / f"{cell_id}.parquet", problem, cell_id)])
            return None
        return row["status"]

    def write_cell(self, cell_row: dict, metric_rows: list[dict] | pa.Table) -> None:
        """The metrics file, then the cell row recording its row count and SHA-256 (the commit)."""
        cell_id = cell_row["cell_id"]
        if not isinstance(metric_rows, pa.Table):
            metric_rows = pa.Table.from_pylist(
                [{"cell_id": cell_id, **r} for r in metric_rows], schema=METRIC_SCHEMA
            )
        check = {"metric_rows": metric_rows.num_rows, "metrics_sha256": None}
        if metric_rows.num_rows:
            payload = parquet_bytes(metric_rows.replace_schema_metadata(None), VERSION_META)
            atomic_write_bytes(self.metrics_dir / f"{cell_id}.parquet", payload)
            check["metrics_sha256"] = sha256_bytes(payload)
        row = {**cell_row, **check, "schema_version": SCHEMA_VERSION}
        atomic_write_parquet(
            self.cell_path(cell_id), pa.Table.from_pylist([row], schema=CELL_SCHEMA), VERSION_META
        )

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
        files = {}
        for name, obj in zip(CHECKPOINTS, (state, rewind_state), strict=True):
            payload = torch_bytes(obj)
            atomic_write_bytes(d / name, payload)
            files[name] = sha256_bytes(payload)
        # parent.json last, with the checkpoints' SHA-256: its presence marks the parent complete
        record = {**info, "files": files}
        atomic_write_bytes(d / "parent.json", json.dumps(record, indent=1, sort_keys=True).encode())

    def read_parent(self, parent_id: str) -> tuple[dict, dict, dict]:
        """``(state, rewind state, info)``; ``DamagedFile`` when a file is not the one recorded
        (``torch.load`` verifies nothing: a flipped byte would load as a wrong weight)."""
        import torch

        d = self.parent_dir(parent_id)
        try:
            info = json.loads((d / "parent.json").read_bytes())
            payloads = {name: (d / name).read_bytes() for name in CHECKPOINTS}
        except (OSError, ValueError) as exc:
            raise DamagedFile(f"dense parent {parent_id}: {first_line(exc)}") from None
        for name, payload in payloads.items():
            if sha256_bytes(payload) != (info.get("files") or {}).get(name):
                raise DamagedFile(f"dense parent {parent_id}: {name} is not the file parent.json records")
        state, rewind = (torch.load(io.BytesIO(payloads[n]), weights_only=True) for n in CHECKPOINTS)
        return state, rewind, info

    def discard_parent(self, parent_id: str) -> None:
        """Move a damaged parent's checkpoints and record aside (it is trained again)."""
        d = self.parent_dir(parent_id)
        for name in ("parent.json", *CHECKPOINTS):
            self.move_aside(d / name)

    def dense_rows_path(self, parent_id: str, eval_id: str) -> Path:
        return self.parent_dir(parent_id) / f"dense-{eval_id}.parquet"

    def write_dense_rows(self, parent_id: str, eval_id: str, rows: list[dict]) -> None:
        table = pa.Table.from_pylist([{"cell_id": parent_id, **r} for r in rows], schema=METRIC_SCHEMA)
        atomic_write_parquet(self.dense_rows_path(parent_id, eval_id), table, VERSION_META)

    def read_dense_rows(self, parent_id: str, eval_id: str) -> list[dict] | None:
        """The parent's dense rows under one evaluation config; None when not stored (a damaged
        file is moved aside: it is evaluated again)."""
        path = self.dense_rows_path(parent_id, eval_id)
        if not path.exists():
            return None
        try:
            return read_verified(path).drop(["cell_id"]).to_pylist()
        except FileNotFoundError:
            return None
        except Exception:
            self.move_aside(path)
            return None


class ParentStates:
    """The ``StateCache`` of one dense parent: states its cells share (``pruners.base``),
    stored under ``parents/<id>/states/<key>.pt`` with its SHA-256 in ``<key>.sha256``."""

    def __init__(self, store: ResultsStore, parent_id: str) -> None:
        self.store = store
        self.dir = store.parent_dir(parent_id) / "states"

    def get(self, key: str):
        import torch

        path = self.dir / f"{key}.pt"
        try:
            payload = path.read_bytes()
            recorded = (self.dir / f"{key}.sha256").read_text().strip()
        except OSError:
            return None  # not stored (or its checksum not yet written): computed again
        if sha256_bytes(payload) != recorded:
            self.store.move_aside(path)  # torn or damaged: recomputed, never trusted
            return None
        try:
            return torch.load(io.BytesIO(payload), weights_only=True)
        except Exception:
            return None

    def put(self, key: str, state) -> None:
        payload = torch_bytes(state)
        atomic_write_bytes(self.dir / f"{key}.pt", payload)
        atomic_write_bytes(self.dir / f"{key}.sha256", sha256_bytes(payload).encode())


def torch_bytes(obj) -> bytes:
    """``torch.save`` of ``obj`` as bytes (deterministic: the same tensors, the same bytes)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
