"""Sanity checks of the leaderboard (not claims): the standard recovery and magnitude over random.

- Recovery: ``global_magnitude`` at sparsity 0.9, after its retraining, within
  ``RECOVERY_POINTS`` (1.5) points of the dense parents' test accuracy on every (arch, dataset)
  of the leaderboard (mean over seeds) - the result every pruning paper reproduces first
  (Han et al. 2015; Blalock et al. 2020).
- Magnitude over random: ``global_magnitude``, ``layer_magnitude`` and ``lamp`` against
  ``random`` at every grid sparsity >= 0.9 (mean retrained test accuracy over seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import scalar
from core.store import MetricFilter, StoreReader

RECOVERY_SPARSITY = 0.9
RECOVERY_POINTS = 1.5
MAGNITUDE_PRUNERS = ("global_magnitude", "layer_magnitude", "lamp")
BASELINE = "random"
ACCURACY = MetricFilter(
    phases=["dense", "retrained"], metrics=["accuracy"], eval_sets=["test"], per_class=False
)


def leaderboard_cells(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, test-accuracy rows) of the leaderboard: the cells ``leaderboard.json`` lists."""
    reader = StoreReader(results_dir)
    path = Path(results_dir) / "leaderboard.json"
    cells = reader.cells(["cell_id", "arch", "dataset", "pruner", "sparsity", "seed", "control", "cell_type"])
    if path.exists():
        cells = cells[cells["cell_id"].isin(set(json.loads(path.read_text())["cell_ids"]))]
    cells = cells[(cells["cell_type"] == "prune") & (cells["control"] == "none")]
    metrics = reader.metrics([ACCURACY])
    return cells.reset_index(drop=True), metrics[metrics["cell_id"].isin(set(cells["cell_id"]))]


def leaderboard_checks(results_dir: str | Path) -> pd.DataFrame:
    cells, metrics = leaderboard_cells(results_dir)
    if cells.empty:
        return pd.DataFrame()
    dense, after = scalar(metrics, "dense", "accuracy"), scalar(metrics, "retrained", "accuracy")
    cells = cells[cells["cell_id"].isin(after.index)].copy()
    cells["accuracy"] = after.loc[cells["cell_id"]].to_numpy()
    cells["dense"] = dense.loc[cells["cell_id"]].to_numpy()
    rows = []
    for (arch, dataset), g in cells.groupby(["arch", "dataset"], sort=True):
        gm = g[(g["pruner"] == "global_magnitude") & np.isclose(g["sparsity"], RECOVERY_SPARSITY)]
        dense_acc = gm.groupby("seed")["dense"].first().mean()  # its own dense parents
        rec = gm["accuracy"].mean() if len(gm) else float("nan")
        row = {
            "arch": arch,
            "dataset": dataset,
            "dense": dense_acc,
            "global_magnitude_0.9": rec,
            "drop_points": 100 * (dense_acc - rec),
            "recovers": bool(100 * (dense_acc - rec) <= RECOVERY_POINTS),
            "seeds": int(gm["seed"].nunique()),
        }
        for s in sorted(g["sparsity"].unique()):
            if s < 0.9:
                continue
            at = g[np.isclose(g["sparsity"], s)].groupby("pruner")["accuracy"].mean()
            for p in (BASELINE, *MAGNITUDE_PRUNERS):
                row[f"{p}@{s:g}"] = at.get(p, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def render_sanity(table: pd.DataFrame) -> str:
    if table.empty:
        return "sanity: no leaderboard cells in this store"
    ok = int(table["recovers"].sum())
    measured = int((table["seeds"] > 0).sum())
    head = (
        f"recovery: global_magnitude at {RECOVERY_SPARSITY:g} within {RECOVERY_POINTS:g} points of dense on "
        f"{ok} of {measured} (arch, dataset)"
        + (f" ({len(table) - measured} not in this store)" if measured < len(table) else "")
    )
    lines = [head]
    for r in table.to_dict("records"):
        if not r["seeds"]:
            lines.append(f"  {r['arch']:<16} {r['dataset']:<13} global_magnitude@0.9 not in this store")
            continue
        lines.append(
            f"  {r['arch']:<16} {r['dataset']:<13} dense {r['dense']:.3f}  global_magnitude@0.9 "
            f"{r['global_magnitude_0.9']:.3f}  drop {r['drop_points']:+.2f} points "
            f"{'ok' if r['recovers'] else 'NOT recovered'}"
        )
    wins = total = 0
    for c in table.columns:
        if "@" in c and not c.startswith(BASELINE) and not c.startswith("global_magnitude_"):
            base = table[f"{BASELINE}@{c.split('@')[1]}"]
            ok_rows = table[c].notna() & base.notna()
            wins += int((table[c][ok_rows] > base[ok_rows]).sum())
            total += int(ok_rows.sum())
    lines.append(
        f"magnitude over random at sparsity >= 0.9: {wins} of {total} (arch, dataset, pruner, sparsity)"
    )
    return "\n".join(lines)
