"""The leaderboard's columns as data (HELM keeps its display schema as data: ``schema.py`` + YAML).

A *quantity* is one number per cell read from the store: a declared metric (``core.metrics``) of
one phase, on one evaluation set or averaged over every set of a kind. ``QUANTITIES`` is what the
report reads: its metric filters (``reports.data``) and the per-cell frame come from the list.

A *column* names what it shows and how: its header (``{ref}`` is the reference sparsity of the
table, ``{s}`` the sparsity of a per-sparsity column), its quantity, format and scale, the key that
seeds its bootstrap interval, its tooltip; its direction (the sort order, ``sort.js``) and the
bounds of its intervals come from the metric's declaration. ``OVERALL``, ``SCENARIO`` and
``BUDGET`` list the columns of the leaderboard, of each (arch, dataset) table and of the
budget-matched view; a table's header, its rows, its embedded data and its notebook frame all come
from its list. Adding a column is one entry, e.g. the clean test NLL at the reference sparsity::

    metric_column("nll", "NLL @ {ref} (nats)", Quantity("nll", "nll", "retrained", "test"), ".3f")
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from analysis.display import mean_ci
from analysis.regime import COLLAPSE_MARGIN
from core.metrics import declared
from core.store import MetricFilter


@dataclass(frozen=True)
class Quantity:
    """One number per cell: ``metric`` of ``phase`` on ``eval_set``, or, with ``kind``, averaged
    over every set of that kind (the mean over sets of each set's mean over severities)."""

    name: str  # the column of the report's cell frame
    metric: str
    phase: str
    eval_set: str | None = None
    kind: str | None = None

    def filter(self) -> MetricFilter:
        where = {"eval_sets": [self.eval_set]} if self.eval_set else {"kinds": [self.kind]}
        return MetricFilter(phases=[self.phase], metrics=[self.metric], per_class=False, **where)

    def values(self, metrics: pd.DataFrame) -> pd.Series:
        """``cell_id -> value`` from a frame of metric rows."""
        m = (metrics["phase"] == self.phase) & (metrics["metric"] == self.metric)
        if self.eval_set is not None:
            return metrics[m & (metrics["eval_set"] == self.eval_set)].groupby("cell_id")["value"].mean()
        rows = metrics[m & (metrics["kind"] == self.kind)]
        if self.kind == "corruption":  # each corruption type weighs the same, whatever its severities
            return rows.groupby(["cell_id", "eval_set"])["value"].mean().groupby("cell_id").mean()
        return rows.groupby("cell_id")["value"].mean()


QUANTITIES = (
    Quantity("accuracy", "accuracy", "retrained", "test"),
    Quantity("dense_accuracy", "accuracy", "dense", "test"),
    Quantity("ece", "ece", "retrained", "test"),
    Quantity("flops_dense", "flops_dense", "retrained", "model"),
    Quantity("flops_effective", "flops_effective", "retrained", "model"),
    Quantity("achieved_sparsity", "achieved_sparsity", "retrained", "model"),
    Quantity("corruption_accuracy", "accuracy", "retrained", kind="corruption"),
    Quantity("dense_corruption_accuracy", "accuracy", "dense", kind="corruption"),
    Quantity("ood_auroc", "auroc_msp", "retrained", kind="ood"),
)


def quantity(name: str) -> Quantity:
    return next(q for q in QUANTITIES if q.name == name)


def collapsed(accuracy_mean: float, classes: int = 10) -> bool:
    """The regime rule of ``analysis.regime``: mean accuracy within the margin of chance."""
    return bool(math.isfinite(accuracy_mean) and accuracy_mean < 1.0 / classes + COLLAPSE_MARGIN)


# -- cells of a table: what the page shows and sorts by -------------------------------------------


def text(v) -> dict:
    return {"text": "" if v is None else str(v), "sort": "" if v is None else str(v)}


def number(v: float, fmt: str = ".1f", scale: float = 1.0, ci: tuple | None = None, mark: str = "") -> dict:
    if v is None or not math.isfinite(v):
        return {"text": "–", "sort": "", "ci": "", "mark": mark}
    out = {"text": format(v * scale, fmt), "sort": f"{v * scale:.6g}", "ci": "", "mark": mark}
    if ci is not None and all(c is not None and math.isfinite(c) for c in ci):
        out["ci"] = f"[{format(ci[0] * scale, fmt)}, {format(ci[1] * scale, fmt)}]"
        out["ci_low"], out["ci_high"] = ci[0] * scale, ci[1] * scale
    return out


def ci_cell(values, fmt, scale, low, high, key, mark="") -> dict:
    m, lo, hi, n = mean_ci(values, low, high, key)
    cell = number(m, fmt, scale, (lo, hi), mark)
    cell["title"] = f"mean over {n} seeds, 95% percentile-bootstrap interval"
    cell["bounds"] = [None if low is None else low * scale, None if high is None else high * scale]
    return cell


def flops_text(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v / 1e12:.2f}"


def tflops_cell(v: float) -> dict:
    return {"text": flops_text(v), "sort": f"{v:.6g}" if math.isfinite(v) else ""}


def epochs_text(g: pd.DataFrame) -> str:
    parts = []
    for col in ("epochs_dense", "epochs_prune", "epochs_retrain"):
        lo, hi = g[col].min(), g[col].max()
        parts.append(f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}")
    return " + ".join(parts)


def entry_name(e: tuple) -> str:
    pruner, retrain = e
    return pruner if retrain in ("finetune", None) else f"{pruner} ({retrain})"


def plugin_text(g: pd.DataFrame) -> str:
    p = g["plugin"].dropna()
    return f"{p.iloc[0]}=={g['plugin_version'].dropna().iloc[0]}" if len(p) else ""


@dataclass
class Row:
    """What one row's cells are computed from: an entry ``(pruner, retrain)`` and its cells in the
    table's scope (``scope``: ``()`` for the leaderboard, ``(arch, dataset)`` for a scenario)."""

    entry: tuple
    cells: pd.DataFrame  # the entry's cells in scope
    budget: pd.DataFrame  # the cells its budget columns describe (the grid's, in the leaderboard)
    ref: float | None
    scope: tuple = ()
    grid: Any = None  # reports.leaderboard.Grid
    masks: dict = field(default_factory=dict)
    win_rate: float = math.nan
    classes: int = 10

    @property
    def at_ref(self) -> pd.DataFrame:
        if self.ref is None:
            return self.cells.iloc[0:0]
        return self.cells[np.isclose(self.cells["sparsity"], self.ref)]


@dataclass(frozen=True)
class LeaderboardColumn:
    """One column of a table: ``cell(row, sparsity)`` gives its cell (``sparsity``: the column's own,
    for a per-sparsity column, which is repeated at each sparsity of the table)."""

    id: str
    header: str
    cell: Callable[[Row, float | None], dict]
    kind: str = "number"  # number | text
    direction: str = "neutral"  # higher | lower | neutral: the sort order
    tooltip: str = ""
    per_sparsity: bool = False
    quantity: Quantity | None = None  # the number it shows per cell, read by reports.data

    def at(self, ref: float | None, s: float | None = None) -> LeaderboardColumn:
        """This column with its header and id for one table (``ref``) and sparsity (``s``)."""
        fill = {"ref": f"{ref:g}" if ref is not None else "", "s": f"{s:g}" if s is not None else ""}
        header = self.header if ref is not None or "{ref}" not in self.header else self.header.split(" @ ")[0]
        return replace(
            self, id=self.id.format(**fill), header=header.format(**fill), tooltip=self.tooltip.format(**fill)
        )


def text_column(id: str, header: str, value: Callable[[Row], object], tooltip: str = "") -> LeaderboardColumn:
    return LeaderboardColumn(id, header, lambda row, s: text(value(row)), "text", tooltip=tooltip)


def _bound(v: float) -> float | int | None:
    """A declared bound as the page writes it (``0`` and ``1``, not ``0.0``); None when infinite."""
    return None if not math.isfinite(v) else int(v) if float(v).is_integer() else v


def metric_column(
    id: str,
    header: str,
    q: Quantity,
    fmt: str = ".1f",
    scale: float = 100,
    key: str = "",
    tooltip: str = "",
) -> LeaderboardColumn:
    """A declared metric (``q.metric``) at the table's reference sparsity: the mean over seeds with
    its interval, within the metric's declared range; sorted the way the metric is better.
    ``key`` seeds the interval's bootstrap (default: the column's id)."""
    m = declared(q.metric)
    low, high = _bound(m.low), _bound(m.high)

    def cell(row: Row, s: float | None) -> dict:
        return ci_cell(row.at_ref[q.name], fmt, scale, low, high, (key or id, *row.scope, row.entry))

    return LeaderboardColumn(id, header, cell, direction=m.direction, tooltip=tooltip, quantity=q)


def _drop_at(row: Row, s: float) -> dict:
    """Dense minus retrained accuracy at ``s``, over the columns where the entry did not collapse."""
    grid, e = row.grid, row.entry
    at = row.budget[np.isclose(row.budget["sparsity"], s)]
    coll = grid.collapsed.loc[[e]] if e in grid.collapsed.index else pd.DataFrame()
    ok = [c for c in grid.columns if math.isclose(c[2], s) and not (len(coll) and coll.iloc[0][c])]
    keep = at[[(a, d, s) in ok for a, d in zip(at["arch"], at["dataset"], strict=True)]] if len(at) else at
    return ci_cell(keep["drop_points"], ".2f", 1.0, -100, 100, ("drop", e, s))


COLLAPSED_TEXT = "collapsed"


def _accuracy_at(row: Row, s: float) -> dict:
    at = row.cells[np.isclose(row.cells["sparsity"], s)]
    mark = COLLAPSED_TEXT if len(at) and collapsed(at["accuracy"].mean(), row.classes) else ""
    return ci_cell(at["accuracy"], ".1f", 100, 0, 1, ("acc", *row.scope, row.entry, s), mark)


def _collapsed_columns(row: Row) -> str:
    grid, e = row.grid, row.entry
    coll = grid.collapsed.loc[[e]] if e in grid.collapsed.index else pd.DataFrame()
    return f"{int(coll.iloc[0].sum()) if len(coll) else 0} of {len(grid.columns)}"


ACCURACY = declared("accuracy")
WIN_RATE = (
    "HELM mean win rate: per ranked column (arch, dataset, sparsity), the share of the other ranked "
    "entries this entry beats on mean test accuracy over seeds (ties 1/2; a collapsed model loses to "
    "every model that did not collapse and ties with the others), averaged over the columns"
)
EPOCHS = text_column(
    "epochs",
    "Epochs: dense + prune + retrain",
    lambda row: epochs_text(row.budget) if len(row.budget) else "",
    "training epochs charged to each cell: the dense parent, the pruning procedure (rounds, from-scratch "
    "training), the retraining (range over the grid)",
)
TRAIN_FLOPS = LeaderboardColumn(
    "train_flops",
    "Training TFLOPs / cell",
    lambda row, s: tflops_cell(row.budget["train_flops"].mean() if len(row.budget) else math.nan),
    direction="lower",
    tooltip="forward+backward FLOPs of all training a cell cost (3 x mask-aware forward FLOPs per example), "
    "mean over the grid's cells",
)
MASK = text_column(
    "mask",
    "Mask sanity",
    lambda row: row.masks.get(row.entry[0], "not tested"),
    "mask > densities: shuffling its mask within each layer costs accuracy (the mask carries more than its "
    "layer-wise densities); = densities: shuffling is equivalent (TOST); from the mask-sanity study",
)
CORRUPTION = metric_column(
    "corruption",
    "Corruption acc @ {ref} (%)",
    quantity("corruption_accuracy"),
    key="corr",
    tooltip="test accuracy on the corrupted sets, mean over types and severities 1-5",
)
OOD = metric_column(
    "ood",
    "OOD AUROC @ {ref} (%)",
    quantity("ood_auroc"),
    tooltip="max-softmax AUROC separating the test set from the OOD sets, mean over sets",
)
ECE = metric_column(
    "ece",
    "ECE @ {ref} (%)",
    quantity("ece"),
    ".2f",
    tooltip="expected calibration error (15 bins) on the clean test set",
)

# The leaderboard (common grid), ranked by mean win rate (the order of its rows).
OVERALL = (
    text_column(
        "pruner",
        "Pruner",
        lambda row: entry_name(row.entry),
        "registered pruner (and retraining recipe when not finetune)",
    ),
    text_column(
        "family",
        "Family",
        lambda row: row.cells["family"].iloc[0] if len(row.cells) else "",
        "when it prunes and what it removes",
    ),
    text_column(
        "source",
        "Source",
        lambda row: plugin_text(row.cells) or "built-in",
        "built-in, or the plugin distribution and version",
    ),
    LeaderboardColumn(
        "win_rate",
        "Mean win rate",
        lambda row, s: number(row.win_rate, ".0f", 100),
        direction="higher",
        tooltip=WIN_RATE,
    ),
    LeaderboardColumn(
        "drop_{s}",
        "Drop @ {s} (points)",
        _drop_at,
        direction="lower",
        tooltip="dense minus pruned-and-retrained test accuracy at sparsity {s}, percentage points: mean "
        "over every (arch, dataset, seed) cell that did not collapse [95% bootstrap]",
        per_sparsity=True,
    ),
    CORRUPTION,
    OOD,
    ECE,
    LeaderboardColumn(
        "flops",
        "FLOPs reduction @ {ref} (x)",
        lambda row, s: number(row.at_ref["flops_reduction"].mean() if len(row.at_ref) else math.nan, ".2f"),
        direction="higher",
        tooltip="dense / effective (mask-aware) forward FLOPs",
    ),
    EPOCHS,
    TRAIN_FLOPS,
    MASK,
    text_column(
        "collapsed",
        "Collapsed columns",
        _collapsed_columns,
        "grid columns (arch, dataset, sparsity) where this entry's models are within 10 points of chance",
    ),
)

# One (arch, dataset): every entry, ranked or not, at each sparsity it was run at.
SCENARIO = (
    text_column("pruner", "Pruner", lambda row: entry_name(row.entry)),
    text_column("family", "Family", lambda row: row.cells["family"].iloc[0]),
    LeaderboardColumn(
        "acc_{s}",
        "Acc @ {s} (%)",
        _accuracy_at,
        direction=ACCURACY.direction,
        tooltip="test accuracy after pruning to {s} and retraining: mean over seeds [95% bootstrap]; "
        "collapsed: within 10 points of chance",
        per_sparsity=True,
    ),
    replace(CORRUPTION, tooltip=""),
    replace(OOD, tooltip=""),
    replace(ECE, tooltip=""),
    replace(EPOCHS, tooltip=""),
    replace(TRAIN_FLOPS, tooltip=""),
    replace(MASK, tooltip=""),
    text_column(
        "status",
        "Ranking",
        lambda row: "ranked" if row.entry in row.grid.ranked else "apart",
        "ranked: on every grid column; apart: fewer columns",
    ),
)


@dataclass
class BudgetRow:
    """One entry of one budget group: its sparsity, the group's total epochs, the entry's mean drop
    with its interval, training FLOPs, rank in the group and the group's size."""

    sparsity: float
    epochs: float
    entry: tuple
    drop: tuple  # mean_ci
    tflops: float
    rank: int
    size: int


def _count(v: int) -> dict:
    return {"text": str(v), "sort": str(v)}


# The budget-matched view: at each grid sparsity, entries with equal total epochs, ranked by drop.
BUDGET = (
    LeaderboardColumn("sparsity", "Sparsity", lambda b, s: number(b.sparsity, "g")),
    LeaderboardColumn("epochs", "Total epochs / cell", lambda b, s: number(b.epochs, "g")),
    LeaderboardColumn("pruner", "Pruner", lambda b, s: text(entry_name(b.entry)), "text"),
    LeaderboardColumn(
        "drop",
        "Drop (points)",
        lambda b, s: number(b.drop[0], ".2f", 1.0, b.drop[1:3]) | {"bounds": [-100, 100]},
        direction="lower",
        tooltip="dense minus retrained test accuracy, mean over (arch, dataset, seed) cells [95% bootstrap]",
    ),
    LeaderboardColumn(
        "tflops",
        "Training TFLOPs / cell",
        lambda b, s: {"text": flops_text(b.tflops), "sort": f"{b.tflops:.6g}"},
        direction="lower",
    ),
    LeaderboardColumn("rank", "Rank in budget group", lambda b, s: _count(b.rank), direction="lower"),
    LeaderboardColumn("group", "Group size", lambda b, s: _count(b.size)),
)


def column_quantities() -> list[Quantity]:
    """Every quantity a column of the leaderboard's tables shows (``reports.data`` reads them)."""
    out = []
    for col in (*OVERALL, *SCENARIO, *BUDGET):
        if col.quantity is not None and col.quantity not in out:
            out.append(col.quantity)
    return out
