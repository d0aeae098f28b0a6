"""The command line's parser: every subcommand and option of ``python -m harness``.

Errors are one line and exit status 2 (``OneLineParser``: no multi-line usage block, also for a
malformed number); an option that takes a value may be given once (``OnceAction``); a folder
option never accepts the empty string (``folder``).
"""

from __future__ import annotations

import argparse
import math
import sys

from harness.bench import BENCH_MEASURES

DESCRIPTION = "list registries, run the matrix or one cell, analyse, report, submit, verify"


class OnceAction(argparse.Action):
    """``store`` that refuses an option given twice (``--results a --results b`` is an error,
    never silently the last one)."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_given", set())
        if self.dest in seen:
            parser.error(f"argument {option_string}: given more than once")
        seen.add(self.dest)
        setattr(namespace, self.dest, values)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no multi-line usage block) and exit status 2."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, OnceAction)
        self.register("action", "store", OnceAction)

    def error(self, message: str):
        print(f"prunebench: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def folder(value: str) -> str:
    """A ``--results`` / ``--out`` value: a path, never the empty string (the current folder)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"{value!r} names no folder")
    return value


def tolerance(value: str) -> float:
    """A ``--tolerance`` of compare-stores: a finite number >= 0."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number >= 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="prunebench", description="prunebench: " + DESCRIPTION)
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

    def add_results(p: argparse.ArgumentParser, help: str = "results directory (default: results/)") -> None:
        p.add_argument("--results", type=folder, default="results", help=help)

    def add_common(p: argparse.ArgumentParser) -> None:
        add_results(p)
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")

    ra = sub.add_parser("run-all", help="run every cell of a preset matrix")
    ra.add_argument("--preset", default=None, help="preset name or path to a .toml file (default: default)")
    ra.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    ra.add_argument("--filter", action="append", default=[], metavar="KEY=GLOB", help="keep matching cells")
    ra.add_argument("--study", default=None, help="run one study only (harness list studies)")
    ra.add_argument(
        "--seed-block",
        type=int,
        default=0,
        choices=range(0, 10),
        metavar="K",
        help="studies only, every seed + K*1000: a second, disjoint block of seeds (compare-verdicts)",
    )
    add_plugin(ra)
    ra.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    ra.add_argument("--retry-failed", action="store_true", help="run cells stored as failed again")
    ra.add_argument("--no-report", action="store_true", help="skip the claims analysis and the report")
    ra.add_argument("--out", type=folder, default=None, help="report folder (default: RESULTS/site)")
    ra.add_argument("--executor", choices=["local", "slurm"], default="local", help="where cells run")
    ra.add_argument("--partition", default=None, help="slurm: partition (default: the cluster's default)")
    ra.add_argument("--gpus-per-cell", type=int, default=0, help="slurm: GPUs per array task")
    ra.add_argument("--max-parallel", type=int, default=16, help="slurm: array tasks running at once")
    ra.add_argument("--time-limit", type=int, default=60, metavar="MIN", help="slurm: minutes per array task")
    add_common(ra)

    an = sub.add_parser("analyze", help="test the published claims on stored results (claims table)")
    add_results(an)

    cv = sub.add_parser(
        "compare-verdicts", help="compare two stores' primary verdicts (exit 1: a settled one differs)"
    )
    add_results(cv, "results directory analysed first")
    cv.add_argument(
        "--other",
        type=folder,
        required=True,
        help="the other results directory (disjoint seeds or another machine)",
    )

    cs = sub.add_parser(
        "compare-stores",
        help="compare two stores cell by cell and row by row (exit 1: they differ; core.store_diff)",
    )
    add_results(cs, "one results directory")
    cs.add_argument("--other", type=folder, required=True, help="the other results directory")
    cs.add_argument(
        "--tolerance",
        type=tolerance,
        default=0.0,
        help="largest |A - B| of a metric value counted as equal (default 0: bit for bit)",
    )
    cs.add_argument(
        "--common-only",
        action="store_true",
        help="a subset run again: cells and parents in one store only are listed, not counted",
    )

    rep = sub.add_parser("report", help="build the static HTML report from stored results")
    add_results(rep)
    rep.add_argument("--out", type=folder, default=None, help="output directory (default: RESULTS/site)")

    bench = sub.add_parser("bench", help="time the harness against plain PyTorch loops, side by side")
    add_results(bench, "where bench/bench.parquet goes; its store's report build is timed")
    bench.add_argument(
        "--preset", default="default", help="preset whose recipes and cells are timed (default: default)"
    )
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
    add_results(cmp_, "tonight's results directory")
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
    add_results(sb)
    sb.add_argument("--out", type=folder, required=True, help="the bundle file to write (.tar.gz)")
    sb.add_argument("--preset", default=None, help="preset the results were run with (default: as recorded)")

    vf = sub.add_parser("verify", help="check every cell of a bundle, re-run a random sample and compare")
    vf.add_argument("bundle", help="a bundle written by harness submit")
    vf.add_argument("--sample", type=int, default=4, help="cells to re-run (default: 4)")
    vf.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the sample (default: drawn from the bundle's hash and a secret; printed)",
    )
    vf.add_argument(
        "--accept-into", type=folder, default=None, metavar="DIR", help="on success, add the entry to DIR"
    )
    add_plugin(vf)
    return parser
