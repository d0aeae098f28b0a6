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


@pytest.mark.parametrize("pruner", ["lamp", "snip", "gmp", "imp", "l1_filter", "slimming", "greg1_filter"])
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


def test_a_phase_pruner_trains_the_parent_and_every_phase_epoch_is_charged(parent):
    """GReg-1 (a PhasePruner) starts from the trained parent, trains its phase (charged as
    epochs_prune on top of the parent's epochs), ends at the target; the scheduler counts the
    phase; the mask controls apply to its final masks."""
    from benchmarks.cells import cell_epochs
    from core.spec import EvalConfig

    spec = CellSpec(
        "mlp_256x2", "digits", "greg1", 0.5, 0, train=TRAIN, retrain_config=RETRAIN,
        pruner_config={"epochs": 2}, eval=EvalConfig(sets="clean"),
    )  # fmt: skip
    budget = (parent.epochs, parent.flops)
    result = run_cell(spec, parent.state, parent.rewind_state, parent_budget=budget)
    assert result.budget["epochs_dense"] == TRAIN.epochs
    assert result.budget["epochs_prune"] == 2
    assert result.budget["epochs_retrain"] == RETRAIN.epochs
    assert result.budget["train_flops"] > parent.flops
    assert value(result.rows, "pruned", "achieved_sparsity") == pytest.approx(0.5, abs=1e-3)
    assert value(result.rows, "pruned", "accuracy", "test") > 0.5  # the parent's knowledge kept
    assert cell_epochs(spec) == 2 + RETRAIN.epochs
    assert cell_epochs(spec.with_(control="reinit")) == 2 + TRAIN.epochs
    for control in ("shuffle_layer", "invert", "reinit"):
        other = run_cell(spec.with_(control=control), parent.state, parent.rewind_state, parent_budget=budget)
        assert other.budget["epochs_prune"] == 2, control
        assert value(other.rows, "pruned", "achieved_sparsity") == pytest.approx(0.5, abs=1e-3), control
        assert other.rows != result.rows, control


def test_imp_uses_the_parent_and_its_rewind_iterate(parent):
    spec = CellSpec("mlp_256x2", "digits", "imp", 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    with pytest.raises(ValueError, match="rewind"):
        run_cell(spec, parent.state, None)


def test_default_preset_budgets():
    """The leaderboard: every pruner on the common grid, one retraining recipe; from-scratch
    pruners on the stated shorter recipe. The studies: seeds by their power rule."""
    from collections import Counter

    from benchmarks.designs import load_study

    p = load_preset("default")
    cells = p.expand()
    assert set(p.design.pruners) == set(PRUNERS.names())
    for name in PRUNERS.names():
        mine = [c for c in cells if c.pruner == name]
        assert {c.sparsity for c in mine} == set(p.grid), name
        assert {c.retrain for c in mine} == {"finetune"}
        if PRUNERS.get(name).timing == "after_training":
            assert {c.train.epochs for c in mine} == {30}
            assert {(c.retrain_config.epochs, c.retrain_config.patience) for c in mine} == {(30, 4)}
        else:
            assert {c.train.epochs for c in mine} == {6}
        assert {c.retrain_config.selection for c in mine} == {"best_val_loss"}
    intensification = load_study("intensification").cells
    seeds = Counter((c.dataset, c.arch, c.pruner) for c in intensification if c.sparsity == 0.98)
    assert seeds["mnist5k", "lenet5", "global_magnitude"] == 30
    assert seeds["mnist5k", "lenet5", "undecayed"] == 20
    mlp = ("mnist1d", "mlp_256x2")
    assert seeds[(*mlp, "global_magnitude")] == seeds[(*mlp, "undecayed")] == 10
    stability = load_study("stability").cells
    per_config = Counter((s.target, s.variant, s.every) for s in stability)
    assert min(per_config.values()) >= 8  # the paper: 10 runs per configuration; 8 in the CPU budget
    assert len({c.seed for c in load_study("mask_sanity").cells}) >= 8


def test_mask_controls_keep_densities_or_weights(parent):
    """shuffle_layer keeps each layer's density and changes the mask; invert keeps the weights the
    scores rank lowest; reinit keeps the mask and draws new weights, then trains from scratch."""
    from benchmarks.controls import reinitialise, shuffle_within_layers
    from benchmarks.datasets import load_dataset
    from benchmarks.pipeline import load_parent_model, prune_context
    from pruners import get_pruner
    from pruners.masks import current_mask, prunable_modules

    spec = CellSpec("mlp_256x2", "digits", "global_magnitude", 0.5, 0, train=TRAIN, retrain_config=RETRAIN)
    data = load_dataset("digits")

    def pruned(control="none"):
        model = load_parent_model(spec.parent, {k: v.clone() for k, v in parent.state.items()})
        ctx = prune_context(spec.with_(control=control), data)
        get_pruner("global_magnitude").prune(model, 0.5, ctx)
        return model, ctx

    base, ctx = pruned()
    shuffled, _ = pruned()
    shuffle_within_layers(shuffled, ctx.generator(salt=1))
    inverted, _ = pruned("invert")
    for (name, m0), m1 in zip(
        prunable_modules(base).items(), prunable_modules(shuffled).values(), strict=True
    ):
        assert current_mask(m1).sum() == current_mask(m0).sum(), name  # densities kept
        assert not torch.equal(current_mask(m1), current_mask(m0)), name
    kept = torch.cat(
        [m.weight_orig[m.weight_mask.bool()].abs().flatten() for m in prunable_modules(base).values()]
    )
    kept_inv = torch.cat(
        [m.weight_orig[m.weight_mask.bool()].abs().flatten() for m in prunable_modules(inverted).values()]
    )
    assert kept_inv.max() <= kept.min() + 1e-6  # inversion keeps the smallest magnitudes
    fresh, _ = pruned()
    reinitialise(fresh, "mlp_256x2", data, 0, "cpu")
    for m0, m1 in zip(prunable_modules(base).values(), prunable_modules(fresh).values(), strict=True):
        assert torch.equal(current_mask(m0), current_mask(m1))
        assert not torch.equal(m0.weight_orig, m1.weight_orig)
        assert torch.all(m1.weight[current_mask(m1) == 0] == 0)
    result = run_cell(spec.with_(control="reinit"), parent.state, parent.rewind_state)
    assert not [r for r in result.rows if r["metric"] == "kept_epoch"]  # trained from scratch
    assert result.budget["epochs_retrain"] == TRAIN.epochs


class DictCache:
    def __init__(self):
        self.states, self.gets = {}, 0

    def get(self, key):
        self.gets += 1
        return self.states.get(key)

    def put(self, key, state):
        self.states[key] = {k: v.clone() for k, v in state.items()}


def test_imp_cells_share_their_rounds_and_equal_unshared_ones(parent):
    """IMP at 0.9 after IMP at 0.8 resumes from the shared rounds; its numbers and its budget equal
    an IMP run that computed every round itself."""
    cache = DictCache()
    at = {
        s: CellSpec("mlp_256x2", "digits", "imp", s, 0, train=TRAIN, retrain_config=RETRAIN)
        for s in (0.8, 0.9)
    }
    run_cell(at[0.8], parent.state, parent.rewind_state, state_cache=cache)
    assert len(cache.states) == 7  # the full rounds below 0.8 (8 rounds, the last clipped)
    shared = run_cell(at[0.9], parent.state, parent.rewind_state, state_cache=cache)
    alone = run_cell(at[0.9], parent.state, parent.rewind_state)
    assert shared.rows == alone.rows
    assert shared.budget == alone.budget and alone.budget["epochs_prune"] == 11 * (TRAIN.epochs - 1)


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
