"""The smoke preset end to end: Parquet contents, resumability, determinism, the one-cell CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from benchmarks.datasets import load_dataset
from benchmarks.matrix import load_preset
from core.spec import CellSpec, canonical_json
from harness.cli import main
from harness.runner import run_all
from harness.storage import ResultsStore
from harness.tasks import cell_task


def test_smoke_run_stores_every_cell_ok(smoke_results):
    root, summary = smoke_results
    expected = len(load_preset("smoke").expand())
    cells = pd.read_parquet(root / "cells")
    assert summary.ran == expected and summary.exit_code == 0
    assert len(cells) == expected and cells.cell_id.is_unique
    assert (cells.status == "ok").all()
    for col in ("torch_version", "git_commit", "host", "device", "schema_version"):
        assert cells[col].notna().all()
    assert (cells.total_s > 0).all()
    prune, stability = cells[cells.study == "prune"], cells[cells.study == "stability"]
    assert (prune.dense_train_s > 0).all() and prune.parent_id.notna().all()
    assert len(stability) and stability.parent_id.isna().all()
    assert set(stability.variant) == {"permanent", "none"} and set(stability.pruner) == {"prune_l", "none"}


def prune_tables(root):
    """Cells and metrics of the pruning study (the stability study's runs left out)."""
    cells = pd.read_parquet(root / "cells")
    cells = cells[cells.study == "prune"].set_index("cell_id")
    metrics = pd.read_parquet(root / "metrics")
    return cells, metrics[metrics.cell_id.isin(cells.index)]


def test_smoke_metrics_have_all_phases_and_achieved_sparsity(smoke_results):
    root, _ = smoke_results
    cells, metrics = prune_tables(root)
    assert set(metrics.phase) == {"dense", "pruned", "retrained"}
    assert {"train", "test", "model"} <= set(metrics.eval_set)
    sparsity = metrics[metrics.metric == "achieved_sparsity"].pivot_table(
        index="cell_id", columns="phase", values="value"
    )
    assert (sparsity["dense"] == 0).all()
    np.testing.assert_allclose(sparsity["retrained"], sparsity["pruned"])
    # unstructured: the fraction of prunable weights; structured: the fraction of units
    units = metrics[metrics.metric == "unit_sparsity"].pivot_table(
        index="cell_id", columns="phase", values="value"
    )
    structured = cells.index[cells.pruner_kind == "structured"]
    assert len(structured) and set(structured) == set(units.index)
    unstructured = cells.index[cells.pruner_kind == "unstructured"]
    np.testing.assert_allclose(
        sparsity.loc[unstructured, "pruned"], cells.loc[unstructured, "sparsity"], atol=1e-3
    )
    np.testing.assert_allclose(units.loc[structured, "pruned"], cells.loc[structured, "sparsity"], atol=0.04)
    assert (sparsity.loc[structured, "pruned"] >= units.loc[structured, "pruned"] - 1e-9).all()


def test_per_class_recall_is_consistent_with_accuracy(smoke_results):
    root, _ = smoke_results
    cells, metrics = prune_tables(root)
    test = metrics[(metrics.eval_set == "test") & (metrics.kind == "clean")]
    checked = 0
    for (cell_id, _phase), group in test.groupby(["cell_id", "phase"]):
        data = load_dataset(cells.loc[cell_id, "dataset"])
        counts = np.bincount(data.y_test.numpy(), minlength=10)
        recall = group[group.metric == "recall"].sort_values("class")["value"].to_numpy()
        accuracy = group[group.metric == "accuracy"]["value"].item()
        assert len(recall) == 10 and ((recall >= 0) & (recall <= 1)).all()
        assert accuracy == pytest.approx((recall * counts).sum() / counts.sum(), abs=1e-12)
        checked += 1
    assert checked == 3 * len(cells)


def test_second_run_runs_zero_cells(smoke_results):
    root, _ = smoke_results
    lines = []
    again = run_all("smoke", str(root), workers=1, echo=lines.append)
    assert again.ran == 0 and again.stored_before == again.total
    assert any("0 cells run" in line for line in lines)


def test_analyze_prints_and_stores_the_magnitude_vs_random_sanity_table(smoke_results, tmp_path, capsys):
    from analysis.load import load_results
    from analysis.sanity import magnitude_vs_random

    root = tmp_path / "store"
    shutil.copytree(smoke_results[0] / "cells", root / "cells")
    shutil.copytree(smoke_results[0] / "metrics", root / "metrics")
    assert main(["analyze", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    stored = pd.read_parquet(root / "claims" / "sanity.parquet")
    # smoke: 2 archs x 2 datasets x 3 magnitude pruners at sparsity 0.9, plus the pooled rows
    assert len(stored) == 2 * 2 * 3 * 2 and set(stored["sparsity"]) == {"0.9", "pooled"}
    assert (stored["cells"] == 1).all()  # one seed, one recipe
    full = magnitude_vs_random(*load_results(root))  # the analysis reads a filtered store: same table
    pd.testing.assert_frame_equal(stored, full)
    assert (
        f"{int(stored['beats'].sum())} of 24 (arch, dataset, pruner, sparsity) comparisons beat random" in out
    )


def test_dense_parent_is_trained_once_per_arch_dataset_seed(smoke_results):
    root, _ = smoke_results
    cells, _ = prune_tables(root)
    cells = cells.reset_index()
    parents = list((root / "parents").iterdir())
    cells["recipe"] = [json.dumps(json.loads(s)["train"], sort_keys=True) for s in cells.spec_json]
    # one parent per (arch, dataset, seed, dense recipe), shared by every pruner and sparsity
    assert (
        len(parents)
        == cells.groupby(["arch", "dataset", "seed", "recipe"]).ngroups
        == cells.parent_id.nunique()
    )
    assert (cells.groupby("parent_id")[["arch", "dataset", "seed", "recipe"]].nunique() == 1).all().all()
    dense = pd.read_parquet(root / "metrics").query("phase == 'dense' and metric == 'accuracy'")
    # every cell of one parent carries the same dense numbers
    merged = dense.merge(cells[["cell_id", "parent_id"]], on="cell_id")
    assert (merged.groupby(["parent_id", "eval_set", "severity"])["value"].nunique() == 1).all()


def test_same_cell_twice_gives_identical_numbers(tmp_path):
    preset = load_preset("smoke")
    spec = CellSpec(
        "cnn_32x3", "digits", "random", 0.8, 3, train=preset.train, retrain_config=preset.retrain_config
    )
    tables = []
    for run in ("a", "b"):
        root = tmp_path / run
        ResultsStore(root).prepare()
        outcome = cell_task(canonical_json(spec.to_dict()), str(root), "test", "cpu")
        assert outcome.status == "ok"
        tables.append(pd.read_parquet(root / "metrics").sort_values(["phase", "eval_set", "metric", "class"]))
    a, b = (t.reset_index(drop=True) for t in tables)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cell_id_depends_on_spec_and_pruner_version():
    spec = CellSpec("mlp_256x2", "digits", "random", 0.5, 0)
    assert spec.cell_id("1") == CellSpec.from_dict(json.loads(canonical_json(spec.to_dict()))).cell_id("1")
    assert spec.cell_id("1") != spec.cell_id("2")
    assert spec.cell_id("1") != CellSpec("mlp_256x2", "digits", "random", 0.6, 0).cell_id("1")
    assert spec.parent.id == CellSpec("mlp_256x2", "digits", "global_magnitude", 0.9, 0).parent.id


def test_run_one_cell_from_the_cli(tmp_path, capsys):
    code = main(
        [
            "run",
            "--arch",
            "mlp_256x2",
            "--dataset",
            "digits",
            "--pruner",
            "global_magnitude",
            "--sparsity",
            "0.5",
            "--seed",
            "0",
            "--preset",
            "smoke",
            "--results",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and ": ok in" in out and "retrained  test   accuracy" in out
    cells = pd.read_parquet(tmp_path / "cells")
    assert len(cells) == 1 and cells.status.item() == "ok"


def test_dry_run_and_filters_write_no_cells(tmp_path, capsys):
    code = main(
        [
            "run-all",
            "--preset",
            "default",
            "--dry-run",
            "--filter",
            "pruner=random",
            "--filter",
            "dataset=digits",
            "--results",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    preset = load_preset("default")
    n = len(preset.archs) * len(preset.sparsities) * len(preset.seeds) * len(preset.retrain)
    assert code == 0 and f"{n} cells, 0 already stored, {n} to run" in out
    assert not list((tmp_path / "cells").glob("*.parquet"))
    assert not tmp_path.exists() or not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_full_preset_dry_run_prints_cell_count_and_gpu_hours(tmp_path, capsys):
    code = main(["run-all", "--preset", "full", "--dry-run", "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    n = len(load_preset("full").expand())
    assert code == 0 and f"{n} cells, 0 already stored, {n} to run" in out
    hours = float(out.split("about ")[1].split(" GPU hours")[0])
    assert hours > 100, "160-epoch CIFAR training of thousands of cells is hundreds of GPU hours"
    assert not (tmp_path / "r").exists()
