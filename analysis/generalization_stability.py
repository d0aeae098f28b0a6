"""The generalization-stability tradeoff (Bartoldson, Morcos, Barbu & Erlebacher, "The
Generalization-Stability Tradeoff in Neural Network Pruning", NeurIPS 2020).

Reads the stability study's runs (``cell_type == 'stability'``, ``benchmarks.stability``).
Definitions (``shared/design/claims.md`` section 3, from the authors' code):

- instability of one event ``I = (acc_pre - acc_post) / acc_pre`` (full clean test set),
  stability ``S = 100 (1 - I)``; a run's stability is the mean ``S`` over its events;
- generalization: the best test accuracy over the epochs after the last pruning event (the
  authors' code selects on the test set), and beside it the validation-selected variant (test
  accuracy at the epoch of best validation accuracy in the same window).

One point per run, pooling the configurations (targets x event intervals) of the permanent
runs. The claim: less stability goes with higher final accuracy (negative correlation between
``S`` and generalization); and (Fig. 5) the benefit does not need permanent removal: noise
injected into the units Prune_L would remove helps generalization too.

Rules (claims.md section 3 and 0b, rev. 3):

- gates, on every hypothesis: the **fit check** (the no-pruning baseline's training accuracy
  before the last event, mean over seeds, at least ``fit_threshold`` = 99%) and the **positive
  control** (Prune_L's permanent runs minus the baseline, paired by seed, the configurations of
  a seed averaged: the interval at the hypothesis' level must lie above 0, as the authors'
  Fig. 2). Without the effect there is nothing for stability to explain.
- ``pearson_blocked`` (primary): runs share seeds across configurations, so the verdict is on
  the **seed-blocked** correlation (each seed's mean removed from both variables, the degrees of
  freedom reduced by the seeds: ``analysis.evidence.pearson_blocked``); the raw pooled r (the
  authors' statistic) and Kendall's tau (raw and blocked) are shown beside it; ``scope.by =
  "every"`` gives one row per event interval (their Fig. 3). The bootstrap resamples seeds.
- ``t_paired`` (noise injection): each variant (``noise_zero``, ``noise_gauss``) against
  ``scope.against`` (``none``: the baseline; ``prune_l``: the permanent Prune_L runs at the same
  event intervals), paired by seed; a primary over several variants holds only for each of them
  (intersection-union, ``analysis.verdict.pooled``), with one row per variant beside it;
  ``tost_paired``: a variant equivalent to Prune_L within the margin, per variant.
- the events' stability range (runs' mean S and the lowest event) is reported beside the
  authors' 97-99.7% (their Fig. 3, r <= 100).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.base import Analysis
from analysis.display import DPI, Figure, legend_outside, pyplot, theme
from analysis.load import StudyData
from analysis.verdict import Evidence, Gate, Row, judge, make_row, pooled
from core.hypotheses import Hypothesis
from core.store import MetricFilter

AUTHORS_STABILITY = (97.0, 99.7)  # the authors' run stabilities, Fig. 3 (r <= 100)


def event_stability(acc_pre, acc_post) -> np.ndarray:
    """``S = 100 (1 - (acc_pre - acc_post) / acc_pre)`` (NaN where ``acc_pre = 0``)."""
    pre, post = np.asarray(acc_pre, float), np.asarray(acc_post, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pre > 0, 100.0 * (1.0 - (pre - post) / pre), np.nan)


def run_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: target, every (event interval), variant, seed, stability (recomputed from
    the events), generalization (test- and validation-selected), gap and the fit check."""
    runs = cells[cells["cell_type"] == "stability"]
    if runs.empty:
        return pd.DataFrame()
    final = metrics[(metrics["phase"] == "final") & (metrics["eval_set"] == "test") & metrics["class"].isna()]
    final = final.pivot_table(index="cell_id", columns="metric", values="value", aggfunc="first")
    events = metrics[(metrics["phase"] == "event") & metrics["metric"].isin(["acc_pre", "acc_post"])]
    ev = events.pivot_table(index=["cell_id", "step"], columns="metric", values="value", aggfunc="first")
    s = (
        pd.Series(event_stability(ev["acc_pre"], ev["acc_post"]), index=ev.index)
        if len(ev)
        else pd.Series(dtype=float)
    )
    stability = s.groupby(level=0).mean() if len(s) else pd.Series(dtype=float)
    lowest = s.groupby(level=0).min() if len(s) else pd.Series(dtype=float)
    out = []
    for r in runs.itertuples():
        spec = json.loads(r.spec_json)
        f = final.loc[r.cell_id] if r.cell_id in final.index else pd.Series(dtype=float)
        out.append(
            {
                "cell_id": r.cell_id,
                "arch": r.arch,
                "dataset": r.dataset,
                "seed": r.seed,
                "target": spec["target"],
                "variant": spec["variant"],
                "every": spec["every"],
                "stability": float(stability.get(r.cell_id, 100.0)),
                "lowest_event": float(lowest.get(r.cell_id, 100.0)),
                "generalization": float(f.get("best_test_accuracy", np.nan)),
                "generalization_val": float(f.get("val_selected_test_accuracy", np.nan)),
                "gap": float(f.get("generalization_gap", np.nan)),
                "train_before_last_event": float(f.get("train_accuracy_before_last_event", np.nan)),
            }
        )
    return pd.DataFrame(out)


def fit_gate(runs: pd.DataFrame, threshold: float) -> Gate:
    """The baseline runs' training accuracy just before the last event (mean over seeds)."""
    base = runs[runs["target"] == "none"]["train_before_last_event"].dropna()
    if base.empty:
        return Gate("fit", False, "no baseline run with its training accuracy before the last event")
    detail = (
        f"baseline training accuracy before the last event {base.mean():.4f} (min {base.min():.4f}, "
        f"{len(base)} seeds; needs >= {threshold:g})"
    )
    return Gate("fit", bool(base.mean() >= threshold), detail)


def _per_seed(runs: pd.DataFrame, measure: str, **where) -> pd.Series:
    m = pd.Series(True, index=runs.index)
    for key, values in where.items():
        m &= runs[key].isin(values if isinstance(values, list | tuple) else [values])
    return runs[m].groupby("seed", sort=True)[measure].mean()


def positive_control(runs: pd.DataFrame, h: Hypothesis, measure: str) -> tuple[Gate, Evidence]:
    """Prune_L (permanent) minus the baseline, paired by seed: the interval must lie above 0."""
    a = _per_seed(runs, measure, target="prune_l", variant="permanent")
    b = _per_seed(runs, measure, target="none")
    common = a.index.intersection(b.index)
    ev = E.t_paired(a.loc[common].to_numpy(), b.loc[common].to_numpy(), replace(h, effect=None))
    if not np.isfinite(ev.ci_low):
        return Gate(
            "positive control", False, f"Prune_L against the baseline: {len(common)} paired seeds"
        ), ev
    detail = (
        f"Prune_L - baseline {100 * ev.estimate:+.2f} points, {100 * (1 - h.alpha):.0f}% CI "
        f"[{100 * ev.ci_low:+.2f}, {100 * ev.ci_high:+.2f}], {ev.n} seeds (needs > 0)"
    )
    return Gate("positive control", bool(ev.ci_low > 0), detail), ev


def stability_range(runs: pd.DataFrame) -> dict:
    perm = runs[runs["variant"] == "permanent"]
    if perm.empty:
        return {}
    return {
        "run_stability_min": float(perm["stability"].min()),
        "run_stability_median": float(perm["stability"].median()),
        "run_stability_max": float(perm["stability"].max()),
        "lowest_event_stability": float(perm["lowest_event"].min()),
        "authors_run_stability": list(AUTHORS_STABILITY),
    }


def _measure(h: Hypothesis) -> str:
    return "generalization_val" if h.scope.get("selection") == "validation" else "generalization"


def _gates(study: StudyData, runs: pd.DataFrame, h: Hypothesis) -> tuple[list[Gate], dict]:
    gate, ev = positive_control(runs, h, _measure(h))
    control = {"prune_l_minus_baseline": [ev.estimate, ev.ci_low, ev.ci_high], "seeds": ev.n}
    return [fit_gate(runs, study.regime["fit_threshold"]), gate], control


def _row(study, claim, h, ev, gates, desc, details, resample=None, n_units=0, decision=None, **scope) -> Row:
    j = judge(
        h, ev, gates, resample=resample if h.primary else None, n_units=n_units, key=(claim, h.id),
        thresholds=study.regime, decision=decision,
    )  # fmt: skip
    return make_row(
        h, ev, claim=claim, study=study.name, description=desc, judgement=j, details=details, **scope
    )


def _seed_blocks(seeds: np.ndarray, idx: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the drawn seeds (``order[idx]``), each draw its own block."""
    rows, blocks = [], []
    for k, s in enumerate(order[idx]):
        hit = np.flatnonzero(seeds == s)
        rows.append(hit)
        blocks.append(np.full(hit.size, k))
    return np.concatenate(rows), np.concatenate(blocks)


def _correlation(study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame) -> list[Row]:
    gates, control = _gates(study, runs, h)
    perm = runs[runs["variant"] == "permanent"].sort_values(["seed", "target", "every"])
    groups = [("pooled", perm)]
    if h.scope.get("by") == "every":
        groups = [(f"every={e}", g) for e, g in perm.groupby("every", sort=True)]
    rows = []
    blocked = h.test == "pearson_blocked"
    for name, g in groups:
        x, y, seeds = g["stability"].to_numpy(), g[_measure(h)].to_numpy(), g["seed"].to_numpy()
        ev = E.pearson_blocked(x, y, seeds, h) if blocked else E.pearson(x, y, h)
        raw = E.pearson(x, y, h)
        order = np.unique(seeds)

        def again(idx, x=x, y=y, seeds=seeds, order=order):
            take, blocks = _seed_blocks(seeds, idx, order)
            return (
                E.pearson_blocked(x[take], y[take], blocks, h) if blocked else E.pearson(x[take], y[take], h)
            )

        tau = float(pd.Series(x).corr(pd.Series(y), method="kendall")) if len(x) > 2 else float("nan")
        rx, ry = E.block_residuals(x, seeds), E.block_residuals(y, seeds)
        tau_b = float(pd.Series(rx).corr(pd.Series(ry), method="kendall")) if len(x) > 2 else float("nan")
        selection = "validation-selected" if _measure(h) == "generalization_val" else "test-selected"
        desc = (
            f"{'seed-blocked ' if blocked else ''}correlation of run stability and {selection} "
            f"generalization over {len(x)} permanent runs of {len(order)} seeds ({name}); "
            f"raw pooled r {raw.estimate:+.3f} [{raw.ci_low:+.3f}, {raw.ci_high:+.3f}], "
            f"Kendall tau {tau:+.3f} (blocked {tau_b:+.3f})"
        )
        details = {
            "raw_r": [raw.estimate, raw.ci_low, raw.ci_high, raw.p],
            "kendall_tau": tau,
            "kendall_tau_blocked": tau_b,
            "seeds": len(order),
            "positive_control": control,
            **stability_range(g),
        }
        scope = g[["arch", "dataset"]].drop_duplicates()
        where = (
            {"arch": scope["arch"].iloc[0], "dataset": scope["dataset"].iloc[0]} if len(scope) == 1 else {}
        )
        rows.append(_row(study, claim, h, ev, gates, desc, details, again, len(order), pruner=name, **where))
    return rows


def _test(h: Hypothesis, a, b) -> Evidence:
    return E.tost_paired(a, b, h) if h.direction == "equivalence" else E.t_paired(a, b, h)


def _against(study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame) -> list[Row]:
    """Each variant on the hypothesis' targets minus ``scope.against``, paired by seed; a primary
    over several variants by intersection-union."""
    variants = list(h.scope.get("variants", ["noise_zero", "noise_gauss"]))
    targets = list(h.scope.get("targets", ["prune_l"]))
    against = h.scope.get("against", "none")
    measure = _measure(h)
    gates, control = _gates(study, runs, h)
    arms = {}
    for v in variants:
        mine = runs[runs["variant"].isin([v]) & runs["target"].isin(targets)]
        if against == "none":
            ref = _per_seed(runs, measure, target="none")
        else:
            ref = _per_seed(
                runs, measure, target=against, variant="permanent", every=sorted(mine["every"].unique())
            )
        arms[v] = (mine.groupby("seed", sort=True)[measure].mean(), ref)
    seeds = sorted(set.intersection(*[set(a.index) & set(r.index) for a, r in arms.values()])) if arms else []
    diff = {v: (a.reindex(seeds).to_numpy(), r.reindex(seeds).to_numpy()) for v, (a, r) in arms.items()}
    members = {v: _test(h, a, r) for v, (a, r) in diff.items()}
    label = "the baseline" if against == "none" else f"{against} (permanent)"
    rows = []
    for v, ev in members.items():
        desc = f"{v} on {'+'.join(targets)} minus {label}, paired by seed ({ev.n} seeds)"
        member_h = replace(h, primary=False) if h.primary else h
        rows.append(
            _row(
                study,
                claim,
                member_h,
                ev,
                gates,
                desc,
                {"positive_control": control},
                pruner=f"{v}:{against}",
            )
        )
    if h.primary:
        ev, decision = pooled(h, members)

        def again(idx):
            return pooled(h, {v: _test(h, a[idx], r[idx]) for v, (a, r) in diff.items()})[1].verdict

        desc = (
            f"{' and '.join(variants)} each minus {label}, paired by seed ({len(seeds)} seeds), "
            f"intersection-union: {decision.reason}"
        )
        details = {
            "members": {v: [e.estimate, e.ci_low, e.ci_high, e.p] for v, e in members.items()},
            "positive_control": control,
        }
        rows.insert(
            0,
            _row(study, claim, h, ev, gates, desc, details, again, len(seeds), decision,
                 pruner=f"{'+'.join(variants)}:{against}"),
        )  # fmt: skip
    return rows


def _targets(study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame) -> list[Row]:
    """Permanent runs of ``first`` minus ``second`` target (e.g. prune_l - prune_s), paired by seed."""
    first, second = h.scope["compare"]
    a = _per_seed(runs, _measure(h), target=first, variant="permanent")
    b = _per_seed(runs, _measure(h), target=second, variant="permanent")
    common = a.index.intersection(b.index)
    ev = E.t_paired(a.loc[common].to_numpy(), b.loc[common].to_numpy(), h)
    gates, control = _gates(study, runs, h)
    desc = f"{first} - {second} generalization, permanent runs, paired by seed ({len(common)} seeds)"
    return [_row(study, claim, h, ev, gates, desc, {"positive_control": control}, pruner=f"{first}-{second}")]


HANDLERS = {
    "pearson_blocked": _correlation,
    "pearson": _correlation,
    "t_paired": _against,
    "tost_paired": _against,
    "t_paired_targets": _targets,
}


def analyze(study: StudyData) -> list[Row]:
    runs = run_table(study.cells, study.metrics)
    if runs.empty:
        return []
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            rows += HANDLERS[h.test](study, claim.id, h, runs)
    return rows


# -- what the report shows of it ------------------------------------------------------------------

ANALYSIS_NAME = "generalization_stability"


def report_filters(cells: pd.DataFrame) -> list[MetricFilter]:
    """The stability runs' final rows (the figure's points)."""
    ids = list(cells.loc[cells["cell_type"] == "stability", "cell_id"])
    return [MetricFilter(cell_ids=ids, phases=["final"], per_class=False)] if ids else []


def report_frame(cells: pd.DataFrame, metrics: pd.DataFrame, manifests: dict) -> pd.DataFrame:
    """One row per stability run: its final numbers, target, variant, schedule."""
    ids = set(cells.loc[cells["cell_type"] == "stability", "cell_id"])
    rows = metrics[metrics["cell_id"].isin(ids) & (metrics["phase"] == "final") & metrics["class"].isna()]
    if rows.empty:
        return pd.DataFrame()
    wide = rows.pivot_table(index="cell_id", columns="metric", values="value", aggfunc="first").reset_index()
    keep = ["cell_id", "arch", "dataset", "pruner", "seed", "variant", "schedule", "score"]
    return wide.merge(cells[[c for c in keep if c in cells]], on="cell_id")


def figure(data) -> Figure | None:
    """Generalization against pruning stability, one point per run."""
    import seaborn as sns

    plt = pyplot()
    s = data.analyses.get(ANALYSIS_NAME)
    if s is None or s.empty or "stability" not in s:
        return None
    theme()
    s = s[s["pruner"] != "none"].assign(
        target=s["pruner"].str.replace("prune_", "").str.upper(),
        schedule=s["schedule"].fillna("").astype(str),
    )
    ycol = "best_test_accuracy" if "best_test_accuracy" in s else "generalization_gap"
    fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=DPI)
    sns.scatterplot(data=s, x="stability", y=ycol, hue="target", style="variant", size="schedule", ax=ax)
    ax.set_xlabel("pruning stability (mean post/pre-event accuracy ratio)")
    ax.set_ylabel(
        "generalization: best test accuracy after the last event" if ycol == "best_test_accuracy" else ycol
    )
    legend_outside(ax, "target (S/L/R), variant, schedule")
    fig.tight_layout()
    return Figure(
        "stability",
        "Generalization against pruning stability",
        "One point per training run of the generalization-stability study (Bartoldson et al. 2020); "
        "the claim is a negative correlation between stability and generalization.",
        fig,
        "claims",
    )


def card(p: dict, data) -> dict:
    """The positive control (Prune_L against the baseline) and the runs' stability against the authors'."""
    d = p.get("details") or {}
    out = []
    control = d.get("positive_control", {}).get("prune_l_minus_baseline")
    if control:
        out.append(
            (
                "positive control: Prune_L - baseline (points)",
                f"{100 * control[0]:+.2f} [{100 * control[1]:+.2f}, {100 * control[2]:+.2f}]"
                if None not in control
                else "not measured",
            )
        )
    if "run_stability_min" in d:
        lo, hi = d["authors_run_stability"]
        out.append(
            (
                "run stability (%): ours, the authors'",
                f"{d['run_stability_min']:.1f}-{d['run_stability_max']:.1f} (lowest event "
                f"{d['lowest_event_stability']:.1f}); authors {lo:g}-{hi:g}",
            )
        )
    return {"stats": out}


ANALYSIS = Analysis(
    ANALYSIS_NAME,
    tests=("pearson_blocked", "pearson", "t_paired", "t_paired_targets", "tost_paired"),
    analyze=analyze,
    title="Generalization and stability (Bartoldson et al. 2020)",
    figure=figure,
    figure_name="stability",
    card=card,
    report_filters=report_filters,
    report_frame=report_frame,
)
