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

from benchmarks.cells import cell_epochs, cell_id, kind_of
from benchmarks.designs import Study, load_study
from benchmarks.filters import apply_filters
from benchmarks.matrix import Preset, PresetError, load_preset
from core.atomic import DiskFullError, is_disk_full
from core.hypotheses import MANIFEST_VERSION
from core.spec import canonical_json
from harness.executors import Executor, LocalExecutor, describe_executor
from harness.storage import ResultsStore
from harness.tasks import CellOutcome, cell_task, parent_task


@dataclass
class RunSummary:
    """What a run found and did. ``stored_before``: cells stored ``ok`` at the start;
    ``failed_before``: cells stored as ``failed`` and not retried; ``attempted``: cells handed
    to the executor (``ran`` of them were run here, the others were taken by another run)."""

    total: int
    stored_before: int
    ran: int
    failed_before: int = 0
    attempted: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: list[CellOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Cells of the plan stored as failed after this run."""
        return self.failed_before + self.counts["failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def plan(cells: list, status: dict[str, str], retry_failed: bool) -> tuple[list, int]:
    """``(cells to run, cells stored as failed and left as they are)``; ``status`` is the
    store's sound cells (``ResultsStore.inspect``): a damaged cell is not stored."""
    todo, failed = [], 0
    for cell in cells:
        s = status.get(cell_id(cell))
        if s is None or (s == "failed" and retry_failed):
            todo.append(cell)
        elif s == "failed":
            failed += 1
    return todo, failed


def parent_jobs(todo: list, cells: list, store: ResultsStore) -> dict[tuple[str, str], object]:
    """One cell per (dense parent, evaluation config) to compute before the cells: the parents of
    the cells to run, and every parent of the plan whose folder is in the store but incomplete
    (its record, a checkpoint or an evaluation missing, or moved aside as damaged): a parent
    kept in the store is kept whole; one deleted as a whole is trained only when a cell needs it."""

    def key(cell) -> tuple[str, str] | None:
        kind = kind_of(cell)
        parent = kind.parent(cell)
        return None if parent is None else (parent.id, kind.eval_config(cell).id)

    jobs: dict[tuple[str, str], object] = {}
    for cell in todo:
        if (k := key(cell)) is not None:
            jobs.setdefault(k, cell)
    for cell in cells:
        if (k := key(cell)) is not None and k not in jobs:
            pid, eval_id = k
            if store.parent_dir(pid).is_dir() and not (
                store.has_parent(pid) and store.dense_rows_path(pid, eval_id).exists()
            ):
                jobs[k] = cell
    return jobs


def describe_repair(damages, store: ResultsStore, dry_run: bool) -> str:
    """One line: what was damaged, where it went, what is recomputed."""
    from core.integrity import describe_damages

    cells = len({d.cell_id for d in damages if d.cell_id})
    parents = len({d.parent_id for d in damages if d.parent_id})
    redo = [f"{cells} cell{'s' if cells != 1 else ''}"] if cells else []
    redo += [f"{parents} dense parent{'s' if parents != 1 else ''}"] if parents else []
    moved = "would move" if dry_run else "moved"
    return (
        f"store: {describe_damages(damages, store.root)}; {moved} aside to {store.damaged_dir}, "
        f"recomputing {' and '.join(redo) or 'nothing (rewritten by this run)'}"
    )


def load_checked_study(name: str, seed_block: int = 0) -> Study:
    """A study with both halves checked: its design expanded (``benchmarks.designs``), its analysis
    registered and its claims ones that analysis can test (``analysis.registry``), so a bad claim
    stops the run (``PresetError``, exit 2) before anything runs."""
    from analysis.registry import ANALYSES, check_study
    from benchmarks.matrix import line_of
    from core.hypotheses import StudyError

    study = load_study(name, seed_block=seed_block)
    if study.analysis not in ANALYSES:
        line = line_of(study.path.read_text(), "analysis")
        raise PresetError(
            f"{study.path}:{line}: key 'analysis': {study.analysis!r} is not one of: {', '.join(ANALYSES)}"
        )
    try:
        check_study(study.definition, str(study.path))
    except StudyError as exc:
        raise PresetError(str(exc)) from None
    return study


def describe_study(name: str) -> str:
    """One line of ``harness list studies``: version, cells, title and claims (or why it is invalid)."""
    try:
        study = load_checked_study(name)
    except PresetError as exc:
        return f"(invalid: {exc})"
    claim_ids = ", ".join(c["id"] for c in study.definition["claim"])
    cells = "the leaderboard's cells" if study.uses_leaderboard else f"{len(study.cells)} cells"
    return f"v{study.version}, {cells}: {study.title} [{claim_ids}]"


@dataclass
class RunPlan:
    """What a run covers: the leaderboard's cells and every study's, each cell once."""

    preset: Preset
    cells: list
    leaderboard: list
    studies: list[Study]


def build_plan(
    preset: str,
    study: str | None = None,
    filters: list[str] | None = None,
    plugins=(),
    seed_block: int = 0,
) -> RunPlan:
    """The preset's leaderboard and studies (or one study only), deduplicated by cell id, filtered.

    ``seed_block`` k > 0 runs the studies only, every seed shifted by ``k * SEED_BLOCK``
    (``benchmarks.designs.shift_seeds``): the verdicts' check on a second, disjoint block of seeds."""
    from benchmarks.designs import shift_seeds

    spec = load_preset(preset, tuple(plugins))
    names = [study] if study is not None else list(spec.studies)
    studies = [load_checked_study(n, seed_block) for n in names]
    leaderboard = [] if study is not None or seed_block else spec.expand()
    if any(s.uses_leaderboard for s in studies) and not leaderboard:
        leaderboard = list(shift_seeds(spec.expand(), seed_block))  # a study of the leaderboard's cells
    seen: dict[str, object] = {}
    for cell in [*leaderboard, *(c for s in studies for c in s.cells)]:
        seen.setdefault(cell_id(cell), cell)
    cells = apply_filters(list(seen.values()), filters or [])
    return RunPlan(spec, cells, leaderboard, studies)


def seed_block_of(cells) -> int:
    """The seed block a study's cells were drawn from (0: the design's own seeds)."""
    from benchmarks.designs import SEED_BLOCK

    return min((c.seed // SEED_BLOCK for c in cells), default=0)


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
                "seed_block": seed_block_of(cells),
                "cell_ids": sorted({cell_id(c) for c in cells}),
            },
        )
    if run.leaderboard:
        store.write_leaderboard(
            {
                "manifest_version": MANIFEST_VERSION,
                "preset": run.preset.name,
                "description": run.preset.description,
                "grid": list(run.preset.grid),
                "cell_ids": sorted({cell_id(c) for c in run.leaderboard}),
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
    seed_block: int = 0,
) -> RunSummary:
    from pruners.plugins import load_plugins

    plugins = tuple(load_plugins(plugins))  # entry points and --plugin modules, in this process
    run = build_plan(preset, study, filters, plugins, seed_block)
    plugins = tuple(dict.fromkeys([*plugins, *run.preset.plugins]))
    cells = run.cells
    executor = executor or LocalExecutor(workers)
    store = ResultsStore(results_dir)
    if dry_run:  # a dry run only reads what is there, and writes nothing
        damages, status = store.inspect() if store.exists() else ([], {})
    else:
        damages, status = store.prepare()
        write_manifests(store, run)
    if damages:
        echo(describe_repair(damages, store, dry_run))
    todo, failed_before = plan(cells, status, retry_failed)
    summary = RunSummary(
        total=len(cells),
        stored_before=len(cells) - len(todo) - failed_before,
        ran=0,
        failed_before=failed_before,
        attempted=0 if dry_run else len(todo),
    )
    what = f"study {study!r}" if study else f"preset {run.preset.name!r}"
    failed_note = (
        f", {failed_before} stored as failed (--retry-failed runs them again)" if failed_before else ""
    )
    echo(
        f"{what}: {len(cells)} cells ({len(run.leaderboard)} leaderboard, "
        f"{len(run.studies)} studies), {summary.stored_before} already stored{failed_note}, "
        f"{len(todo)} to run ({describe_executor(executor)}, device {device})"
    )
    parents = parent_jobs(todo, cells, store) if not dry_run else {}
    if dry_run or not (todo or parents):
        if not todo and not dry_run:
            echo(
                f"nothing to run: 0 cells run; {failed_before} cells of the plan are stored as failed "
                f"(--retry-failed runs them again)"
                if failed_before
                else "nothing to run: 0 cells run, every cell of the plan is stored"
            )
        return summary

    start = time.perf_counter()
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
    """Pre-train a parent; a failure here is recorded later, against each of its cells (a full
    disk is no failure of the parent's: it stops the run)."""
    try:
        return parent_task(spec_json, results_dir, device, plugins)
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(getattr(exc, "filename", None) or results_dir) from None
        return None


def format_summary(summary: RunSummary) -> str:
    ok = summary.stored_before + summary.counts["ok"]
    failed = f", {summary.failed} failed (--retry-failed runs them again)" if summary.failed else ""
    lines = [
        f"done: {summary.ran} cells run in {summary.seconds:.1f} s "
        f"({summary.counts['ok']} ok, {summary.counts['failed']} failed, "
        f"{summary.counts['skipped']} skipped as taken by another run); "
        f"{ok}/{summary.total} cells stored ok{failed}"
    ]
    for f in summary.failures[:20]:
        lines.append(f"  failed {f.cell_id}: {f.reason}")
    if len(summary.failures) > 20:
        lines.append(f"  ... and {len(summary.failures) - 20} more failures (see the cells table)")
    return "\n".join(lines)
