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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.load import StudyData, n_classes, prune_cells
from analysis.regime import is_collapsed
from analysis.verdict import Row, bootstrap_stability, decide, make_row
from core.studies import Hypothesis

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
    pc = pc[pc["cell_id"].isin(e1.index) & pc["cell_id"].isin(e0.index)]
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
                    "accuracy": 1 - float(e1.loc[ids, CLEAN].mean()),
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


def _potential_rows(study: StudyData, claim: str, h: Hypothesis, pp: pd.DataFrame) -> list[Row]:
    pruners = [h.scope["pruner"]] if "pruner" in h.scope else sorted(pp["pruner"].unique())
    rows = []
    for pruner in pruners:
        mine = pp[pp["pruner"] == pruner]
        if mine.empty:
            continue
        gap = _gap_by_seed(mine)
        values = gap.to_numpy()
        ev = E.t_one_sample(values, h)
        stability = float("nan")
        if h.primary:
            full = decide(h, ev)
            stability = bootstrap_stability(
                len(values), lambda idx, v=values: decide(h, E.t_one_sample(v[idx], h)), full, (claim, h.id)
            )
        clean = mine[mine["eval_set"] == CLEAN]["potential"].mean()
        scopes = mine[["arch", "dataset"]].drop_duplicates().shape[0]
        shifted = mine[mine["eval_set"] != CLEAN]["potential"].mean()
        desc = (
            f"P(clean) - mean over corruption types P(D') per dense parent ({len(values)} parents of "
            f"{scopes} (arch, dataset)); mean P(clean) {clean:.3f}, "
            f"P(shifted) {shifted:.3f}; delta = {DELTA * 100:g} points"
        )
        row = make_row(
            h, ev, claim=claim, study=study.name, description=desc, stability=stability, pruner=pruner
        )
        if is_collapsed(mine["accuracy"], n_classes(study.metrics)):
            row.verdict, row.description = "collapsed", row.description + "; collapsed"
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
        at = h.scope.get("sparsity", 0.9)
        desc = f"excess error on the corruption mean at sparsity {at:g}, over {len(ids)} parents"
        row = make_row(
            h,
            ev,
            claim=claim,
            study=study.name,
            description=desc,
            pruner=pruner,
            sparsity=h.scope.get("sparsity", 0.9),
        )
        if is_collapsed(1 - e1.loc[ids, CLEAN], n_classes(study.metrics)):
            row.verdict, row.description = "collapsed", row.description + "; collapsed"
        rows.append(row)
    return rows
