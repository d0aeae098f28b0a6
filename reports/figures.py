"""The report's figures, drawn with seaborn on matplotlib from a ``reports.data.ReportData``.

Rules every figure keeps (and ``layout_problems`` checks): pruners are coloured by family (one
seaborn palette per family, a shade and a marker per member), legends sit outside the axes,
facets replace stacked panels, and the figure is drawn at the width the page shows it
(at most ``PAGE_WIDTH_IN`` inches at ``DPI``). A collapsed model (within the regime margin of
chance, ``analysis.regime``) is drawn hollow over a grey band and named in the caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.regime import COLLAPSE_MARGIN
from reports.data import ReportData, collapsed, mean_ci

DPI = 100
PAGE_WIDTH_IN = 13.0  # the page is at most 1400 px wide
FAMILY_PALETTES = {
    "after training, unstructured": "Blues",
    "after training, structured": "Greens",
    "at init": "Oranges",
    "during training": "Purples",
}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
CONTROL_COLOURS = {"shuffle_layer": "#d62728", "reinit": "#1f77b4", "invert": "#7f7f7f"}


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    fig: matplotlib.figure.Figure
    section: str = "leaderboard"
    file: str = ""


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)


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


def _legend_outside(g_or_ax, title: str = "") -> None:
    ax = g_or_ax
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend():
        ax.get_legend().remove()
    if handles:
        ax.figure.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            title=title or None,
            fontsize=8,
        )


def accuracy_sparsity(data: ReportData) -> Figure | None:
    """Test accuracy after pruning and retraining against sparsity, one facet per (arch, dataset)."""
    c = data.cells
    if c.empty:
        return None
    _theme()
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
    _theme()
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
    _theme()
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


def intensification_alpha(data: ReportData) -> Figure | None:
    """alpha-hat_t with its Bonferroni CI by compression ratio t, per pruner, beside the paper's MP."""
    t = data.claims
    if t is None or t.empty or "hypothesis" not in t:
        return None
    rows = t[t["hypothesis"] == "labels"]
    if rows.empty:
        return None
    _theme()
    rows = rows.assign(
        t=1 / (1 - rows["sparsity"]),
        alpha=1 + rows["estimate"],
        lo=1 + rows["ci_low"],
        hi=1 + rows["ci_high"],
        scope=rows["arch"] + " / " + rows["dataset"],
    ).drop_duplicates(["scope", "pruner", "t"])
    scopes = sorted(rows["scope"].unique())
    fig, axes = plt.subplots(
        1, len(scopes), figsize=(min(PAGE_WIDTH_IN, 1.5 + 3.6 * len(scopes)), 3.4), dpi=DPI, squeeze=False
    )
    pal = dict(zip(sorted(rows["pruner"].unique()), sns.color_palette("colorblind"), strict=False))
    for ax, scope in zip(axes[0], scopes, strict=True):
        for pruner, g in rows[rows["scope"] == scope].groupby("pruner"):
            g = g.sort_values("t")
            ax.errorbar(
                g["t"],
                g["alpha"],
                yerr=[g["alpha"] - g["lo"], g["hi"] - g["alpha"]],
                marker="o",
                ms=4,
                capsize=2,
                label=pruner,
                color=pal[pruner],
            )
        paper_t = [2, 4, 10, 20, 50]
        ax.plot(
            paper_t,
            [0.928, 0.953, 1.057, 1.239, 1.791],
            color="black",
            ls=":",
            marker="x",
            label="paper MP (CIFAR-10 ResNet-56)",
        )
        ax.axhline(1, color="0.4", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([1, 2, 4, 10, 20, 50], ["1", "2", "4", "10", "20", "50"])
        ax.set_title(scope, fontsize=10)
        ax.set_xlabel("compression ratio t")
    axes[0][0].set_ylabel("alpha-hat_t (> 1: intensified)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize=8)
    return Figure(
        "intensification",
        "Recall distortion by compression ratio",
        "Good et al.'s alpha-hat_t (through-origin slope of the normalised recall balance after pruning on the "  # noqa: E501
        "one before, balanced accuracy, averaged over dense parents) with its 99% t-interval; at t = 1 the "
        "control (the same fine-tuning, nothing pruned): the effect of pruning is the distance from it, not "
        "from 1. Dotted: the paper's MP values on CIFAR-10 ResNet-56. Above 1: intensified; below: "
        "de-intensified.",
        fig,
        "claims",
    )


def stability_generalization(data: ReportData) -> Figure | None:
    s = data.stability
    if s is None or s.empty or "stability" not in s:
        return None
    _theme()
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
    _legend_outside(ax, "target (S/L/R), variant, schedule")
    fig.tight_layout()
    return Figure(
        "stability",
        "Generalization against pruning stability",
        "One point per training run of the generalization-stability study (Bartoldson et al. 2020); "
        "the claim is a negative correlation between stability and generalization.",
        fig,
        "claims",
    )


def mask_sanity(data: ReportData) -> Figure | None:
    m = data.mask_controls
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
    _theme()
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
    _legend_outside(ax, "control")
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


def all_figures(data: ReportData) -> list[Figure]:
    figs = [accuracy_sparsity(data), budget_scatter(data), *corruption_heatmap(data)]
    figs += [intensification_alpha(data), stability_generalization(data), mask_sanity(data)]
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
    "Figure",
    "accuracy_sparsity",
    "all_figures",
    "budget_scatter",
    "corruption_heatmap",
    "intensification_alpha",
    "layout_problems",
    "mask_sanity",
    "pruner_styles",
    "save",
    "stability_generalization",
]
