"""``python -m harness bench``: the harness against plain PyTorch, side by side in one run.

1. one cell through the harness (dense parent + cell, fresh store) vs ``minimal_cell``, a
   hand-written loop doing the same training, evaluation and sets (target <= 1.10);
2. the same cell fed the conventional way: every training epoch and every evaluation set
   through a per-sample ``Dataset`` + ``DataLoader`` with ShrinkBench's loader settings
   (target: harness >= 3x faster). For information, the dense training alone against the
   same loader, on both embedded archs, with ShrinkBench's 8 loader workers and with
   ``num_workers=0`` (the loader's best case on this data);
3. matrix throughput, cells per minute, with 1 and 2 local workers (target >= 1.6x): the
   preset's leaderboard cells on its first dataset, seed and retraining recipe, on a store
   whose dense parents are already trained;
4. the report build of the results store it is given (target < 60 s).

Recipes and cells come from a preset (``--preset``, default ``default``, the one the README's
figures are for); a small preset gives a quick run of the same code (the tests use one).

Each timing is the best of ``repeats`` alternating runs (CPU timings are noisy; the ratio
of two numbers measured in one run is what counts). Figures go to
``<results>/bench/bench.parquet``, and the report shows them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.matrix import load_preset
from core.atomic import atomic_write_parquet
from core.spec import CellSpec, canonical_json
from core.store import StoreReader
from harness.environment import environment
from harness.storage import ResultsStore
from harness.tasks import cell_task, parent_task

if TYPE_CHECKING:
    import pandas as pd

BENCH_CELL = {"arch": "cnn_32x3_fc256", "dataset": "mnist1d", "pruner": "global_magnitude", "sparsity": 0.9}
BENCH_MEASURES = (
    "cell",
    "dataloader",
    "dataloader_mlp",
    "dataloader_0w",
    "dataloader_mlp_0w",
    "throughput",
    "report",
)


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def throughput_filters(preset: str) -> list[str]:
    """The throughput matrix: the preset's leaderboard cells on its first dataset, first seed and
    first retraining recipe (every pruner, every grid sparsity)."""
    axes = load_preset(preset).design
    return [
        f"dataset={axes.datasets[0]}",
        f"seed={axes.axes.seeds[0]}",
        f"retrain={axes.axes.retrain[0]}",
        "cell_type=prune",
    ]


def cell_side_by_side(repeats: int = 2, preset: str = "default") -> list[dict]:
    """One cell through the harness, through ``minimal_cell`` and through ``minimal_cell``
    fed by ShrinkBench's loader, alternating (drift in machine load hits all three)."""
    import torch

    from benchmarks.baselines import SHRINKBENCH_WORKERS, minimal_cell
    from benchmarks.datasets import load_dataset
    from benchmarks.evaluation import eval_bundle, evaluation_sets

    preset = load_preset(preset).design.axes
    spec = CellSpec(**BENCH_CELL, seed=0, train=preset.train, retrain_config=preset.retrain_config)
    data = load_dataset(spec.dataset)
    sets = evaluation_sets(data)  # generated once, outside every timing
    eval_bundle(data)
    finetune = preset.train.__class__(
        **{
            **preset.train.as_dict(),
            "epochs": preset.retrain_config.epochs,
            "lr": preset.retrain_config.finetune_lr,
            "schedule": "constant",
        }
    )
    torch.set_num_threads(1)

    def harness_once() -> None:
        root = Path(tempfile.mkdtemp(prefix="bench-store-"))
        try:
            ResultsStore(root).prepare()
            spec_json = canonical_json(spec.to_dict())
            parent_task(spec_json, str(root), "cpu")
            assert cell_task(spec_json, str(root), "bench", "cpu").status == "ok"
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def baseline_once(loader_workers: int | None):
        args = (spec.arch, data, sets, spec.sparsity, spec.seed, preset.train, finetune)
        return lambda: minimal_cell(*args, loader_workers=loader_workers)

    harness, minimal, loader = float("inf"), float("inf"), float("inf")
    with warnings.catch_warnings():  # more loader workers than cores is ShrinkBench's default
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        for _ in range(repeats):
            harness = min(harness, _best(harness_once, 1))
            minimal = min(minimal, _best(baseline_once(None), 1))
            loader = min(loader, _best(baseline_once(SHRINKBENCH_WORKERS), 1))
    return [
        {
            "measure": "cell_vs_minimal",
            "harness_s": harness,
            "baseline_s": minimal,
            "ratio": harness / minimal,
            "target": "harness / minimal <= 1.10",
            "ok": harness / minimal <= 1.10,
        },
        {
            "measure": f"cell_vs_dataloader[{spec.arch}, num_workers={SHRINKBENCH_WORKERS}]",
            "harness_s": harness,
            "baseline_s": loader,
            "ratio": loader / harness,
            "target": "dataloader / harness >= 3",
            "ok": loader / harness >= 3,
        },
    ]


def training_vs_dataloader(
    repeats: int = 2, arch: str = BENCH_CELL["arch"], num_workers: int | None = None, preset: str = "default"
) -> dict:
    """The dense training alone, harness vs the loader-fed loop (for information)."""
    import torch

    from benchmarks.archs import build_arch
    from benchmarks.baselines import SHRINKBENCH_WORKERS, dataloader_train
    from benchmarks.datasets import load_dataset
    from benchmarks.training import train

    preset = load_preset(preset).design.axes
    data = load_dataset(BENCH_CELL["dataset"])
    torch.set_num_threads(1)

    def harness_once() -> None:
        torch.manual_seed(0)
        model = build_arch(arch, data.input_shape, data.num_classes)
        train(model, data.x_train, data.y_train, preset.train, 0)

    workers = SHRINKBENCH_WORKERS if num_workers is None else num_workers
    harness, loader = float("inf"), float("inf")
    for _ in range(repeats):
        harness = min(harness, _best(harness_once, 1))
        with warnings.catch_warnings():  # more loader workers than cores is ShrinkBench's default
            warnings.filterwarnings("ignore", message="This DataLoader will create")
            loader = min(loader, dataloader_train(arch, data, preset.train, 0, num_workers=workers))
    return {
        "measure": f"training_vs_dataloader[{arch}, num_workers={workers}]",
        "harness_s": harness,
        "baseline_s": loader,
        "ratio": loader / harness,
        "target": "none: training alone, for information",
        "ok": None,
    }


def throughput(echo=print, preset: str = "default") -> dict:
    from harness.executors import LocalExecutor
    from harness.runner import build_plan, parent_jobs, run_all

    filters = throughput_filters(preset)
    cells = build_plan(preset, filters=filters).cells
    warm = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    try:
        # dense parents and their evaluations first (not timed): cells per minute on a warm store
        ResultsStore(warm).prepare()
        parents = parent_jobs(cells, [], ResultsStore(warm))
        jobs = [(canonical_json(c.to_dict()), str(warm), "cpu") for c in parents.values()]
        for _ in LocalExecutor(2).map_unordered(parent_task, jobs):
            pass
        per_minute = {}
        for workers in (1, 2):
            store = Path(tempfile.mkdtemp(prefix=f"bench-w{workers}-"))
            shutil.rmtree(store)
            shutil.copytree(warm, store, ignore=shutil.ignore_patterns("cells", "metrics", "locks"))
            start = time.perf_counter()
            summary = run_all(preset, str(store), workers=workers, filters=filters, echo=lambda *_: None)
            seconds = time.perf_counter() - start
            per_minute[workers] = 60 * summary.ran / seconds
            echo(f"  throughput with {workers} worker(s): {summary.ran} cells in {seconds:.1f} s")
            shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    ratio = per_minute[2] / per_minute[1]
    return {
        "measure": "throughput_2_vs_1_workers",
        "harness_s": 60 / per_minute[2],
        "baseline_s": 60 / per_minute[1],
        "ratio": ratio,
        "target": "2 workers / 1 worker >= 1.6",
        "ok": ratio >= 1.6,
        "cells": len(cells),
    }


def report_build(results_dir: str) -> dict:
    """Build the report of the store at ``results_dir`` (the default preset's, after run-all) into a
    temporary folder; the target is the issue's: under 60 s on the machine that ran the cells."""
    from reports.build import build_report

    reader = StoreReader(results_dir)
    if not reader.exists():
        return {
            "measure": "report_build",
            "harness_s": float("nan"),
            "baseline_s": 60.0,
            "ratio": float("nan"),
            "target": f"build < 60 s (no store at {results_dir}: run-all first)",
            "ok": None,
        }
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        start = time.perf_counter()
        build_report(results_dir, root / "site")
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "measure": "report_build",
        "harness_s": seconds,
        "baseline_s": 60.0,
        "ratio": seconds / 60.0,
        "target": "build < 60 s",
        "ok": seconds < 60.0,
        "metric_rows": reader.metric_row_count(),
    }


def run_bench(
    results_dir: str, echo=print, skip: tuple[str, ...] = (), preset: str = "default"
) -> pd.DataFrame:
    measures = {
        "cell": lambda: cell_side_by_side(preset=preset),
        "dataloader": lambda: training_vs_dataloader(preset=preset),
        "dataloader_mlp": lambda: training_vs_dataloader(arch="mlp_256x2", preset=preset),
        "dataloader_0w": lambda: training_vs_dataloader(num_workers=0, preset=preset),
        "dataloader_mlp_0w": lambda: training_vs_dataloader(arch="mlp_256x2", num_workers=0, preset=preset),
        "throughput": lambda: throughput(echo, preset),
        "report": lambda: report_build(results_dir),
    }
    import pandas as pd

    rows = []
    for name, fn in measures.items():
        if name in skip:
            continue
        echo(f"bench: {name} ...")
        results = fn()
        for result in results if isinstance(results, list) else [results]:
            rows.append(result)
            verdict = "informational" if result["ok"] is None else ("met" if result["ok"] else "NOT met")
            echo(
                f"  {result['measure']}: {result['harness_s']:.2f} s vs {result['baseline_s']:.2f} s, "
                f"ratio {result['ratio']:.2f} ({result['target']}: {verdict})"
            )
    frame = pd.DataFrame(rows)
    frame["measured_at"] = datetime.now(UTC)
    for key, value in environment().items():
        frame[key] = value
    out = Path(results_dir) / "bench" / "bench.parquet"
    atomic_write_parquet(out, frame)
    targets = [r for r in rows if r["ok"] is not None]
    met = sum(bool(r["ok"]) for r in targets)
    echo(
        f"bench summary: {met} of {len(targets)} targets met, {len(rows) - len(targets)} informational "
        f"(preset {preset!r}); figures written to {out}"
    )
    return frame
