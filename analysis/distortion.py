"""Recall distortion of one pruned model against its dense parent (Good, Lin, Sieg, Ferguson, Yu,
Zhe, Wieczorek & Serra, "Recall Distortion in Neural Network Pruning and the Undecayed Pruning
Algorithm", NeurIPS 2022, sections 4-5; ``shared/design/claims.md`` section 1).

For a model with class recalls ``R_c`` on the clean test set, ``A`` is the **balanced accuracy**
(the mean class recall): on a class-balanced test set it is the top-1 accuracy, and on one that
is not (MNIST-1D's test split has 83-110 examples per class) it keeps ``sum_c B_c = 0``, which
the paper's through-origin slope assumes. Unsubscripted: the dense parent; subscript ``t``: the
parent pruned at compression ratio ``t = 1 / (1 - s)`` and fine-tuned.

- recall balance ``B_c = R_c - A``; normalised ``Bbar_c = B_c / A``;
- ``alpha_t = sum_c Bbar_c Bbar_c,t / sum_c Bbar_c^2`` (the paper's model-level slope through
  the origin; ``> 1`` intensification);
- ``beta_t = sum_c B_c B_c,t / sum_c B_c^2``, the same slope of the un-normalised balances, so
  that ``alpha_t = beta_t * A / A_t`` exactly: ``beta_t`` says whether the class gaps grew, and
  ``A / A_t`` how much of ``alpha_t`` is the fall in accuracy alone (claims.md rev. 3);
- the **t = 1 control**: the same pipeline with nothing pruned (sparsity 0), fine-tuned from
  the same parent; ``alpha_1`` measures fine-tuning alone, and the effect of pruning is
  ``alpha_t - alpha_1`` paired by parent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import kept_epochs, prune_cells, recalls, scalar
from analysis.regime import last_epoch_share

RATIO_OF = {0.0: 1, 0.5: 2, 0.75: 4, 0.9: 10, 0.95: 20, 0.98: 50}
COLUMNS = [
    "cell_id", "unit", "arch", "dataset", "pruner", "sparsity", "seed", "t", "accuracy",
    "dense_accuracy", "balanced", "dense_balanced", "alpha", "beta", "classes", "spec_json",
]  # fmt: skip


def ratio(sparsity: float) -> float:
    """Compression ratio ``t = 1 / (1 - s)`` (weights before over after)."""
    return RATIO_OF.get(round(float(sparsity), 4), 1.0 / (1.0 - float(sparsity)))


def normalized_balance(recall, accuracy) -> np.ndarray:
    """``Bbar_c = (R_c - A) / A`` (NaN where ``A = 0``)."""
    acc = np.asarray(accuracy, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(acc > 0, (np.asarray(recall, float) - acc) / acc, np.nan)


def alpha_slope(b_dense, b_pruned) -> np.ndarray:
    """``sum_c b_c b_c,t / sum_c b_c^2`` per row (classes along the last axis): ``alpha_t`` of the
    normalised balances, ``beta_t`` of the un-normalised ones."""
    b0, b1 = np.asarray(b_dense, float), np.asarray(b_pruned, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(b0 * b1, axis=-1) / np.nansum(b0 * b0, axis=-1)


def cell_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per pruning cell (the t = 1 control included): scope, parent (``unit``), ``t``,
    top-1 and balanced accuracies, ``alpha``, ``beta``, ``kept_epoch``."""
    pc = prune_cells(cells)
    r0, r1 = recalls(metrics, "dense"), recalls(metrics, "retrained")
    a1 = scalar(metrics, "retrained", "accuracy")
    a0 = scalar(metrics, "dense", "accuracy")
    ids = [c for c in pc["cell_id"] if c in r0.index and c in r1.index]
    if not ids:
        return pd.DataFrame(columns=[*COLUMNS, "kept_epoch"])
    classes = r0.columns.intersection(r1.columns)
    rec0, rec1 = r0.loc[ids, classes].to_numpy(), r1.loc[ids, classes].to_numpy()
    bal0, bal1 = np.nanmean(rec0, axis=1), np.nanmean(rec1, axis=1)
    out = pc.set_index("cell_id").loc[ids].reset_index()
    unit = out["parent_id"] if "parent_id" in out else pd.Series(np.nan, index=out.index)
    out["unit"] = unit.where(unit.notna(), out["arch"] + "|" + out["dataset"] + "|" + out["seed"].astype(str))
    out["t"] = [ratio(s) for s in out["sparsity"]]
    out["accuracy"] = a1.reindex(ids).to_numpy()
    out["dense_accuracy"] = a0.reindex(ids).to_numpy()
    out["balanced"], out["dense_balanced"] = bal1, bal0
    out["alpha"] = alpha_slope(
        normalized_balance(rec0, bal0[:, None]), normalized_balance(rec1, bal1[:, None])
    )
    out["beta"] = alpha_slope(rec0 - bal0[:, None], rec1 - bal1[:, None])
    out["classes"] = len(classes)
    out["kept_epoch"] = kept_epochs(metrics).reindex(ids).to_numpy()
    return out[[*COLUMNS, "kept_epoch"]]


def by_unit(df: pd.DataFrame, column: str = "alpha") -> pd.Series:
    """One value per parent (the unit of every test), the mean over its cells."""
    return df.groupby("unit", sort=True)[column].mean()


def control_of(table: pd.DataFrame, arch: str, dataset: str) -> pd.DataFrame:
    """The t = 1 control cells of an (arch, dataset): sparsity 0, nothing pruned."""
    return table[(table["arch"] == arch) & (table["dataset"] == dataset) & (table["sparsity"] == 0)]


def paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, list]:
    """Values of two per-unit series on their common units (sorted), and the units."""
    common = sorted(a.index.intersection(b.index))
    return a.loc[common].to_numpy(float), b.loc[common].to_numpy(float), common


def _kept(df: pd.DataFrame) -> pd.Series:
    return df.set_index("cell_id")["kept_epoch"].dropna()


def row_numbers(group: pd.DataFrame, control: pd.DataFrame) -> dict:
    """What every intensification row shows beside its test (claims.md rev. 3): ``alpha_t``,
    ``beta_t``, ``A/A_t``, the control's ``alpha_1``, ``alpha_t - alpha_1`` paired by parent,
    and the share of cells whose kept epoch is the recipe's last."""
    alpha_t, alpha_1 = by_unit(group), by_unit(control) if len(control) else pd.Series(dtype=float)
    a, b, units = paired(alpha_t, alpha_1)
    share, count, total = last_epoch_share(group, _kept(group))
    ctl_share, _, ctl_total = last_epoch_share(control, _kept(control)) if len(control) else (np.nan, 0, 0)
    return {
        "t": float(group["t"].iloc[0]),
        "alpha_t": float(alpha_t.mean()),
        "beta_t": float(by_unit(group, "beta").mean()),
        "a_over_a_t": float((group["dense_balanced"] / group["balanced"]).mean()),
        "balanced_accuracy_t": float(group["balanced"].mean()),
        "balanced_accuracy": float(group["dense_balanced"].mean()),
        "alpha_1": float(alpha_1.mean()) if len(alpha_1) else None,
        "alpha_t_minus_alpha_1": float(np.mean(a - b)) if units else None,
        "control_units": len(units),
        "last_epoch_share": share,
        "last_epoch_cells": f"{count}/{total}",
        "control_last_epoch_share": ctl_share if ctl_total else None,
        "units": int(alpha_t.size),
    }
