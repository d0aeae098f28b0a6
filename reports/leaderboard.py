"""The leaderboard: one grid, the budget beside accuracy, collapsed models marked and never ranked.

- **One grid** (Blalock et al. 2020, ShrinkBench: compare at the same sparsities, budgets and
  baselines). A *column* is ``(arch, dataset, sparsity)`` at a grid sparsity. An entry
  ``(pruner, retrain)`` is ranked only when it has every column of the grid; one measured on
  fewer columns is shown apart, unranked.
- **Collapsed** (``analysis.regime``): an entry's column whose mean test accuracy is within
  ``COLLAPSE_MARGIN`` of chance. It is marked wherever shown, never compared by accuracy: it loses
  to every entry that did not collapse there and ties with the others that did. A column where
  most ranked entries collapsed is left out of the ranking (and named).
- **Mean win rate** (HELM, Liang et al. 2022): per column, the share of the other ranked entries
  an entry beats on mean test accuracy over seeds (ties one half), averaged over the columns.
- **Budget**: training epochs per cell (dense parent + pruning procedure + retraining) and
  training FLOPs (3 x mask-aware forward FLOPs per example seen, ``benchmarks.budget``). The
  budget-matched view ranks, at each grid sparsity, only entries with equal total epochs.

Every mean and interval is ``reports.data.mean_ci`` (percentile bootstrap over seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports import columns as K
from reports.columns import COLLAPSED_TEXT, LeaderboardColumn, entry_name, epochs_text, number, text
from reports.data import ReportData, collapsed, mean_ci


@dataclass
class Column:
    id: str
    header: str
    kind: str = "number"  # number | text
    direction: str = "neutral"  # higher | lower | neutral
    tooltip: str = ""


@dataclass
class Table:
    anchor: str
    title: str
    columns: list[Column]
    rows: list[list[dict]] = field(default_factory=list)
    row_marks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    intro: str = ""

    def add(self, cells: list[dict], mark: str = "") -> None:
        self.rows.append(cells)
        self.row_marks.append(mark)


@dataclass
class Grid:
    """Per entry and column: mean accuracy over seeds, and whether the models collapsed."""

    columns: list[tuple]  # (arch, dataset, sparsity)
    means: pd.DataFrame  # entry x column: mean test accuracy
    collapsed: pd.DataFrame  # entry x column: bool
    ranked: list[tuple]  # entries on every column
    apart: list[tuple]
    ranking_columns: list[tuple]
    dropped_columns: list[tuple]


def grid_of(data: ReportData) -> Grid:
    cells = data.cells[data.cells["sparsity"].round(6).isin([round(s, 6) for s in data.grid])]
    if cells.empty:
        empty = pd.DataFrame()
        return Grid([], empty, empty, [], [], [], [])
    keys = ["arch", "dataset", "sparsity"]
    means = cells.groupby([*["pruner", "retrain"], *keys])["accuracy"].mean().unstack(keys)
    columns = sorted(means.columns)
    means = means.reindex(columns=columns)
    classes = data.cells.attrs.get("classes", {})
    coll = pd.DataFrame(
        {c: [collapsed(v, classes.get(c[1], 10)) for v in means[c]] for c in columns}, index=means.index
    )
    full = means.notna().all(axis=1)
    ranked = [e for e in means.index if full[e]]
    apart = [e for e in means.index if not full[e]]
    if ranked:
        share = coll.loc[ranked].mean(axis=0)
        dropped = [c for c in columns if share[c] > 0.5]
    else:
        dropped = []
    return Grid(columns, means, coll, ranked, apart, [c for c in columns if c not in dropped], dropped)


def win_rates(grid: Grid) -> pd.Series:
    """HELM mean win rate of each ranked entry over the ranking columns (collapsed loses)."""
    if len(grid.ranked) < 2 or not grid.ranking_columns:
        return pd.Series(np.nan, index=pd.Index(grid.ranked, tupleize_cols=False), dtype=float)
    out = {}
    for e in grid.ranked:
        shares = []
        for c in grid.ranking_columns:
            mine, me_c = grid.means.at[e, c], grid.collapsed.at[e, c]
            score = 0.0
            others = [o for o in grid.ranked if o != e]
            for o in others:
                theirs, o_c = grid.means.at[o, c], grid.collapsed.at[o, c]
                if me_c and o_c:
                    score += 0.5
                elif me_c:
                    score += 0.0
                elif o_c:
                    score += 1.0
                else:
                    score += 1.0 if mine > theirs else 0.5 if mine == theirs else 0.0
            shares.append(score / len(others))
        out[e] = float(np.mean(shares))
    return pd.Series(out)


def _entry_meta(data: ReportData, e: tuple) -> pd.DataFrame:
    c = data.cells
    return c[(c["pruner"] == e[0]) & (c["retrain"] == e[1])]


def _reference(sparsities) -> float | None:
    """The sparsity the single-point columns are shown at: 0.9 when measured, else the middle one."""
    if any(math.isclose(s, 0.9) for s in sparsities):
        return 0.9
    return sparsities[len(sparsities) // 2] if sparsities else None


def _columns(
    spec: tuple[LeaderboardColumn, ...], ref, sparsities
) -> list[tuple[LeaderboardColumn, float | None]]:
    """The table's columns with their sparsity: a per-sparsity column once per sparsity."""
    out = []
    for col in spec:
        for s in sparsities if col.per_sparsity else (None,):
            out.append((col.at(ref, s), s))
    return out


def _header(cols) -> list[Column]:
    return [Column(c.id, c.header, c.kind, c.direction, c.tooltip) for c, _ in cols]


def overall_table(data: ReportData, mask_column: dict[str, str]) -> tuple[Table, Grid]:
    """The leaderboard: the ranked entries in order of mean win rate, one cell per column of
    ``reports.columns.OVERALL``."""
    grid = grid_of(data)
    wr = win_rates(grid)
    ref = _reference(data.grid)
    cols = _columns(K.OVERALL, ref, data.grid)
    table = Table(
        "overall",
        "Leaderboard (common grid)",
        _header(cols),
        intro=(
            f"Ranked on {len(grid.ranking_columns)} columns (arch x dataset x sparsity in "
            f"{', '.join(f'{s:g}' for s in data.grid)}); every ranked entry has every column."
        ),
    )
    if grid.dropped_columns:
        table.notes.append(
            "left out of the ranking (most entries collapsed): "
            + ", ".join(f"{a}/{d}@{s:g}" for a, d, s in grid.dropped_columns)
        )
    order = sorted(
        grid.ranked,
        key=lambda e: (-(wr.get(e, 0) if math.isfinite(wr.get(e, np.nan)) else -1), entry_name(e)),
    )
    grid_sparsities = [round(s, 6) for s in data.grid]
    for e in order:
        g = _entry_meta(data, e)
        row = K.Row(
            e,
            g,
            g[g["sparsity"].round(6).isin(grid_sparsities)],
            ref,
            (),
            grid,
            mask_column,
            wr.get(e, np.nan),
        )
        table.add([c.cell(row, s) for c, s in cols])
    return table, grid


def win_rate_definition(grid: Grid | None = None) -> str:
    return K.WIN_RATE


def apart_table(data: ReportData, grid: Grid) -> Table | None:
    if not grid.apart:
        return None
    table = Table(
        "apart",
        "Shown apart: entries measured on fewer columns (not ranked)",
        [
            Column("pruner", "Pruner", "text"),
            Column("family", "Family", "text"),
            Column("columns", "Grid columns measured", "text"),
            Column("sparsities", "Sparsities", "text"),
            Column("epochs", "Epochs: dense + prune + retrain", "text"),
            Column("plugin", "Plugin", "text"),
        ],
        intro="These entries lack columns that the ranked entries have; their numbers are in the per-scenario tables.",  # noqa: E501
    )
    for e in grid.apart:
        g = _entry_meta(data, e)
        n = int(grid.means.loc[e].notna().sum()) if e in grid.means.index else 0
        table.add(
            [
                text(entry_name(e)),
                text(g["family"].iloc[0]),
                text(f"{n} of {len(grid.columns)}"),
                text(", ".join(f"{s:g}" for s in sorted(g["sparsity"].unique()))),
                text(epochs_text(g)),
                text(K.plugin_text(g)),
            ]
        )
    return table


def scenario_table(data: ReportData, arch: str, dataset: str, grid: Grid, mask_column: dict) -> Table:
    """One (arch, dataset): every entry at each sparsity it was run at (``reports.columns.SCENARIO``)."""
    c = data.cells[(data.cells["arch"] == arch) & (data.cells["dataset"] == dataset)]
    sparsities = sorted(c["sparsity"].unique())
    classes = data.cells.attrs.get("classes", {}).get(dataset, 10)
    dense = c.groupby("parent_id")["dense_accuracy"].first()
    ref = 0.9 if any(math.isclose(s, 0.9) for s in sparsities) else sparsities[-1]
    cols = _columns(K.SCENARIO, ref, sparsities)
    dm, dlo, dhi, dn = mean_ci(dense, 0, 1, ("dense", arch, dataset))
    table = Table(
        f"s-{arch}-{dataset}",
        f"{arch} on {dataset}",
        _header(cols),
        intro=f"Dense parents: {100 * dm:.1f}% test accuracy [{100 * dlo:.1f}, {100 * dhi:.1f}] over {dn} seeds; chance {100 / classes:.0f}%.",  # noqa: E501
    )
    entries = sorted(set(zip(c["pruner"], c["retrain"], strict=True)), key=entry_name)
    for e in entries:
        g = c[(c["pruner"] == e[0]) & (c["retrain"] == e[1])]
        row = K.Row(e, g, g, ref, (arch, dataset), grid, mask_column, classes=classes)
        table.add([col.cell(row, s) for col, s in cols], "apart" if e not in grid.ranked else "")
    return table


def budget_table(data: ReportData, grid: Grid) -> Table:
    """At each grid sparsity, entries grouped by equal total training epochs per cell
    (``reports.columns.BUDGET``), ranked by drop within their group."""
    cols = [(c, None) for c in K.BUDGET]
    table = Table(
        "budget",
        "Budget-matched view: pruners at equal total training epochs",
        _header(cols),
        intro=(
            "Within each group every entry trained for the same total number of epochs (dense parent + "
            "pruning procedure + retraining); ranks compare like with like. Collapsed columns are left out."
        ),
    )
    c = data.cells[data.cells["pruner"].isin([e[0] for e in grid.ranked])]
    for s in data.grid:
        at = c[np.isclose(c["sparsity"], s)]
        keep = [
            not (
                (p, r) in grid.collapsed.index
                and (a, d, s) in grid.collapsed.columns
                and grid.collapsed.at[(p, r), (a, d, s)]
            )
            for p, r, a, d in zip(at["pruner"], at["retrain"], at["arch"], at["dataset"], strict=True)
        ]
        at = at[np.asarray(keep, dtype=bool)]  # a boolean mask, also when empty (a grid point not stored)
        for epochs, g in sorted(at.groupby("epochs_total"), key=lambda kv: kv[0]):
            stats = []
            for e, ge in g.groupby(["pruner", "retrain"]):
                stats.append(
                    (e, mean_ci(ge["drop_points"], -100, 100, ("budget", e, s)), ge["train_flops"].mean())
                )
            stats.sort(key=lambda t: t[1][0])
            for rank, (e, drop, tf) in enumerate(stats, 1):
                row = K.BudgetRow(s, epochs, e, drop, tf, rank, len(stats))
                table.add([col.cell(row, None) for col, _ in cols])
    return table


def sanity_table(data: ReportData) -> Table | None:
    s = data.sanity
    if s is None or s.empty or "dense" not in s:
        return None
    table = Table(
        "sanity",
        "Sanity check: the standard recovery",
        [
            Column("arch", "Arch", "text"),
            Column("dataset", "Dataset", "text"),
            Column("dense", "Dense (%)"),
            Column("gm", "global_magnitude @ 0.9 (%)"),
            Column("drop", "Drop (points)", direction="lower"),
            Column("ok", "Within 1.5 points", "text"),
            Column("seeds", "Seeds"),
            Column("epochs", "Epochs: dense + prune + retrain", "text"),
        ],
        intro="global_magnitude at sparsity 0.9, after its retraining, against its dense parents (mean over seeds).",  # noqa: E501
    )
    c = data.cells
    gm = c[(c["pruner"] == "global_magnitude") & np.isclose(c["sparsity"], 0.9)]
    for r in s.to_dict("records"):
        table.add(
            [
                text(r["arch"]),
                text(r["dataset"]),
                number(r["dense"], ".1f", 100),
                number(r["global_magnitude_0.9"], ".1f", 100),
                number(r["drop_points"], "+.2f"),
                text("yes" if r["recovers"] else "NO"),
                {"text": str(r["seeds"]), "sort": str(r["seeds"])},
                text(
                    epochs_text(gm[(gm["arch"] == r["arch"]) & (gm["dataset"] == r["dataset"])])
                    if len(gm)
                    else ""
                ),
            ]
        )
    return table


def outside_table(entries: list[dict]) -> Table | None:
    """Verified outside entries (``harness verify --accept-into``), marked with their verification."""
    if not entries:
        return None
    table = Table(
        "outside",
        "Verified outside entries",
        [
            Column("bundle", "Bundle", "text"),
            Column("pruner", "Pruner", "text"),
            Column("plugin", "Plugin", "text"),
            Column("cells", "Cells", "number"),
            Column("rerun", "Cells re-run", "number", tooltip="cells of this entry re-run by harness verify"),
            Column("epochs", "Epochs: dense + prune + retrain", "text"),
            Column("verified", "Verification", "text"),
            Column("acc", "Mean test acc (%)", direction="higher"),
        ],
        intro="Submitted bundles accepted by `harness verify`: every cell checked against its spec (every column shown is derived from it), and a random sample of the cells re-run here agreed with the reported numbers.",  # noqa: E501
    )
    for e in entries:
        table.add(
            [
                text(e["bundle"]),
                text(e["pruner"]),
                text(e["plugin"]),
                {"text": str(e["cells"]), "sort": str(e["cells"])},
                {"text": str(e.get("cells_rerun", "")), "sort": str(e.get("cells_rerun", ""))},
                text(e["epochs"]),
                text(e["verification"]),
                number(e["accuracy"], ".1f", 100),
            ]
        )
    return table


__all__ = [
    "COLLAPSED_TEXT",
    "Column",
    "Grid",
    "Table",
    "apart_table",
    "budget_table",
    "grid_of",
    "mask_column_of",
    "outside_table",
    "overall_table",
    "sanity_table",
    "scenario_table",
    "win_rates",
]


def mask_column_of(data: ReportData) -> dict[str, str]:
    """The "mask sanity" column per pruner, from the mask-sanity study's rows of the claims table."""
    from analysis.mask_sanity import mask_column
    from analysis.verdict import Row

    t = data.claims
    if t is None or t.empty or "claim" not in t:
        return {}
    fields = Row.__dataclass_fields__
    return mask_column([Row(**{k: v for k, v in r.items() if k in fields}) for r in t.to_dict("records")])
