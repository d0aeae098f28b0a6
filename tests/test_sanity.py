"""The magnitude-vs-random sanity table (``analysis.sanity``) on hand-built store frames."""

import itertools

import pandas as pd
import pytest

from analysis.sanity import POOLED, magnitude_vs_random, render_sanity


def _store(accuracy):
    """cells/metrics frames for one (arch, dataset); ``accuracy(pruner, sparsity, seed, recipe)``."""
    cells, metrics = [], []
    grid = itertools.product(
        ["random", "global_magnitude", "layer_magnitude"], [0.5, 0.9, 0.98], [0, 1], ["finetune", "lr_rewind"]
    )
    for i, (pruner, sparsity, seed, recipe) in enumerate(grid):
        cid = f"c{i}"
        cells.append(
            dict(
                cell_id=cid,
                study="prune",
                arch="cnn",
                dataset="d",
                pruner=pruner,
                sparsity=sparsity,
                seed=seed,
                retrain=recipe,
            )
        )
        value = accuracy(pruner, sparsity, seed, recipe)
        metrics.append(dict(cell_id=cid, phase="retrained", eval_set="test", metric="accuracy", value=value))
        metrics.append(dict(cell_id=cid, phase="dense", eval_set="test", metric="accuracy", value=0.99))
        metrics.append(dict(cell_id=cid, phase="retrained", eval_set="val", metric="accuracy", value=1.0))
    cells.append(
        dict(
            cell_id="s0",
            study="stability",
            arch="cnn",
            dataset="d",
            pruner=None,
            sparsity=None,
            seed=0,
            retrain=None,
        )
    )
    metrics = pd.DataFrame(metrics).assign(kind="clean", **{"class": None})
    return pd.DataFrame(cells), metrics


def test_means_margins_and_verdicts_per_sparsity_and_pooled():
    def accuracy(pruner, sparsity, seed, recipe):
        base = {"random": 0.2, "global_magnitude": 0.5, "layer_magnitude": 0.3}[pruner]
        if pruner == "layer_magnitude" and sparsity == 0.98:
            base = 0.1  # loses to random at 0.98 only
        return base + 0.02 * seed + (0.01 if recipe == "finetune" else 0.0)

    cells, metrics = _store(accuracy)
    table = magnitude_vs_random(cells, metrics, pruners=("global_magnitude", "layer_magnitude"))
    assert set(table["sparsity"]) == {"0.9", "0.98", POOLED}  # 0.5 is below the threshold
    row = table.set_index(["pruner", "sparsity"]).loc[("layer_magnitude", "0.98")]
    assert row["accuracy"] == pytest.approx(0.1 + 0.01 + 0.005)
    assert row["random"] == pytest.approx(0.2 + 0.01 + 0.005)
    assert not row["beats"] and row["cells"] == 4
    pooled = table.set_index(["pruner", "sparsity"]).loc[("layer_magnitude", POOLED)]
    assert pooled["margin"] == pytest.approx(((0.3 + 0.1) / 2) - 0.2)
    assert pooled["cells"] == 8
    assert table.set_index(["pruner", "sparsity"]).loc[("global_magnitude", POOLED)]["beats"]
    text = render_sanity(table)
    assert "4 of 6" in text  # layer_magnitude fails at 0.98 and ties random when pooled
    assert "not above random: layer_magnitude on cnn/d at sparsity 0.98: 0.115 vs 0.215" in text
    assert "not above random: layer_magnitude on cnn/d at the pooled sparsities: 0.215 vs 0.215" in text


def test_only_pairs_present_on_both_sides_are_compared():
    cells, metrics = _store(lambda p, s, seed, r: 0.5 if p != "random" else 0.2)
    drop = cells[(cells["pruner"] == "random") & (cells["seed"] == 1)]["cell_id"]
    cells = cells[~cells["cell_id"].isin(drop)]
    table = magnitude_vs_random(cells, metrics[~metrics["cell_id"].isin(drop)], pruners=("global_magnitude",))
    assert set(table["cells"]) == {2, 4}  # seed 1 of the pruner has no random partner
    assert table["beats"].all()


def test_an_empty_store_says_so():
    cells, metrics = _store(lambda *a: 0.5)
    text = render_sanity(magnitude_vs_random(cells[cells["pruner"] == "lamp"], metrics))
    assert text.startswith("sanity: no random")
