"""Worker-side units of work: make sure a dense parent exists; run and store one cell.

Both run in any worker process (local pool, Slurm job) and import the run's plugins first,
so a cell runs the same code wherever it runs. Locks under ``<results>/locks`` keep two
runs on one store from computing the same parent, parent evaluation or cell twice.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from filelock import FileLock, Timeout

from benchmarks.cells import kind_of, spec_from_json
from core.atomic import DiskFullError, is_disk_full
from core.spec import EvalConfig, ParentSpec
from harness.environment import environment
from harness.storage import DamagedFile, ParentStates, ResultsStore


@dataclass
class CellOutcome:
    cell_id: str
    status: str  # ok | failed | skipped (another process holds or finished it)
    reason: str = ""
    seconds: float = 0.0


def ensure_parent(store: ResultsStore, spec: ParentSpec, device: str) -> tuple[dict, dict, dict]:
    """Load the dense parent, training and storing it first if no run has."""
    from benchmarks.pipeline import train_parent

    with FileLock(store.locks_dir / f"{spec.id}.lock"):
        if store.has_parent(spec.id):
            try:
                return store.read_parent(spec.id)
            except DamagedFile:  # torn or damaged since it was written: moved aside, trained again
                store.discard_parent(spec.id)
        result = train_parent(spec, device)
        info = {
            "spec": spec.to_dict(),
            "train_seconds": result.train_seconds,
            "epochs": result.epochs,
            "train_flops": result.flops,
            **environment(),
        }
        store.write_parent(spec.id, result.state, result.rewind_state, info)
        return store.read_parent(spec.id)


def ensure_dense_rows(
    store: ResultsStore, spec: ParentSpec, state: dict, config: EvalConfig, device: str
) -> list[dict]:
    """The parent's ``dense`` rows under ``config``, evaluated once per (parent, config)."""
    from benchmarks.pipeline import dense_rows

    rows = store.read_dense_rows(spec.id, config.id)
    if rows is not None:
        return rows
    with FileLock(store.locks_dir / f"{spec.id}-{config.id}.lock"):
        rows = store.read_dense_rows(spec.id, config.id)
        if rows is None:
            rows = dense_rows(spec, state, config, device, store.cache_dir)
            store.write_dense_rows(spec.id, config.id, rows)
    return rows


def parent_task(spec_json: str, results_dir: str, device: str, plugins: tuple[str, ...] = ()) -> str:
    from pruners.plugins import load_plugins

    load_plugins(plugins)
    cell = spec_from_json(spec_json)
    kind = kind_of(cell)
    parent, config = kind.parent(cell), kind.eval_config(cell)
    store = ResultsStore(results_dir)
    state, _, _ = ensure_parent(store, parent, device)
    ensure_dense_rows(store, parent, state, config, device)
    return parent.id


class StoreEnvironment:
    """What a running cell gets from the store (``benchmarks.cell_kind.CellEnvironment``): its
    dense parent, trained and evaluated once under locks, and the shared states of its cells."""

    def __init__(self, store: ResultsStore, device: str) -> None:
        self.store, self.device, self.cache_dir = store, device, store.cache_dir

    def parent(self, spec: ParentSpec) -> tuple[dict, dict, dict]:
        return ensure_parent(self.store, spec, self.device)

    def dense_rows(self, spec: ParentSpec, state: dict, config: EvalConfig) -> list[dict]:
        return ensure_dense_rows(self.store, spec, state, config, self.device)

    def state_cache(self, parent_id: str) -> ParentStates:
        return ParentStates(self.store, parent_id)


def cell_task(
    spec_json: str,
    results_dir: str,
    preset: str,
    device: str,
    retry_failed: bool = False,
    plugins: tuple[str, ...] = (),
) -> CellOutcome:
    """Run one cell and commit its rows; a failure is stored as ``failed`` with its reason."""
    from pruners.plugins import load_plugins

    load_plugins(plugins)
    spec = spec_from_json(spec_json)
    kind = kind_of(spec)
    cell_id = kind.cell_id(spec)
    store = ResultsStore(results_dir)
    lock = FileLock(store.locks_dir / f"{cell_id}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return CellOutcome(cell_id, "skipped", "another run holds this cell")
    try:
        status = store.cell_status_of(cell_id)
        if status == "ok" or (status == "failed" and not retry_failed):
            return CellOutcome(cell_id, "skipped", "already stored")
        row = {**kind.row(spec, cell_id), "preset": preset, "device": device, **environment()}
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            out = kind.run(spec, StoreEnvironment(store, device))
            rows, seconds = out.rows, out.seconds
            row.update(status="ok", reason=None, traceback=None, **out.columns)
        except Exception as exc:
            if isinstance(exc, DiskFullError):  # not the cell's failure: the run stops, cells are kept
                raise
            if is_disk_full(exc):
                raise DiskFullError(exc.filename or store.root) from None
            rows, seconds = [], {}
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            row.update(status="failed", reason=reason, traceback=traceback.format_exc(limit=8)[-4000:])
        total = time.perf_counter() - t0
        row.update(
            prune_s=seconds.get("prune"),
            retrain_s=seconds.get("retrain"),
            eval_s=seconds.get("eval"),
            total_s=total,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        store.write_cell(row, rows)
        return CellOutcome(cell_id, row["status"], row.get("reason") or "", total)
    finally:
        lock.release()
