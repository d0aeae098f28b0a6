"""The cell pipeline for each pruner timing, and the per-pruner axes of presets ([[override]])."""

import pytest
import torch

from benchmarks.matrix import PresetError, load_preset
from benchmarks.pipeline import run_cell, train_parent
from benchmarks.training import TrainConfig
from core.spec import CellSpec, RetrainConfig
from pruners import PRUNERS

TRAIN = TrainConfig(epochs=2, batch_size=128)
RETRAIN = RetrainConfig(epochs=1, rewind_epoch=1)


@pytest.fixture(scope="module")
def parent():
    spec = CellSpec("mlp_256x2", "digits", "random", 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    return train_parent(spec.parent)


def value(rows, phase, metric, eval_set="model"):
    found = [
        r["value"]
        for r in rows
        if r["phase"] == phase and r["metric"] == metric and r["eval_set"] == eval_set
    ]
    assert len(found) == 1, (phase, metric, found)
    return found[0]


@pytest.mark.parametrize("pruner", ["lamp", "snip", "gmp", "imp", "l1_filter", "slimming"])
def test_every_timing_runs_through_the_pipeline(pruner, parent):
    spec = CellSpec("mlp_256x2", "digits", pruner, 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    result = run_cell(spec, parent.state, parent.rewind_state)
    assert {r["phase"] for r in result.rows} == {"pruned", "retrained"}
    assert set(result.seconds) == {"prune", "retrain", "eval"}
    for phase in ("pruned", "retrained"):
        assert 0.0 <= value(result.rows, phase, "accuracy", "test") <= 1.0
        if PRUNERS.get(pruner).kind == "structured":
            assert value(result.rows, phase, "unit_sparsity") == pytest.approx(0.5, abs=0.01)
            assert value(result.rows, phase, "achieved_sparsity") > 0.5  # rows and the next layer's columns
        else:
            assert value(result.rows, phase, "achieved_sparsity") == pytest.approx(0.5, abs=1e-3)
            assert not [r for r in result.rows if r["metric"] == "unit_sparsity"]


def test_at_init_starts_from_the_parents_initialisation_and_trains_from_scratch(parent):
    spec = CellSpec("mlp_256x2", "digits", "random_erk", 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    a = run_cell(spec, parent.state, parent.rewind_state)
    b = run_cell(spec, {k: torch.zeros_like(v) for k, v in parent.state.items()}, None)
    assert a.rows == b.rows  # the trained parent plays no part in an at-init cell
    # from-scratch training with the dense recipe learns (digits: far above chance)
    assert value(a.rows, "retrained", "accuracy", "test") > 0.5


def test_imp_uses_the_parent_and_its_rewind_iterate(parent):
    spec = CellSpec("mlp_256x2", "digits", "imp", 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    with pytest.raises(ValueError, match="rewind"):
        run_cell(spec, parent.state, None)


def test_default_preset_budgets():
    p = load_preset("default")
    cells = [c for c in p.expand() if c.study == "prune"]
    stability = [c for c in p.expand() if c.study == "stability"]
    assert set(p.pruners) == set(PRUNERS.names())
    assert len({c.seed for c in stability}) >= 5  # the claims tests need 5 seeds per schedule
    for name in PRUNERS.names():
        mine = [c for c in cells if c.pruner == name]
        assert mine, name
        timing = PRUNERS.get(name).timing
        if timing == "after_training":
            assert {c.retrain for c in mine} >= {"finetune", "lr_rewind"}
            assert {c.sparsity for c in mine} == set(p.sparsities)
        else:  # from scratch: one retrain value, a shorter stated recipe
            assert len({c.retrain for c in mine}) == 1
            epochs = {c.train.epochs for c in mine}
            assert len(epochs) == 1 and epochs.pop() < p.train.epochs
    assert len(cells) <= 2016


GOOD = """datasets = ["digits"]
archs = ["mlp_256x2"]
pruners = ["random", "snip", "imp"]
sparsities = [0.5, 0.9]
seeds = [0, 1]
retrain = ["finetune", "lr_rewind"]
[train]
epochs = 4

[[override]]
pruners = ["imp"]
sparsities = [0.5]
train = { epochs = 2 }

[[override]]
timing = "at_init"
retrain = ["finetune"]
"""


def test_override_replaces_axes_of_the_selected_pruners(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    cells = load_preset(str(path)).expand()
    by = {n: [c for c in cells if c.pruner == n] for n in ("random", "snip", "imp")}
    assert len(by["random"]) == 2 * 2 * 2 and {c.train.epochs for c in by["random"]} == {4}
    assert len(by["snip"]) == 2 * 2 * 1 and {c.retrain for c in by["snip"]} == {"finetune"}
    assert len(by["imp"]) == 1 * 2 * 2 and {c.train.epochs for c in by["imp"]} == {2}
    assert {c.train.batch_size for c in by["imp"]} == {128}  # merged over the top-level [train]
    assert by["imp"][0].parent.id != by["random"][0].parent.id


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('timing = "at_init"', 'timing = "at_lunch"'), "override[1].timing"),
        (('pruners = ["imp"]', 'pruners = ["impp"]'), "override[0].pruners"),
        (("sparsities = [0.5]\n", "sparsities = [1.5]\n"), "override[0].sparsities"),
        (("train = { epochs = 2 }", "train = { epochz = 2 }"), "override[0].train"),
        (('retrain = ["finetune"]\n', 'retrain = ["nope"]\n'), "override[1].retrain"),
        (('timing = "at_init"', 'timing = "at_init"\npruners = ["snip"]'), "give exactly one of"),
        (('timing = "at_init"', 'timing = "at_init"\ncolour = 1'), "override[1].colour"),
    ],
)
def test_bad_override_names_file_line_and_key(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(PresetError, match=r"bad\.toml:\d+: key") as err:
        load_preset(str(path))
    assert message in str(err.value)
