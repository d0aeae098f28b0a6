"""Mask sanity checks (Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at
Initialization: Why are We Missing the Mark?", ICLR 2021; Su et al., "Sanity-Checking Pruning
Methods: Random Tickets can Win the Jackpot", NeurIPS 2020).

Each pruner's cell is re-run with its mask shuffled within every layer (``shuffle_layer``: the
layer-wise densities kept, the choice of weights lost), with the kept weights re-initialised
(``reinit``) and with inverted scores (``invert``: the weights it ranks lowest are kept)
(``benchmarks.pipeline``). Unit: the (pruner, seed) pair, retrained test accuracy of the
control minus that of the unaltered mask.

The finding under test is per method (claims.md section 4b, rev. 3): each at-init pruner's mask
keeps its accuracy under layer-wise shuffling: non-inferiority by the margin (the lower
one-sided test of a TOST). A hypothesis over several pruners (``scope.pruners``) holds only if
it holds for each of them (intersection-union, ``analysis.verdict.pooled``), with one row per
pruner. Gates: the **positive control** (global magnitude after training must lose clearly more
than the margin when its mask is shuffled: the upper bound of its ``1 - 2 alpha`` interval below
``-margin``), collapse (absolute) and convergence.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from analysis import evidence as E
from analysis.base import Analysis
from analysis.display import DPI, Figure, legend_outside, mean_ci, pyplot, theme
from analysis.load import StudyData, kept_epochs, n_classes, scalar
from analysis.regime import collapse_gate, convergence_gate
from analysis.verdict import Gate, Row, judge, make_row, pooled
from core.hypotheses import Hypothesis
from core.store import MetricFilter

CONTROL = "global_magnitude"  # magnitude pruning after training: the positive control
TESTS = ("t_paired", "tost_paired", "noninferiority_paired")
CONTROL_COLOURS = {"shuffle_layer": "#d62728", "reinit": "#1f77b4", "invert": "#7f7f7f"}


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


def positive_control(table: pd.DataFrame, h: Hypothesis, control: str, margin: float) -> Gate:
    """Global magnitude's shuffled-minus-unaltered interval must lie below ``-margin``."""
    a, b = _pairs(table, [CONTROL], control)
    if a.size < 2:
        return Gate("positive control", False, f"no {CONTROL} cells with the {control} control")
    ev = E.t_paired(
        a, b, replace(h, alpha=h.alpha * 2 if h.direction in ("equivalence", "noninferiority") else h.alpha)
    )
    detail = (
        f"{CONTROL} {control} - unaltered {100 * ev.estimate:+.2f} points [{100 * ev.ci_low:+.2f}, "
        f"{100 * ev.ci_high:+.2f}], {ev.n} seeds (upper bound needs < -{100 * margin:g})"
    )
    return Gate("positive control", bool(ev.ci_high < -margin), detail)


def _member_gates(study: StudyData, table: pd.DataFrame, pruners: list[str], control: str) -> list[Gate]:
    mine = study.cells[study.cells["pruner"].isin(pruners) & (study.cells["cell_type"] == "prune")]
    _, base = _pairs(table, pruners, control)
    return [
        convergence_gate(mine, kept_epochs(study.metrics), study.regime),
        collapse_gate(base, [np.nan], n_classes(study.metrics), study.regime),
    ]


def analyze(study: StudyData) -> list[Row]:
    table = paired_controls(study.cells, study.metrics)
    if table.empty:
        return []
    rows: list[Row] = []
    for claim in study.claims:
        for h in claim.hypotheses:
            control = h.scope.get("control", "shuffle_layer")
            members = h.scope.get("pruners") or sorted(table["pruner"].unique())
            margin = float(h.margin) if h.margin else float(h.smallest_effect or 0.01)
            control_gate = positive_control(table, h, control, margin)
            kind = {"equivalence": "TOST", "noninferiority": "non-inferiority"}.get(h.direction)
            evidence, pairs = {}, {}
            for name in members:
                a, b = _pairs(table, [name], control)
                if a.size == 0:
                    continue
                pairs[name] = (a, b)
                evidence[name] = _test(h, a, b)
                gates = [
                    *([control_gate] if name != CONTROL else []),
                    *_member_gates(study, table, [name], control),
                ]
                desc = (
                    f"retrained accuracy with the mask {control} minus the unaltered mask, {name}, "
                    f"{a.size} seeds; mean {b.mean():.3f} -> {a.mean():.3f}"
                    + (f"; {kind} margin {h.margin:g}" if kind else "")
                )
                one = replace(h, primary=False) if len(members) > 1 else h
                again = (lambda i, a=a, b=b, h=h: _test(h, a[i], b[i])) if one.primary else None
                j = judge(
                    one, evidence[name], gates, resample=again, n_units=a.size, key=(claim.id, h.id, name),
                    thresholds=study.regime,
                )  # fmt: skip
                row = make_row(one, evidence[name], claim=claim.id, study=study.name, description=desc,
                               judgement=j, pruner=name, eval_set=control)  # fmt: skip
                row.collapsed = gates[-1].passed is False
                rows.append(row)
            if len(members) > 1 and h.primary and evidence:
                rows.append(_pooled_row(study, claim.id, h, control, evidence, pairs, control_gate))
    return rows


def _pooled_row(
    study, claim: str, h: Hypothesis, control: str, evidence: dict, pairs: dict, gate: Gate
) -> Row:
    """Intersection-union over the members: reproduced only if every member is."""
    ev, decision = pooled(h, evidence)
    n = min(len(a) for a, _ in pairs.values())

    def again(idx):
        return pooled(h, {m: _test(h, a[:n][idx], b[:n][idx]) for m, (a, b) in pairs.items()})[1].verdict

    gates = [gate, *_member_gates(study, paired_controls(study.cells, study.metrics), list(pairs), control)]
    j = judge(
        h, ev, gates, resample=again, n_units=n, key=(claim, h.id), thresholds=study.regime, decision=decision
    )
    desc = f"each of {', '.join(pairs)} on its own (intersection-union): {decision.reason}"
    details = {"members": {m: [e.estimate, e.ci_low, e.ci_high, e.p] for m, e in evidence.items()}}
    return make_row(h, ev, claim=claim, study=study.name, description=desc, judgement=j, details=details,
                    pruner="+".join(pairs), eval_set=control)  # fmt: skip


def mask_column(rows: list[Row]) -> dict[str, str]:
    """The leaderboard's "mask sanity" entry per pruner, from the per-pruner shuffle rows:
    ``"mask > densities"`` when shuffling within layers costs accuracy significantly,
    ``"shuffle helps"`` when it raises accuracy significantly, ``"= densities"`` when the two
    are shown equivalent (TOST), else ``"undecided"`` (the measured difference, whatever the
    claim's gates)."""
    out: dict[str, str] = {}
    for r in rows:
        if r.claim != "mask_sanity" or r.eval_set != "shuffle_layer" or "+" in (r.pruner or ""):
            continue
        out.setdefault(r.pruner, "undecided")
        if r.test == "tost_paired":
            if r.point_verdict == "reproduced" and out[r.pruner] == "undecided":
                out[r.pruner] = "= densities"
        elif r.test == "t_paired" and (r.ci_high < 0 or r.ci_low > 0):
            out[r.pruner] = "mask > densities" if r.ci_high < 0 else "shuffle helps"
    return out


# -- what the report shows of it ------------------------------------------------------------------


def report_filters(cells: pd.DataFrame) -> list[MetricFilter]:
    return [MetricFilter(phases=["retrained"], metrics=["accuracy"], eval_sets=["test"], per_class=False)]


def report_frame(cells: pd.DataFrame, metrics: pd.DataFrame, manifests: dict) -> pd.DataFrame:
    """The mask-sanity study's cells: pruner, control, seed and retrained test accuracy."""
    ids = set()
    for m in manifests.values():
        if m.get("definition", {}).get("analysis") == "mask_sanity":
            ids |= set(m["cell_ids"])
    sub = cells[cells["cell_id"].isin(ids) & (cells["cell_type"] == "prune")].copy()
    if sub.empty:
        return pd.DataFrame()
    sub["accuracy"] = sub["cell_id"].map(scalar(metrics, "retrained", "accuracy"))
    keep = [
        "cell_id",
        "arch",
        "dataset",
        "pruner",
        "pruner_timing",
        "control",
        "sparsity",
        "seed",
        "accuracy",
    ]
    return sub[keep]


def figure(data) -> Figure | None:
    """Each control's accuracy minus the unaltered mask's, per pruner, with its interval."""
    plt = pyplot()
    m = data.analyses.get("mask_sanity")
    if m is None or m.empty:
        return None
    base = m[m["control"] == "none"].set_index(["pruner", "seed", "arch", "dataset", "sparsity"])["accuracy"]
    rows = []
    for (pruner, control), g in m[m["control"] != "none"].groupby(["pruner", "control"]):
        key = list(zip(g["pruner"], g["seed"], g["arch"], g["dataset"], g["sparsity"], strict=True))
        diff = 100 * (g["accuracy"].to_numpy() - base.reindex(key).to_numpy())
        mean, lo, hi, n = mean_ci(diff, -100, 100, ("mask", pruner, control))
        rows.append({"pruner": pruner, "control": control, "diff": mean, "lo": lo, "hi": hi, "n": n})
    if not rows:
        return None
    theme()
    df = pd.DataFrame(rows)
    pruners = sorted(df["pruner"].unique())
    controls = sorted(df["control"].unique())
    fig, ax = plt.subplots(figsize=(8.0, 0.9 + 0.55 * len(pruners)), dpi=DPI)
    offsets = np.linspace(-0.25, 0.25, len(controls))
    for off, control in zip(offsets, controls, strict=True):
        d = df[df["control"] == control].set_index("pruner").reindex(pruners)
        y = np.arange(len(pruners)) + off
        ax.errorbar(
            d["diff"],
            y,
            xerr=[d["diff"] - d["lo"], d["hi"] - d["diff"]],
            fmt="o",
            capsize=2,
            color=CONTROL_COLOURS.get(control),
            label=control,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(pruners)), pruners)
    ax.set_xlabel("accuracy with the control minus the unaltered mask (points)")
    legend_outside(ax, "control")
    fig.tight_layout()
    return Figure(
        "mask_sanity",
        "Mask sanity controls",
        "Frankle et al. (ICLR 2021): each pruner's mask shuffled within layers, its weights re-initialised, "
        "its scores inverted; mean difference over seeds with a 95% bootstrap interval. Near 0 under shuffling: "  # noqa: E501
        "the mask carries no more than its layer-wise densities.",
        fig,
        "claims",
    )


ANALYSIS = Analysis(
    "mask_sanity",
    tests=TESTS,
    analyze=analyze,
    title="Mask sanity controls (Frankle et al. 2021)",
    figure=figure,
    figure_name="mask_sanity",
    report_filters=report_filters,
    report_frame=report_frame,
)
