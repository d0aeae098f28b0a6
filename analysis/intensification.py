"""Intensification of recall distortion (Good, Lin, Sieg, Ferguson, Yu, Zhe, Wieczorek & Serra,
"Recall Distortion in Neural Network Pruning and the Undecayed Pruning Algorithm", NeurIPS 2022).

Definitions exactly as the paper (``shared/design/claims.md`` section 1, verified against its
text and the authors' code). For one model, with ``R_c`` the recall of class ``c`` and ``A``
the accuracy on the clean (class-balanced) test set, unsubscripted the dense parent and with
``t`` the same parent pruned one-shot at compression ratio ``t`` and fine-tuned:

- normalised recall balance ``Bbar_c = (R_c - A) / A`` (``Bbar_c,t`` after pruning);
- ``alpha_t = sum_c Bbar_c Bbar_c,t / sum_c Bbar_c^2``, the OLS slope through the origin of
  ``Bbar_c,t`` on ``Bbar_c`` across classes; ``alpha_t > 1`` is intensification, ``< 1``
  de-intensification.

Statistics (the paper's Sec. 6.2-7): per (model, dataset, pruner, t), inference on
``E[alpha_t]`` across the dense seeds (independent units): a t interval at 99% (Bonferroni over
the 5 ratios) labelled ``<`` (below 1), ``>`` (above 1) or ``?``; the trend with the ratio by
one-sided paired t-tests ``E[alpha_ti] < E[alpha_ti+1]`` between consecutive ratios (paired by
dense model, Bonferroni within each table column); UP against MP by two-sided paired t-tests
(Bonferroni over the ratios); harder task and smaller model by one-sided independent-samples
(Welch) t-tests. Scopes whose pruned models collapsed (``analysis.regime``) get no label.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis import evidence as E
from analysis.load import StudyData, prune_cells, recalls, scalar
from analysis.regime import is_collapsed
from analysis.verdict import Row, bootstrap_stability, decide, make_row
from core.studies import Hypothesis

RATIO_OF = {0.5: 2, 0.75: 4, 0.9: 10, 0.95: 20, 0.98: 50}
UP, MP = "undecayed", "global_magnitude"
LABELS = "labels"  # the hypothesis whose rows are the paper's label table (every scope)


def ratio(sparsity: float) -> float:
    """Compression ratio ``t = 1 / (1 - s)`` (weights before over after)."""
    return RATIO_OF.get(round(float(sparsity), 4), 1.0 / (1.0 - float(sparsity)))


def normalized_balance(recall, accuracy) -> np.ndarray:
    """``Bbar_c = (R_c - A) / A`` (NaN where ``A = 0``)."""
    acc = np.asarray(accuracy, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(acc > 0, (np.asarray(recall, float) - acc) / acc, np.nan)


def alpha_slope(bbar_dense, bbar_pruned) -> np.ndarray:
    """``alpha_t = sum_c Bbar_c Bbar_c,t / sum_c Bbar_c^2`` per row (classes along the last axis)."""
    b0, b1 = np.asarray(bbar_dense, float), np.asarray(bbar_pruned, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(b0 * b1, axis=-1) / np.nansum(b0 * b0, axis=-1)


def cell_alphas(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per pruning cell: its scope, ``t``, retrained test accuracy and ``alpha``."""
    pc = prune_cells(cells)
    r0, r1 = recalls(metrics, "dense"), recalls(metrics, "retrained")
    a0, a1 = scalar(metrics, "dense", "accuracy"), scalar(metrics, "retrained", "accuracy")
    ids = [c for c in pc["cell_id"] if c in r0.index and c in r1.index and c in a0.index and c in a1.index]
    if not ids:
        return pd.DataFrame(
            columns=["cell_id", "arch", "dataset", "pruner", "sparsity", "seed", "t", "alpha"]
        )
    classes = r0.columns.intersection(r1.columns)
    b0 = normalized_balance(r0.loc[ids, classes].to_numpy(), a0.loc[ids].to_numpy()[:, None])
    b1 = normalized_balance(r1.loc[ids, classes].to_numpy(), a1.loc[ids].to_numpy()[:, None])
    out = pc.set_index("cell_id").loc[ids, ["arch", "dataset", "pruner", "sparsity", "seed"]].reset_index()
    out["t"] = [ratio(s) for s in out["sparsity"]]
    out["accuracy"] = a1.loc[ids].to_numpy()
    out["dense_accuracy"] = a0.loc[ids].to_numpy()
    out["alpha"] = alpha_slope(b0, b1)
    out["classes"] = len(classes)
    return out


def label(ci_low: float, ci_high: float) -> str:
    """The paper's label of a 99% interval of ``E[alpha_t]``: ``<`` below 1, ``>`` above, ``?``."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "?"
    return "<" if ci_high < 1 else ">" if ci_low > 1 else "?"


def _scope(df: pd.DataFrame, scope: dict) -> pd.DataFrame:
    m = pd.Series(True, index=df.index)
    for key, value in scope.items():
        m &= np.isclose(df[key], value) if key == "sparsity" else df[key] == value
    return df[m]


def _series(df: pd.DataFrame) -> pd.Series:
    """alpha by seed (the unit), one value per seed."""
    return df.groupby("seed")["alpha"].mean()


def _one_sample(values: np.ndarray, h: Hypothesis):
    return E.t_one_sample(values, h)


def analyze(study: StudyData) -> list[Row]:
    alphas = cell_alphas(study.cells, study.metrics)
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            rows += HANDLERS[h.test if h.test in HANDLERS else h.id](study, claim.id, h, alphas)
    return rows


# -- the hypotheses --------------------------------------------------------------------------


def _alpha_vs_one(study: StudyData, claim: str, h: Hypothesis, alphas: pd.DataFrame) -> list[Row]:
    """``E[alpha_t]`` against 1 in the hypothesis' scope (primary), or in every scope of the
    study that matches it partly (secondary: one row per (arch, dataset, pruner, t))."""
    scoped = _scope(alphas, h.scope)
    rows = []
    keys = ["arch", "dataset", "pruner", "sparsity"]
    for key, g in scoped.groupby(keys, sort=True):
        scope = dict(zip(keys, key, strict=True))
        values = _series(g).to_numpy()
        collapsed = is_collapsed(g["accuracy"], int(g["classes"].iloc[0]))
        ev = _one_sample(values, h)
        desc = (
            f"E[alpha_t] - 1 at t = {ratio(scope['sparsity']):g} over {len(values)} dense seeds; "
            f"mean alpha {np.mean(values):.3f}, retrained accuracy {g['accuracy'].mean():.3f}"
        )
        stability = float("nan")
        if h.primary and not collapsed:
            full = decide(h, ev)
            stability = bootstrap_stability(
                len(values), lambda idx, v=values: decide(h, _one_sample(v[idx], h)), full, (claim, h.id)
            )
        row = make_row(h, ev, claim=claim, study=study.name, description=desc, stability=stability, **scope)
        row.label = label(1 + ev.ci_low, 1 + ev.ci_high) if not collapsed else "collapsed"
        if collapsed:
            row.verdict = "collapsed"
            row.description += "; collapsed (within the margin of chance): left out of verdicts"
        rows.append(row)
    return rows


def _paired_by_seed(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    sa, sb = _series(a), _series(b)
    common = sa.index.intersection(sb.index)
    return sa.loc[common].to_numpy(), sb.loc[common].to_numpy()


def _up_vs_mp(study: StudyData, claim: str, h: Hypothesis, alphas: pd.DataFrame) -> list[Row]:
    """``alpha_UP - alpha_MP`` paired by dense seed, per (arch, dataset, t) in the scope."""
    scope = {k: v for k, v in h.scope.items() if k != "pruner"}
    scoped = _scope(alphas, scope)
    rows = []
    keys = ["arch", "dataset", "sparsity"]
    for key, g in scoped.groupby(keys, sort=True):
        up, mp = g[g["pruner"] == UP], g[g["pruner"] == MP]
        if up.empty or mp.empty:
            continue
        a, b = _paired_by_seed(up, mp)
        ev = E.t_paired(a, b, h)
        where = dict(zip(keys, key, strict=True))
        collapsed = is_collapsed(g["accuracy"], int(g["classes"].iloc[0]))
        stability = float("nan")
        if h.primary and not collapsed:
            full = decide(h, ev)
            stability = bootstrap_stability(
                len(a), lambda idx, a=a, b=b: decide(h, E.t_paired(a[idx], b[idx], h)), full, (claim, h.id)
            )
        t = ratio(where["sparsity"])
        desc = f"alpha(UP) - alpha(MP) at t = {t:g}, paired by dense seed ({len(a)} pairs)"
        row = make_row(
            h,
            ev,
            claim=claim,
            study=study.name,
            description=desc,
            stability=stability,
            pruner=f"{UP}-{MP}",
            **where,
        )
        if collapsed:
            row.verdict, row.description = "collapsed", row.description + "; collapsed"
        rows.append(row)
    return rows


def one_sided(h: Hypothesis, ev, tests: int, df: int) -> tuple[float, str]:
    """A one-sided test in the hypothesis' direction, Bonferroni over ``tests``: (p, verdict).
    ``reproduced`` / ``contradicted`` when the one-sided p in / against the direction is below
    ``alpha``; otherwise by the MDE of the one-sided test at ``alpha / tests``."""
    from analysis.power import mde_t

    if not np.isfinite(ev.statistic):
        return float("nan"), "underpowered"
    sign = 1 if h.direction == "greater" else -1
    p_for = min(1.0, float(stats.t.sf(sign * ev.statistic, df)) * tests)
    p_against = min(1.0, float(stats.t.sf(-sign * ev.statistic, df)) * tests)
    if p_for < h.alpha:
        return p_for, "reproduced"
    if p_against < h.alpha:
        return p_for, "contradicted"
    sd = abs(ev.estimate / ev.statistic) * math.sqrt(ev.n) if ev.statistic else float("nan")
    mde = mde_t(sd, ev.n, h.alpha / tests, h.direction)
    powered = h.effect is not None and np.isfinite(mde) and mde <= abs(h.effect)
    return p_for, "not detected" if powered else "underpowered"


def _trend(study: StudyData, claim: str, h: Hypothesis, alphas: pd.DataFrame) -> list[Row]:
    """One-sided paired t-tests ``E[alpha_ti] < E[alpha_ti+1]``, Bonferroni within each column
    (the consecutive pairs of one (arch, dataset, pruner))."""
    scoped = _scope(alphas, h.scope)
    rows = []
    for (arch, dataset, pruner), g in scoped.groupby(["arch", "dataset", "pruner"], sort=True):
        levels = sorted(g["sparsity"].unique())
        pairs = list(itertools.pairwise(levels))
        for lo, hi in pairs:
            a, b = _paired_by_seed(g[np.isclose(g["sparsity"], hi)], g[np.isclose(g["sparsity"], lo)])
            ev = E.t_paired(a, b, h)
            p, verdict = one_sided(h, ev, len(pairs), max(ev.n - 1, 1))
            desc = (
                f"alpha(t={ratio(hi):g}) - alpha(t={ratio(lo):g}), one-sided paired t, "
                f"Bonferroni over {len(pairs)}"
            )
            row = make_row(
                h,
                ev,
                claim=claim,
                study=study.name,
                description=desc,
                arch=arch,
                dataset=dataset,
                pruner=pruner,
                sparsity=hi,
            )
            row.p, row.verdict = p, verdict
            rows.append(row)
    return rows


def _factor(study: StudyData, claim: str, h: Hypothesis, alphas: pd.DataFrame) -> list[Row]:
    """A one-sided independent-samples comparison of alpha between two levels of a factor,
    ``scope.compare = {factor = [first, second]}`` (the harder dataset against the easier, the
    smaller arch against the larger), per pruner and t: Welch's t, Bonferroni over the ratios."""
    compare = dict(h.scope.get("compare", {}))
    ((factor, (first, second)),) = compare.items()
    base = {k: v for k, v in h.scope.items() if k not in ("compare", factor)}
    scoped = _scope(alphas, base)
    rows = []
    others = [k for k in ("arch", "dataset") if k != factor]
    groups = list(scoped.groupby([*others, "pruner", "sparsity"], sort=True))
    for key, g in groups:
        a, b = g[g[factor] == first], g[g[factor] == second]
        if a.empty or b.empty:
            continue
        ev = E.welch(_series(a).to_numpy(), _series(b).to_numpy(), h)
        p, verdict = one_sided(h, ev, len(groups), max(2 * ev.n - 2, 1))
        where = dict(zip([*others, "pruner", "sparsity"], key, strict=True))
        t = ratio(where["sparsity"])
        desc = f"alpha({factor}={first}) - alpha({factor}={second}) at t = {t:g}, one-sided Welch"
        row = make_row(h, ev, claim=claim, study=study.name, description=desc, **where)
        row.p, row.verdict = p, verdict
        if is_collapsed(g["accuracy"], int(g["classes"].iloc[0])):
            row.verdict, row.description = "collapsed", row.description + "; collapsed"
        rows.append(row)
    return rows


HANDLERS = {"t_one_sample": _alpha_vs_one, "t_paired": _up_vs_mp, "trend": _trend, "welch": _factor}


def label_table(rows: list[Row]) -> pd.DataFrame:
    """``<``/``>``/``?`` labels by t for each (arch, dataset, pruner), as the paper's Fig. 1-3."""
    recs = [
        {
            "arch": r.arch,
            "dataset": r.dataset,
            "pruner": r.pruner,
            "t": ratio(r.sparsity),
            "label": r.label,
            "alpha": 1 + r.estimate if r.estimate is not None and math.isfinite(r.estimate) else float("nan"),
        }
        for r in rows
        if r.label is not None and r.hypothesis == LABELS
    ]
    if not recs:
        return pd.DataFrame(columns=["arch", "dataset", "pruner", "labels", "alpha_hat"])
    df = pd.DataFrame(recs).sort_values(["arch", "dataset", "pruner", "t"])
    return (
        df.groupby(["arch", "dataset", "pruner"], sort=True)
        .agg(
            labels=("label", " ".join),
            alpha_hat=("alpha", lambda a: ", ".join(f"{v:.3f}" for v in a)),
            t=("t", lambda t: " ".join(f"{v:g}" for v in t)),
        )
        .reset_index()
    )
