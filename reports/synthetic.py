"""A synthetic results store with the real Parquet schemas, for the report's tests and timing.

Every metric the report can show is present (clean accuracy, loss, per-class recall,
calibration, corruption accuracy by type and severity, OOD AUROC/FPR95, FLOPs and
parameter counts, a stability study and a claims table), with plausible values: accuracy
falls with sparsity and the pruners differ. ``python -m reports.synthetic DIR --cells N``
writes one for timing the build at scale.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.claims import CLAIM_IDS

CLAIMS = list(CLAIM_IDS)  # one card per claim the analysis tests


def _id(prefix: str, *parts) -> str:
    return prefix + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _cell_row(**kw) -> dict:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = {
        "study": "prune",
        "pruner_kind": "unstructured",
        "pruner_timing": "after_training",
        "pruner_version": "1",
        "schedule": None,
        "score": None,
        "variant": None,
        "spec_json": "{}",
        "preset": "synthetic",
        "status": "ok",
        "reason": None,
        "traceback": None,
        "dense_train_s": 1.0,
        "prune_s": 0.1,
        "retrain_s": 0.5,
        "eval_s": 0.1,
        "total_s": 0.7,
        "started_at": now,
        "finished_at": now,
        "device": "cpu",
        "torch_version": "2.x",
        "numpy_version": np.__version__,
        "python_version": "3.11",
        "git_commit": "0123456789abcdef",
        "host": "synthetic",
        "schema_version": 1,
    }
    return {**base, **kw}


def _metric_row(phase, eval_set, kind, severity, metric, value, cls=None, step=None) -> dict:
    """One metric row (``harness.storage.METRIC_SCHEMA`` without ``cell_id``)."""
    return {
        "phase": phase,
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": metric,
        "class": cls,
        "step": step,
        "value": float(value),
    }


def _eval_rows(
    rng, phase: str, acc: float, classes: int, corruptions, ood_sets, sparsity: float
) -> list[dict]:
    rows = []

    def add(eval_set, kind, severity, metric, value, cls=None, step=None):
        rows.append(_metric_row(phase, eval_set, kind, severity, metric, value, cls, step))

    for eval_set, a in (("train", min(1.0, acc + 0.05)), ("test", acc)):
        add(eval_set, "clean", 0, "accuracy", a)
        add(eval_set, "clean", 0, "loss", -np.log(max(a, 1e-3)))
        spread = (0.05 + 0.2 * sparsity) * np.linspace(-1, 1, classes)
        for k in range(classes):
            add(eval_set, "clean", 0, "recall", np.clip(a + spread[k] + rng.normal(0, 0.01), 0, 1), k)
        add(eval_set, "clean", 0, "ece", 0.02 + 0.1 * sparsity + abs(rng.normal(0, 0.005)))
        add(eval_set, "clean", 0, "nll", -np.log(max(a, 1e-3)) + 0.1)
        add(eval_set, "clean", 0, "brier", 1 - a)
    for i, c in enumerate(corruptions):
        for sev in range(1, 6):
            a = acc * (1 - 0.06 * sev * (1 + i / 2)) * (1 - 0.3 * sparsity) + rng.normal(0, 0.01)
            add(c, "corruption", sev, "accuracy", np.clip(a, 0, 1))
            add(c, "corruption", sev, "loss", -np.log(np.clip(a, 1e-3, 1)))
    for o in ood_sets:
        add(o, "ood", 0, "auroc_msp", 0.9 - 0.2 * sparsity + rng.normal(0, 0.01))
        add(o, "ood", 0, "auroc_energy", 0.92 - 0.2 * sparsity + rng.normal(0, 0.01))
        add(o, "ood", 0, "fpr95_msp", 0.3 + 0.2 * sparsity)
        add(o, "ood", 0, "fpr95_energy", 0.25 + 0.2 * sparsity)
    s = 0.0 if phase == "dense" else sparsity
    total = 100_000
    add("model", "model", 0, "achieved_sparsity", s)
    add("model", "model", 0, "params_total", total)
    add("model", "model", 0, "params_nonzero", total * (1 - s))
    add("model", "model", 0, "flops_dense", 2e6)
    add("model", "model", 0, "flops_effective", 2e6 * (1 - 0.9 * s))
    return rows


def write_synthetic_store(
    root: Path | str,
    archs=("mlp_a",),
    datasets=("data_x", "data_y"),
    pruners=("magnitude", "random"),
    sparsities=(0.5, 0.8, 0.9),
    seeds=(0, 1, 2),
    retrains=("finetune", "lr_rewind"),
    classes: int = 4,
    corruptions=("gaussian_noise", "fog"),
    ood_sets=("noise_ood",),
    stability: bool = True,
    claims: bool = True,
    failed: int = 1,
) -> Path:
    """Write cells, metrics (one file per cell, as the harness does) and a claims table."""
    from harness.storage import CELL_SCHEMA, METRIC_SCHEMA

    root = Path(root)
    (root / "cells").mkdir(parents=True, exist_ok=True)
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def write(cell: dict, rows: list[dict]) -> None:
        cid = cell["cell_id"]
        if rows:
            pq.write_table(
                pa.Table.from_pylist([{"cell_id": cid, **r} for r in rows], schema=METRIC_SCHEMA),
                root / "metrics" / f"{cid}.parquet",
            )
        pq.write_table(pa.Table.from_pylist([cell], schema=CELL_SCHEMA), root / "cells" / f"{cid}.parquet")

    strength = {p: 1.0 - 0.25 * i for i, p in enumerate(pruners)}
    difficulty = {d: 0.03 * i for i, d in enumerate(datasets)}
    for arch, dataset, seed in itertools.product(archs, datasets, seeds):
        parent = _id("p", arch, dataset, seed)
        dense_acc = 0.95 - difficulty[dataset] + rng.normal(0, 0.005)
        dense = _eval_rows(
            np.random.default_rng(seed), "dense", dense_acc, classes, corruptions, ood_sets, 0.0
        )
        for pruner, sparsity, retrain in itertools.product(pruners, sparsities, retrains):
            cid = _id("c", arch, dataset, seed, pruner, sparsity, retrain)
            drop = (sparsity**4) * (1.3 - strength[pruner]) * (1.0 if retrain == "finetune" else 1.2)
            acc = float(np.clip(dense_acc - drop + rng.normal(0, 0.01), 0.05, 1))
            rows = dense + _eval_rows(
                rng, "pruned", max(acc - 0.2, 0.05), classes, corruptions, ood_sets, sparsity
            )
            rows += _eval_rows(rng, "retrained", acc, classes, corruptions, ood_sets, sparsity)
            write(
                _cell_row(
                    cell_id=cid,
                    parent_id=parent,
                    arch=arch,
                    dataset=dataset,
                    pruner=pruner,
                    sparsity=sparsity,
                    seed=seed,
                    retrain=retrain,
                ),
                rows,
            )
    for i in range(failed):
        write(
            _cell_row(
                cell_id=_id("c", "failed", i),
                parent_id="pfailed",
                arch=archs[0],
                dataset=datasets[0],
                pruner=pruners[0],
                sparsity=0.99,
                seed=99,
                retrain=retrains[0],
                status="failed",
                reason="RuntimeError: synthetic failure",
            ),
            [],
        )
    if stability:
        # rows as benchmarks.stability writes them (and harness.tasks.stability_row's cell):
        # events carry acc_pre / acc_post / epoch (step = event index), the pruner is the target
        for target, seed, schedule in itertools.product(
            ("prune_s", "prune_l", "prune_r"), seeds, ("many_small", "few_large")
        ):
            cid = _id("s", target, seed, schedule)
            drop = {"prune_s": 0.01, "prune_l": 0.2, "prune_r": 0.08}[target] * (
                2 if schedule == "few_large" else 1
            )
            rows = []
            for ev in range(3):
                pre = 0.8 + rng.normal(0, 0.01)
                for metric, value in (("acc_pre", pre), ("acc_post", pre - drop), ("epoch", ev)):
                    rows.append(_metric_row("event", "test", "clean", 0, metric, value, step=ev))
            for ep in range(6):
                for es, off in (("train", 0.1), ("test", 0.0)):
                    value = 0.7 + 0.02 * ep + drop / 4 + off + rng.normal(0, 0.005)
                    rows.append(_metric_row("epoch", es, "clean", 0, "accuracy", value, step=ep))
            write(
                _cell_row(
                    cell_id=cid,
                    parent_id=_id("p", "stab", seed),
                    study="stability",
                    arch=archs[0],
                    dataset=datasets[0],
                    pruner=target,
                    pruner_kind="structured",
                    pruner_timing="during_training",
                    sparsity=0.5,
                    seed=seed,
                    retrain="none",
                    schedule=schedule,
                    score="l2",
                    variant="permanent",
                ),
                rows,
            )
    if claims:
        write_claims(root, archs, datasets, pruners, rng)
    return root


def write_claims(root: Path, archs, datasets, pruners, rng=None) -> Path:
    """A claims table of the analysis schema: a few tests per claim id."""
    rng = rng or np.random.default_rng(1)
    rows = []
    verdicts = ("supported", "contradicted", "inconclusive")
    for i, claim in enumerate(CLAIMS):
        for j, (arch, dataset, pruner) in enumerate(
            itertools.islice(itertools.product(archs, datasets, pruners), 3)
        ):
            est = float(rng.normal(0.1, 0.05))
            p = float(rng.uniform(0, 0.2))
            rows.append(
                {
                    "claim": claim,
                    "test": "t_one_sample",
                    "arch": arch,
                    "dataset": dataset,
                    "pruner": pruner,
                    "eval_set": "test",
                    "sparsity": 0.9,
                    "statistic": est * 10,
                    "estimate": est,
                    "ci_low": est - 0.05,
                    "ci_high": est + 0.05,
                    "p": p,
                    "q": min(1.0, p * 2),
                    "n": 3,
                    "verdict": verdicts[(i + j) % 3],
                    "description": f"synthetic test of {claim}",
                }
            )
    path = root / "claims" / "claims.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write a synthetic prunebench results store")
    parser.add_argument("root")
    parser.add_argument("--pruners", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args(argv)
    write_synthetic_store(
        args.root,
        archs=("mlp_256x2", "cnn_32x3_fc256"),
        datasets=("mnist1d", "mnist1d_hard", "digits"),
        pruners=tuple(f"pruner_{i}" for i in range(args.pruners)),
        sparsities=(0.5, 0.8, 0.9, 0.95, 0.98),
        seeds=tuple(range(args.seeds)),
        classes=args.classes,
        corruptions=("gaussian_noise", "shot_noise", "fog", "contrast"),
        ood_sets=("noise_ood", "fashion"),
    )
    rows = pq.read_table(Path(args.root) / "metrics").num_rows
    print(f"{args.root}: {rows} metric rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
