"""``harness submit``: pack a results store's ``ok`` cells into one bundle (``harness.bundle``
describes the format; ``harness verify`` checks one, ``harness.verify``).

Modelled on RobustBench, which stores each entry's reported number beside a re-measured one.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import TMP_PREFIX, atomic_write
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from core.store import part_files
from harness.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    CELLS,
    LEADERBOARD,
    MANIFEST,
    METRICS,
    STUDY_MEMBER,
    SUFFIX,
    BundleError,
)
from harness.storage import VERSION_META, ResultsStore, StoreError


# -- environment ----------------------------------------------------------------------------
def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (None where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return None


def machine_environment() -> dict:
    """What decides whether numbers can be bit-identical: versions, platform, CPU, device."""
    from harness.environment import default_device, environment

    env = environment()
    return {
        "torch_version": env["torch_version"],
        "numpy_version": env["numpy_version"],
        "python_version": env["python_version"],
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "device": default_device(),
    }


# -- submit ---------------------------------------------------------------------------------
def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(VERSION_META), buffer)
    return buffer.getvalue()


def _read_store(results_dir: str) -> tuple[pa.Table, pa.Table]:
    """The store's ``ok`` cells and their metric rows, as stored (sorted by cell id)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    store = ResultsStore(results_dir)
    if not store.exists():
        raise StoreError(f"--results {results_dir!r}: no results store there")
    store._check_version()  # a store of another schema version is not bundled
    cell_files, metric_files = part_files(store.cells_dir), part_files(store.metrics_dir)
    try:
        cells = ds.dataset(cell_files, schema=CELL_SCHEMA, format="parquet").to_table(
            filter=pc.field("status") == "ok"
        )
        cells = cells.sort_by("cell_id").replace_schema_metadata(None)
        ids = pa.array(cells["cell_id"].to_pylist(), pa.string())
        metrics = ds.dataset(metric_files, schema=METRIC_SCHEMA, format="parquet").to_table(
            filter=pc.field("cell_id").isin(ids)
        )
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"--results {results_dir!r}: unreadable store ({first})") from None
    if cells.num_rows == 0:
        raise StoreError(f"--results {results_dir!r}: no ok cells to submit")
    return cells, metrics.replace_schema_metadata(None)


def _presets(recorded: list[str], preset: str | None) -> list[dict]:
    """The preset file(s) the cells were run with: the one given, else each recorded one found."""
    from benchmarks.matrix import PresetError, preset_path

    if preset is not None:
        path = preset_path(preset)  # PresetError (exit 2) for an unknown one
        return [{"name": path.stem, "path": str(path), "text": path.read_text()}]
    out = []
    for name in recorded:
        try:
            path = preset_path(name)
        except PresetError:
            continue  # a preset file that is not shipped (and not given): names only
        out.append({"name": name, "path": str(path), "text": path.read_text()})
    return out


def submit(results_dir: str, out: str, preset: str | None = None) -> str:
    """Write the bundle of ``results_dir``'s ok cells to ``out`` (a ``.tar.gz``); a summary line."""
    import hashlib

    from harness.environment import git_commit

    out_path = Path(out)
    if not out_path.name.endswith(SUFFIX) or out_path.name == SUFFIX:
        raise BundleError(
            f"--out {out!r}: a bundle is a {SUFFIX} file, e.g. {out_path.stem or 'entry'}{SUFFIX}"
        )
    cells, metrics = _read_store(results_dir)
    root = Path(results_dir)
    members: dict[str, bytes] = {CELLS: _parquet_bytes(cells), METRICS: _parquet_bytes(metrics)}
    if (root / LEADERBOARD).is_file():
        members[LEADERBOARD] = (root / LEADERBOARD).read_bytes()
    for path in sorted((root / "studies").glob("*.json")) if (root / "studies").is_dir() else ():
        if not path.name.startswith(TMP_PREFIX) and STUDY_MEMBER.match(f"studies/{path.name}"):
            members[f"studies/{path.name}"] = path.read_bytes()

    plugins = sorted(
        {
            (p, v)
            for p, v in zip(cells["plugin"].to_pylist(), cells["plugin_version"].to_pylist(), strict=True)
            if p
        }
    )
    recorded = sorted({p for p in cells["preset"].to_pylist() if p})
    created = datetime.now(UTC)
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created_at": created.isoformat(),
        "environment": machine_environment(),
        "git_commit": git_commit(),
        "plugins": [{"name": p, "version": v} for p, v in plugins],
        "preset_names": recorded,
        "presets": _presets(recorded, preset),
        "counts": {"cells": cells.num_rows, "metric_rows": metrics.num_rows},
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in members.items()
        },
    }
    payload = json.dumps(manifest, indent=1, sort_keys=True).encode()

    def write(handle) -> None:
        with tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name, data in [(MANIFEST, payload), *members.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(created.timestamp()), 0o644
                tar.addfile(info, io.BytesIO(data))

    try:
        atomic_write(out_path, write)
    except OSError as exc:
        raise BundleError(f"--out {out!r}: cannot write there: {exc.strerror or exc}") from None
    size = out_path.stat().st_size
    return f"bundle {out}: {cells.num_rows} cells, {metrics.num_rows} metric rows, {size} bytes"
