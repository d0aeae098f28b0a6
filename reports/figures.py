"""The report's figures: one function per figure kind, each returning a matplotlib Figure, or a
string saying why it was skipped (the data are absent). ``FigureSink`` saves them as PNG and
SVG and records a manifest the site builder reads; notebooks and the builder share both.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a kernel keeps its inline backend
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.intensification import distortion_slope
from analysis.potential import DELTA
from analysis.retrain_recipe import REFERENCE
from reports import data as D

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "text.parse_math": False,  # names may contain $; labels use unicode instead
    "svg.hashsalt": "prunebench",  # deterministic SVG ids
    "svg.fonttype": "none",  # text stays text: smaller, faster SVGs
}
plt.rcParams.update(STYLE)

ACC_LABEL = "clean test accuracy (%)"
SPARSITY_LABEL = "target sparsity (fraction removed; log 1/(1 − s) axis)"


def slug(*parts: object) -> str:
    """A file-name-safe, collision-free stem for any (even hostile) names."""
    text = "_".join(str(p) for p in parts)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:80] or "figure"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _wrap(text: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _sparsity_axis(ax, sparsities) -> None:
    """Spread high sparsities out: the x axis is linear in log10(1 / (1 - s)), ticked at the data."""
    fwd = lambda s: -np.log10(np.clip(1 - np.asarray(s, float), 1e-6, None))
    inv = lambda x: 1 - 10 ** (-np.asarray(x, float))
    ax.set_xscale("function", functions=(fwd, inv))
    ticks = sorted({float(v) for v in sparsities})
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks], rotation=45 if len(ticks) > 6 else 0)
    ax.minorticks_off()
    lo, hi = fwd(ticks[0]), fwd(ticks[-1])
    pad = 0.04 * (hi - lo) if hi > lo else 0.1
    ax.set_xlim(float(inv(lo - pad)), float(inv(hi + pad)))


def _outer_labels_only(axes) -> None:
    """Keep the y label of the first column only (heatmap grids share their axes' meaning)."""
    for ax in axes:
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")


def _palette(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(sorted(names))}


def _scenario(df: pd.DataFrame, arch: str, dataset: str) -> pd.DataFrame:
    if df.empty:
        return df
    return df[(df["arch"] == arch) & (df["dataset"] == dataset)]


def _subplots(n: int, width: float = 4.2, height: float = 3.3, ncols: int | None = None):
    ncols = ncols or min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def accuracy_sparsity(res: D.Results, arch: str, dataset: str, phase: str = "retrained"):
    """Mean clean test accuracy vs sparsity per pruner with 95% CI bands; one panel per recipe."""
    curve = _scenario(D.accuracy_curve(res, phase), arch, dataset)
    if curve.empty:
        return f"no clean test accuracy for {arch} / {dataset}"
    recipes = sorted(curve["retrain"].dropna().unique())
    colors = _palette(list(curve["pruner"].unique()))
    fig, axes = _subplots(len(recipes))
    for ax, recipe in zip(axes, recipes, strict=True):
        for pruner, g in curve[curve["retrain"] == recipe].groupby("pruner"):
            g = g.sort_values("sparsity")
            ax.plot(g["sparsity"], 100 * g["mean"], marker="o", ms=3, color=colors[pruner], label=pruner)
            ax.fill_between(
                g["sparsity"],
                np.clip(100 * g["ci_low"], 0, 100),
                np.clip(100 * g["ci_high"], 0, 100),
                color=colors[pruner],
                alpha=0.2,
                lw=0,
            )
        _sparsity_axis(ax, curve["sparsity"])
        ax.set_title(_wrap(f"{arch} / {dataset}, retrain: {recipe}"))
        ax.set_xlabel(SPARSITY_LABEL)
        ax.set_ylabel(ACC_LABEL)
    axes[0].legend(title="pruner (band: 95% CI over seeds)", loc="best")
    return fig


def corruption_heatmaps(res: D.Results, arch: str, dataset: str, sparsity: float | None):
    """Accuracy per corruption type x severity at one sparsity; one panel per (pruner, recipe)."""
    rows = D.at_sparsity(_scenario(D.corruption_accuracy(res), arch, dataset), sparsity)
    if rows.empty:
        return f"no corruption accuracy stored for {arch} / {dataset}: heatmaps skipped"
    grid = rows.groupby(["pruner", "retrain", "eval_set", "severity"], as_index=False)["value"].mean()
    panels = sorted({(p, r) for p, r in zip(grid["pruner"], grid["retrain"], strict=True)})
    types = sorted(grid["eval_set"].unique())
    fig, axes = _subplots(len(panels), width=3.6, height=0.28 * len(types) + 1.5)
    image = None
    for ax, (pruner, recipe) in zip(axes, panels, strict=True):
        g = grid[(grid["pruner"] == pruner) & (grid["retrain"] == recipe)]
        mat = g.pivot(index="eval_set", columns="severity", values="value").reindex(types) * 100
        values = mat.to_numpy(float)
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto", interpolation="nearest")
        if values.size <= 200:
            for (r, c), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(
                        c,
                        r,
                        f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > 60 else "white",
                        in_layout=False,  # inside its axes: the layout need not measure it
                    )
        ax.set_xticks(range(values.shape[1]), [str(v) for v in mat.columns])
        ax.set_yticks(range(values.shape[0]), list(mat.index))
        ax.grid(False)
        ax.set_title(_wrap(f"{pruner} ({recipe}) @ sparsity {sparsity:g}", 40))
        ax.set_xlabel("severity (1-5)")
        ax.set_ylabel("corruption type")
    _outer_labels_only(axes)
    fig.colorbar(image, ax=axes, label="accuracy (%)", shrink=0.8)
    return fig


def recall_distortion(res: D.Results, arch: str, dataset: str, sparsity: float | None):
    """d_k = rho_k' - rho_k against rho_k - 1 per class, pooled over seeds, with the fitted slope."""
    d = D.at_sparsity(_scenario(D.recall_distortion(res), arch, dataset), sparsity)
    if d.empty:
        return f"no per-class recall for {arch} / {dataset}: recall distortion skipped"
    panels = sorted({(p, r) for p, r in zip(d["pruner"], d["retrain"], strict=True)})
    fig, axes = _subplots(len(panels), width=3.6, height=3.2)
    for ax, (pruner, recipe) in zip(axes, panels, strict=True):
        g = d[(d["pruner"] == pruner) & (d["retrain"] == recipe)]
        x = g["rho"] - 1
        ax.scatter(x, g["d"], s=10, alpha=0.6)
        b = distortion_slope(g["d"], g["rho"])  # pooled over classes and seeds
        if np.isfinite(b):
            xs = np.linspace(x.min(), x.max(), 2)
            a = g["d"].mean() - b * x.mean()
            ax.plot(xs, a + b * xs, color="C3", label=f"slope b = {b:.3f}")
            ax.legend(loc="best")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.set_title(_wrap(f"{pruner} ({recipe}) @ {sparsity:g}"))
        ax.set_xlabel("ρ_k − 1 (dense normalised recall − 1, unitless)")
        ax.set_ylabel("d_k = ρ_k' − ρ_k (unitless)")
    fig.suptitle(_wrap(f"Recall distortion, {arch} / {dataset} (points: classes x seeds)", 90))
    return fig


def alpha_sparsity(res: D.Results, arch: str, dataset: str):
    """Intensification ratio alpha vs sparsity per entry, mean and 95% CI over seeds."""
    s = _scenario(D.distortion_summary(res), arch, dataset)
    if s.empty:
        return f"no per-class recall for {arch} / {dataset}"
    ci = D.mean_ci(s.dropna(subset=["alpha"]), [*D.ENTRY, "sparsity"], "alpha")
    fig, ax = plt.subplots(layout="constrained", figsize=(5, 3.4))
    colors = _palette(list(ci["pruner"].unique()))
    for (pruner, recipe), g in ci.groupby(D.ENTRY):
        ls = "-" if recipe == sorted(ci["retrain"].unique())[0] else "--"
        ax.errorbar(
            g["sparsity"],
            g["mean"],
            yerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]],
            color=colors[pruner],
            ls=ls,
            marker="o",
            ms=3,
            capsize=2,
            label=f"{pruner} ({recipe})",
        )
    ax.axhline(0.5, color="0.4", lw=0.8, ls=":")
    ax.set_ylim(-0.02, 1.02)  # a share; t-intervals over few seeds may overshoot
    _sparsity_axis(ax, ci["sparsity"])
    ax.set_xlabel(SPARSITY_LABEL)
    ax.set_ylabel("intensification ratio α (share of classes)")
    ax.set_title(_wrap(f"{arch} / {dataset}: α > 0.5 means intensification"))
    ax.legend(fontsize=7)
    return fig


def stability_vs_accuracy(res: D.Results, arch: str, dataset: str):
    """Run stability against best test accuracy, with Pearson r (95% CI) and Kendall tau over the
    permanent-pruning runs (the claims table's ``stability_accuracy`` estimates)."""
    runs = _scenario(D.stability_runs(res), arch, dataset)
    if runs.empty:
        return f"no stability-study runs for {arch} / {dataset}"
    c = D.stability_correlation(runs)
    fig, ax = plt.subplots(layout="constrained", figsize=(5, 3.6))
    hue = runs["target"].fillna("-").astype(str)
    colors = _palette(list(hue.unique()))
    for name, g in runs.groupby(hue):
        ax.scatter(g["stability"], 100 * g["best_acc"], s=16, color=colors[name], label=name)
    ax.set_xlabel("run stability S = 100 (1 − I), mean over pruning events (%)")
    ax.set_ylabel("best test accuracy after the last event (%)")
    ax.set_title(
        _wrap(
            f"{arch} / {dataset}: r = {c['r']:.2f} [{c['r_low']:.2f}, {c['r_high']:.2f}], "
            f"τ = {c['tau']:.2f}, n = {c['n']} permanent-pruning runs",
            60,
        )
    )
    ax.legend(title="target", fontsize=7)
    return fig


def prune_potential(res: D.Results, arch: str, dataset: str, delta: float = DELTA):
    """Prune potential per test distribution (clean and each corruption) per entry, mean and 95% CI."""
    pp = _scenario(D.prune_potential(res, delta), arch, dataset)
    if pp.empty:
        return f"no accuracy to compute prune potential for {arch} / {dataset}"
    ci = D.mean_ci(pp, [*D.ENTRY, "distribution", "shifted"])
    dists = ["test", *sorted(d for d in ci["distribution"].unique() if d != "test")]
    entries = sorted({(p, r) for p, r in zip(ci["pruner"], ci["retrain"], strict=True)})
    width = 0.8 / max(len(entries), 1)
    fig, ax = plt.subplots(
        layout="constrained", figsize=(max(5.0, 0.55 * len(dists) * max(1, len(entries)) / 2 + 3), 3.6)
    )
    for i, (pruner, recipe) in enumerate(entries):
        g = ci[(ci["pruner"] == pruner) & (ci["retrain"] == recipe)].set_index("distribution").reindex(dists)
        xs = np.arange(len(dists)) + (i - (len(entries) - 1) / 2) * width
        err = np.nan_to_num(np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]]).astype(float))
        ax.bar(xs, g["mean"], width=width, yerr=err, capsize=2, label=f"{pruner} ({recipe})")
    ax.set_xticks(
        np.arange(len(dists)),
        ["clean test" if d == "test" else d for d in dists],
        rotation=45 if len(dists) > 3 else 0,
        ha="right" if len(dists) > 3 else "center",
    )
    ax.set_xlabel("test distribution")
    ax.set_ylabel(f"prune potential (sparsity, δ = {100 * delta:g} points)")
    ax.set_ylim(0, 1)
    ax.set_title(_wrap(f"{arch} / {dataset}: prune potential per test distribution"))
    ax.legend(fontsize=7, ncols=2)
    return fig


def ood_and_calibration(res: D.Results, arch: str, dataset: str):
    """OOD AUROC (max-softmax, mean over OOD sets) and ECE vs sparsity per entry."""
    series = {
        "OOD AUROC, max-softmax score (%)": D.per_cell_mean(
            _scenario(D.ood_auroc(res, "msp"), arch, dataset)
        ),
        "ECE, 15 bins, clean test (%)": _scenario(D.calibration(res, "ece"), arch, dataset),
    }
    series = {k: v for k, v in series.items() if not v.empty}
    if not series:
        return f"no OOD AUROC or ECE stored for {arch} / {dataset}: skipped"
    fig, axes = _subplots(len(series), width=4.6)
    for ax, (label, rows) in zip(axes, series.items(), strict=True):
        ci = D.mean_ci(rows, [*D.ENTRY, "sparsity"])
        colors = _palette(list(ci["pruner"].unique()))
        recipes = sorted(ci["retrain"].unique())
        for (pruner, recipe), g in ci.groupby(D.ENTRY):
            g = g.sort_values("sparsity")
            ls = "-" if recipe == recipes[0] else "--"
            ax.plot(
                g["sparsity"],
                100 * g["mean"],
                ls=ls,
                marker="o",
                ms=3,
                color=colors[pruner],
                label=f"{pruner} ({recipe})",
            )
            ax.fill_between(
                g["sparsity"], 100 * g["ci_low"], 100 * g["ci_high"], color=colors[pruner], alpha=0.15, lw=0
            )
        _sparsity_axis(ax, ci["sparsity"])
        ax.set_xlabel(SPARSITY_LABEL)
        ax.set_ylabel(label)
        ax.set_title(_wrap(f"{arch} / {dataset}"))
    axes[0].legend(fontsize=7)
    return fig


def recall_change_heatmap(res: D.Results, arch: str, dataset: str):
    """Mean change of per-class recall (pruned − dense) by class and sparsity, per entry."""
    ch = _scenario(D.per_class_recall_change(res), arch, dataset)
    if ch.empty:
        return f"no per-class recall for {arch} / {dataset}"
    grid = ch.groupby([*D.ENTRY, "class", "sparsity"], as_index=False)["value"].mean()
    entries = sorted({(p, r) for p, r in zip(grid["pruner"], grid["retrain"], strict=True)})
    fig, axes = _subplots(len(entries), width=3.4, height=3.0)
    lim = max(float(np.nanmax(np.abs(grid["value"]))) * 100, 1.0)
    image = None
    for ax, (pruner, recipe) in zip(axes, entries, strict=True):
        g = grid[(grid["pruner"] == pruner) & (grid["retrain"] == recipe)]
        mat = g.pivot(index="class", columns="sparsity", values="value") * 100
        image = ax.imshow(
            mat.to_numpy(float), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest"
        )
        ax.set_xticks(range(mat.shape[1]), [f"{v:g}" for v in mat.columns])
        ax.set_yticks(range(mat.shape[0]), [str(v) for v in mat.index])
        ax.grid(False)
        ax.set_title(_wrap(f"{pruner} ({recipe})"))
        ax.set_xlabel("target sparsity")
        ax.set_ylabel("class index")
    fig.suptitle(_wrap(f"{arch} / {dataset}: per-class recall change vs dense parent", 90))
    _outer_labels_only(axes)
    fig.colorbar(image, ax=axes, label="recall change (points)", shrink=0.8)
    return fig


def recipe_difference(res: D.Results, arch: str, dataset: str, a: str = "lr_rewind"):
    """Accuracy of recipe a minus fine-tuning (paired by seed) vs sparsity per pruner, 95% CI."""
    b = REFERENCE
    diff = _scenario(D.recipe_difference(res, a), arch, dataset)
    if diff.empty:
        return f"{arch} / {dataset}: no pairs of {a} and {b} cells"
    ci = D.mean_ci(diff, ["pruner", "sparsity"])
    colors = _palette(list(ci["pruner"].unique()))
    fig, ax = plt.subplots(layout="constrained", figsize=(5, 3.4))
    for pruner, g in ci.groupby("pruner"):
        ax.plot(g["sparsity"], 100 * g["mean"], marker="o", ms=3, color=colors[pruner], label=pruner)
        ax.fill_between(
            g["sparsity"], 100 * g["ci_low"], 100 * g["ci_high"], color=colors[pruner], alpha=0.2, lw=0
        )
    ax.axhline(0, color="0.4", lw=0.8)
    _sparsity_axis(ax, ci["sparsity"])
    ax.set_xlabel(SPARSITY_LABEL)
    ax.set_ylabel(f"accuracy {a} − {b} (points)")
    ax.set_title(_wrap(f"{arch} / {dataset}"))
    ax.legend(fontsize=7)
    return fig


@dataclass
class FigureSink:
    """Saves figures (PNG + SVG) under ``out_dir`` and records them in a manifest.

    ``out_dir=None`` (a notebook opened by hand) only shows them. Skipped figures are
    recorded as notes, so the page says what is missing and why.
    """

    out_dir: Path | str | None
    notebook: str
    show: bool = True
    records: list[dict] = field(default_factory=list)

    def add(
        self, fig_or_note, kind: str, arch: str | None = None, dataset: str | None = None, title: str = ""
    ) -> None:
        rec = {"notebook": self.notebook, "kind": kind, "arch": arch, "dataset": dataset, "title": title}
        if isinstance(fig_or_note, str):
            rec["note"] = fig_or_note
            print(f"[skipped] {fig_or_note}")
            self.records.append(rec)
            return
        fig = fig_or_note
        if self.out_dir is not None:
            out = Path(self.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            stem = slug(kind, arch or "", dataset or "")
            fig.savefig(out / f"{stem}.png")
            # the layout is done: the SVG keeps the PNG's (a second constrained layout pass over
            # many panels costs as much as drawing them)
            fig.set_layout_engine("none")
            fig.savefig(out / f"{stem}.svg", metadata={"Date": None})
            rec.update(png=f"{stem}.png", svg=f"{stem}.svg")
        self.records.append(rec)
        if self.show:
            try:
                from IPython.display import Image, display
            except ImportError:
                pass
            else:  # show the saved PNG rather than rendering the figure a second time
                display(Image(filename=str(Path(self.out_dir) / rec["png"])) if "png" in rec else fig)
        plt.close(fig)

    def close(self) -> None:
        """Write ``_manifest_<notebook>.json`` next to the figures."""
        if self.out_dir is None:
            return
        out = Path(self.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"_manifest_{self.notebook}.json").write_text(json.dumps(self.records, indent=1))


def read_manifests(figures_dir: Path) -> list[dict]:
    records: list[dict] = []
    for path in sorted(Path(figures_dir).glob("_manifest_*.json")):
        records += json.loads(path.read_text())
    return records
