"""Worker-side units of work: make sure a dense parent exists; run and store one cell.

Both run in any worker process (local pool, Slurm job) and import the run's plugins first,
so a cell runs the same code wherever it runs. Locks under ``<results>/locks`` keep two
runs on one store from computing the same parent, parent evaluation or cell twice.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from filelock import FileLock, Timeout

from core.atomic import DiskFullError, is_disk_full
from core.spec import CellSpec, EvalConfig, ParentSpec, StabilitySpec, canonical_json
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
    cell = CellSpec.from_dict(json.loads(spec_json))
    store = ResultsStore(results_dir)
    state, _, _ = ensure_parent(store, cell.parent, device)
    ensure_dense_rows(store, cell.parent, state, cell.eval, device)
    return cell.parent.id


def spec_from_json(spec_json: str):
    """A ``CellSpec`` or a ``StabilitySpec``, by the ``cell_type`` field."""
    d = json.loads(spec_json)
    return StabilitySpec.from_dict(d) if d.get("cell_type") == "stability" else CellSpec.from_dict(d)


def spec_id(spec) -> str:
    from pruners import PRUNERS

    if isinstance(spec, CellSpec):
        return spec.cell_id(PRUNERS.get(spec.pruner).version)
    return spec.cell_id(PRUNERS.get(spec.scorer).version)


def _plugin_columns(cls) -> dict:
    return {
        "plugin": cls.plugin[0] if cls.plugin else None,
        "plugin_version": cls.plugin[1] if cls.plugin else None,
    }


def stability_row(spec: StabilitySpec, cell_id: str, preset: str, device: str) -> dict:
    from pruners import PRUNERS

    scorer = PRUNERS.get(spec.scorer)
    return {
        "cell_id": cell_id,
        "parent_id": None,
        "cell_type": "stability",
        "arch": spec.arch,
        "dataset": spec.dataset,
        "pruner": spec.target,
        "pruner_kind": "structured",
        "pruner_timing": "during_training",
        "pruner_version": scorer.version,
        "pruner_config": canonical_json(spec.scorer_config),
        **_plugin_columns(scorer),
        "sparsity": spec.final_fraction,
        "seed": spec.seed,
        "retrain": None,
        "control": None,
        "eval_sets": "clean",
        "schedule": f"every_{spec.every}",
        "score": spec.scorer,
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
        "cell_type": "prune",
        "arch": spec.arch,
        "dataset": spec.dataset,
        "pruner": spec.pruner,
        "pruner_kind": pruner.kind,
        "pruner_timing": pruner.timing,
        "pruner_version": pruner.version,
        "pruner_config": canonical_json(spec.pruner_config),
        **_plugin_columns(pruner),
        "sparsity": spec.sparsity,
        "seed": spec.seed,
        "retrain": spec.retrain,
        "control": spec.control,
        "eval_sets": spec.eval.sets,
        "spec_json": canonical_json(spec.to_dict()),
        "preset": preset,
        "device": device,
        **environment(),
    }


def check_plugin(spec: CellSpec) -> None:
    """A cell names the plugin version it was planned with; a worker with another refuses it."""
    from pruners import PRUNERS

    plugin = PRUNERS.get(spec.pruner).plugin
    here = f"{plugin[0]}=={plugin[1]}" if plugin else None
    if here != spec.plugin:
        raise RuntimeError(
            f"pruner {spec.pruner!r} comes from {here or 'prunebench'} here, the cell needs {spec.plugin}"
        )


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
        stability = isinstance(spec, StabilitySpec)
        row = (stability_row if stability else cell_row)(spec, cell_id, preset, device)
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            if stability:
                from benchmarks.stability import run_stability

                rows, seconds = run_stability(spec, device), {}
                budget = {
                    "epochs_dense": 0.0,
                    "epochs_prune": float(spec.train.epochs),
                    "epochs_retrain": 0.0,
                }
                row.update(status="ok", reason=None, traceback=None, **budget)
            else:
                from benchmarks.pipeline import run_cell

                check_plugin(spec)
                state, rewind, info = ensure_parent(store, spec.parent, device)
                dense = ensure_dense_rows(store, spec.parent, state, spec.eval, device)
                result = run_cell(
                    spec,
                    state,
                    rewind,
                    device,
                    store.cache_dir,
                    parent_budget=(info["epochs"], info["train_flops"]),
                    state_cache=ParentStates(store, spec.parent.id),
                )
                seconds = result.seconds
                rows = dense + result.rows
                row.update(
                    status="ok",
                    reason=None,
                    traceback=None,
                    dense_train_s=info["train_seconds"],
                    **result.budget,
                )
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
