"""``python -m harness`` / ``prunebench``: list registries, run the matrix or one cell.

Bad input (an unknown name, a sparsity outside [0, 1), a malformed preset, a results dir
that cannot be written) ends with one line on stderr and exit status 2, before anything
is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.matrix import PresetError
from core.config import ConfigError
from core.registry import UnknownNameError
from harness.bench import BENCH_MEASURES
from harness.executors import WorkerCrash
from harness.slurm import SlurmJobError
from harness.storage import StoreError
from pruners.plugins import PluginError

USAGE_ERRORS = (UnknownNameError, PresetError, StoreError, PluginError, ConfigError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add_plugin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE (it registers pruners)",
        )

    ls = sub.add_parser("list", help="list registered pruners, archs, datasets, presets or studies")
    ls.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["all", "pruners", "archs", "datasets", "presets", "studies"],
    )
    ls.add_argument(
        "--verbose", "-v", action="store_true", help="pruners: every hyperparameter with its default"
    )
    add_plugin(ls)

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", default="results", help="results directory (default: results/)")
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")

    ra = sub.add_parser("run-all", help="run every cell of a preset matrix")
    ra.add_argument("--preset", default="default", help="preset name or path to a .toml file")
    ra.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    ra.add_argument("--filter", action="append", default=[], metavar="KEY=GLOB", help="keep matching cells")
    ra.add_argument("--study", default=None, help="run one study only (harness list studies)")
    add_plugin(ra)
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

    cv = sub.add_parser(
        "compare-verdicts", help="compare two stores' primary verdicts (exit 1: a settled one differs)"
    )
    cv.add_argument("--results", default="results", help="results directory analysed first")
    cv.add_argument(
        "--other", required=True, help="the other results directory (disjoint seeds or another machine)"
    )

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
    add_plugin(one)
    add_common(one)

    chk = sub.add_parser("check-pruner", help="check a pruner against the contract, one line per check")
    chk.add_argument("pruner", help="a registered name, or MODULE:CLASS of a pruner class")
    add_plugin(chk)

    sb = sub.add_parser("submit", help="write a submission bundle of a results dir")
    sb.add_argument("--results", default="results", help="results directory (default: results/)")
    sb.add_argument("--out", required=True, help="the bundle file to write (.tar.gz)")
    sb.add_argument("--preset", default=None, help="preset the results were run with (default: as recorded)")

    vf = sub.add_parser("verify", help="re-run a seeded sample of a bundle's cells and compare")
    vf.add_argument("bundle", help="a bundle written by harness submit")
    vf.add_argument("--sample", type=int, default=4, help="cells to re-run (default: 4)")
    vf.add_argument("--seed", type=int, default=0, help="seed of the sample")
    vf.add_argument("--accept-into", default=None, metavar="DIR", help="on success, add the entry to DIR")
    add_plugin(vf)
    return parser


def cmd_list(what: str, verbose: bool = False) -> int:
    from benchmarks import archs, datasets, matrix, studies
    from core.config import describe_config
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
        print(f"studies ({len(studies.study_names())}):")
        for name in studies.study_names():
            print(f"  {name:<26} {studies.describe(name)}")
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
        study=args.study,
        plugins=tuple(args.plugin),
    )
    if summary.ran:
        print(format_summary(summary))
    if args.dry_run:
        from harness.estimate import format_estimate

        print(format_estimate(args.preset, args.filter, args.study))
    elif not args.no_report and (summary.ran or not (Path(args.results) / "claims").exists()):
        try:
            cmd_analyze(args.results)
            cmd_report(args.results, "reports/site")
        except Exception as exc:  # the cells are stored; a failed analysis or report is reported
            print(f"prunebench: error: analysis/report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return summary.exit_code


def cmd_analyze(results: str) -> int:
    from analysis.claims import render_primary, run_analysis
    from analysis.sanity import leaderboard_checks, render_sanity

    if not (Path(results) / "cells").is_dir():
        raise StoreError(f"--results {results!r}: no results store there")
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
    store = ResultsStore(args.results)
    store.prepare()
    plugins = (*args.plugin, *preset.plugins)
    outcome = cell_task(
        canonical_json(spec.to_dict()), args.results, "cli", resolve_device(args.device), True, plugins
    )
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
    from harness.submit import submit

    print(submit(args.results, args.out, args.preset))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.submit import verify

    return verify(
        args.bundle,
        sample=args.sample,
        seed=args.seed,
        accept_into=args.accept_into,
        plugins=tuple(args.plugin),
    )


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
        from pruners.plugins import load_plugins

        load_plugins(tuple(getattr(args, "plugin", ())))  # entry points and --plugin, at start-up
        if args.command == "list":
            return cmd_list(args.what, args.verbose)
        if args.command == "run-all":
            return cmd_run_all(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "analyze":
            return cmd_analyze(args.results)
        if args.command == "compare-verdicts":
            return cmd_compare_verdicts(args.results, args.other)
        if args.command == "report":
            return cmd_report(args.results, args.out)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "calibrate-gpu":
            return cmd_calibrate_gpu(args)
        if args.command == "check-pruner":
            return cmd_check_pruner(args)
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "verify":
            return cmd_verify(args)
        return cmd_run(args)
    except USAGE_ERRORS as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2
    except (WorkerCrash, SlurmJobError) as exc:
        print(f"prunebench: error: {exc}; finished cells are stored, run again to resume", file=sys.stderr)
        return 1
