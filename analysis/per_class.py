"""Per-class damage (Hooker, Courville, Clark, Dauphin & Frome, "What Do Compressed Deep
Neural Networks Forget?", arXiv:1911.05248, 2019).

Over a population of dense models and one of pruned models at sparsity ``p`` (one model per
seed), for class ``c`` compare ``X0 = {r_c(m) - mean_acc_dense}`` with
``Xp = {r_c(m) - mean_acc_pruned}`` by Welch's two-sided t-test (``equal_var=False``);
classes significant after Benjamini-Hochberg over the classes of one
(pruner, arch, dataset, sparsity) are *affected*, split into *helped* (``mean Xp > mean X0``)
and *hurt*. Here the pruned model of a seed is the retrained one (phase ``retrained``),
with recalls averaged over the retraining recipes present; the dense population is the
seeds' dense parents.

Claims-table rows (``per_class_damage``, test ``welch_count``): ``statistic`` = number of
affected classes, ``estimate`` = affected share of classes, ``p`` = Simes' global p-value
``min_k m p_(k) / k`` (= the smallest BH q over classes; H0: no class affected), claimed
direction "some class affected"; the description gives helped/hurt counts and mean shifts.
The per-class results are returned by ``class_tests`` (written to ``claims/per_class.parquet``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import prune_cells, recalls, scalar
from analysis.stats import TestResult, bh, welch
from analysis.table import ALPHA, make_row, missing_row

CLAIM = "per_class_damage"


def class_shift_samples(dense_recall, dense_acc, pruned_recall, pruned_acc) -> tuple[np.ndarray, np.ndarray]:
    """``X0 = r_c(m) - mean acc(dense)``, ``Xp = r_c(m) - mean acc(pruned)`` for one class."""
    x0 = np.asarray(dense_recall, float) - np.nanmean(np.asarray(dense_acc, float))
    xp = np.asarray(pruned_recall, float) - np.nanmean(np.asarray(pruned_acc, float))
    return x0, xp


def welch_class_test(x0, xp) -> TestResult:
    """Welch's t on ``Xp`` vs ``X0``; estimate ``mean Xp - mean X0`` (> 0: class helped)."""
    return welch(xp, x0)


def simes_p(p) -> float:
    """Simes' global p-value ``min_k m p_(k) / k`` (the smallest BH q-value)."""
    q = bh(p)
    return float(np.nanmin(q)) if np.isfinite(q).any() else float("nan")


def class_tests(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Welch test per (pruner, arch, dataset, sparsity, class), with BH over the classes."""
    pc = prune_cells(cells)
    r0, r1 = recalls(metrics, "dense"), recalls(metrics, "retrained")
    a0, a1 = scalar(metrics, "dense", "accuracy"), scalar(metrics, "retrained", "accuracy")
    if pc.empty or r0.empty or r1.empty:
        return pd.DataFrame()
    pc = pc[pc.cell_id.isin(r0.index) & pc.cell_id.isin(r1.index)]
    out = []
    for (pr, ar, ds, sp), g in pc.groupby(["pruner", "arch", "dataset", "sparsity"]):
        parents = g.drop_duplicates("parent_id")
        dense_r = r0.loc[parents["cell_id"]].to_numpy()
        dense_a = a0.reindex(parents["cell_id"]).to_numpy()
        # pruned population: one model per seed (recipes averaged)
        pr_r = r1.loc[g["cell_id"]].groupby(g["parent_id"].to_numpy()).mean()
        pr_a = a1.reindex(g["cell_id"]).groupby(g["parent_id"].to_numpy()).mean()
        recs = []
        for j, c in enumerate(r0.columns):
            if c not in pr_r.columns:
                continue
            x0, xp = class_shift_samples(dense_r[:, j], dense_a, pr_r[c].to_numpy(), pr_a.to_numpy())
            res = welch_class_test(x0, xp)
            recs.append(
                {
                    "pruner": pr,
                    "arch": ar,
                    "dataset": ds,
                    "sparsity": sp,
                    "class": int(c),
                    "shift": res.estimate,
                    "t": res.statistic,
                    "p": res.p,
                    "n_dense": int(np.isfinite(x0).sum()),
                    "n_pruned": int(np.isfinite(xp).sum()),
                }
            )
        if recs:
            block = pd.DataFrame(recs)
            block["q"] = bh(block["p"].to_numpy())
            out.append(block)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def analyze(cells: pd.DataFrame, metrics: pd.DataFrame) -> tuple[list[dict], pd.DataFrame]:
    """Claims rows (one ``welch_count`` per scope) and the per-class table."""
    ct = class_tests(cells, metrics)
    if ct.empty:
        return [missing_row(CLAIM, "no pruning cells with dense and retrained per-class recall")], ct
    rows = []
    for (pr, ar, ds, sp), g in ct.groupby(["pruner", "arch", "dataset", "sparsity"]):
        sig = g[g["q"] < ALPHA]
        helped, hurt = sig[sig["shift"] > 0], sig[sig["shift"] < 0]
        k = len(g)
        res = TestResult(
            float(len(sig)),
            len(sig) / k if k else float("nan"),
            float("nan"),
            float("nan"),
            simes_p(g["p"].to_numpy()),
            int(g["n_pruned"].max()),
        )
        desc = (
            f"{len(sig)}/{k} classes changed (BH q<{ALPHA}): {len(helped)} helped"
            f" (mean {helped['shift'].mean() if len(helped) else 0:+.3f}), {len(hurt)} hurt"
            f" (mean {hurt['shift'].mean() if len(hurt) else 0:+.3f}); p = Simes over classes, n = seeds"
        )
        rows.append(
            make_row(
                CLAIM,
                "welch_count",
                res,
                direction=0,
                description=desc,
                pruner=pr,
                arch=ar,
                dataset=ds,
                sparsity=sp,
            )
        )
    return rows, ct
