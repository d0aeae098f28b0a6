"""``python -m harness`` / ``prunebench``: list registries, run the matrix or one cell.

Bad input (an unknown name, a sparsity outside [0, 1), a malformed preset or number, a results
dir that cannot be written, an option given twice) ends with one line on stderr and exit
status 2, before anything is written; so does a full disk, after the finished cells.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.matrix import PresetError
from core.atomic import DiskFullError
from core.config import ConfigError
from core.registry import UnknownNameError
from core.store import StoreProblem
from harness.executors import WorkerCrash
from harness.parser import build_parser
from harness.slurm import SlurmJobError
from harness.storage import StoreError
from pruners.plugins import PluginError
from reports.output import ReportOutputError, check_out

USAGE_ERRORS = (
    UnknownNameError,
    PresetError,
    StoreError,
    PluginError,
    ConfigError,
    StoreProblem,
    DiskFullError,
    ReportOutputError,
)
SITE = "site"  # the report of a store goes to <results>/site unless --out says otherwise


def cmd_list(what: str, verbose: bool = False) -> int:
    from benchmarks import archs, datasets, designs, matrix
    from core.config import describe_config
    from harness.runner import describe_study
    from pruners import PRUNERS

    if what in ("all", "pruners"):
        print(f"pruners ({len(PRUNERS)}):")
        for name in PRUNERS:
            cls = PRUNERS.get(name)
            origin = f"  [plugin {cls.plugin[0]} {cls.plugin[1]}]" if cls.plugin else ""
            print(f"  {name:<20} {cls.kind:<13} {cls.timing:<16} v{cls.version}  {cls.summary()}{origin}")
            if verbose:
                for field, kind, default, doc in describe_config(cls.Config):
                    print(f"      {field} = {default!r} ({kind}): {doc}")
        if verbose:
            from core.spec import EvalConfig

            print("evaluation settings (a preset's [eval] table; they enter every cell id):")
            for field, kind, default, doc in describe_config(EvalConfig):
                print(f"      {field} = {default!r} ({kind}): {doc}")
    if what in ("all", "archs"):
        print(f"archs ({len(archs.ARCHS)}):")
        for name in archs.ARCHS:
            print(f"  {name:<20} {archs.describe(name)}")
    if what in ("all", "datasets"):
        print(f"datasets ({len(datasets.DATASETS)}):")
        for name in datasets.DATASETS:
            print(f"  {name:<20} {datasets.describe(name)}")
    if what in ("all", "presets"):
        print(f"presets ({len(matrix.preset_names())}):")
        for name in matrix.preset_names():
            print(f"  {name:<20} {matrix.describe(name)}")
    if what in ("all", "studies"):
        print(f"studies ({len(designs.study_names())}):")
        for name in designs.study_names():
            print(f"  {name:<26} {describe_study(name)}")
    return 0


def resolve_device(device: str | None, local: bool = True) -> str:
    """The device cells run on; ``cuda`` on a machine without a GPU is refused here, at plan
    time (``local=False``: the cells run elsewhere, on a Slurm node)."""
    from harness.environment import default_device

    if device is None:
        return default_device()
    if device not in ("cpu", "cuda"):
        raise PresetError(f"--device {device!r}: valid: cpu, cuda")
    if device == "cuda" and local and default_device() != "cuda":
        raise PresetError("--device cuda: no CUDA GPU is available on this machine; valid here: cpu")
    return device


def preset_and_study(preset: str | None, study: str | None) -> str:
    """The preset a run uses. ``--study`` alone runs that study on its own design; with an
    explicit ``--preset`` the study must be one the preset lists (never silently another)."""
    if study is None or preset is None:
        return preset or "default"
    from benchmarks.designs import load_study
    from benchmarks.matrix import load_preset

    load_study(study)  # an unknown study: did you mean ...
    listed = load_preset(preset).studies
    if study not in listed:
        raise PresetError(
            f"--study {study!r}: preset {preset!r} does not list it (its studies: "
            f"{', '.join(listed) or 'none'}); give --study without --preset to run it on its own"
        )
    return preset


SLURM_OPTIONS = ("partition", "gpus_per_cell", "max_parallel", "time_limit")


def refuse_conflicts(args: argparse.Namespace) -> None:
    """Options that would be silently ignored are an error: Slurm's without ``--executor slurm``,
    ``--out`` without a report."""
    given = getattr(args, "_given", set())
    if args.executor != "slurm":
        for dest in SLURM_OPTIONS:
            if dest in given:
                raise PresetError(f"--{dest.replace('_', '-')} applies to --executor slurm only")
    if args.out is not None and (args.no_report or args.dry_run):
        raise PresetError(
            f"--out names the report's folder; {'--no-report' if args.no_report else '--dry-run'} builds none"
        )


def report_dir(results: str, out: str | None) -> str:
    return out if out is not None else str(Path(results) / SITE)


def cmd_run_all(args: argparse.Namespace) -> int:
    from harness.executors import available_cores
    from harness.runner import format_summary, run_all

    preset = preset_and_study(args.preset, args.study)
    refuse_conflicts(args)
    device = resolve_device(args.device, local=args.executor == "local")
    if device == "cuda" and args.executor == "slurm" and args.gpus_per_cell < 1:
        raise PresetError("--device cuda with --executor slurm needs --gpus-per-cell 1 or more")
    out = report_dir(args.results, args.out)
    if args.out is not None and not args.no_report and not args.dry_run:
        check_out(Path(out))  # before any cell runs: a report that cannot be written is bad input
    workers = args.workers if args.workers is not None else available_cores()
    if workers < 1:
        raise PresetError(f"--workers {workers}: must be at least 1")
    executor = None
    if args.executor == "slurm":
        from harness.slurm import SlurmExecutor

        try:
            executor = SlurmExecutor(
                Path(args.results) / "slurm",
                partition=args.partition,
                gpus_per_cell=args.gpus_per_cell,
                max_parallel=args.max_parallel,
                time_limit_min=args.time_limit,
            )
        except ValueError as exc:
            raise PresetError(str(exc)) from None
    summary = run_all(
        preset,
        args.results,
        workers=workers,
        filters=args.filter,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        device=device,
        executor=executor,
        study=args.study,
        plugins=tuple(args.plugin),
        seed_block=args.seed_block,
    )
    if summary.attempted:  # also when every cell was taken by another run
        print(format_summary(summary))
    if args.dry_run:
        from harness.estimate import format_estimate

        print(format_estimate(preset, args.filter, args.study))
    elif not args.no_report:
        stale = summary.ran or not (Path(args.results) / "claims").exists()
        if stale or not (Path(out) / "index.html").exists():
            try:  # the store was just audited (and repaired) by this run
                cmd_analyze(args.results, audit=False)
                cmd_report(args.results, out, audit=False)
            except USAGE_ERRORS:
                raise
            except Exception as exc:  # the cells are stored; a failed analysis or report is reported
                first = (str(exc).splitlines() or [""])[0]
                print(
                    f"prunebench: error: analysis/report failed: {type(exc).__name__}: {first}",
                    file=sys.stderr,
                )
                return 1
        else:
            print(f"report: {Path(out) / 'index.html'} (up to date)")
    return summary.exit_code


def cmd_analyze(results: str, audit: bool = True) -> int:
    from analysis.claims import render_primary, run_analysis
    from analysis.sanity import leaderboard_checks, render_sanity
    from harness.storage import ResultsStore

    if audit:
        ResultsStore(results).check_readable()
    table, primaries = run_analysis(results)
    print(render_primary(primaries))
    print(render_sanity(leaderboard_checks(results)))
    print(f"claims table: {Path(results) / 'claims' / 'claims.parquet'} ({len(table)} rows)")
    return 0


def cmd_compare_verdicts(results: str, other: str) -> int:
    from analysis.compare import compare_primaries, read_primaries, render_comparison

    try:
        rows = compare_primaries(read_primaries(results), read_primaries(other))
    except FileNotFoundError as exc:
        raise StoreError(str(exc)) from None
    print(render_comparison(rows, results, other))
    return 1 if any(r["status"] == "differ" for r in rows) else 0


def cmd_compare_stores(results: str, other: str, tolerance: float, common_only: bool) -> int:
    from core.store_diff import compare_stores, render_comparison
    from harness.storage import ResultsStore

    for flag, root in (("--results", results), ("--other", other)):
        store = ResultsStore(root)
        if not store.exists():  # check_readable would name --results for both
            raise StoreError(f"{flag} {root!r}: no results store there")
        store.check_readable()
    comparison = compare_stores(results, other, tolerance, common_only)
    print(render_comparison(comparison))
    return 0 if comparison.identical else 1


def cmd_report(results: str, out: str | None, audit: bool = True) -> int:
    import time

    from harness.storage import ResultsStore
    from reports.build import build_report

    out = report_dir(results, out)
    check_out(Path(out))
    if audit:
        ResultsStore(results).check_readable()
    start = time.perf_counter()
    index = build_report(results, out)
    print(f"report: {index} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.matrix import load_preset
    from harness.bench import run_bench

    load_preset(args.preset)  # an unknown or malformed preset: one line, before any timing
    frame = run_bench(args.results, skip=tuple(args.skip), preset=args.preset)
    return 0 if frame["ok"].dropna().astype(bool).all() else 1  # informational rows have no target


def cmd_calibrate_gpu(args: argparse.Namespace) -> int:
    from harness.estimate import write_calibration

    print(write_calibration(args.device))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmarks.archs import ARCHS
    from benchmarks.datasets import DATASETS
    from benchmarks.matrix import load_preset, resolved_eval
    from core.config import config_dict
    from core.spec import CellSpec, canonical_json
    from harness.storage import ResultsStore
    from harness.tasks import cell_task
    from pruners import PRUNERS, make_pruner_config

    preset = load_preset(args.preset, tuple(args.plugin))
    ARCHS.get(args.arch), DATASETS.get(args.dataset), PRUNERS.get(args.pruner)
    axes = preset.design.axes_for(args.pruner)  # the pruner's recipe, overrides applied
    plugin = PRUNERS.get(args.pruner).plugin
    try:
        spec = CellSpec(
            args.arch,
            args.dataset,
            args.pruner,
            args.sparsity,
            args.seed,
            args.retrain,
            train=axes.train,
            retrain_config=axes.retrain_config,
            pruner_config=config_dict(
                make_pruner_config(args.pruner, axes.pruner_config.get(args.pruner, {}))
            ),
            eval=resolved_eval(axes.eval, args.dataset),
            plugin=f"{plugin[0]}=={plugin[1]}" if plugin else None,
        )
    except ValueError as exc:
        raise PresetError(str(exc)) from None
    device = resolve_device(args.device)
    store = ResultsStore(args.results)
    damages, _ = store.prepare()
    if damages:
        from harness.runner import describe_repair

        print(describe_repair(damages, store, dry_run=False))
    plugins = (*args.plugin, *preset.plugins)
    outcome = cell_task(canonical_json(spec.to_dict()), args.results, "cli", device, True, plugins)
    if outcome.status == "skipped":
        print(f"cell {outcome.cell_id}: {outcome.reason}")
    else:
        print(f"cell {outcome.cell_id}: {outcome.status} in {outcome.seconds:.1f} s {outcome.reason}")
    from core.store import MetricFilter

    acc = store.metrics([MetricFilter(metrics=["accuracy"], per_class=False, cell_ids=[outcome.cell_id])])
    for (phase, eval_set), value in acc.groupby(["phase", "eval_set"], sort=False)["value"].first().items():
        print(f"  {phase:<10} {eval_set:<6} accuracy {value:.4f}")
    return 0 if outcome.status != "failed" else 1


def cmd_check_pruner(args: argparse.Namespace) -> int:
    from harness.check import check_pruner

    return check_pruner(args.pruner, tuple(args.plugin))


def cmd_submit(args: argparse.Namespace) -> int:
    from harness.storage import ResultsStore
    from harness.submit import submit

    ResultsStore(args.results).check_readable()
    print(submit(args.results, args.out, args.preset))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.verify import verify

    return verify(args.bundle, sample=args.sample, seed=args.seed, accept_into=args.accept_into)


def cmd_compare(args: argparse.Namespace) -> int:

    from core.atomic import atomic_write_parquet
    from harness.nightly import compare, format_regressions, read_summary, summarize
    from harness.storage import ResultsStore

    previous = read_summary(args.previous) if args.previous is not None else None  # StoreError: one line
    ResultsStore(args.results).check_readable()
    current = summarize(args.results)
    if args.summary_out:
        try:
            atomic_write_parquet(args.summary_out, current)
        except (OSError, ValueError) as exc:
            raise StoreError(f"--summary-out {args.summary_out!r}: cannot write there ({exc})") from None
    if previous is None:
        print(f"no previous night to compare with; {len(current)} leaderboard entries summarised")
        return 0
    regressions = compare(previous, current, args.tolerance)
    print(format_regressions(regressions, args.tolerance))
    return 3 if len(regressions) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except USAGE_ERRORS as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2
    except (WorkerCrash, SlurmJobError) as exc:
        print(f"prunebench: error: {exc}; finished cells are stored, run again to resume", file=sys.stderr)
        return 1
    except OSError as exc:
        from core.atomic import is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"prunebench: error: {DiskFullError(exc.filename or '?')}", file=sys.stderr)
        return 2


def dispatch(args: argparse.Namespace) -> int:
    from pruners.plugins import load_plugins

    load_plugins(tuple(getattr(args, "plugin", ())))  # entry points and --plugin, at start-up
    commands = {
        "list": lambda: cmd_list(args.what, args.verbose),
        "run-all": lambda: cmd_run_all(args),
        "compare": lambda: cmd_compare(args),
        "analyze": lambda: cmd_analyze(args.results),
        "compare-verdicts": lambda: cmd_compare_verdicts(args.results, args.other),
        "compare-stores": lambda: cmd_compare_stores(
            args.results, args.other, args.tolerance, args.common_only
        ),
        "report": lambda: cmd_report(args.results, args.out),
        "bench": lambda: cmd_bench(args),
        "calibrate-gpu": lambda: cmd_calibrate_gpu(args),
        "check-pruner": lambda: cmd_check_pruner(args),
        "submit": lambda: cmd_submit(args),
        "verify": lambda: cmd_verify(args),
        "run": lambda: cmd_run(args),
    }
    return commands[args.command]()
