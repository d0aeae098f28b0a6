"""What the report shows of the intensification claim (Good et al., NeurIPS 2022): its figure,
the numbers its claim card adds, and the label table beside the paper's (``analysis.intensification``
declares them).
"""

from __future__ import annotations

from analysis.display import DPI, PAGE_WIDTH_IN, Figure, pyplot, theme

LABEL_COLUMNS = ("alpha_hat", "beta_hat", "a_over_a_t", "alpha_1", "alpha_minus_alpha_1", "last_epoch_share")


def figure(data) -> Figure | None:
    """alpha-hat_t with its Bonferroni CI by compression ratio t, per pruner, beside the paper's MP."""
    import matplotlib.ticker
    import seaborn as sns

    plt = pyplot()

    t = data.claims
    if t is None or t.empty or "hypothesis" not in t:
        return None
    rows = t[t["hypothesis"] == "labels"]
    if rows.empty:
        return None
    theme()
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


def _labels(data, study: str) -> tuple[list[dict], list[dict]]:
    """Our label rows (with alpha, beta, A/A_t, alpha_1, alpha_t - alpha_1, last-epoch share),
    each beside the paper's row it matches (``[paper.match]``), and the paper's rows."""
    paper_table = data.studies.get(study, {}).get("paper", {})
    match = paper_table.get("match", {}) if isinstance(paper_table.get("match"), dict) else {}
    ours = []
    if data.labels is not None and not data.labels.empty and "labels" in data.labels:
        for r in data.labels.to_dict("records"):
            setting = f"{r['arch']} / {r['dataset']} / {r['pruner']}"
            paper_row = match.get(setting, "")
            ours.append(
                {
                    "setting": setting,
                    "labels": r["labels"],
                    "t": r.get("t", ""),
                    **{c: r.get(c, "") for c in LABEL_COLUMNS},
                    "n": r.get("n", ""),
                    "paper_setting": paper_row,
                    "paper_labels": str(paper_table.get(paper_row, "")) if paper_row else "",
                }
            )
    paper = [
        {"setting": k, "labels": str(v)}
        for k, v in paper_table.items()
        if k != "source" and not isinstance(v, dict)
    ]
    return ours, paper


def _f(v, fmt: str = "+.3f") -> str:
    import math

    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def card(p: dict, data) -> dict:
    """The intensification row's decomposition and, with the study's label table, ours beside the paper's."""
    d = p.get("details") or {}
    stats = []
    if "alpha_t" in d:
        stats.append(
            (
                "alpha_t = beta_t x A/A_t; alpha_1",
                f"{_f(d['alpha_t'], '.3f')} = {_f(d['beta_t'], '.3f')} x {_f(d['a_over_a_t'], '.3f')}; "
                f"{_f(d.get('alpha_1'), '.3f')}",
            )
        )
        stats.append(("cells keeping their last epoch", str(d.get("last_epoch_cells", "–"))))
    if "decided_on" in d:
        stats.append(("decided on", f"{d['decided_on']} (A_t(UP) - A_t(MP) {_f(d['a_t_difference'][0])})"))
    ours, paper = _labels(data, p.get("study", ""))
    return {"stats": stats, "labels_ours": ours, "labels_paper": paper}
