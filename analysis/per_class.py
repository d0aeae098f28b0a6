"""Per-class damage of pruning (Hooker, Courville, Clark, Dauphin & Frome, "What do compressed
deep neural networks forget?", 2019/2020; google-research pruning_identified_exemplars).

On populations of dense models and of the same models pruned at sparsity ``s`` (one per dense
seed; ``shared/design/claims.md`` section 2): for class ``c`` compare

    X0_c = { R_c(m) - mean_m A(m) : m dense },   Xs_c = { R_c(m') - mean_m' A(m') : m' pruned }

by Welch's two-sided t-test (``equal_var=False``); Benjamini-Hochberg over the classes of a
scope gives the classes significantly changed, helped (mean shift up) or hurt. A
pruning-identified exemplar (PIE) is a test example whose modal predicted label across the
pruned population differs from its modal label across the dense population; the PIE fraction
is reported by sparsity.

The primary test of a scope is the global null "no class is changed": its p-value is Simes'
(the smallest BH q over the classes), its estimate the shift of the most significant class with
that class's Bonferroni interval over the classes, its MDE the Welch MDE at ``alpha / K`` with
the median class spread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import power as P
from analysis.evidence import bh
from analysis.load import StudyData, predictions, prune_cells, recalls, scalar
from analysis.regime import is_collapsed
from analysis.verdict import Evidence, Row, bootstrap_stability, decide, make_row
from core.studies import Hypothesis


def class_shift_samples(recall: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """``R_c(m) - mean_m A(m)``: models x classes."""
    return np.asarray(recall, float) - float(np.mean(accuracy))


def class_evidence(x0: np.ndarray, xs: np.ndarray, h: Hypothesis) -> tuple[Evidence, pd.DataFrame]:
    """Welch per class (columns), BH over classes, and the scope's global-null evidence."""
    k = x0.shape[1]
    res = stats.ttest_ind(xs, x0, axis=0, equal_var=False)
    p = np.asarray(res.pvalue, float)
    q = bh(p)
    diff = xs.mean(0) - x0.mean(0)
    table = pd.DataFrame({"class": np.arange(k), "shift": diff, "p": p, "q": q})
    if not np.isfinite(p).any():
        return Evidence.missing("welch_classes", min(len(x0), len(xs))), table
    best = int(np.nanargmin(p))
    ci = stats.ttest_ind(xs[:, best], x0[:, best], equal_var=False).confidence_interval(1 - h.alpha / k)
    pooled = np.sqrt((x0.var(0, ddof=1) + xs.var(0, ddof=1)) / 2)
    mde = P.mde_welch(float(np.nanmedian(pooled)), len(xs), len(x0), h.alpha / k)
    effect = h.effect if h.effect is not None else float("nan")
    power = P.power_welch(effect, float(np.nanmedian(pooled)), len(xs), len(x0), h.alpha / k)
    ev = Evidence(
        "welch_classes",
        int(min(len(x0), len(xs))),
        float(diff[best]),
        float(ci.low),
        float(ci.high),
        float(np.nanmin(q)),
        mde,
        power,
        float(res.statistic[best]),
    )
    return ev, table


def pie_fraction(dense_pred: pd.DataFrame, pruned_pred: pd.DataFrame) -> float:
    """Share of test examples whose modal label differs between the two populations."""
    if dense_pred.empty or pruned_pred.empty:
        return float("nan")
    m0 = stats.mode(dense_pred.to_numpy(), axis=0, keepdims=False).mode
    m1 = stats.mode(pruned_pred.to_numpy(), axis=0, keepdims=False).mode
    return float(np.mean(m0 != m1))


def analyze(study: StudyData) -> list[Row]:
    pc = prune_cells(study.cells)
    r0, r1 = recalls(study.metrics, "dense"), recalls(study.metrics, "retrained")
    a0, a1 = scalar(study.metrics, "dense", "accuracy"), scalar(study.metrics, "retrained", "accuracy")
    p0, p1 = predictions(study.metrics, "dense"), predictions(study.metrics, "retrained")
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            scoped = pc
            for key, value in h.scope.items():
                scoped = (
                    scoped[np.isclose(scoped[key], value)]
                    if key == "sparsity"
                    else scoped[scoped[key] == value]
                )
            for (arch, dataset, pruner, sparsity), g in scoped.groupby(
                ["arch", "dataset", "pruner", "sparsity"]
            ):
                g = g[g["cell_id"].isin(r1.index) & g["cell_id"].isin(r0.index)]
                if len(g) < 2:
                    continue
                dense_ids = g.drop_duplicates("parent_id")["cell_id"]  # a parent's dense rows, once
                x0 = class_shift_samples(r0.loc[dense_ids].to_numpy(), a0.loc[dense_ids].to_numpy())
                xs = class_shift_samples(r1.loc[g["cell_id"]].to_numpy(), a1.loc[g["cell_id"]].to_numpy())
                ev, table = class_evidence(x0, xs, h)
                changed = table[table["q"] < h.alpha]
                pie = pie_fraction(
                    p0.loc[p0.index.intersection(dense_ids)], p1.loc[p1.index.intersection(g["cell_id"])]
                )
                collapsed = is_collapsed(a1.loc[g["cell_id"]], x0.shape[1])
                stability = float("nan")
                if h.primary and not collapsed:
                    full = decide(h, ev)
                    n = min(len(x0), len(xs))

                    def again(idx, x0=x0, xs=xs, h=h):
                        return decide(h, class_evidence(x0[idx % len(x0)], xs[idx % len(xs)], h)[0])

                    stability = bootstrap_stability(n, again, full, (claim.id, h.id))
                desc = (
                    f"{len(changed)} of {len(table)} classes changed (BH q < {h.alpha:g}): "
                    f"{int((changed['shift'] > 0).sum())} helped, {int((changed['shift'] < 0).sum())} hurt; "
                    f"PIE fraction {pie:.3f}; {len(x0)} dense and {len(xs)} pruned models"
                )
                row = make_row(
                    h,
                    ev,
                    claim=claim.id,
                    study=study.name,
                    description=desc,
                    stability=stability,
                    arch=arch,
                    dataset=dataset,
                    pruner=pruner,
                    sparsity=sparsity,
                )
                row.label = f"{len(changed)}/{len(table)}"
                if collapsed:
                    row.verdict, row.description = "collapsed", row.description + "; collapsed"
                rows.append(row)
    return rows
