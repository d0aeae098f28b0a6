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

from analysis.load import group_positions, prune_cells, recalls, scalar
from analysis.stats import TestResult, bh, welch, welch_many
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
    pc = pc[pc.cell_id.isin(r0.index) & pc.cell_id.isin(r1.index)].reset_index(drop=True)
    cids, parents = pc["cell_id"].to_numpy(), pc["parent_id"].to_numpy()
    R0, R1 = r0.to_numpy(float), r1.to_numpy(float)
    row0 = pd.Series(np.arange(len(r0)), index=r0.index)
    row1 = pd.Series(np.arange(len(r1)), index=r1.index).reindex(cids).to_numpy()
    A0 = a0.reindex(cids).to_numpy(float)
    A1 = a1.reindex(cids).to_numpy(float)
    cols1 = {c: j for j, c in enumerate(r1.columns)}
    out = []
    for (pr, ar, ds, sp), gi in group_positions(pc, ["pruner", "arch", "dataset", "sparsity"]):
        # dense population: the seeds' parents, in order of first appearance
        _, first = np.unique(parents[gi], return_index=True)
        dense_i = gi[np.sort(first)]
        dense_r = R0[row0.reindex(cids[dense_i]).to_numpy()]
        dense_a = A0[dense_i]
        # pruned population: one model per seed (recipes averaged)
        codes, uniq = pd.factorize(parents[gi], sort=True)
        cnt_r = np.zeros((len(uniq), R1.shape[1]))
        sum_r = np.zeros_like(cnt_r)
        vals = R1[row1[gi]]
        np.add.at(sum_r, codes, np.nan_to_num(vals))
        np.add.at(cnt_r, codes, np.isfinite(vals))
        va = A1[gi]
        sum_a, cnt_a = np.zeros(len(uniq)), np.zeros(len(uniq))
        np.add.at(sum_a, codes, np.nan_to_num(va))
        np.add.at(cnt_a, codes, np.isfinite(va))
        with np.errstate(invalid="ignore", divide="ignore"):
            pr_r, pr_a = sum_r / cnt_r, sum_a / cnt_a
        samples, classes = [], []
        for j, c in enumerate(r0.columns):
            if c not in cols1:
                continue
            samples.append(class_shift_samples(dense_r[:, j], dense_a, pr_r[:, cols1[c]], pr_a))
            classes.append(c)
        if not samples:
            continue
        results = welch_many([(xp, x0) for x0, xp in samples])
        block = pd.DataFrame(
            {
                "pruner": pr,
                "arch": ar,
                "dataset": ds,
                "sparsity": sp,
                "class": [int(c) for c in classes],
                "shift": [r.estimate for r in results],
                "t": [r.statistic for r in results],
                "p": [r.p for r in results],
                "n_dense": [int(np.isfinite(x0).sum()) for x0, _ in samples],
                "n_pruned": [int(np.isfinite(xp).sum()) for _, xp in samples],
            }
        )
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
