"""``python -m harness`` / ``prunebench``: list registries, run the matrix or one cell.

Bad input (an unknown name, a sparsity outside (0, 1), a malformed preset, a results dir
that cannot be written) ends with one line on stderr and exit status 2, before anything
is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.matrix import PresetError
from benchmarks.registry import UnknownNameError
from harness.bench import BENCH_MEASURES
from harness.executors import WorkerCrash
from harness.slurm import SlurmJobError
from harness.storage import StoreError

USAGE_ERRORS = (UnknownNameError, PresetError, StoreError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list registered pruners, archs, datasets or presets")
    ls.add_argument(
        "what", nargs="?", default="all", choices=["all", "pruners", "archs", "datasets", "presets"]
    )

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", default="results", help="results directory (default: results/)")
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")

    ra = sub.add_parser("run-all", help="run every cell of a preset matrix")
    ra.add_argument("--preset", default="default", help="preset name or path to a .toml file")
    ra.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    ra.add_argument("--filter", action="append", default=[], metavar="KEY=GLOB", help="keep matching cells")
    ra.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    ra.add_argument("--retry-failed", action="store_true", help="run cells stored as failed again")
    ra.add_argument("--no-report", action="store_true", help="skip the claims analysis and the report")
    ra.add_argument("--executor", choices=["local", "slurm"], default="local", help="where cells run")
    ra.add_argument("--partition", default=None, help="slurm: partition (default: the cluster's default)")
    ra.add_argument("--gpus-per-cell", type=int, default=0, help="slurm: GPUs per array task")
    ra.add_argument("--max-parallel", type=int, default=16, help="slurm: array tasks running at once")
    ra.add_argument("--time-limit", type=int, default=60, metavar="MIN", help="slurm: minutes per array task")
    add_common(ra)

    an = sub.add_parser("analyze", help="test the published claims on stored results (claims table)")
    an.add_argument("--results", default="results", help="results directory (default: results/)")

    rep = sub.add_parser("report", help="build the static HTML report from stored results")
    rep.add_argument("--results", default="results", help="results directory (default: results/)")
    rep.add_argument("--out", default="reports/site", help="output directory (default: reports/site/)")

    bench = sub.add_parser("bench", help="time the harness against plain PyTorch loops, side by side")
    bench.add_argument("--results", default="results", help="where bench/bench.parquet goes")
    bench.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=list(BENCH_MEASURES),
    )

    cal = sub.add_parser("calibrate-gpu", help="measure seconds per CIFAR epoch for the GPU-hour estimate")
    cal.add_argument("--device", default="cuda")

    cmp_ = sub.add_parser("compare", help="flag leaderboard regressions against a previous night")
    cmp_.add_argument("--previous", default=None, help="summary.parquet of the previous night (none: first)")
    cmp_.add_argument("--results", default="results", help="tonight's results directory")
    cmp_.add_argument("--tolerance", type=float, default=0.01, help="allowed drop in mean accuracy")
    cmp_.add_argument("--summary-out", default=None, help="write tonight's summary.parquet here")

    one = sub.add_parser("run", help="run one cell")
    one.add_argument("--arch", required=True)
    one.add_argument("--dataset", required=True)
    one.add_argument("--pruner", required=True)
    one.add_argument("--sparsity", type=float, required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--retrain", default="finetune")
    one.add_argument("--preset", default="default", help="preset whose training recipes to use")
    add_common(one)
    return parser


def cmd_list(what: str) -> int:
    from benchmarks import archs, datasets, matrix
    from pruners import PRUNERS

    if what in ("all", "pruners"):
        print(f"pruners ({len(PRUNERS)}):")
        for name in PRUNERS:
            cls = PRUNERS.get(name)
            print(f"  {name:<20} {cls.kind:<13} {cls.timing:<16} v{cls.version}  {cls.summary()}")
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
    return 0


def resolve_device(device: str | None) -> str:
    from harness.environment import default_device

    if device is None:
        return default_device()
    if device not in ("cpu", "cuda"):
        raise PresetError(f"--device {device!r}: valid: cpu, cuda")
    return device


def cmd_run_all(args: argparse.Namespace) -> int:
    from harness.executors import available_cores
    from harness.runner import format_summary, run_all

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
        args.preset,
        args.results,
        workers=workers,
        filters=args.filter,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        device=resolve_device(args.device),
        executor=executor,
    )
    if summary.ran:
        print(format_summary(summary))
    if args.dry_run:
        from harness.estimate import format_estimate

        print(format_estimate(args.preset, args.filter))
    elif not args.no_report and (summary.ran or not (Path(args.results) / "claims").exists()):
        try:
            cmd_analyze(args.results)
            cmd_report(args.results, "reports/site")
        except Exception as exc:  # the cells are stored; a failed analysis or report is reported
            print(f"prunebench: error: analysis/report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return summary.exit_code


def cmd_analyze(results: str) -> int:
    from analysis.claims import render_summary, run_analysis

    if not (Path(results) / "cells").is_dir():
        raise StoreError(f"--results {results!r}: no results store there")
    import pandas as pd

    from analysis.sanity import render_sanity

    table = run_analysis(results)
    print(render_summary(table))
    print(render_sanity(pd.read_parquet(Path(results) / "claims" / "sanity.parquet")))
    print(f"claims table: {Path(results) / 'claims' / 'claims.parquet'} ({len(table)} rows)")
    return 0


def cmd_report(results: str, out: str) -> int:
    import time

    from reports.build import build_report

    if not (Path(results) / "cells").is_dir():
        raise StoreError(f"--results {results!r}: no results store there")
    start = time.perf_counter()
    index = build_report(results, out)
    print(f"report: {index} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import run_bench

    frame = run_bench(args.results, skip=tuple(args.skip))
    return 0 if frame["ok"].dropna().astype(bool).all() else 1  # informational rows have no target


def cmd_calibrate_gpu(args: argparse.Namespace) -> int:
    from harness.estimate import write_calibration

    print(write_calibration(args.device))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmarks.archs import ARCHS
    from benchmarks.datasets import DATASETS
    from benchmarks.matrix import load_preset
    from benchmarks.spec import CellSpec, canonical_json
    from harness.storage import ResultsStore
    from harness.tasks import cell_task
    from pruners import PRUNERS

    ARCHS.get(args.arch), DATASETS.get(args.dataset), PRUNERS.get(args.pruner)
    axes = load_preset(args.preset).axes_for(args.pruner)  # the pruner's recipe, overrides applied
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
        )
    except ValueError as exc:
        raise PresetError(str(exc)) from None
    store = ResultsStore(args.results)
    store.prepare()
    outcome = cell_task(
        canonical_json(spec.to_dict()), args.results, "cli", resolve_device(args.device), True
    )
    if outcome.status == "skipped":
        print(f"cell {outcome.cell_id}: {outcome.reason}")
    else:
        print(f"cell {outcome.cell_id}: {outcome.status} in {outcome.seconds:.1f} s {outcome.reason}")
    metrics = store.read_metrics()
    acc = metrics[(metrics.cell_id == outcome.cell_id) & (metrics.metric == "accuracy")]
    for (phase, eval_set), value in acc.groupby(["phase", "eval_set"], sort=False)["value"].first().items():
        print(f"  {phase:<10} {eval_set:<6} accuracy {value:.4f}")
    return 0 if outcome.status != "failed" else 1


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from harness.nightly import compare, format_regressions, summarize

    if args.previous is not None and not Path(args.previous).is_file():
        raise StoreError(f"--previous {args.previous!r}: no such summary file")
    if not (Path(args.results) / "cells").is_dir():
        raise StoreError(f"--results {args.results!r}: no results store there")
    current = summarize(args.results)
    if args.summary_out:
        Path(args.summary_out).parent.mkdir(parents=True, exist_ok=True)
        current.to_parquet(args.summary_out, index=False)
    if args.previous is None:
        print(f"no previous night to compare with; {len(current)} leaderboard entries summarised")
        return 0
    previous_path = Path(args.previous)
    regressions = compare(pd.read_parquet(previous_path), current, args.tolerance)
    print(format_regressions(regressions, args.tolerance))
    return 3 if len(regressions) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args.what)
        if args.command == "run-all":
            return cmd_run_all(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "analyze":
            return cmd_analyze(args.results)
        if args.command == "report":
            return cmd_report(args.results, args.out)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "calibrate-gpu":
            return cmd_calibrate_gpu(args)
        return cmd_run(args)
    except USAGE_ERRORS as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2
    except (WorkerCrash, SlurmJobError) as exc:
        print(f"prunebench: error: {exc}; finished cells are stored, run again to resume", file=sys.stderr)
        return 1
