"""Is every file of a results store whole? The read-only audit behind "a cell is done only when
its row and its metrics are complete and readable" (``results/README.md``, "Integrity").

What ``audit`` checks (``harness.storage.ResultsStore.repair`` moves what it finds to
``<results>/damaged/``, and the next run recomputes it):

- ``cells/*.parquet``: read whole with every page checksum verified, with the store's columns
  (another schema is an incompatible store, ``StoreProblem``, not damage);
- ``metrics/<cell_id>.parquet`` of every ``ok`` cell row that records a checksum: present, with
  the SHA-256 and row count the row records (``metrics_sha256``, ``metric_rows``);
- ``parents/<id>/parent.json``: a JSON object; the ``model.pt`` and ``rewind.pt`` it lists with
  the SHA-256 it records for them (``torch.load`` checks no checksum: a flipped byte in a
  tensor loads silently);
- ``parents/<id>/dense-*.parquet``: read whole with every page checksum verified;
- ``studies/*.json`` and ``leaderboard.json``: JSON objects;
- ``locks/*``: regular files. A lock's content is never read (a lock is held, never read),
  so a lock with garbage in it is harmless and left alone: moving a lock that another run
  holds would let two runs compute one cell.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from core.atomic import TMP_PREFIX
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from core.store import StoreProblem, part_files

CHUNK = 1 << 20
# what a damaged file means for the store: the cell it takes with it, or the parent to retrain
KINDS = {
    "cell": "cell row",
    "metrics": "metrics file",
    "parent": "dense parent record",
    "checkpoint": "dense parent checkpoint",
    "dense": "dense parent evaluation",
    "manifest": "manifest",
    "lock": "lock",
}


@dataclass(frozen=True)
class Damage:
    """One damaged file: what it is (``KINDS``), why, and the cell or parent it belongs to."""

    kind: str
    path: Path
    reason: str
    cell_id: str | None = None
    parent_id: str | None = None

    def describe(self, root: Path) -> str:
        try:
            where = self.path.relative_to(root)
        except ValueError:
            where = self.path
        return f"{where} ({KINDS[self.kind]}: {self.reason})"


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def first_line(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def read_verified(path: Path | str):
    """The whole Parquet file as a table, every page checksum verified (raises on damage)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, page_checksum_verification=True) as handle:  # faster than read_table
        return handle.read()


def _written_here(schema) -> bool:
    """Whether a file says it was written with this schema version (its footer's metadata)."""
    return (schema.metadata or {}).get(b"prunebench_schema_version") == str(SCHEMA_VERSION).encode()


def _schema_error(path: Path) -> StoreProblem:
    return StoreProblem(
        f"{path} does not have the schema version {SCHEMA_VERSION} columns; "
        f"written by an incompatible prunebench: use another --results dir"
    )


def audit_cells(root: Path) -> tuple[list[Damage], dict[str, str]]:
    """Damaged cell rows and metrics files, and ``cell_id -> status`` of every sound row."""
    damages: list[Damage] = []
    status: dict[str, str] = {}
    metrics_dir = root / "metrics"
    for path in map(Path, part_files(root / "cells")):
        try:
            table = read_verified(path)
        except FileNotFoundError:
            continue  # removed by a concurrent run between the listing and the read
        except Exception as exc:  # any unreadable file is damage
            damages.append(Damage("cell", path, first_line(exc), cell_id=path.stem))
            continue
        if table.schema.remove_metadata() != CELL_SCHEMA:
            if _written_here(table.schema):  # our file with other columns: a damaged footer
                damages.append(Damage("cell", path, "its footer does not hold the cell columns", path.stem))
                continue
            raise _schema_error(path)
        for row in table.select(["cell_id", "status", "metric_rows", "metrics_sha256"]).to_pylist():
            problem = metrics_problem(metrics_dir / f"{row['cell_id']}.parquet", row)
            if problem:
                damages.append(
                    Damage("metrics", metrics_dir / f"{row['cell_id']}.parquet", problem, row["cell_id"])
                )
            else:
                status[row["cell_id"]] = row["status"]
    return damages, status


def metrics_problem(path: Path, row: dict) -> str | None:
    """Why the metrics file of a committed cell row is not the one it committed (None: it is)."""
    if row["status"] != "ok" or not row.get("metrics_sha256"):
        return None  # a failed cell has no metrics; a row without a checksum was not written by the harness
    try:
        found = sha256_file(path)
    except FileNotFoundError:
        return f"missing, its cell row records {row['metric_rows']} rows"
    except OSError as exc:
        return first_line(exc)
    if found != row["metrics_sha256"]:
        return "its SHA-256 is not the one its cell row records (truncated, damaged or replaced)"
    return None


def audit_parent(folder: Path) -> list[Damage]:
    """A dense parent's record, checkpoints and evaluation files."""
    parent_id = folder.name
    damages = []
    record = folder / "parent.json"
    if record.exists():
        try:
            info = json.loads(record.read_bytes())
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
            return [Damage("parent", record, first_line(exc), parent_id=parent_id)]
        for name, digest in (info.get("files") or {}).items():
            path = folder / name
            try:
                ok = sha256_file(path) == digest
                reason = "its SHA-256 is not the one parent.json records (torn or damaged)"
            except FileNotFoundError:
                ok, reason = False, "missing, parent.json lists it"
            if not ok:
                damages.append(Damage("checkpoint", path, reason, parent_id=parent_id))
    for path in sorted(folder.glob("dense-*.parquet")):
        try:
            read_verified(path)
        except FileNotFoundError:
            continue
        except Exception as exc:
            damages.append(Damage("dense", path, first_line(exc), parent_id=parent_id))
    return damages


def audit_manifests(root: Path) -> list[Damage]:
    studies = root / "studies"
    paths = [root / "leaderboard.json", *(sorted(studies.glob("*.json")) if studies.is_dir() else [])]
    damages = []
    for path in paths:
        if path.name.startswith(TMP_PREFIX) or not path.exists():
            continue
        try:
            if not isinstance(json.loads(path.read_bytes()), dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
            damages.append(Damage("manifest", path, first_line(exc)))
    return damages


def audit_locks(root: Path) -> list[Damage]:
    locks = root / "locks"
    if not locks.is_dir():
        return []
    return [Damage("lock", p, "not a regular file") for p in sorted(locks.iterdir()) if not p.is_file()]


def audit(root: Path | str) -> tuple[list[Damage], dict[str, str]]:
    """Every damaged file of the store at ``root`` and ``cell_id -> status`` of its sound cells."""
    root = Path(root)
    damages, status = audit_cells(root)
    for path in map(Path, part_files(root / "metrics")):
        try:
            found = _read_schema(path)
        except FileNotFoundError:
            continue
        except Exception as exc:
            if path.stem in status:  # a metrics file of no sound row is removed, not audited
                damages.append(Damage("metrics", path, first_line(exc), cell_id=path.stem))
            continue
        if found.remove_metadata() != METRIC_SCHEMA:
            if _written_here(found):
                damages.append(
                    Damage("metrics", path, "its footer does not hold the metric columns", path.stem)
                )
                continue
            raise _schema_error(path)
    parents = root / "parents"
    for folder in sorted(p for p in parents.iterdir() if p.is_dir()) if parents.is_dir() else ():
        damages += audit_parent(folder)
    damages += audit_manifests(root) + audit_locks(root)
    unique = {(d.kind, d.path): d for d in damages}  # a metrics file found twice is one damage
    for d in unique.values():
        if d.cell_id is not None:
            status.pop(d.cell_id, None)
    return list(unique.values()), status


def _read_schema(path: Path):
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def describe_damages(damages: list[Damage], root: Path) -> str:
    """One line: how many damaged files of each kind, and the first one."""
    counts: dict[str, int] = {}
    for d in damages:
        counts[KINDS[d.kind]] = counts.get(KINDS[d.kind], 0) + 1
    kinds = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in counts.items())
    plural = "s" if len(damages) > 1 else ""
    return f"{len(damages)} damaged file{plural} ({kinds}; first: {damages[0].describe(root)})"
