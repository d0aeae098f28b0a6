"""Per-class damage of pruning (Hooker, Courville, Clark, Dauphin & Frome, "What do compressed
deep neural networks forget?", 2019/2020; google-research pruning_identified_exemplars).

Hooker's pruned models are an independent population; ours descend one-to-one from dense
parents, so the primary test is **paired by parent** (``shared/design/claims.md`` section 2,
rev. 3): for class ``c`` and parent ``m``, with ``A`` the top-1 accuracy,

    d_mc = (R_c,t(m) - A_t(m)) - (R_c(m) - A(m)),

the change of class ``c``'s recall beyond the overall change. ``paired_classes``: a one-sample t
per class over the parents, and **one rule** for the estimate and the verdict: Bonferroni over the
K classes, the family's p ``min(1, K min_c p_c)`` with the ``1 - alpha / K`` interval of the most
significantly changed class (``analysis.evidence.paired_classes``). The count of classes changed
at Benjamini-Hochberg ``q < alpha`` is description, as are the classes helped and hurt and the
fraction of pruning-identified exemplars (PIE: a test example whose modal predicted label across
the pruned population differs from that across the dense population). ``welch_classes``
(secondary) is Hooker's unpaired Welch test of ``R_c(m) - mean_m A(m)``, shown for comparison.

The sparsity: ``scope.sparsity``, or ``scope.match_drop = x``: the design's sparsity whose mean
accuracy drop ``A - A_t`` is closest to ``x`` (Hooker's drop), a rule on accuracy alone, never on
the per-class outcome. Gates: convergence and collapse (absolute and relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import evidence as E
from analysis import power as P
from analysis.base import Analysis
from analysis.evidence import bh
from analysis.load import StudyData, kept_epochs, predictions, prune_cells, recalls, scalar
from analysis.regime import collapse_gate, convergence_gate
from analysis.verdict import Evidence, Row, judge, make_row
from core.hypotheses import Hypothesis


def class_shift_samples(recall: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """``R_c(m) - mean_m A(m)``: models x classes (Hooker's unpaired samples)."""
    return np.asarray(recall, float) - float(np.mean(accuracy))


def paired_shifts(r0: np.ndarray, a0: np.ndarray, r1: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """``d_mc = (R_c,t(m) - A_t(m)) - (R_c(m) - A(m))``: parents x classes."""
    return (np.asarray(r1, float) - np.asarray(a1, float)[:, None]) - (
        np.asarray(r0, float) - np.asarray(a0, float)[:, None]
    )


def welch_classes(x0: np.ndarray, xs: np.ndarray, h: Hypothesis) -> tuple[Evidence, pd.DataFrame]:
    """Hooker's unpaired test: Welch per class, Bonferroni over the classes for the family."""
    k = x0.shape[1]
    res = stats.ttest_ind(xs, x0, axis=0, equal_var=False)
    p = np.asarray(res.pvalue, float)
    diff = xs.mean(0) - x0.mean(0)
    table = pd.DataFrame({"class": np.arange(k), "shift": diff, "p": p})
    if not np.isfinite(p).any():
        return Evidence.missing("welch_classes", min(len(x0), len(xs))), table
    best = int(np.nanargmin(p))
    ci = stats.ttest_ind(xs[:, best], x0[:, best], equal_var=False).confidence_interval(1 - h.alpha / k)
    pooled = float(np.nanmedian(np.sqrt((x0.var(0, ddof=1) + xs.var(0, ddof=1)) / 2)))
    effect = h.effect if h.effect is not None else float("nan")
    ev = Evidence(
        "welch_classes",
        int(min(len(x0), len(xs))),
        float(diff[best]),
        float(ci.low),
        float(ci.high),
        float(min(1.0, k * p[best])),
        P.mde_welch(pooled, len(xs), len(x0), h.alpha / k),
        P.power_welch(effect, pooled, len(xs), len(x0), h.alpha / k),
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


def _scoped(pc: pd.DataFrame, scope: dict, a0: pd.Series, a1: pd.Series) -> pd.DataFrame:
    out = pc[pc["sparsity"] > 0]
    for key, value in scope.items():
        if key == "match_drop":
            continue
        out = out[np.isclose(out[key], value)] if key == "sparsity" else out[out[key] == value]
    if "match_drop" in scope and len(out):
        drop = a0.reindex(out["cell_id"]).to_numpy() - a1.reindex(out["cell_id"]).to_numpy()
        means = pd.Series(drop, index=out.index).groupby(out["sparsity"]).mean()
        best = (means - float(scope["match_drop"])).abs().idxmin()
        out = out[np.isclose(out["sparsity"], best)]
    return out


def analyze(study: StudyData) -> list[Row]:
    pc = prune_cells(study.cells)
    r0, r1 = recalls(study.metrics, "dense"), recalls(study.metrics, "retrained")
    a0, a1 = scalar(study.metrics, "dense", "accuracy"), scalar(study.metrics, "retrained", "accuracy")
    p0, p1 = predictions(study.metrics, "dense"), predictions(study.metrics, "retrained")
    kept = kept_epochs(study.metrics)
    th = study.regime
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            scoped = _scoped(pc, h.scope, a0, a1)
            for (arch, dataset, pruner, sparsity), g in scoped.groupby(
                ["arch", "dataset", "pruner", "sparsity"]
            ):
                g = g[g["cell_id"].isin(r1.index) & g["cell_id"].isin(r0.index) & g["cell_id"].isin(a1.index)]
                if len(g) < 2:
                    continue
                g = g.sort_values(["parent_id", "cell_id"]).drop_duplicates("parent_id")  # one per parent
                ids = g["cell_id"].to_numpy()
                classes = r0.columns.intersection(r1.columns)
                R0, R1 = r0.loc[ids, classes].to_numpy(), r1.loc[ids, classes].to_numpy()
                A0, A1 = a0.loc[ids].to_numpy(), a1.loc[ids].to_numpy()
                d = paired_shifts(R0, A0, R1, A1)
                x0, xs = class_shift_samples(R0, A0), class_shift_samples(R1, A1)
                if h.test == "paired_classes":
                    ev, table = E.paired_classes(d, h)
                    again = lambda i, d=d, h=h: E.paired_classes(d[i], h)[0]
                else:
                    ev, table = welch_classes(x0, xs, h)
                    again = lambda i, x0=x0, xs=xs, h=h: welch_classes(x0[i], xs[i], h)[0]
                q = bh(table["p"].to_numpy(float))
                changed = table[q < h.alpha]
                _, welch_table = welch_classes(x0, xs, h)
                welch_changed = int((bh(welch_table["p"].to_numpy(float)) < h.alpha).sum())
                pie = pie_fraction(p0.loc[p0.index.intersection(ids)], p1.loc[p1.index.intersection(ids)])
                gates = [
                    convergence_gate(g, kept, th),
                    collapse_gate(A1, A0, len(classes), th, relative=True),
                ]
                j = judge(
                    h, ev, gates, resample=again if h.primary else None, n_units=len(ids),
                    key=(claim.id, h.id), thresholds=th,
                )  # fmt: skip
                drop = float(np.mean(A0 - A1))
                desc = (
                    f"{len(changed)} of {len(table)} classes changed (BH q < {h.alpha:g}): "
                    f"{int((changed['shift'] > 0).sum())} helped, {int((changed['shift'] < 0).sum())} hurt; "
                    f"{'paired by parent' if h.test == 'paired_classes' else 'Welch, unpaired'}, {len(ids)} "
                    f"parents; Welch (Hooker's unpaired test) finds {welch_changed}; accuracy drop "
                    f"{100 * drop:.2f} points; PIE fraction {pie:.3f}"
                )
                details = {
                    "classes_changed_bh": len(changed),
                    "classes": len(table),
                    "welch_classes_changed_bh": welch_changed,
                    "accuracy_drop": drop,
                    "pie_fraction": pie,
                    "shifts": [float(x) for x in table["shift"]],
                }
                row = make_row(
                    h, ev, claim=claim.id, study=study.name, description=desc, judgement=j, details=details,
                    arch=arch, dataset=dataset, pruner=pruner, sparsity=sparsity,
                )  # fmt: skip
                row.label = f"{len(changed)}/{len(table)}"
                row.collapsed = gates[1].passed is False
                rows.append(row)
    return rows


ANALYSIS = Analysis("per_class", tests=("paired_classes", "welch_classes"), analyze=analyze)
