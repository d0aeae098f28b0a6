"""Mask sanity checks (Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at
Initialization: Why are We Missing the Mark?", ICLR 2021; Su et al., "Sanity-Checking Pruning
Methods: Random Tickets can Win the Jackpot", NeurIPS 2020).

Each pruner's cell is re-run with its mask shuffled within every layer (``shuffle_layer``: the
layer-wise densities kept, the choice of weights lost), with the kept weights re-initialised
(``reinit``) and with inverted scores (``invert``: the weights it ranks lowest are kept)
(``benchmarks.pipeline``). The finding under test: at-init pruners' masks keep their accuracy
under layer-wise shuffling (so they carry no more than their layer-wise densities): keeps or
improves, i.e. non-inferiority by the study's margin (the lower one-sided test of a TOST; the
two-sided TOST is a secondary row), while magnitude pruning after training (the positive
control) loses accuracy when shuffled. Unit: the (pruner, seed) pair, retrained test
accuracy of the control minus that of the unaltered mask.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.load import StudyData, n_classes, scalar
from analysis.regime import is_collapsed
from analysis.verdict import Row, bootstrap_stability, decide, make_row
from core.studies import Hypothesis


def paired_controls(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (arch, dataset, pruner, sparsity, seed): retrained accuracy per control."""
    acc = scalar(metrics, "retrained", "accuracy")
    pc = cells[(cells["cell_type"] == "prune") & cells["cell_id"].isin(acc.index)].copy()
    pc["accuracy"] = acc.loc[pc["cell_id"]].to_numpy()
    pc["control"] = pc["control"].fillna("none")
    return pc.pivot_table(
        index=["arch", "dataset", "pruner", "sparsity", "seed"],
        columns="control",
        values="accuracy",
        aggfunc="first",
    ).reset_index()


def _pairs(table: pd.DataFrame, pruners: list[str], control: str) -> tuple[np.ndarray, np.ndarray]:
    mine = table[table["pruner"].isin(pruners)]
    if control not in mine or "none" not in mine:
        return np.array([]), np.array([])
    mine = mine.dropna(subset=[control, "none"])
    return mine[control].to_numpy(float), mine["none"].to_numpy(float)


def _test(h: Hypothesis, a, b):
    if h.direction == "noninferiority":
        return E.noninferiority_paired(a, b, h)
    return E.tost_paired(a, b, h) if h.direction == "equivalence" else E.t_paired(a, b, h)


def analyze(study: StudyData) -> list[Row]:
    table = paired_controls(study.cells, study.metrics)
    if table.empty:
        return []
    classes = n_classes(study.metrics)
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            control = h.scope.get("control", "shuffle_layer")
            pooled = h.scope.get("pruners")
            groups = (
                [("+".join(pooled), pooled)]
                if pooled
                else [(p, [p]) for p in sorted(table["pruner"].unique())]
            )
            for name, members in groups:
                a, b = _pairs(table, members, control)
                if a.size == 0:
                    continue
                ev = _test(h, a, b)
                stability = float("nan")
                if h.primary:
                    full = decide(h, ev)
                    stability = bootstrap_stability(
                        len(a),
                        lambda idx, a=a, b=b, h=h: decide(h, _test(h, a[idx], b[idx])),
                        full,
                        (claim.id, h.id, name),
                    )
                desc = (
                    f"retrained accuracy with the mask {control} minus the unaltered mask, {name}, "
                    f"{a.size} (pruner, seed) pairs; mean {b.mean():.3f} -> {a.mean():.3f}"
                )
                if h.direction in ("equivalence", "noninferiority"):
                    kind = "TOST" if h.direction == "equivalence" else "non-inferiority"
                    desc += f"; {kind} margin {h.margin:g}"
                row = make_row(
                    h,
                    ev,
                    claim=claim.id,
                    study=study.name,
                    description=desc,
                    stability=stability,
                    pruner=name,
                    eval_set=control,
                )
                if is_collapsed(b, classes):
                    row.verdict, row.description = "collapsed", row.description + "; collapsed"
                rows.append(row)
    return rows


def mask_column(rows: list[Row]) -> dict[str, str]:
    """The leaderboard's "mask sanity" entry per pruner, from the per-pruner shuffle rows:
    ``"mask > densities"`` when shuffling within layers costs accuracy significantly,
    ``"shuffle helps"`` when it raises accuracy significantly, ``"= densities"`` when the two
    are shown equivalent (TOST), else ``"undecided"``."""
    out: dict[str, str] = {}
    for r in rows:
        if r.claim != "mask_sanity" or r.eval_set != "shuffle_layer" or "+" in (r.pruner or ""):
            continue
        out.setdefault(r.pruner, "undecided")
        if r.test == "tost_paired":
            if r.verdict == "reproduced" and out[r.pruner] == "undecided":
                out[r.pruner] = "= densities"
        elif r.test == "t_paired" and r.verdict in ("reproduced", "contradicted"):
            out[r.pruner] = "mask > densities" if r.ci_high < 0 else "shuffle helps"
    return out
