"""Intensification of recall distortion (Good et al., NeurIPS 2022): the hypotheses.

The quantities (``alpha_t``, ``beta_t``, balanced accuracy, the t = 1 control) are
``analysis.distortion``'s; the verdict rules ``analysis.verdict``'s. Unit: the dense parent.

- ``t_null_control`` (primary at t = 2 and t = 50): ``E[alpha_t - alpha_1]`` paired by parent,
  ``alpha_1`` the t = 1 control (same pipeline, nothing pruned): the effect of pruning, not of
  fine-tuning. Gates: the null control is present (t = 1 cells of at least two of the scope's
  parents), convergence, collapse (absolute and relative).
- ``t_one_sample`` (the paper's label rows): ``E[alpha_t]`` against 1 with a 99% interval
  (Bonferroni over the 5 ratios), labelled ``<`` / ``>`` / ``?`` as the paper, at every
  (arch, dataset, pruner, t), the t = 1 control included; each row carries ``alpha_t``,
  ``beta_t``, ``A/A_t``, ``alpha_1``, ``alpha_t - alpha_1`` and the last-epoch share.
- ``t_paired`` (UP vs MP): ``alpha(UP) - alpha(MP)`` paired by parent. Confound check: when the
  interval (at the hypothesis' level) of ``A_t(UP) - A_t(MP)`` excludes 0 the arms end at different
  accuracies, and the verdict is taken on ``beta(UP) - beta(MP)`` (its effect and SESOI scaled
  by the arms' mean ``A_t / A``, as ``beta = alpha A_t / A``); the row says which, both are shown.
- ``trend``: one-sided paired ``E[alpha_ti] < E[alpha_ti+1]`` between consecutive ratios,
  Bonferroni within the column; ``welch``: one-sided independent-samples comparison between two
  levels of a factor (harder task, smaller model), Bonferroni over the ratios. A one-sided test
  at ``alpha / m`` is decided by the common rule on the two-sided ``1 - 2 alpha / m`` interval.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from analysis import evidence as E
from analysis import intensification_view as view
from analysis.base import Analysis
from analysis.distortion import (
    alpha_slope,
    by_unit,
    cell_table,
    control_of,
    normalized_balance,
    paired,
    ratio,
    row_numbers,
)
from analysis.load import StudyData
from analysis.regime import collapse_gate, convergence_gate
from analysis.verdict import Gate, Row, judge, make_row
from core.hypotheses import Hypothesis

UP, MP = "undecayed", "global_magnitude"
LABELS = "labels"  # the hypothesis whose rows are the paper's label table (every scope)
__all__ = ["alpha_slope", "analyze", "label", "label_table", "normalized_balance", "ratio"]


def label(ci_low: float, ci_high: float) -> str:
    """The paper's label of a 99% interval of ``E[alpha_t]``: ``<`` below 1, ``>`` above, ``?``."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "?"
    return "<" if ci_high < 1 else ">" if ci_low > 1 else "?"


def _scope(df: pd.DataFrame, scope: dict) -> pd.DataFrame:
    m = pd.Series(True, index=df.index)
    for key, value in scope.items():
        if key in ("compare",):
            continue
        m &= np.isclose(df[key], value) if key == "sparsity" else df[key] == value
    return df[m]


def _gates(study: StudyData, cells: pd.DataFrame, control: pd.DataFrame | None = None) -> list[Gate]:
    """Convergence on a scope's cells (and its t = 1 control's), (relative) collapse on its cells."""
    th = study.regime
    both = cells if control is None else pd.concat([cells, control])
    kept = both.set_index("cell_id")["kept_epoch"].dropna()
    classes = int(cells["classes"].iloc[0]) if len(cells) else 10
    return [
        convergence_gate(both, kept, th),
        collapse_gate(cells["balanced"], cells["dense_balanced"], classes, th, relative=True),
    ]


def _collapsed(gates: list[Gate]) -> bool:
    return any(g.name == "collapse" and g.passed is False for g in gates)


def analyze(study: StudyData) -> list[Row]:
    table = cell_table(study.cells, study.metrics)
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            rows += HANDLERS[h.test](study, claim.id, h, table)
    return rows


def _row(study, claim, h, ev, gates, description, details, resample=None, n_units=0, **scope) -> Row:
    j = judge(
        h,
        ev,
        gates,
        resample=resample if h.primary else None,
        n_units=n_units,
        key=(claim, h.id),
        thresholds=study.regime,
    )
    row = make_row(
        h, ev, claim=claim, study=study.name, description=description, judgement=j, details=details, **scope
    )
    row.collapsed = _collapsed(gates)
    return row


def _sample_row(study, claim, h, values: np.ndarray, gates, desc: str, details: dict, where: dict) -> Row:
    """A one-sample test of ``values`` (one per parent), resampled by parent for its stability."""
    ev = E.t_one_sample(values, h)
    return _row(
        study,
        claim,
        h,
        ev,
        gates,
        desc,
        details,
        lambda i: E.t_one_sample(values[i], h),
        len(values),
        **where,
    )


# -- the hypotheses --------------------------------------------------------------------------------


def _null_gate(units: list, total: int, control: pd.DataFrame) -> Gate:
    if control.empty:
        return Gate("null control", False, "no t = 1 cells (sparsity 0) for this arch and dataset")
    alpha_1 = by_unit(control)
    detail = f"t = 1 control on {len(units)} of {total} parents; mean alpha_1 {alpha_1.mean():.3f}"
    return Gate("null control", len(units) >= 2, detail)


def _alpha_minus_control(study: StudyData, claim: str, h: Hypothesis, table: pd.DataFrame) -> list[Row]:
    """``E[alpha_t - alpha_1]`` paired by parent in each pruned scope of the hypothesis."""
    scoped = _scope(table[table["sparsity"] > 0], h.scope)
    rows = []
    keys = ["arch", "dataset", "pruner", "sparsity"]
    for key, g in scoped.groupby(keys, sort=True):
        where = dict(zip(keys, key, strict=True))
        control = control_of(table, where["arch"], where["dataset"])
        a, b, units = paired(by_unit(g), by_unit(control) if len(control) else pd.Series(dtype=float))
        gates = [_null_gate(units, g["unit"].nunique(), control), *_gates(study, g, control)]
        details = row_numbers(g, control)
        desc = (
            f"alpha_t - alpha_1 at t = {ratio(where['sparsity']):g}, paired by dense parent ({len(units)} "
            f"parents): alpha_t {details['alpha_t']:.3f} = beta_t {details['beta_t']:.3f} x A/A_t "
            f"{details['a_over_a_t']:.3f}; alpha_1 {details['alpha_1'] or float('nan'):.3f}"
        )
        rows.append(_sample_row(study, claim, h, a - b, gates, desc, details, where))
    return rows


def _alpha_vs_one(study: StudyData, claim: str, h: Hypothesis, table: pd.DataFrame) -> list[Row]:
    """``E[alpha_t]`` against 1 (the paper's label rows), per (arch, dataset, pruner, t)."""
    scoped = _scope(table, h.scope)
    rows = []
    keys = ["arch", "dataset", "pruner", "sparsity"]
    for key, g in scoped.groupby(keys, sort=True):
        where = dict(zip(keys, key, strict=True))
        values = by_unit(g).to_numpy()
        gates = _gates(study, g)
        control = control_of(table, where["arch"], where["dataset"])
        details = row_numbers(g, control)
        desc = (
            f"E[alpha_t] - 1 at t = {ratio(where['sparsity']):g} over {len(values)} dense parents; "
            f"alpha {details['alpha_t']:.3f}, beta {details['beta_t']:.3f}, "
            f"A/A_t {details['a_over_a_t']:.3f}, balanced accuracy {details['balanced_accuracy_t']:.3f}"
        )
        row = _sample_row(study, claim, h, values, gates, desc, details, where)
        row.label = "collapsed" if row.collapsed else label(1 + row.ci_low, 1 + row.ci_high)
        rows.append(row)
    return rows


def _up_vs_mp(study: StudyData, claim: str, h: Hypothesis, table: pd.DataFrame) -> list[Row]:
    """``alpha(UP) - alpha(MP)`` paired by parent, with the accuracy-confound rule."""
    scoped = _scope(table[table["sparsity"] > 0], {k: v for k, v in h.scope.items() if k != "pruner"})
    rows = []
    keys = ["arch", "dataset", "sparsity"]
    for key, g in scoped.groupby(keys, sort=True):
        up, mp = g[g["pruner"] == UP], g[g["pruner"] == MP]
        if up.empty or mp.empty:
            continue
        where = dict(zip(keys, key, strict=True))
        diffs = {}
        for col in ("alpha", "beta", "balanced"):
            a, b, _ = paired(by_unit(up, col), by_unit(mp, col))
            diffs[col] = a - b
        h0 = replace(h, effect=0.0, effect_source="stated")
        acc = E.t_one_sample(diffs["balanced"], h0)
        confounded = bool(np.isfinite(acc.ci_low) and (acc.ci_low > 0 or acc.ci_high < 0))
        scale = float(pd.concat([up, mp]).eval("balanced / dense_balanced").mean())
        on = "beta" if confounded else "alpha"
        hh = (
            replace(
                h,
                effect=h.effect * scale if h.effect is not None else None,
                sesoi=h.sesoi * scale if h.sesoi is not None else None,
            )
            if confounded
            else h
        )
        d = diffs[on]
        ev = E.t_one_sample(d, hh, "t_paired")
        other = E.t_one_sample(diffs["alpha" if confounded else "beta"], hh, "t_paired")
        details = {
            "decided_on": on,
            "a_t_difference": [acc.estimate, acc.ci_low, acc.ci_high],
            f"{on}_difference": [ev.estimate, ev.ci_low, ev.ci_high],
            f"{'alpha' if confounded else 'beta'}_difference": [other.estimate, other.ci_low, other.ci_high],
            "accuracy_scale": scale,
        }
        t = ratio(where["sparsity"])
        desc = (
            f"{on}(UP) - {on}(MP) at t = {t:g}, paired by dense parent ({len(d)} pairs); A_t(UP) - A_t(MP) "
            f"{acc.estimate:+.3f} [{acc.ci_low:+.3f}, {acc.ci_high:+.3f}]: "
            + (
                "the arms end at different accuracies, decided on beta"
                if confounded
                else "matched, decided on alpha"
            )
            + f"; the other: {other.estimate:+.3f} [{other.ci_low:+.3f}, {other.ci_high:+.3f}]"
        )
        again = lambda i, d=d, hh=hh: E.t_one_sample(d[i], hh)
        gates = _gates(study, g)
        rows.append(
            _row(study, claim, hh, ev, gates, desc, details, again, len(d), pruner=f"{UP}-{MP}", **where)
        )
    return rows


def _one_sided(h: Hypothesis, tests: int) -> Hypothesis:
    """A one-sided test at ``alpha / tests``: the two-sided rule at ``2 alpha / tests``."""
    return replace(h, alpha=min(0.49, 2 * h.alpha / max(tests, 1)))


def _one_sided_p(h: Hypothesis, ev, tests: int, df: float) -> float:
    if not np.isfinite(ev.statistic):
        return float("nan")
    sign = 1 if h.direction == "greater" else -1
    return float(min(1.0, stats.t.sf(sign * ev.statistic, df) * tests))


def _trend(study: StudyData, claim: str, h: Hypothesis, table: pd.DataFrame) -> list[Row]:
    """One-sided paired t-tests ``E[alpha_ti] < E[alpha_ti+1]``, Bonferroni within each column."""
    scoped = _scope(table[table["sparsity"] > 0], h.scope)
    rows = []
    for (arch, dataset, pruner), g in scoped.groupby(["arch", "dataset", "pruner"], sort=True):
        pairs = list(itertools.pairwise(sorted(g["sparsity"].unique())))
        hh = _one_sided(h, len(pairs))
        for lo, hi in pairs:
            upper, lower = g[np.isclose(g["sparsity"], hi)], g[np.isclose(g["sparsity"], lo)]
            a, b, _ = paired(by_unit(upper), by_unit(lower))
            ev = E.t_paired(a, b, hh)
            desc = (
                f"alpha(t={ratio(hi):g}) - alpha(t={ratio(lo):g}), one-sided paired t, Bonferroni over "
                f"{len(pairs)}"
            )
            row = _row(
                study, claim, hh, ev, _gates(study, upper), desc, {}, arch=arch, dataset=dataset,
                pruner=pruner, sparsity=hi,
            )  # fmt: skip
            row.p = _one_sided_p(h, ev, len(pairs), max(ev.n - 1, 1))
            rows.append(row)
    return rows


def _factor(study: StudyData, claim: str, h: Hypothesis, table: pd.DataFrame) -> list[Row]:
    """``scope.compare = {factor = [first, second]}``: a one-sided Welch comparison of alpha
    between two levels of a factor per pruner and t, Bonferroni over the ratios."""
    ((factor, (first, second)),) = dict(h.scope.get("compare", {})).items()
    base = {k: v for k, v in h.scope.items() if k not in ("compare", factor)}
    scoped = _scope(table[table["sparsity"] > 0], base)
    others = [k for k in ("arch", "dataset") if k != factor]
    groups = list(scoped.groupby([*others, "pruner", "sparsity"], sort=True))
    hh = _one_sided(h, len(groups))
    rows = []
    for key, g in groups:
        a, b = g[g[factor] == first], g[g[factor] == second]
        if a.empty or b.empty:
            continue
        ev = E.welch(by_unit(a).to_numpy(), by_unit(b).to_numpy(), hh)
        where = dict(zip([*others, "pruner", "sparsity"], key, strict=True))
        t = ratio(where["sparsity"])
        desc = f"alpha({factor}={first}) - alpha({factor}={second}) at t = {t:g}, one-sided Welch"
        row = _row(study, claim, hh, ev, _gates(study, a), desc, {}, **where)
        row.p = _one_sided_p(h, ev, len(groups), max(2 * ev.n - 2, 1))
        rows.append(row)
    return rows


HANDLERS = {
    "t_null_control": _alpha_minus_control,
    "t_one_sample": _alpha_vs_one,
    "t_paired": _up_vs_mp,
    "trend": _trend,
    "welch": _factor,
}


def label_table(rows: list[Row]) -> pd.DataFrame:
    """``<``/``>``/``?`` labels by t for each (arch, dataset, pruner), as the paper's Fig. 1-3, with
    ``alpha``, ``beta``, ``A/A_t``, ``alpha_1``, ``alpha_t - alpha_1`` and the last-epoch share by t."""
    import json

    recs = []
    for r in rows:
        if r.label is None or r.hypothesis != LABELS or not r.sparsity > 0:
            continue
        d = json.loads(r.details)
        recs.append(
            {
                "arch": r.arch,
                "dataset": r.dataset,
                "pruner": r.pruner,
                "t": ratio(r.sparsity),
                "label": r.label,
                **{
                    k: d.get(k)
                    for k in ("alpha_t", "beta_t", "a_over_a_t", "alpha_1", "alpha_t_minus_alpha_1")
                },
                "last_epoch_share": d.get("last_epoch_share"),
                "n": r.n,
            }
        )
    cols = ["arch", "dataset", "pruner", "labels", "t", "alpha_hat", "beta_hat", "a_over_a_t", "alpha_1",
            "alpha_minus_alpha_1", "last_epoch_share", "n"]  # fmt: skip
    if not recs:
        return pd.DataFrame(columns=cols)

    def fmt(values, digits: int = 3):
        return ", ".join("–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}" for v in values)

    df = pd.DataFrame(recs).sort_values(["arch", "dataset", "pruner", "t"])
    return (
        df.groupby(["arch", "dataset", "pruner"], sort=True)
        .agg(
            labels=("label", " ".join),
            t=("t", lambda t: " ".join(f"{v:g}" for v in t)),
            alpha_hat=("alpha_t", fmt),
            beta_hat=("beta_t", fmt),
            a_over_a_t=("a_over_a_t", fmt),
            alpha_1=("alpha_1", lambda v: fmt(v[:1])),
            alpha_minus_alpha_1=("alpha_t_minus_alpha_1", fmt),
            last_epoch_share=("last_epoch_share", lambda v: fmt(v, 2)),
            n=("n", "min"),
        )
        .reset_index()[cols]
    )


ANALYSIS = Analysis(
    "intensification",
    tests=tuple(HANDLERS),
    analyze=analyze,
    title="Intensification (Good et al. 2022): labels by compression ratio",
    figure=view.figure,
    figure_name="intensification",
    card=view.card,
)
