"""Prune potential and excess error per test distribution (Liebenwein, Baykal, Carter, Gifford
& Rus, "Lost in Pruning: The Effects of Pruning Neural Networks beyond Test Accuracy",
MLSys 2021; protocol from lucaslie/torchprune).

For a pruner, a dense parent and a test distribution ``D'`` (``shared/design/claims.md``
section 4), errors as fractions, ``D`` the clean test split:

- prune potential ``P(D') = max {s on the grid : err(pruned_s, D') <= err(dense, D') + delta}``,
  0 when no sparsity qualifies; ``delta = 0.005`` (0.5 points, their ``COMM_LEVEL``);
- excess error ``e = [err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]``.

A corruption type's error is the mean over its severities (claims.md section 5), so each
type is one ``D'``; ``corruption_mean`` averages the types. The claim: prune potential on
shifted data is lower than on clean data (and excess error is positive). Unit: the dense
parent (seed); per seed ``P(D) - mean_types P(D')``. Noise: the shifted sets hold the whole
test split per severity (``[eval] shift_set_size``), five severities per type; the sampling
standard error of a type's accuracy difference is at most ``sqrt(2 p (1 - p) / n)`` (shown in
the row's description) and the seed-to-seed spread, which the test carries, contains it.

Rev. 3: the potential is a grid quantity, censored at the grid's cap (every sparsity within
delta) and at 0 (none within delta); each row reports both shares (``censoring``), and the
study runs its own cells on a dense geometric grid up to 0.99. A gap without spread (every parent
the same) is tested by the sign test with the order-statistic interval of the median
(``analysis.evidence.t_one_sample``), so its p and interval agree. Gates: convergence; collapse
for the excess error at its sparsity (the potential's grid runs into collapse by design).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.base import Analysis
from analysis.load import StudyData, kept_epochs, n_classes, prune_cells
from analysis.regime import collapse_gate, convergence_gate
from analysis.verdict import Gate, Row, judge, make_row
from core.hypotheses import Hypothesis

DELTA = 0.005
CLEAN = "test"
CORRUPTION_MEAN = "corruption_mean"


def prune_potential(sparsities, err_pruned, err_dense: float, delta: float = DELTA) -> float:
    """Largest sparsity with ``err_pruned <= err_dense + delta``; 0 when none qualifies."""
    s, e = np.asarray(sparsities, float), np.asarray(err_pruned, float)
    ok = np.isfinite(e) & (e <= err_dense + delta + 1e-12)
    return float(s[ok].max()) if ok.any() else 0.0


def excess_error(err_pruned_shift, err_pruned_clean, err_dense_shift, err_dense_clean):
    """``[err(pruned, D') - err(pruned, D)] - [err(dense, D') - err(dense, D)]``."""
    return (np.asarray(err_pruned_shift, float) - np.asarray(err_pruned_clean, float)) - (
        np.asarray(err_dense_shift, float) - np.asarray(err_dense_clean, float)
    )


def set_errors(metrics: pd.DataFrame, phase: str) -> tuple[pd.DataFrame, pd.Series]:
    """(``cell_id x D'`` top-1 error, severities averaged per corruption type; examples per D')."""
    rows = metrics[(metrics.phase == phase) & (metrics.metric == "accuracy") & metrics["class"].isna()]
    rows = rows[(rows["eval_set"] == CLEAN) | (rows["kind"] == "corruption")]
    if rows.empty:
        return pd.DataFrame(), pd.Series(dtype=float)
    rows = rows.assign(err=1.0 - rows["value"])
    out = rows.groupby(["cell_id", "eval_set"])["err"].mean().unstack()
    severities = rows[rows["kind"] == "corruption"].groupby("eval_set")["severity"].nunique()
    return out, severities


def potentials(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Prune potential per (arch, dataset, pruner, seed, D') and the cells' excess errors."""
    pc = prune_cells(cells)
    pc = pc[pc["pruner_timing"] == "after_training"]
    e0, _ = set_errors(metrics, "dense")
    e1, _ = set_errors(metrics, "retrained")
    if pc.empty or e0.empty or e1.empty:
        return pd.DataFrame()
    pc = pc[pc["cell_id"].isin(e1.index) & pc["cell_id"].isin(e0.index) & (pc["sparsity"] > 0)]
    out = []
    for (arch, dataset, pruner, seed), g in pc.groupby(["arch", "dataset", "pruner", "seed"]):
        ids = g["cell_id"].tolist()
        sets = [s for s in e1.columns if e1.loc[ids, s].notna().all()]
        for s in sets:
            dense = float(e0.loc[ids[0], s])
            out.append(
                {
                    "arch": arch,
                    "dataset": dataset,
                    "pruner": pruner,
                    "seed": seed,
                    "eval_set": s,
                    "potential": prune_potential(g["sparsity"], e1.loc[ids, s], dense),
                    "grid_cap": float(g["sparsity"].max()),
                    "accuracy": 1 - float(e1.loc[ids, CLEAN].mean()),
                    "dense_accuracy": 1 - float(e0.loc[ids, CLEAN].mean()),
                }
            )
    return pd.DataFrame(out)


def _gap_by_seed(pp: pd.DataFrame) -> pd.Series:
    """Per (arch, dataset, seed): ``P(D) - mean over corruption types of P(D')``."""
    clean = pp[pp["eval_set"] == CLEAN].set_index(["arch", "dataset", "seed"])["potential"]
    shifted = pp[pp["eval_set"] != CLEAN].groupby(["arch", "dataset", "seed"])["potential"].mean()
    common = clean.index.intersection(shifted.index)
    return clean.loc[common] - shifted.loc[common]


def analyze(study: StudyData) -> list[Row]:
    pp = potentials(study.cells, study.metrics)
    rows: list[Row] = []
    if pp.empty:
        return rows
    for claim in study.claims:
        for h in claim.hypotheses:
            rows += (_potential_rows if h.test == "t_one_sample" else _excess_rows)(study, claim.id, h, pp)
    return rows


def censoring(pp: pd.DataFrame) -> dict:
    """Shares censored by the grid: clean potential at the grid's cap (per parent), and potential 0
    (no grid sparsity within delta) per (parent, shifted set)."""
    clean = pp[pp["eval_set"] == CLEAN]
    shifted = pp[pp["eval_set"] != CLEAN]
    return {
        "clean_at_cap": float(np.isclose(clean["potential"], clean["grid_cap"]).mean())
        if len(clean)
        else None,
        "clean_at_zero": float((clean["potential"] == 0).mean()) if len(clean) else None,
        "shifted_at_cap": float(np.isclose(shifted["potential"], shifted["grid_cap"]).mean())
        if len(shifted)
        else None,
        "shifted_at_zero": float((shifted["potential"] == 0).mean()) if len(shifted) else None,
        "grid_cap": float(pp["grid_cap"].max()),
    }


def _gates(study: StudyData, pruner: str, accuracy=None, dense=None) -> list[Gate]:
    """Convergence on the pruner's cells; collapse on ``accuracy`` when given."""
    cells = prune_cells(study.cells)
    cells = cells[(cells["pruner"] == pruner) & (cells["pruner_timing"] == "after_training")]
    gates = [convergence_gate(cells, kept_epochs(study.metrics), study.regime)]
    if accuracy is not None:
        gates.append(collapse_gate(accuracy, dense, n_classes(study.metrics), study.regime))
    return gates


def _potential_rows(study: StudyData, claim: str, h: Hypothesis, pp: pd.DataFrame) -> list[Row]:
    pruners = [h.scope["pruner"]] if "pruner" in h.scope else sorted(pp["pruner"].unique())
    rows = []
    for pruner in pruners:
        mine = pp[pp["pruner"] == pruner]
        if mine.empty:
            continue
        values = _gap_by_seed(mine).to_numpy()
        ev = E.t_one_sample(values, h)
        gates = _gates(study, pruner)  # the grid runs into collapse by design: no collapse gate
        j = judge(
            h, ev, gates, resample=(lambda i, v=values: E.t_one_sample(v[i], h)) if h.primary else None,
            n_units=len(values), key=(claim, h.id), thresholds=study.regime,
        )  # fmt: skip
        cens = censoring(mine)
        clean = mine[mine["eval_set"] == CLEAN]["potential"].mean()
        scopes = mine[["arch", "dataset"]].drop_duplicates().shape[0]
        shifted = mine[mine["eval_set"] != CLEAN]["potential"].mean()
        desc = (
            f"P(clean) - mean over corruption types P(D') per dense parent ({len(values)} parents of "
            f"{scopes} (arch, dataset)); mean P(clean) {clean:.3f}, P(shifted) {shifted:.3f}; delta = "
            f"{DELTA * 100:g} points; censored: clean at the grid's cap {cens['clean_at_cap']:.2f} of "
            f"parents, shifted at 0 {cens['shifted_at_zero'] or 0:.2f} of (parent, set)"
        )
        row = make_row(
            h, ev, claim=claim, study=study.name, description=desc, judgement=j, details=cens, pruner=pruner
        )
        rows.append(row)
    return rows


def _excess_rows(study: StudyData, claim: str, h: Hypothesis, pp: pd.DataFrame) -> list[Row]:
    """Excess error on the corruption mean at the hypothesis' sparsity, per pruner, over parents."""
    pc = prune_cells(study.cells)
    e0, _ = set_errors(study.metrics, "dense")
    e1, _ = set_errors(study.metrics, "retrained")
    pc = pc[
        (pc["pruner_timing"] == "after_training") & np.isclose(pc["sparsity"], h.scope.get("sparsity", 0.9))
    ]
    pc = pc[pc["cell_id"].isin(e1.index)]
    rows = []
    for pruner, g in pc.groupby("pruner"):
        ids = g["cell_id"]
        corr = [c for c in e1.columns if c != CLEAN]
        shift_p, shift_d = e1.loc[ids, corr].mean(axis=1), e0.loc[ids, corr].mean(axis=1)
        excess = excess_error(shift_p, e1.loc[ids, CLEAN], shift_d, e0.loc[ids, CLEAN])
        ev = E.t_one_sample(excess, h)
        gates = _gates(study, pruner, 1 - e1.loc[ids, CLEAN], 1 - e0.loc[ids, CLEAN])
        j = judge(h, ev, gates, thresholds=study.regime)
        at = h.scope.get("sparsity", 0.9)
        desc = f"excess error on the corruption mean at sparsity {at:g}, over {len(ids)} parents"
        row = make_row(
            h,
            ev,
            claim=claim,
            study=study.name,
            description=desc,
            judgement=j,
            pruner=pruner,
            sparsity=h.scope.get("sparsity", 0.9),
        )
        row.collapsed = gates[1].passed is False
        rows.append(row)
    return rows


ANALYSIS = Analysis("potential", tests=("t_one_sample", "excess_t"), analyze=analyze)
