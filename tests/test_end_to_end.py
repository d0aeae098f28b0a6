"""The smoke preset end to end: Parquet contents, resumability, determinism, the one-cell CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from benchmarks.datasets import load_dataset
from benchmarks.matrix import PresetError, load_preset
from core.spec import CellSpec, canonical_json
from harness.cli import main
from harness.runner import build_plan, run_all
from harness.storage import ResultsStore
from harness.tasks import cell_task
from pruners import PRUNERS


def test_smoke_run_stores_every_cell_ok(smoke_results):
    root, summary = smoke_results
    expected = len(build_plan("smoke").cells)
    cells = pd.read_parquet(root / "cells")
    assert summary.ran == expected and summary.exit_code == 0
    assert len(cells) == expected and cells.cell_id.is_unique
    assert (cells.status == "ok").all()
    for col in (
        "torch_version",
        "git_commit",
        "host",
        "device",
        "schema_version",
        "pruner_config",
        "eval_sets",
    ):
        assert cells[col].notna().all()
    assert (cells.total_s > 0).all()
    prune, stability = cells[cells.cell_type == "prune"], cells[cells.cell_type == "stability"]
    assert (prune.dense_train_s > 0).all() and prune.parent_id.notna().all()
    assert len(stability) and stability.parent_id.isna().all()
    assert set(stability.variant) == {"permanent", "noise_zero", "none"} and set(stability.pruner) == {
        "prune_l",
        "none",
    }
    assert prune.plugin.isna().all()  # every smoke pruner is built in


def test_every_cell_records_its_budget(smoke_results):
    """Epochs of the dense parent (when the model descends from it), of the pruning procedure and
    of the retraining, and training FLOPs (3 x mask-aware forward FLOPs per example)."""
    root, _ = smoke_results
    cells = pd.read_parquet(root / "cells")
    prune = cells[cells.cell_type == "prune"].set_index("pruner")
    train_epochs, retrain_epochs = 4, 1  # the smoke recipes
    after = prune[prune.pruner_timing == "after_training"]
    assert (after.epochs_dense == train_epochs).all() and (after.epochs_retrain == retrain_epochs).all()
    phase = after.index.str.startswith("greg") | (after.index == "sipp")  # 2-epoch phases (smoke)
    assert phase.any() and (after[phase].epochs_prune == 2).all() and (after[~phase].epochs_prune == 0).all()
    at_init = prune[prune.pruner_timing == "at_init"]
    assert (at_init.epochs_dense == 0).all() and (at_init.epochs_retrain == train_epochs).all()
    gmp = prune.loc[["gmp"]]
    assert (gmp.epochs_prune == train_epochs).all() and (gmp.epochs_retrain == retrain_epochs).all()
    imp = prune.loc[["imp"]]  # 4 rounds of 20% to reach 0.5, each retraining epochs 1..4
    assert (imp.epochs_prune == 4 * 3).all() and (imp.epochs_dense == train_epochs).all()
    assert (prune.train_flops > 0).all()
    # the same arch and dataset: more (and denser) epochs cost more FLOPs
    mine = prune[(prune.arch == "mlp_256x2") & (prune.dataset == "digits")]
    assert (
        mine.loc["imp", "train_flops"]
        > mine.loc["global_magnitude"].set_index("sparsity").loc[0.5, "train_flops"]
    )


def test_study_manifests_and_leaderboard_are_written(smoke_results):
    root, _ = smoke_results
    leaderboard = json.loads((root / "leaderboard.json").read_text())
    assert leaderboard["grid"] == [0.5, 0.9] and len(leaderboard["cell_ids"]) == len(
        load_preset("smoke").expand()
    )
    manifest = json.loads((root / "studies" / "smoke_stability.json").read_text())
    assert manifest["definition"]["analysis"] == "generalization_stability"
    cells = pd.read_parquet(root / "cells")
    assert set(manifest["cell_ids"]) == set(cells[cells.cell_type == "stability"].cell_id)


def prune_tables(root):
    """Cells and metrics of the pruning study (the stability study's runs left out)."""
    cells = pd.read_parquet(root / "cells")
    cells = cells[cells.cell_type == "prune"].set_index("cell_id")
    metrics = pd.read_parquet(root / "metrics")
    return cells, metrics[metrics.cell_id.isin(cells.index)]


def test_smoke_metrics_have_all_phases_and_achieved_sparsity(smoke_results):
    root, _ = smoke_results
    cells, metrics = prune_tables(root)
    assert set(metrics.phase) == {"dense", "pruned", "retrained"}
    assert {"train", "val", "test", "model"} <= set(metrics.eval_set)
    pruned = metrics[metrics.phase == "pruned"]  # before retraining: the clean splits only
    assert set(pruned.kind) == {"clean", "model"}
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
    # the same fraction of every layer's units removes at least that fraction of the weights; a
    # pruner that allocates units per layer (pfp) may remove the cheap ones, so only those that
    # rank per layer are held to it
    per_layer = [c for c in structured if PRUNERS.get(cells.loc[c, "pruner"]).scope == "layer"]
    assert per_layer
    assert (sparsity.loc[per_layer, "pruned"] >= units.loc[per_layer, "pruned"] - 1e-9).all()


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


def test_retraining_keeps_the_lowest_validation_loss_epoch(smoke_results):
    root, _ = smoke_results
    cells, metrics = prune_tables(root)
    kept = metrics[metrics.metric == "kept_epoch"]
    retrained = cells[(cells.pruner_timing != "at_init")]
    assert set(kept.cell_id) == set(retrained.index) and kept.value.between(1, 1).all()  # smoke: 1 epoch


def test_second_run_runs_zero_cells(smoke_results):
    root, _ = smoke_results
    lines = []
    again = run_all("smoke", str(root), workers=1, echo=lines.append)
    assert again.ran == 0 and again.stored_before == again.total
    assert any("0 cells run" in line for line in lines)


def test_analyze_prints_one_verdict_per_claim_and_the_recovery_table(smoke_results, tmp_path, capsys):
    root = tmp_path / "store"
    for part in ("cells", "metrics", "studies"):
        shutil.copytree(smoke_results[0] / part, root / part)
    shutil.copy(smoke_results[0] / "leaderboard.json", root / "leaderboard.json")
    assert main(["analyze", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert "primary verdicts (one per claim):" in out and "Less stable pruning, better generalization" in out
    assert "recovery: global_magnitude at 0.9 within 1.5 points of dense on" in out
    stored = pd.read_parquet(root / "claims" / "sanity.parquet")
    assert len(stored) == 2 * 2  # one row per (arch, dataset) of the smoke leaderboard
    primaries = json.loads((root / "claims" / "primary.json").read_text())
    assert [p["claim"] for p in primaries] == ["generalization_stability"]
    assert primaries[0]["verdict"] == "out of regime"  # one seed: no positive control, nothing decided
    assert "positive control failed" in primaries[0]["reason"] and "gates: fit" in out


def test_dense_parent_is_trained_once_per_arch_dataset_seed(smoke_results):
    root, _ = smoke_results
    cells, _ = prune_tables(root)
    cells = cells.reset_index()
    parents = [p for p in (root / "parents").iterdir() if (p / "parent.json").exists()]
    cells["recipe"] = [json.dumps(json.loads(s)["train"], sort_keys=True) for s in cells.spec_json]
    # one parent per (arch, dataset, seed, dense recipe), shared by every pruner and sparsity
    assert (
        len(parents)
        == cells.groupby(["arch", "dataset", "seed", "recipe"]).ngroups
        == cells.parent_id.nunique()
    )
    assert (cells.groupby("parent_id")[["arch", "dataset", "seed", "recipe"]].nunique() == 1).all().all()
    dense = pd.read_parquet(root / "metrics").query("phase == 'dense' and metric == 'accuracy'")
    dense = dense[dense.cell_id.isin(cells.cell_id)]
    # every cell of one parent carries the same dense numbers
    merged = dense.merge(cells[["cell_id", "parent_id"]], on="cell_id")
    assert (merged.groupby(["parent_id", "eval_set", "severity"])["value"].nunique() == 1).all()


def test_same_cell_twice_gives_identical_numbers(tmp_path):
    axes = load_preset("smoke").design.axes
    spec = CellSpec(
        "cnn_32x3", "digits", "random", 0.8, 3, train=axes.train, retrain_config=axes.retrain_config
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


def test_changing_one_pruner_default_changes_exactly_its_cell_ids(monkeypatch):
    """A pruner's hyperparameters enter the cell id through its resolved config: edit one default
    and exactly that pruner's cells get new ids (so run-all recomputes those and nothing else)."""
    import dataclasses

    from benchmarks.cells import cell_id as spec_id
    from pruners import PRUNERS

    before = {spec_id(c): c.pruner for c in load_preset("default").expand()}
    synflow = PRUNERS.get("synflow")
    edited = dataclasses.make_dataclass(
        "Config", [("rounds", int, dataclasses.field(default=99, metadata={"doc": "rounds"}))], frozen=True
    )
    monkeypatch.setattr(synflow, "Config", edited)
    after = {spec_id(c): c.pruner for c in load_preset("default").expand()}
    changed = {p for i, p in before.items() if i not in after}
    assert changed == {"synflow"}
    assert len(before) == len(after)
    assert sum(1 for p in before.values() if p == "synflow") == len(set(before) - set(after))


def test_preset_pruner_config_sets_a_hyperparameter_per_override(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        'datasets = ["digits"]\narchs = ["mlp_256x2"]\npruners = ["synflow"]\nsparsities = [0.5]\n'
        'seeds = [0]\nretrain = ["finetune"]\n[pruner_config]\nsynflow = { rounds = 7 }\n'
    )
    (cell,) = load_preset(str(path)).expand()
    assert cell.pruner_config == {"rounds": 7}
    path.write_text(path.read_text().replace("rounds = 7", "roundz = 7"))
    with pytest.raises(PresetError, match=r"sweep\.toml:\d+: key 'pruner_config'.*roundz.*valid: rounds"):
        load_preset(str(path))


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
    design = load_preset("default").design
    n = len(design.archs) * len(design.axes.sparsities) * len(design.axes.seeds) * len(design.axes.retrain)
    assert code == 0 and f"{n} cells" in out and f"0 already stored, {n} to run" in out
    assert not list((tmp_path / "cells").glob("*.parquet"))
    assert not tmp_path.exists() or not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_full_preset_dry_run_prints_cell_count_and_gpu_hours(tmp_path, capsys):
    code = main(["run-all", "--preset", "full", "--dry-run", "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    n = len(build_plan("full").cells)
    assert code == 0 and f"{n} cells" in out and f"0 already stored, {n} to run" in out
    hours = float(out.split("about ")[1].split(" GPU hours")[0])
    assert hours > 100, "160-epoch CIFAR training of thousands of cells is hundreds of GPU hours"
    assert not (tmp_path / "r").exists()


def test_a_changed_default_reruns_exactly_that_pruners_cells(tmp_path, monkeypatch):
    import dataclasses

    from pruners import PRUNERS

    preset = tmp_path / "two.toml"
    preset.write_text(
        'datasets = ["digits"]\narchs = ["mlp_256x2"]\npruners = ["synflow", "global_magnitude"]\n'
        'sparsities = [0.5, 0.9]\nseeds = [0]\nretrain = ["finetune"]\n'
        '[train]\nepochs = 2\n[retrain_config]\nepochs = 1\nrewind_epoch = 1\n[eval]\nsets = "clean"\n'
    )
    first = run_all(str(preset), str(tmp_path / "r"), workers=1, echo=lambda *_: None)
    assert first.ran == 4 and first.exit_code == 0
    edited = dataclasses.make_dataclass(
        "Config", [("rounds", int, dataclasses.field(default=50, metadata={"doc": "rounds"}))], frozen=True
    )
    monkeypatch.setattr(PRUNERS.get("synflow"), "Config", edited)
    second = run_all(str(preset), str(tmp_path / "r"), workers=1, echo=lambda *_: None)
    assert second.ran == 2 and second.stored_before == 2  # the two synflow cells, nothing else
    cells = pd.read_parquet(tmp_path / "r" / "cells")
    configs = set(cells[cells.pruner == "synflow"].pruner_config)
    assert configs == {'{"rounds":100}', '{"rounds":50}'}
