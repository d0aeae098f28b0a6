"""Sanity check: magnitude pruners against ``random`` at high sparsity.

Random pruning is the floor every informed method must clear (Blalock et al., "What is the
state of neural network pruning?", MLSys 2020). For every (arch, dataset) and magnitude
pruner ``p`` this compares the mean clean test accuracy after retraining,

    margin(p) = mean_{seeds, recipes} acc(p, s) - mean_{seeds, recipes} acc(random, s),

at each sparsity ``s >= 0.9`` and pooled over those sparsities. ``beats`` is ``margin > 0``:
a descriptive check on seed means, not a significance test (the claims table holds those).
"""

from __future__ import annotations

import pandas as pd

from analysis.load import prune_cells, scalar

MAGNITUDE_PRUNERS = ("global_magnitude", "layer_magnitude", "lamp")
BASELINE = "random"
MIN_SPARSITY = 0.9
POOLED = "pooled"


def retrained_accuracy(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per pruning cell: arch, dataset, pruner, sparsity, seed, retrain, accuracy."""
    keys = ["cell_id", "arch", "dataset", "pruner", "sparsity", "seed", "retrain"]
    acc = scalar(metrics, "retrained", "accuracy").rename("accuracy")
    return prune_cells(cells)[keys].merge(acc, left_on="cell_id", right_index=True)


def magnitude_vs_random(
    cells: pd.DataFrame,
    metrics: pd.DataFrame,
    pruners: tuple[str, ...] = MAGNITUDE_PRUNERS,
    min_sparsity: float = MIN_SPARSITY,
) -> pd.DataFrame:
    """Rows (arch, dataset, pruner, sparsity, accuracy, random, margin, beats, cells);
    ``sparsity`` is a number or ``"pooled"`` (every sparsity >= ``min_sparsity``).

    Only sparsities where both the pruner and ``random`` have cells are compared, and pooled
    means are over the same (sparsity, seed, recipe) cells on both sides.
    """
    columns = ["arch", "dataset", "pruner", "sparsity", "accuracy", "random", "margin", "beats", "cells"]
    runs = retrained_accuracy(cells, metrics)
    runs = runs[runs["sparsity"] >= min_sparsity - 1e-9]
    base = runs[runs["pruner"] == BASELINE].drop(columns=["cell_id", "pruner"])
    rows = []
    for pruner in pruners:
        mine = runs[runs["pruner"] == pruner].drop(columns=["cell_id", "pruner"])
        paired = mine.merge(
            base, on=["arch", "dataset", "sparsity", "seed", "retrain"], suffixes=("", "_random")
        )
        for (arch, dataset), group in paired.groupby(["arch", "dataset"], sort=True):
            levels = [(s, g) for s, g in group.groupby("sparsity", sort=True)] + [(POOLED, group)]
            for sparsity, g in levels:
                acc, rnd = float(g["accuracy"].mean()), float(g["accuracy_random"].mean())
                rows.append([arch, dataset, pruner, sparsity, acc, rnd, acc - rnd, acc > rnd, len(g)])
    out = pd.DataFrame(rows, columns=columns)
    out["sparsity"] = out["sparsity"].astype(str)
    return out


def render_sanity(table: pd.DataFrame) -> str:
    """The pooled rows as fixed-width text, plus a count of per-sparsity rows that fail."""
    if table.empty:
        return f"sanity: no {BASELINE} / magnitude cells at sparsity >= {MIN_SPARSITY} to compare"
    pooled = table[table["sparsity"] == POOLED]
    wide = pooled.pivot_table(index=["arch", "dataset"], columns="pruner", values="accuracy")
    wide.insert(0, BASELINE, pooled.groupby(["arch", "dataset"])["random"].first())
    failing = table[~table["beats"]]
    head = (
        f"sanity: mean test accuracy after retraining at sparsity >= {MIN_SPARSITY} "
        f"(seeds, recipes and sparsities pooled); {len(table) - len(failing)} of {len(table)} "
        f"(arch, dataset, pruner, sparsity) comparisons beat {BASELINE}"
    )
    lines = [head, wide.round(3).to_string()]
    for r in failing.itertuples():
        where = "the pooled sparsities" if r.sparsity == POOLED else f"sparsity {r.sparsity}"
        lines.append(
            f"  not above {BASELINE}: {r.pruner} on {r.arch}/{r.dataset} at {where}: "
            f"{r.accuracy:.3f} vs {r.random:.3f}"
        )
    return "\n".join(lines)
