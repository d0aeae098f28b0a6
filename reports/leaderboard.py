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

from reports.data import ReportData, collapsed, mean_ci

COLLAPSED_TEXT = "collapsed"


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


def _ci_cell(values, fmt, scale, low, high, key, mark="") -> dict:
    m, lo, hi, n = mean_ci(values, low, high, key)
    cell = number(m, fmt, scale, (lo, hi), mark)
    cell["title"] = f"mean over {n} seeds, 95% percentile-bootstrap interval"
    cell["bounds"] = [None if low is None else low * scale, None if high is None else high * scale]
    return cell


def _flops(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v / 1e12:.2f}"


def _epochs_text(g: pd.DataFrame) -> str:
    parts = []
    for col in ("epochs_dense", "epochs_prune", "epochs_retrain"):
        lo, hi = g[col].min(), g[col].max()
        parts.append(f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}")
    return " + ".join(parts)


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


def _entry_name(e: tuple) -> str:
    pruner, retrain = e
    return pruner if retrain in ("finetune", None) else f"{pruner} ({retrain})"


def _entry_meta(data: ReportData, e: tuple) -> pd.DataFrame:
    c = data.cells
    return c[(c["pruner"] == e[0]) & (c["retrain"] == e[1])]


def _plugin(g: pd.DataFrame) -> str:
    p = g["plugin"].dropna()
    return f"{p.iloc[0]}=={g['plugin_version'].dropna().iloc[0]}" if len(p) else ""


def overall_table(data: ReportData, mask_column: dict[str, str]) -> tuple[Table, Grid]:
    grid = grid_of(data)
    wr = win_rates(grid)
    ref = (
        0.9
        if any(math.isclose(s, 0.9) for s in data.grid)
        else (data.grid[len(data.grid) // 2] if data.grid else None)
    )
    cols = [
        Column(
            "pruner", "Pruner", "text", tooltip="registered pruner (and retraining recipe when not finetune)"
        ),
        Column("family", "Family", "text", tooltip="when it prunes and what it removes"),
        Column("source", "Source", "text", tooltip="built-in, or the plugin distribution and version"),
        Column("win_rate", "Mean win rate", direction="higher", tooltip=win_rate_definition(grid)),
        *[
            Column(
                f"drop_{s:g}",
                f"Drop @ {s:g} (points)",
                direction="lower",
                tooltip=f"dense minus pruned-and-retrained test accuracy at sparsity {s:g}, percentage points: mean over every (arch, dataset, seed) cell that did not collapse [95% bootstrap]",  # noqa: E501
            )
            for s in data.grid
        ],
        Column(
            "corruption",
            f"Corruption acc @ {ref:g} (%)" if ref else "Corruption acc",
            direction="higher",
            tooltip="test accuracy on the corrupted sets, mean over types and severities 1-5",
        ),
        Column(
            "ood",
            f"OOD AUROC @ {ref:g} (%)" if ref else "OOD AUROC",
            direction="higher",
            tooltip="max-softmax AUROC separating the test set from the OOD sets, mean over sets",
        ),
        Column(
            "ece",
            f"ECE @ {ref:g} (%)" if ref else "ECE",
            direction="lower",
            tooltip="expected calibration error (15 bins) on the clean test set",
        ),
        Column(
            "flops",
            f"FLOPs reduction @ {ref:g} (x)" if ref else "FLOPs reduction",
            direction="higher",
            tooltip="dense / effective (mask-aware) forward FLOPs",
        ),
        Column(
            "epochs",
            "Epochs: dense + prune + retrain",
            "text",
            tooltip="training epochs charged to each cell: the dense parent, the pruning procedure (rounds, from-scratch training), the retraining (range over the grid)",  # noqa: E501
        ),
        Column(
            "train_flops",
            "Training TFLOPs / cell",
            direction="lower",
            tooltip="forward+backward FLOPs of all training a cell cost (3 x mask-aware forward FLOPs per example), mean over the grid's cells",  # noqa: E501
        ),
        Column(
            "mask",
            "Mask sanity",
            "text",
            tooltip="mask > densities: shuffling its mask within each layer costs accuracy (the mask carries more than its layer-wise densities); = densities: shuffling is equivalent (TOST); from the mask-sanity study",  # noqa: E501
        ),
        Column(
            "collapsed",
            "Collapsed columns",
            "text",
            tooltip="grid columns (arch, dataset, sparsity) where this entry's models are within 10 points of chance",  # noqa: E501
        ),
    ]
    table = Table(
        "overall",
        "Leaderboard (common grid)",
        cols,
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
        key=lambda e: (-(wr.get(e, 0) if math.isfinite(wr.get(e, np.nan)) else -1), _entry_name(e)),
    )
    for e in order:
        table.add(_overall_row(data, grid, e, wr.get(e, np.nan), ref, mask_column))
    return table, grid


def win_rate_definition(grid: Grid) -> str:
    return (
        "HELM mean win rate: per ranked column (arch, dataset, sparsity), the share of the other ranked "
        "entries this entry beats on mean test accuracy over seeds (ties 1/2; a collapsed model loses to "
        "every model that did not collapse and ties with the others), averaged over the columns"
    )


def _overall_row(data, grid, e, wr, ref, mask_column) -> list[dict]:
    g = _entry_meta(data, e)
    g_grid = g[g["sparsity"].round(6).isin([round(s, 6) for s in data.grid])]
    row = [
        text(_entry_name(e)),
        text(g["family"].iloc[0] if len(g) else ""),
        text(_plugin(g) or "built-in"),
        number(wr, ".0f", 100),
    ]
    coll = grid.collapsed.loc[[e]] if e in grid.collapsed.index else pd.DataFrame()
    for s in data.grid:
        at = g_grid[np.isclose(g_grid["sparsity"], s)]
        ok_cols = [c for c in grid.columns if math.isclose(c[2], s) and not (len(coll) and coll.iloc[0][c])]
        keep = (
            at[[(a, d, s) in ok_cols for a, d in zip(at["arch"], at["dataset"], strict=True)]]
            if len(at)
            else at
        )
        row.append(_ci_cell(keep["drop_points"], ".2f", 1.0, -100, 100, ("drop", e, s)))
    at_ref = g[np.isclose(g["sparsity"], ref)] if ref is not None else g.iloc[0:0]
    row.append(_ci_cell(at_ref["corruption_accuracy"], ".1f", 100, 0, 1, ("corr", e)))
    row.append(_ci_cell(at_ref["ood_auroc"], ".1f", 100, 0, 1, ("ood", e)))
    row.append(_ci_cell(at_ref["ece"], ".2f", 100, 0, 1, ("ece", e)))
    row.append(number(at_ref["flops_reduction"].mean() if len(at_ref) else math.nan, ".2f"))
    row.append(text(_epochs_text(g_grid) if len(g_grid) else ""))
    tf = g_grid["train_flops"].mean() if len(g_grid) else math.nan
    row.append({"text": _flops(tf), "sort": f"{tf:.6g}" if math.isfinite(tf) else ""})
    row.append(text(mask_column.get(e[0], "not tested")))
    n_coll = int(coll.iloc[0].sum()) if len(coll) else 0
    row.append(text(f"{n_coll} of {len(grid.columns)}"))
    return row


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
                text(_entry_name(e)),
                text(g["family"].iloc[0]),
                text(f"{n} of {len(grid.columns)}"),
                text(", ".join(f"{s:g}" for s in sorted(g["sparsity"].unique()))),
                text(_epochs_text(g)),
                text(_plugin(g)),
            ]
        )
    return table


def scenario_table(data: ReportData, arch: str, dataset: str, grid: Grid, mask_column: dict) -> Table:
    c = data.cells[(data.cells["arch"] == arch) & (data.cells["dataset"] == dataset)]
    sparsities = sorted(c["sparsity"].unique())
    classes = data.cells.attrs.get("classes", {}).get(dataset, 10)
    dense = c.groupby("parent_id")["dense_accuracy"].first()
    ref = 0.9 if any(math.isclose(s, 0.9) for s in sparsities) else sparsities[-1]
    cols = [
        Column("pruner", "Pruner", "text"),
        Column("family", "Family", "text"),
        *[
            Column(
                f"acc_{s:g}",
                f"Acc @ {s:g} (%)",
                direction="higher",
                tooltip=f"test accuracy after pruning to {s:g} and retraining: mean over seeds [95% bootstrap]; collapsed: within 10 points of chance",  # noqa: E501
            )
            for s in sparsities
        ],
        Column("corruption", f"Corruption acc @ {ref:g} (%)", direction="higher"),
        Column("ood", f"OOD AUROC @ {ref:g} (%)", direction="higher"),
        Column("ece", f"ECE @ {ref:g} (%)", direction="lower"),
        Column("epochs", "Epochs: dense + prune + retrain", "text"),
        Column("train_flops", "Training TFLOPs / cell", direction="lower"),
        Column("mask", "Mask sanity", "text"),
        Column("status", "Ranking", "text", tooltip="ranked: on every grid column; apart: fewer columns"),
    ]
    dm, dlo, dhi, dn = mean_ci(dense, 0, 1, ("dense", arch, dataset))
    table = Table(
        f"s-{arch}-{dataset}",
        f"{arch} on {dataset}",
        cols,
        intro=f"Dense parents: {100 * dm:.1f}% test accuracy [{100 * dlo:.1f}, {100 * dhi:.1f}] over {dn} seeds; chance {100 / classes:.0f}%.",  # noqa: E501
    )
    entries = sorted(set(zip(c["pruner"], c["retrain"], strict=True)), key=_entry_name)
    for e in entries:
        g = c[(c["pruner"] == e[0]) & (c["retrain"] == e[1])]
        row = [text(_entry_name(e)), text(g["family"].iloc[0])]
        for s in sparsities:
            at = g[np.isclose(g["sparsity"], s)]
            is_coll = len(at) and collapsed(at["accuracy"].mean(), classes)
            cell = _ci_cell(
                at["accuracy"],
                ".1f",
                100,
                0,
                1,
                ("acc", arch, dataset, e, s),
                COLLAPSED_TEXT if is_coll else "",
            )
            row.append(cell)
        at_ref = g[np.isclose(g["sparsity"], ref)]
        row.append(_ci_cell(at_ref["corruption_accuracy"], ".1f", 100, 0, 1, ("corr", arch, dataset, e)))
        row.append(_ci_cell(at_ref["ood_auroc"], ".1f", 100, 0, 1, ("ood", arch, dataset, e)))
        row.append(_ci_cell(at_ref["ece"], ".2f", 100, 0, 1, ("ece", arch, dataset, e)))
        row.append(text(_epochs_text(g)))
        tf = g["train_flops"].mean()
        row.append({"text": _flops(tf), "sort": f"{tf:.6g}" if math.isfinite(tf) else ""})
        row.append(text(mask_column.get(e[0], "not tested")))
        row.append(text("ranked" if e in grid.ranked else "apart"))
        table.add(row, "apart" if e not in grid.ranked else "")
    return table


def budget_table(data: ReportData, grid: Grid) -> Table:
    """At each grid sparsity, entries grouped by equal total training epochs per cell."""
    cols = [
        Column("sparsity", "Sparsity", "number"),
        Column("epochs", "Total epochs / cell", "number"),
        Column("pruner", "Pruner", "text"),
        Column(
            "drop",
            "Drop (points)",
            direction="lower",
            tooltip="dense minus retrained test accuracy, mean over (arch, dataset, seed) cells [95% bootstrap]",  # noqa: E501
        ),
        Column("tflops", "Training TFLOPs / cell", direction="lower"),
        Column("rank", "Rank in budget group", "number", direction="lower"),
        Column("group", "Group size", "number"),
    ]
    table = Table(
        "budget",
        "Budget-matched view: pruners at equal total training epochs",
        cols,
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
                    (e, *mean_ci(ge["drop_points"], -100, 100, ("budget", e, s)), ge["train_flops"].mean())
                )
            stats.sort(key=lambda t: t[1])
            for rank, (e, m, lo, hi, _n, tf) in enumerate(stats, 1):
                table.add(
                    [
                        number(s, "g"),
                        number(epochs, "g"),
                        text(_entry_name(e)),
                        number(m, ".2f", 1.0, (lo, hi)) | {"bounds": [-100, 100]},
                        {"text": _flops(tf), "sort": f"{tf:.6g}"},
                        {"text": str(rank), "sort": str(rank)},
                        {"text": str(len(stats)), "sort": str(len(stats))},
                    ]
                )
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
                    _epochs_text(gm[(gm["arch"] == r["arch"]) & (gm["dataset"] == r["dataset"])])
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
