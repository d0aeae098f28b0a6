"""Effect of the retraining recipe on final accuracy: learning-rate rewinding vs fine-tuning
(Renda, Frankle & Carbin, "Comparing Rewinding and Fine-tuning in Neural Network Pruning",
ICLR 2020, who report that rewinding the learning rate beats fine-tuning).

For every recipe ``r`` other than ``finetune`` present (``lr_rewind``, ``weight_rewind``),
the difference of retrained clean test accuracy ``acc(r) - acc(finetune)`` paired by
(arch, dataset, pruner, sparsity, seed) - same dense parent, same pruned mask. Rows
(``retrain_recipe``): per (pruner, arch, dataset) pooled over sparsities and seeds, paired t
and Wilcoxon (Hodges-Lehmann estimate); per (pruner, arch, dataset, sparsity) paired t over
seeds. Claimed direction + (rewinding better).
"""

from __future__ import annotations

import pandas as pd

from analysis.load import prune_cells, scalar
from analysis.stats import one_sample_t, wilcoxon_signed_rank
from analysis.table import make_row, missing_row

CLAIM = "retrain_recipe"
REFERENCE = "finetune"


def recipe_differences(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Paired ``acc(recipe) - acc(finetune)`` per (arch, dataset, pruner, sparsity, seed, recipe)."""
    pc = prune_cells(cells)
    acc = scalar(metrics, "retrained", "accuracy")
    pc = pc.assign(acc=pc["cell_id"].map(acc).astype(float)).dropna(subset=["acc"])
    if pc.empty:
        return pd.DataFrame()
    keys = ["arch", "dataset", "pruner", "sparsity", "seed"]
    wide = pc.pivot_table(index=keys, columns="retrain", values="acc", aggfunc="mean")
    if REFERENCE not in wide:
        return pd.DataFrame()
    out = []
    for r in wide.columns:
        if r == REFERENCE:
            continue
        d = (wide[r] - wide[REFERENCE]).dropna().rename("diff").reset_index()
        d["recipe"] = r
        out.append(d)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def analyze(cells: pd.DataFrame, metrics: pd.DataFrame) -> list[dict]:
    diffs = recipe_differences(cells, metrics)
    if diffs.empty:
        return [missing_row(CLAIM, "needs finetune and another recipe on the same (cell scope, seed)")]
    rows = []
    for (rc, pr, ar, ds), g in diffs.groupby(["recipe", "pruner", "arch", "dataset"]):
        desc = f"retrained test accuracy {rc} - finetune, paired by (sparsity, seed)"
        rows.append(
            make_row(
                CLAIM,
                f"t_paired[{rc}-finetune]",
                one_sample_t(g["diff"]),
                direction=+1,
                description=desc,
                pruner=pr,
                arch=ar,
                dataset=ds,
            )
        )
        rows.append(
            make_row(
                CLAIM,
                f"wilcoxon[{rc}-finetune]",
                wilcoxon_signed_rank(g["diff"]),
                direction=+1,
                description=desc + " (Hodges-Lehmann)",
                pruner=pr,
                arch=ar,
                dataset=ds,
            )
        )
        for sp, h in g.groupby("sparsity"):
            rows.append(
                make_row(
                    CLAIM,
                    f"t_paired[{rc}-finetune]",
                    one_sample_t(h["diff"]),
                    direction=+1,
                    description=f"retrained test accuracy {rc} - finetune, paired by seed",
                    pruner=pr,
                    arch=ar,
                    dataset=ds,
                    sparsity=sp,
                )
            )
    return rows
