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
runs. The claim: less stability goes with higher final accuracy (negative Pearson r between
``S`` and generalization); and (Fig. 5) the benefit does not need permanent removal: noise
injected into the units Prune_L would remove helps generalization too. The regime matters:
the no-pruning baseline must fit the training set (>= 99% training accuracy) before the last
event; the analysis records whether it did.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.load import StudyData
from analysis.verdict import Row, bootstrap_stability, decide, make_row
from core.studies import Hypothesis

FIT_THRESHOLD = 0.99  # training accuracy the baseline must reach before the last event


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
                "generalization": float(f.get("best_test_accuracy", np.nan)),
                "generalization_val": float(f.get("val_selected_test_accuracy", np.nan)),
                "gap": float(f.get("generalization_gap", np.nan)),
                "train_before_last_event": float(f.get("train_accuracy_before_last_event", np.nan)),
            }
        )
    return pd.DataFrame(out)


def fit_check(runs: pd.DataFrame) -> dict:
    """The regime check: the baseline runs' training accuracy just before the last event."""
    base = runs[runs["target"] == "none"]["train_before_last_event"].dropna()
    return {
        "runs": len(base),
        "mean": float(base.mean()) if len(base) else float("nan"),
        "min": float(base.min()) if len(base) else float("nan"),
        "fits": bool(len(base)) and float(base.mean()) >= FIT_THRESHOLD,
    }


def _measure(h: Hypothesis) -> str:
    return "generalization_val" if h.scope.get("selection") == "validation" else "generalization"


def _correlation(study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame, fit: dict) -> list[Row]:
    perm = runs[runs["variant"] == "permanent"]
    x, y = perm["stability"].to_numpy(), perm[_measure(h)].to_numpy()
    ev = E.pearson(x, y, h)
    stability = float("nan")
    if h.primary:
        full = decide(h, ev)
        stability = bootstrap_stability(
            len(x), lambda idx: decide(h, E.pearson(x[idx], y[idx], h)), full, (claim, h.id)
        )
    tau = float(pd.Series(x).corr(pd.Series(y), method="kendall")) if len(x) > 2 else float("nan")
    selection = "validation-selected" if _measure(h) == "generalization_val" else "test-selected"
    desc = (
        f"Pearson r between run stability and {selection} "
        f"generalization over {len(x)} permanent runs (targets x intervals pooled); Kendall tau {tau:.3f}; "
        f"baseline training accuracy before the last event {fit['mean']:.4f} (min {fit['min']:.4f}, "
        f"{'fits' if fit['fits'] else 'does NOT fit'} the >= {FIT_THRESHOLD:.0%} regime)"
    )
    scope = perm[["arch", "dataset"]].drop_duplicates()
    where = {"arch": scope["arch"].iloc[0], "dataset": scope["dataset"].iloc[0]} if len(scope) == 1 else {}
    row = make_row(h, ev, claim=claim, study=study.name, description=desc, stability=stability, **where)
    if not fit["fits"]:
        row.description += "; out of the paper's regime"
    return [row]


def _against_baseline(
    study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame, fit: dict
) -> list[Row]:
    """Runs of the hypothesis' variant(s) and target(s) minus the no-pruning baseline, paired by
    seed (several configurations of one seed averaged first)."""
    variants = h.scope.get("variants", ["noise_zero", "noise_gauss"])
    targets = h.scope.get("targets", ["prune_l"])
    measure = _measure(h)
    base = runs[runs["target"] == "none"].groupby("seed")[measure].mean()
    rows = []
    groups = [("pooled", variants)] + ([(v, [v]) for v in variants] if not h.primary else [])
    for name, vs in groups:
        mine = runs[runs["variant"].isin(vs) & runs["target"].isin(targets)].groupby("seed")[measure].mean()
        common = mine.index.intersection(base.index)
        a, b = mine.loc[common].to_numpy(), base.loc[common].to_numpy()
        ev = E.t_paired(a, b, h)
        stability = float("nan")
        if h.primary:
            full = decide(h, ev)
            stability = bootstrap_stability(
                len(a), lambda idx, a=a, b=b: decide(h, E.t_paired(a[idx], b[idx], h)), full, (claim, h.id)
            )
        desc = (
            f"{'+'.join(vs)} on {'+'.join(targets)} minus the no-pruning baseline, "
            f"paired by seed ({len(a)} seeds)"
        )
        rows.append(
            make_row(
                h,
                ev,
                claim=claim,
                study=study.name,
                description=desc,
                stability=stability,
                pruner=f"{name}:{'+'.join(targets)}",
            )
        )
    return rows


def _targets(study: StudyData, claim: str, h: Hypothesis, runs: pd.DataFrame, fit: dict) -> list[Row]:
    """Permanent runs of ``first`` minus ``second`` target (e.g. prune_l - prune_s), paired by seed."""
    first, second = h.scope["compare"]
    perm = runs[runs["variant"] == "permanent"]
    a = perm[perm["target"] == first].groupby("seed")[_measure(h)].mean()
    b = perm[perm["target"] == second].groupby("seed")[_measure(h)].mean()
    common = a.index.intersection(b.index)
    ev = E.t_paired(a.loc[common].to_numpy(), b.loc[common].to_numpy(), h)
    desc = f"{first} - {second} generalization, permanent runs, paired by seed ({len(common)} seeds)"
    return [make_row(h, ev, claim=claim, study=study.name, description=desc, pruner=f"{first}-{second}")]


HANDLERS = {"pearson": _correlation, "t_paired": _against_baseline, "t_paired_targets": _targets}


def analyze(study: StudyData) -> list[Row]:
    runs = run_table(study.cells, study.metrics)
    if runs.empty:
        return []
    fit = fit_check(runs)
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            rows += HANDLERS[h.test](study, claim.id, h, runs, fit)
    return rows
