"""The report's figures, drawn with seaborn on matplotlib from a ``reports.data.ReportData``.

Rules every figure keeps (and ``layout_problems`` checks): pruners are coloured by family (one
seaborn palette per family, a shade and a marker per member), legends sit outside the axes,
facets replace stacked panels, and the figure is drawn at the width the page shows it
(at most ``PAGE_WIDTH_IN`` inches at ``DPI``). A collapsed model (within the regime margin of
chance, ``analysis.regime``) is drawn hollow over a grey band and named in the caption.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.display import DPI, PAGE_WIDTH_IN, Figure, theme
from analysis.regime import COLLAPSE_MARGIN
from analysis.registry import with_figures
from reports.data import ReportData, collapsed

FAMILY_PALETTES = {
    "after training, unstructured": "Blues",
    "after training, structured": "Greens",
    "at init": "Oranges",
    "during training": "Purples",
}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]


def pruner_styles(cells: pd.DataFrame) -> tuple[dict, dict, list[str]]:
    """``(palette, markers, order)``: a shade of its family's palette and a marker per pruner."""
    fam = cells.groupby("pruner")["family"].first()
    palette, markers, order = {}, {}, []
    for f in [*FAMILY_PALETTES, *sorted(set(fam) - set(FAMILY_PALETTES))]:
        members = sorted(fam[fam == f].index)
        if not members:
            continue
        shades = sns.color_palette(FAMILY_PALETTES.get(f, "Greys"), len(members) + 2)[2:]
        for i, p in enumerate(members):
            palette[p], markers[p] = shades[i], MARKERS[i % len(MARKERS)]
            order.append(p)
    return palette, markers, order


def accuracy_sparsity(data: ReportData) -> Figure | None:
    """Test accuracy after pruning and retraining against sparsity, one facet per (arch, dataset)."""
    c = data.cells
    if c.empty:
        return None
    theme()
    palette, markers, order = pruner_styles(c)
    mean = c.groupby(["arch", "dataset", "pruner", "sparsity"], as_index=False)["accuracy"].mean()
    mean["accuracy"] *= 100
    g = sns.relplot(
        data=mean,
        x="sparsity",
        y="accuracy",
        hue="pruner",
        style="pruner",
        hue_order=order,
        style_order=order,
        palette=palette,
        markers=markers,
        dashes=False,
        row="arch",
        col="dataset",
        kind="line",
        height=2.6,
        aspect=1.35,
        facet_kws={"sharey": False, "margin_titles": True},
    )
    classes = c.attrs.get("classes", {})
    for (arch, dataset), ax in g.axes_dict.items():
        floor = 100 * (1 / classes.get(dataset, 10) + COLLAPSE_MARGIN)
        ax.axhspan(0, floor, color="0.85", zorder=0)
        dense = (
            c[(c["arch"] == arch) & (c["dataset"] == dataset)].groupby("parent_id")["dense_accuracy"].first()
        )
        if len(dense):
            ax.axhline(100 * dense.mean(), color="black", lw=1, ls="--", zorder=1)
        ax.set_ylim(bottom=max(0, floor - 10))
        ax.set_xticks(sorted(c["sparsity"].unique()))
    g.set_axis_labels("sparsity", "test accuracy (%)")
    g.set_titles(row_template="{row_name}", col_template="{col_name}")
    sns.move_legend(
        g, "upper left", bbox_to_anchor=(1.0, 0.98), frameon=False, ncol=1, title="pruner (by family)"
    )
    g.figure.tight_layout()
    return Figure(
        "accuracy_sparsity",
        "Accuracy against sparsity",
        "Mean test accuracy over seeds after pruning and retraining; dashed: the dense parents; grey band: "
        "collapsed (within 10 points of chance). Colours: blue after training (unstructured), green "
        "structured, orange at init, purple during training.",
        g.figure,
    )


def corruption_heatmap(data: ReportData, sparsity: float = 0.9) -> list[Figure]:
    """Per dataset: pruner x corruption type, mean drop in accuracy from dense (points)."""
    cor = data.corruption
    if cor.empty or "dense" not in cor:
        return []
    at = cor[np.isclose(cor["sparsity"], sparsity)]
    out = []
    theme()
    classes = data.cells.attrs.get("classes", {})
    for dataset, g in at.groupby("dataset"):
        drop = 100 * (g["dense"] - g["retrained"])
        table = g.assign(drop=drop).groupby(["pruner", "corruption"])["drop"].mean().unstack("corruption")
        acc = data.cells[(data.cells["dataset"] == dataset) & np.isclose(data.cells["sparsity"], sparsity)]
        k = classes.get(dataset, 10)
        coll = acc.groupby("pruner")["accuracy"].mean().map(lambda a, k=k: collapsed(a, k))
        table.index = [f"{p} (collapsed)" if coll.get(p, False) else p for p in table.index]
        width = min(PAGE_WIDTH_IN, 2.5 + 0.42 * table.shape[1])
        fig, ax = plt.subplots(figsize=(width, 1.2 + 0.28 * table.shape[0]), dpi=DPI)
        lim = float(np.nanmax(np.abs(table.to_numpy()))) if table.size else 1.0
        sns.heatmap(
            table,
            ax=ax,
            cmap="RdBu_r",
            center=0,
            vmin=-lim,
            vmax=lim,
            annot=table.shape[1] <= 20,
            fmt=".0f",
            annot_kws={"fontsize": 7},
            cbar_kws={"label": "accuracy drop from dense (points)", "shrink": 0.8},
            linewidths=0.3,
        )
        ax.set_xlabel("corruption (severities 1-5 averaged)")
        ax.set_ylabel("")
        ax.set_title(f"{dataset}: accuracy drop under corruption at sparsity {sparsity:g}", fontsize=10)
        fig.tight_layout()
        out.append(
            Figure(
                f"corruption_{dataset}",
                f"Corruption damage on {dataset}",
                f"Per pruner and corruption type: dense minus pruned accuracy on the corrupted test set at "
                f"sparsity {sparsity:g} (points; mean over archs, seeds, severities). Red: the pruned model "
                "loses more than on average; rows marked collapsed are within 10 points of chance.",
                fig,
                "robustness",
            )
        )
    return out


def budget_scatter(data: ReportData, sparsity: float = 0.9) -> Figure | None:
    """Accuracy drop against the training FLOPs each cell cost, at one grid sparsity."""
    c = data.cells[np.isclose(data.cells["sparsity"], sparsity)]
    if c.empty:
        return None
    theme()
    palette, markers, order = pruner_styles(data.cells)
    agg = c.groupby(["dataset", "pruner"], as_index=False).agg(
        drop=("drop_points", "mean"), tflops=("train_flops", "mean"), epochs=("epochs_total", "mean")
    )
    agg["tflops"] /= 1e12
    g = sns.relplot(
        data=agg,
        x="tflops",
        y="drop",
        hue="pruner",
        style="pruner",
        hue_order=[p for p in order if p in set(agg["pruner"])],
        style_order=[p for p in order if p in set(agg["pruner"])],
        palette=palette,
        markers=markers,
        col="dataset",
        s=60,
        height=3.0,
        aspect=1.2,
        facet_kws={"sharey": False},
    )
    for ax in g.axes.flat:
        ax.set_xscale("log")
        ax.axhline(0, color="black", lw=0.8)
    g.set_axis_labels("training TFLOPs per cell (log)", "accuracy drop from dense (points)")
    g.set_titles(col_template="{col_name}")
    sns.move_legend(g, "upper left", bbox_to_anchor=(1.0, 0.98), frameon=False, title="pruner")
    g.figure.tight_layout()
    return Figure(
        "budget",
        "Accuracy against training budget",
        f"At sparsity {sparsity:g}: mean accuracy drop from dense against the training FLOPs a cell cost "
        "(dense parent, pruning procedure, retraining; 3 x mask-aware forward FLOPs per example), mean "
        "over archs and seeds. Lower left is better.",
        g.figure,
    )


def all_figures(data: ReportData) -> list[Figure]:
    """The leaderboard's figures, then each analysis' own (``analysis.registry``, in its order)."""
    figs = [accuracy_sparsity(data), budget_scatter(data), *corruption_heatmap(data)]
    figs += [a.figure(data) for a in with_figures()]
    return [f for f in figs if f is not None]


# -- layout check ---------------------------------------------------------------------------


def _overlap(a, b, tol: float = 1.0) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def layout_problems(fig: matplotlib.figure.Figure) -> list[str]:
    """What a reader could not read: a legend over a plotting area, two titles on each other, or a
    figure wider than the page. From matplotlib's bounding boxes after a draw."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    legends = [*fig.legends, *[ax.get_legend() for ax in fig.axes if ax.get_legend()]]
    for leg in legends:
        lb = leg.get_window_extent(renderer)
        for ax in axes:
            if _overlap(lb, ax.get_window_extent(renderer)):
                problems.append(f"legend overlaps the axes titled {ax.get_title()!r}")
    titles = [t for ax in axes for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    titles += [t for t in fig.texts if t.get_text()]
    if fig._suptitle is not None and fig._suptitle.get_text():
        titles.append(fig._suptitle)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in titles]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if _overlap(boxes[i][1], boxes[j][1]):
                problems.append(f"titles overlap: {boxes[i][0]!r} and {boxes[j][0]!r}")
    width_in = fig.get_size_inches()[0] * fig.dpi / DPI
    if width_in > PAGE_WIDTH_IN + 6:  # legends outside add their width; the page scales down beyond
        problems.append(f"figure {width_in:.1f} in wide: wider than the page")
    return problems


def save(figure: Figure, directory: Path) -> Figure:
    """Write ``<name>.png`` (and keep the file name); the legend outside is kept in the image."""
    directory.mkdir(parents=True, exist_ok=True)
    figure.file = f"{figure.name}.png"
    figure.fig.savefig(directory / figure.file, dpi=DPI, bbox_inches="tight")
    plt.close(figure.fig)
    return figure


def finite(v) -> bool:
    return v is not None and isinstance(v, float | int) and math.isfinite(v)


__all__ = [
    "DPI",
    "Figure",
    "accuracy_sparsity",
    "all_figures",
    "budget_scatter",
    "corruption_heatmap",
    "layout_problems",
    "pruner_styles",
    "save",
]
