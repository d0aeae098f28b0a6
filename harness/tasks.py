"""Worker-side units of work: make sure a dense parent exists; run and store one cell.

Both run in any worker process (local pool, Slurm job). Locks under ``<results>/locks``
keep two runs on one store from computing the same parent or cell twice.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from filelock import FileLock, Timeout

from benchmarks.spec import CellSpec, ParentSpec, canonical_json
from harness.environment import environment
from harness.storage import ResultsStore


@dataclass
class CellOutcome:
    cell_id: str
    status: str  # ok | failed | skipped (another process holds or finished it)
    reason: str = ""
    seconds: float = 0.0


def ensure_parent(store: ResultsStore, spec: ParentSpec, device: str) -> tuple[dict, dict, list[dict], dict]:
    """Load the dense parent, training and storing it first if no run has."""
    from benchmarks.pipeline import train_parent

    with FileLock(store.locks_dir / f"{spec.id}.lock"):
        if not store.has_parent(spec.id):
            result = train_parent(spec, device, store.cache_dir)
            info = {"spec": spec.to_dict(), "train_seconds": result.train_seconds, **environment()}
            store.write_parent(spec.id, result.state, result.rewind_state, result.rows, info)
    return store.read_parent(spec.id)


def parent_task(spec_json: str, results_dir: str, device: str) -> str:
    import json

    d = json.loads(spec_json)
    cell = CellSpec.from_dict(d)
    ensure_parent(ResultsStore(results_dir), cell.parent, device)
    return cell.parent.id


def spec_from_json(spec_json: str):
    """A ``CellSpec`` or a ``StabilitySpec``, by the ``study`` field."""
    import json

    d = json.loads(spec_json)
    if d.get("study") == "stability":
        from benchmarks.stability import StabilitySpec

        return StabilitySpec.from_dict(d)
    return CellSpec.from_dict(d)


def spec_id(spec) -> str:
    if isinstance(spec, CellSpec):
        from pruners import PRUNERS

        return spec.cell_id(PRUNERS.get(spec.pruner).version)
    return spec.cell_id()


def stability_row(spec, cell_id: str, preset: str, device: str) -> dict:
    from benchmarks.stability import STABILITY_VERSION

    return {
        "cell_id": cell_id,
        "parent_id": None,
        "study": spec.study,
        "arch": spec.arch,
        "dataset": spec.dataset,
        "pruner": spec.target,
        "pruner_kind": "structured",
        "pruner_timing": "during_training",
        "pruner_version": str(STABILITY_VERSION),
        "sparsity": spec.final_fraction,
        "seed": spec.seed,
        "retrain": None,
        "schedule": spec.schedule,
        "score": spec.score,
        "variant": spec.variant,
        "spec_json": canonical_json(spec.to_dict()),
        "preset": preset,
        "device": device,
        **environment(),
    }


def cell_row(spec: CellSpec, cell_id: str, preset: str, device: str) -> dict:
    from pruners import PRUNERS

    pruner = PRUNERS.get(spec.pruner)
    return {
        "cell_id": cell_id,
        "parent_id": spec.parent.id,
        "study": spec.study,
        "arch": spec.arch,
        "dataset": spec.dataset,
        "pruner": spec.pruner,
        "pruner_kind": pruner.kind,
        "pruner_timing": pruner.timing,
        "pruner_version": pruner.version,
        "sparsity": spec.sparsity,
        "seed": spec.seed,
        "retrain": spec.retrain,
        "spec_json": canonical_json(spec.to_dict()),
        "preset": preset,
        "device": device,
        **environment(),
    }


def cell_task(
    spec_json: str, results_dir: str, preset: str, device: str, retry_failed: bool = False
) -> CellOutcome:
    """Run one cell and commit its rows; a failure is stored as ``failed`` with its reason."""
    spec = spec_from_json(spec_json)
    cell_id = spec_id(spec)
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
        stability = not isinstance(spec, CellSpec)
        row = (stability_row if stability else cell_row)(spec, cell_id, preset, device)
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            if stability:
                from benchmarks.stability import run_stability

                rows, seconds = run_stability(spec, device), {}
                row.update(status="ok", reason=None, traceback=None)
            else:
                from benchmarks.pipeline import run_cell

                state, rewind, dense_rows, info = ensure_parent(store, spec.parent, device)
                result = run_cell(spec, state, rewind, device, store.cache_dir)
                seconds = result.seconds
                rows = dense_rows + result.rows
                row.update(status="ok", reason=None, traceback=None, dense_train_s=info["train_seconds"])
        except Exception as exc:
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
