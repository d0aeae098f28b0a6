"""A synthetic results store shaped like the default preset's, for the report tests (no training).

The leaderboard: 3 datasets x 2 archs x the 17 built-in pruners x the grid 0.8/0.9/0.95 x 3
seeds, with the metric rows the report reads (test accuracy and ECE, every corruption type at
5 severities, OOD AUROC, FLOPs, budgets), one pruner that collapses at 0.95, one outside entry
measured at one sparsity only (shown apart); the studies from ``tests.claims_synth`` (planted
effects), so ``harness analyze`` writes real claims. Hostile names check the escaping.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests import claims_synth as S

GRID = (0.8, 0.9, 0.95)
ARCHS = ("mlp_512x2", "cnn_32x3_fc512")
DATASETS = {
    "mnist1d": (
        ["corr_noise", "dropout_seq", "gaussian_noise_seq", "iid_noise", "impulse_noise_seq", "scale_knob", "shear_knob", "translate_knob"],  # noqa: E501
        ["far_smooth_noise", "near_shuffled_sequences", "near_shuffled_templates"],
    ),
    "mnist1d_hard": (["corr_noise", "dropout_seq", "gaussian_noise_seq", "iid_noise"], ["far_smooth_noise"]),
    "digits": (
        ["brightness", "contrast", "defocus_blur", "dotted_line", "elastic_transform", "fog", "frost", "gaussian_blur",  # noqa: E501
         "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "rotate",  # noqa: E501
         "saturate", "scale", "shear", "shot_noise", "snow", "spatter", "speckle_noise", "stripe", "translate",  # noqa: E501
         "zigzag", "zoom_blur"],
        ["far_photo_patches", "near_letters"],
    ),
}  # fmt: skip
PRUNERS = {
    "global_magnitude": ("unstructured", "after_training", 0.0),
    "layer_magnitude": ("unstructured", "after_training", 0.3),
    "lamp": ("unstructured", "after_training", -0.1),
    "fisher": ("unstructured", "after_training", 0.5),
    "taylor": ("unstructured", "after_training", 0.4),
    "undecayed": ("unstructured", "after_training", 0.1),
    "random": ("unstructured", "after_training", 4.0),
    "l1_filter": ("structured", "after_training", 3.0),
    "ebn_filter": ("structured", "after_training", 3.5),
    "snip": ("unstructured", "at_init", 1.5),
    "grasp": ("unstructured", "at_init", 1.8),
    "synflow": ("unstructured", "at_init", 1.2),
    "random_erk": ("unstructured", "at_init", 2.0),
    "gmp": ("unstructured", "during_training", 0.6),
    "rigl": ("unstructured", "during_training", 0.8),
    "imp": ("unstructured", "during_training", 0.2),
    "slimming": ("structured", "during_training", 2.5),
}
COLLAPSING = "random"  # collapses at 0.95 everywhere
APART = "<script>window.__pwned=1</script>"  # measured at 0.9 only, with a hostile name


def _epochs(timing: str, pruner: str, sparsity: float) -> tuple[float, float, float]:
    if timing == "after_training":
        return 30.0, 0.0, 8.0
    if pruner == "imp":
        rounds = int(np.ceil(np.log(1 - sparsity) / np.log(0.8)))
        return 30.0, 5.0 * rounds, 8.0
    return 6.0, 0.0, 8.0 if timing == "at_init" else 0.0


def leaderboard(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells, rows = [], []
    m = S.m
    for dataset, (corruptions, oods) in DATASETS.items():
        for arch in ARCHS:
            for seed in range(3):
                dense = 0.9 + rng.normal(0, 0.005) if dataset != "mnist1d_hard" else 0.7 + rng.normal(0, 0.01)
                entries = [(p, s) for p in PRUNERS for s in GRID] + [(APART, 0.9)]
                for pruner, sparsity in entries:
                    kind, timing, penalty = PRUNERS.get(pruner, ("unstructured", "after_training", 1.0))
                    key = repr((dataset, arch, seed, pruner, sparsity)).encode()
                    cid = "c" + hashlib.sha256(key).hexdigest()[:16]
                    drop = 0.01 * penalty * (1 + 10 * (sparsity - 0.8)) + rng.normal(0, 0.004)
                    acc = dense - abs(drop)
                    if pruner == COLLAPSING and sparsity == 0.95:
                        acc = 0.1 + rng.uniform(0, 0.05)
                    e_dense, e_prune, e_retrain = _epochs(timing, pruner, sparsity)
                    cells.append(
                        {
                            **S.CELL,
                            "cell_id": cid,
                            "parent_id": f"p{dataset}{arch}{seed}{timing == 'after_training'}",
                            "arch": arch,
                            "dataset": dataset,
                            "pruner": pruner,
                            "pruner_kind": kind,
                            "pruner_timing": timing,
                            "sparsity": sparsity,
                            "seed": seed,
                            "epochs_dense": e_dense,
                            "epochs_prune": e_prune,
                            "epochs_retrain": e_retrain,
                            "train_flops": 1e11 * (e_dense + (e_prune + e_retrain) * (1 - sparsity)),
                            "plugin": "evil-plugin" if pruner == APART else None,
                            "plugin_version": "0.1" if pruner == APART else None,
                        }
                    )
                    rows += [
                        m(cid, "dense", "test", "accuracy", dense),
                        m(cid, "retrained", "test", "accuracy", acc),
                        m(cid, "retrained", "test", "ece", float(np.clip(0.03 + 0.5 * (dense - acc), 0, 1))),
                        m(cid, "retrained", "model", "flops_dense", 1e6, kind="model"),
                        m(cid, "retrained", "model", "flops_effective", 1e6 * (1 - sparsity), kind="model"),
                    ]
                    for k, c in enumerate(corruptions):
                        for sev in range(1, 6):
                            base = dense - 0.02 * sev - 0.01 * k
                            rows.append(m(cid, "dense", c, "accuracy", base, kind="corruption", severity=sev))
                            rows.append(
                                m(
                                    cid,
                                    "retrained",
                                    c,
                                    "accuracy",
                                    float(np.clip(base - 1.5 * (dense - acc), 0, 1)),
                                    kind="corruption",
                                    severity=sev,
                                )
                            )
                    for o in oods:
                        rows.append(
                            m(
                                cid,
                                "retrained",
                                o,
                                "auroc_msp",
                                float(np.clip(0.8 - (dense - acc), 0, 1)),
                                kind="ood",
                            )
                        )
    return pd.DataFrame(cells), pd.DataFrame(rows)


def write_default_shaped_store(root: Path, seed: int = 0) -> Path:
    """The store, its study manifests and ``leaderboard.json``; then ``run_analysis`` on it."""
    from analysis.claims import run_analysis

    rng = np.random.default_rng(seed)
    cells, metrics = leaderboard(rng)
    studies = {
        "leaderboard": ({"analysis": "none"}, cells, metrics),
        "intensification": (
            S.study_definition("intensification"),
            *S.intensification(
                rng,
                {0.5: 0.93, 0.75: 0.97, 0.9: 1.05, 0.95: 1.2, 0.98: 1.6},
                seeds=12,
                pruners=("global_magnitude", "undecayed"),
                control=1.0,
                arch="lenet5",
                dataset="mnist5k",
            ),
        ),
        "stability": (S.study_definition("stability"), *S.stability(rng, -0.5, seeds=10)),
        "mask_sanity": (
            S.study_definition("mask_sanity"),
            *S.mask_controls(rng, {"snip": 0.0, "grasp": 0.0, "synflow": 0.0, "global_magnitude": -0.05}),
        ),
    }
    S.write_store(root, studies, per_cell=False)
    (root / "studies" / "leaderboard.json").unlink()
    (root / "leaderboard.json").write_text(
        json.dumps(
            {
                "grid": list(GRID),
                "cell_ids": sorted(cells["cell_id"]),
                "preset": "synthetic",
                "latency_protocol": "test protocol",
            }
        )
    )
    run_analysis(root)
    return root
