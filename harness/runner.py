"""``run-all``: expand a preset and its studies, skip stored cells, train missing parents, run cells.

Stage 1 trains every missing dense parent once (in parallel across parents); stage 2 runs
the cells, each loading its parent from the store. Both stages are resumable and safe to
run from two processes on one store.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from benchmarks.matrix import Preset, apply_filters, load_preset
from benchmarks.studies import Study, load_study
from core.spec import CellSpec, StabilitySpec, canonical_json
from core.studies import MANIFEST_VERSION
from harness.executors import Executor, LocalExecutor, describe_executor
from harness.storage import ResultsStore
from harness.tasks import CellOutcome, cell_task, parent_task, spec_id


@dataclass
class RunSummary:
    total: int
    stored_before: int
    ran: int
    counts: Counter = field(default_factory=Counter)
    failures: list[CellOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def cell_epochs(cell) -> float:
    """Training epoch-equivalents of one cell, its dense parent excluded (the LPT order and the
    GPU-hour estimate use it); an after-training pruner's pruning phase (``PhasePruner``) counts."""
    if isinstance(cell, StabilitySpec):  # a stability-study run trains from scratch
        return float(cell.train.epochs)
    from benchmarks.retrain import retrain_epochs
    from pruners import PRUNERS, get_pruner
    from pruners.base import phase_epochs
    from pruners.imp import round_targets

    cls = PRUNERS.get(cell.pruner)
    total = float(cell.train.epochs)
    phase = float(phase_epochs(get_pruner(cell.pruner, cell.pruner_config), cell.train))
    if cls.timing == "at_init":
        return total
    if cell.control == "reinit":
        return phase + total
    retrain = float(retrain_epochs(cell.retrain, cell.train, cell.retrain_config))
    if cls.timing == "after_training":
        return phase + retrain
    if cell.pruner == "imp":
        rounds = len(round_targets(cell.sparsity, cell.pruner_config.get("rate", 0.2)))
        return rounds * (total - cell.retrain_config.rewind_epoch) + retrain
    return total + retrain


def plan(cells: list, store: ResultsStore, retry_failed: bool) -> list:
    status = store.cell_status()
    todo = []
    for cell in cells:
        s = status.get(spec_id(cell))
        if s is None or (s == "failed" and retry_failed):
            todo.append(cell)
    return todo


@dataclass
class RunPlan:
    """What a run covers: the leaderboard's cells and every study's, each cell once."""

    preset: Preset
    cells: list
    leaderboard: list
    studies: list[Study]


def build_plan(
    preset: str, study: str | None = None, filters: list[str] | None = None, plugins=()
) -> RunPlan:
    """The preset's leaderboard and studies (or one study only), deduplicated by cell id, filtered."""
    spec = load_preset(preset, tuple(plugins))
    names = [study] if study is not None else list(spec.studies)
    studies = [load_study(n) for n in names]
    leaderboard = [] if study is not None else spec.expand()
    if any(s.uses_leaderboard for s in studies) and not leaderboard:
        leaderboard = spec.expand()  # a study of the leaderboard's cells needs them
    seen: dict[str, object] = {}
    for cell in [*leaderboard, *(c for s in studies for c in s.cells)]:
        seen.setdefault(spec_id(cell), cell)
    cells = apply_filters(list(seen.values()), filters or [])
    return RunPlan(spec, cells, leaderboard, studies)


def write_manifests(store: ResultsStore, run: RunPlan) -> None:
    """Each study's definition and cell ids, and the leaderboard's grid and cell ids."""
    for s in run.studies:
        cells = run.leaderboard if s.uses_leaderboard else s.cells
        store.write_manifest(
            s.name,
            {
                "manifest_version": MANIFEST_VERSION,
                "name": s.name,
                "version": s.version,
                "definition": s.definition,
                "cell_ids": sorted({spec_id(c) for c in cells}),
            },
        )
    if run.leaderboard:
        store.write_leaderboard(
            {
                "manifest_version": MANIFEST_VERSION,
                "preset": run.preset.name,
                "description": run.preset.description,
                "grid": list(run.preset.grid),
                "cell_ids": sorted({spec_id(c) for c in run.leaderboard}),
            }
        )


def run_all(
    preset: str,
    results_dir: str,
    workers: int = 1,
    filters: list[str] | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    device: str = "cpu",
    echo=print,
    executor: Executor | None = None,
    study: str | None = None,
    plugins: tuple[str, ...] = (),
) -> RunSummary:
    from pruners.plugins import load_plugins

    plugins = tuple(load_plugins(plugins))  # entry points and --plugin modules, in this process
    run = build_plan(preset, study, filters, plugins)
    plugins = tuple(dict.fromkeys([*plugins, *run.preset.plugins]))
    cells = run.cells
    executor = executor or LocalExecutor(workers)
    store = ResultsStore(results_dir)
    if not dry_run:
        store.prepare()  # a dry run only reads what is there, and writes nothing
        write_manifests(store, run)
    todo = plan(cells, store, retry_failed)
    summary = RunSummary(total=len(cells), stored_before=len(cells) - len(todo), ran=0)
    what = f"study {study!r}" if study else f"preset {run.preset.name!r}"
    echo(
        f"{what}: {len(cells)} cells ({len(run.leaderboard)} leaderboard, "
        f"{len(run.studies)} studies), {summary.stored_before} already stored, "
        f"{len(todo)} to run ({describe_executor(executor)}, device {device})"
    )
    if dry_run or not todo:
        if not todo:
            echo("nothing to run: 0 cells run, every cell of the plan is stored")
        return summary

    start = time.perf_counter()
    parents: dict[tuple[str, str], CellSpec] = {}
    for cell in todo:
        if isinstance(cell, CellSpec):
            parents.setdefault((cell.parent.id, cell.eval.id), cell)
    if parents:
        jobs = [(canonical_json(c.to_dict()), results_dir, device, plugins) for c in parents.values()]
        with tqdm(total=len(jobs), desc="dense parents", unit="model") as bar:
            for _ in executor.map_unordered(parent_task_safe, jobs):
                bar.update()

    # longest first (LPT scheduling): the costly from-scratch cells do not trail at the end
    todo = sorted(todo, key=lambda c: -cell_epochs(c))
    jobs = [
        (canonical_json(c.to_dict()), results_dir, run.preset.name, device, retry_failed, plugins)
        for c in todo
    ]
    with tqdm(total=len(jobs), desc="cells", unit="cell") as bar:
        for outcome in executor.map_unordered(cell_task, jobs):
            summary.counts[outcome.status] += 1
            if outcome.status == "failed":
                summary.failures.append(outcome)
            bar.set_postfix(ok=summary.counts["ok"], failed=summary.counts["failed"], refresh=False)
            bar.update()
    summary.ran = summary.counts["ok"] + summary.counts["failed"]
    summary.seconds = time.perf_counter() - start
    return summary


def parent_task_safe(
    spec_json: str, results_dir: str, device: str, plugins: tuple[str, ...] = ()
) -> str | None:
    """Pre-train a parent; a failure here is recorded later, against each of its cells."""
    try:
        return parent_task(spec_json, results_dir, device, plugins)
    except Exception:
        return None


def format_summary(summary: RunSummary) -> str:
    stored = summary.stored_before + summary.counts["ok"] + summary.counts["failed"]
    lines = [
        f"done: {summary.ran} cells run in {summary.seconds:.1f} s "
        f"({summary.counts['ok']} ok, {summary.counts['failed']} failed, "
        f"{summary.counts['skipped']} skipped as taken by another run); "
        f"{stored}/{summary.total} cells stored"
    ]
    for f in summary.failures[:20]:
        lines.append(f"  failed {f.cell_id}: {f.reason}")
    if len(summary.failures) > 20:
        lines.append(f"  ... and {len(summary.failures) - 20} more failures (see the cells table)")
    return "\n".join(lines)
