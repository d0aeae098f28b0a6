"""A synthetic results store of the real schema, for benchmarks of the report and the analysis.

``synthetic_store(root, metric_rows)`` writes cells over a grid of archs x datasets x pruners x
sparsities x seeds until about ``metric_rows`` metric rows exist: dense / pruned /
retrained phases, clean test and train sets with per-class recall and calibration,
corruption types x severities 1-5, two OOD sets and model counts. Accuracy falls with
sparsity (faster for ``random``) and with corruption severity, so the figures have shape.
Deterministic for a given ``seed``.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from harness.environment import environment
from harness.storage import ResultsStore

PRUNERS = ("random", "global_magnitude", "layer_magnitude", "lamp", "snip", "gmp", "l1_filter")
ARCHS = ("mlp_256x2", "cnn_32x3")
DATASETS = ("mnist1d", "digits")
SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98)
CORRUPTIONS = ("gaussian_noise", "impulse_noise", "defocus_blur", "contrast", "brightness", "pixelate")
OOD_SETS = ("far_ood", "near_ood")
CLASSES = 10


def _phase_rows(rng, accuracy: float, phase: str, sparsity: float) -> list[dict]:
    rows = []

    def add(eval_set, kind, severity, metric, value, cls=None):
        rows.append(
            {
                "phase": phase,
                "eval_set": eval_set,
                "kind": kind,
                "severity": severity,
                "metric": metric,
                "class": cls,
                "step": None,
                "value": float(value),
            }
        )

    def classification(eval_set, kind, severity, acc):
        acc = float(np.clip(acc, 0.0, 1.0))
        add(eval_set, kind, severity, "accuracy", acc)
        add(eval_set, kind, severity, "loss", -np.log(max(acc, 1e-3)))
        add(eval_set, kind, severity, "nll", -np.log(max(acc, 1e-3)))
        add(eval_set, kind, severity, "ece", abs(rng.normal(0.03, 0.01)))
        add(eval_set, kind, severity, "brier", 1 - acc)
        for k in range(CLASSES):
            add(eval_set, kind, severity, "recall", np.clip(acc + rng.normal(0, 0.05), 0, 1), k)

    classification("train", "clean", 0, accuracy + 0.02)
    classification("test", "clean", 0, accuracy)
    for name in CORRUPTIONS:
        for severity in range(1, 6):
            classification(name, "corruption", severity, accuracy - 0.06 * severity + rng.normal(0, 0.01))
    for name in OOD_SETS:
        for metric in ("auroc_msp", "auroc_energy"):
            add(name, "ood", 0, metric, np.clip(0.9 - 0.2 * sparsity + rng.normal(0, 0.02), 0, 1))
        for metric in ("fpr95_msp", "fpr95_energy"):
            add(name, "ood", 0, metric, np.clip(0.3 + 0.3 * sparsity + rng.normal(0, 0.02), 0, 1))
    add("model", "model", 0, "achieved_sparsity", 0.0 if phase == "dense" else sparsity)
    add("model", "model", 0, "params_total", 80_000)
    add("model", "model", 0, "params_nonzero", 80_000 * (1 if phase == "dense" else 1 - sparsity))
    add("model", "model", 0, "flops_dense", 1.6e5)
    add("model", "model", 0, "flops_effective", 1.6e5 * (1 if phase == "dense" else 1 - sparsity))
    return rows


def synthetic_store(root: Path | str, metric_rows: int = 100_000, seed: int = 0) -> int:
    """Write the store; returns the number of metric rows written."""
    rng = np.random.default_rng(seed)
    store = ResultsStore(root)
    store.prepare()
    written = 0
    grid = (
        (seed_i, *cell)
        for seed_i in itertools.count()  # product() would materialise an infinite count
        for cell in itertools.product(ARCHS, DATASETS, PRUNERS, SPARSITIES)
    )
    for seed_i, arch, dataset, pruner, sparsity in grid:
        if written >= metric_rows:
            break
        dense_acc = {"mnist1d": 0.95, "digits": 0.98}[dataset] - (0.25 if arch == "mlp_256x2" else 0)
        slope = 0.9 if pruner == "random" else 0.35
        pruned_acc = dense_acc - slope * sparsity**3
        rows = []
        for phase, acc in (("dense", dense_acc), ("pruned", pruned_acc - 0.2), ("retrained", pruned_acc)):
            rows += _phase_rows(rng, acc + rng.normal(0, 0.005), phase, sparsity)
        cell_id = f"csyn{seed_i:03d}{abs(hash((arch, dataset, pruner, sparsity))) % 10**9:09d}"
        now = datetime.now(UTC)
        spec = {"arch": arch, "dataset": dataset, "pruner": pruner, "sparsity": sparsity, "seed": seed_i}
        store.write_cell(
            {
                "cell_id": cell_id,
                "parent_id": f"psyn{seed_i}{arch}{dataset}",
                "study": "prune",
                "arch": arch,
                "dataset": dataset,
                "pruner": pruner,
                "pruner_kind": "structured" if pruner == "l1_filter" else "unstructured",
                "pruner_timing": "after_training",
                "pruner_version": "1",
                "sparsity": sparsity,
                "seed": seed_i,
                "retrain": "finetune",
                "spec_json": json.dumps(spec, sort_keys=True),
                "preset": "synthetic",
                "status": "ok",
                "dense_train_s": 1.0,
                "prune_s": 0.1,
                "retrain_s": 0.5,
                "eval_s": 0.1,
                "total_s": 0.7,
                "started_at": now,
                "finished_at": now,
                "device": "cpu",
                **environment(),
            },
            rows,
        )
        written += len(rows)
    return written
