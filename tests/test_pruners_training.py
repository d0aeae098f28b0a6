"""During-training, phase and at-init pruners, run for real on tiny data, and the scores' formulas."""

import math

import pytest
import torch

from benchmarks.budget import BudgetMeter
from benchmarks.contract import context, make
from benchmarks.contract.session import all_masks
from benchmarks.pipeline import tensor_training
from benchmarks.retrain import retrain
from benchmarks.training import TrainConfig, train
from core.spec import RetrainConfig
from pruners import PRUNERS, PhasePruner, PruneContext, get_pruner
from pruners.gmp import cubic_sparsity, event_steps
from pruners.imp import round_targets
from pruners.lamp import lamp_scores
from pruners.masks import current_mask, prunable_modules, sparsity_stats
from pruners.random_erk import erk_densities
from pruners.structured import unit_sparsity
from tests.test_pruner_contract import ARCH_PARAMS

DURING = [p for p in PRUNERS.names() if PRUNERS.get(p).timing == "during_training"]
PHASE = [p for p in PRUNERS.names() if issubclass(PRUNERS.get(p), PhasePruner)]
SHAPE = (1, 40)
CONFIG = TrainConfig(epochs=2, batch_size=64, lr=1e-2, weight_decay=1e-4)


def data(n=256):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def sparse_run(pruner, arch, sparsity, seed=0, meter=None):
    """A during-training pruner's ``train_sparse`` from a fresh init, or a phase pruner's
    ``prune_with_phase`` on the trained parent (``meter`` counts what the run trains)."""
    x, y = data()
    parent = make(arch, SHAPE, seed)
    rewind = {k: v.clone() for k, v in parent.state_dict().items()}
    train(parent, x, y, CONFIG, seed)
    run = tensor_training(
        x, y, CONFIG, seed, rewind_epoch=0, rewind_state=rewind, parent_state=parent.state_dict(), meter=meter
    )
    ctx = PruneContext(seed, [(x[:64], y[:64])], 1e-4, input_shape=SHAPE)
    p = get_pruner(pruner)
    if isinstance(p, PhasePruner):
        p.prune_with_phase(parent, sparsity, ctx, run)
        return parent, x, y
    model = make(arch, SHAPE, seed)
    p.train_sparse(model, sparsity, ctx, run)
    return model, x, y


@pytest.mark.parametrize("pruner", DURING + PHASE)
@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_sparse_training_ends_at_target_and_masks_survive_retraining(pruner, arch):
    model, x, y = sparse_run(pruner, arch, 0.5)
    if PRUNERS.get(pruner).kind == "structured":
        assert unit_sparsity(model) == pytest.approx(0.5, abs=0.05)
    else:
        modules = prunable_modules(model)
        zeros = sum((current_mask(m) == 0).sum().item() for m in modules.values())
        total = sum(m.weight.numel() for m in modules.values())
        assert abs(zeros - 0.5 * total) <= len(modules)
    masks = all_masks(model)
    before = sparsity_stats(model)["achieved_sparsity"]
    retrain(model, x, y, "finetune", CONFIG, RetrainConfig(epochs=1), 0)
    assert sparsity_stats(model)["achieved_sparsity"] == before
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        module, _, buffer = name.rpartition(".")
        assert torch.equal(getattr(modules[module], buffer), mask)
        assert torch.all(getattr(modules[module], buffer[:-5])[mask == 0] == 0)


@pytest.mark.parametrize("pruner", DURING + PHASE)
def test_sparse_training_is_deterministic(pruner):
    a, _, _ = sparse_run(pruner, "mlp_256x2", 0.5)
    b, _, _ = sparse_run(pruner, "mlp_256x2", 0.5)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k


@pytest.mark.parametrize("pruner", PHASE)
def test_a_phase_trains_the_parent_for_its_declared_epochs(pruner):
    """The phase changes the trained parent's weights (it trains) and the budget meter counts
    exactly the epochs ``phase_epochs`` declares, which the scheduler reads."""
    meter = BudgetMeter(SHAPE)
    model, x, y = sparse_run(pruner, "mlp_256x2", 0.5, meter=meter)
    parent = make("mlp_256x2", SHAPE)
    train(parent, x, y, CONFIG, 0)
    kept = {n: m.weight_orig[current_mask(m).bool()] for n, m in prunable_modules(model).items()}
    before = {
        n: m.weight[current_mask(prunable_modules(model)[n]).bool()]
        for n, m in prunable_modules(parent).items()
    }
    assert any(not torch.equal(kept[n], before[n]) for n in kept)
    declared = get_pruner(pruner).phase_epochs(CONFIG)
    assert declared > 0 and meter.epochs == declared
    assert meter.flops > 0


def test_rigl_changes_the_mask_but_not_the_layer_sparsity():
    x, y = data()
    model = make("mlp_256x2", SHAPE)
    ctx = PruneContext(0, [(x[:64], y[:64])])
    initial = make("mlp_256x2", SHAPE)
    get_pruner("rigl").prune(initial, 0.9, ctx)
    get_pruner("rigl").train_sparse(
        model, 0.9, ctx, tensor_training(x, y, TrainConfig(epochs=4, batch_size=32), 0)
    )
    for n, m in prunable_modules(model).items():
        start = current_mask(prunable_modules(initial)[n])
        assert current_mask(m).sum() == start.sum()
    assert not torch.equal(current_mask(model.net[3]), current_mask(initial.net[3]))


def test_gmp_cubic_schedule():
    assert cubic_sparsity(0, 1000, 0.9) == 0.0
    assert cubic_sparsity(700, 1000, 0.9) == pytest.approx(0.9)
    mid = 100 + 300
    assert cubic_sparsity(mid, 1000, 0.9) == pytest.approx(0.9 * (1 - 0.5**3))
    steps = event_steps(1000)
    assert len(steps) == 10 and steps[-1] == 700 and steps[0] > 100


def test_imp_rounds_of_twenty_percent():
    assert round_targets(0.2) == pytest.approx([0.2])
    t = round_targets(0.5)
    assert t == pytest.approx([0.2, 0.36, 0.488, 0.5])
    assert len(round_targets(0.98)) == math.ceil(math.log(0.02) / math.log(0.8))


def test_imp_round_is_prune_trained_parent_rewind_and_retrain():
    """One round of imp equals doing it by hand: mask the trained parent's smallest 20% globally,
    reset the survivors to the rewind iterate (here the initialisation), retrain the recipe."""
    from benchmarks.retrain import load_rewind_weights

    model, x, y = sparse_run("imp", "mlp_256x2", 0.2)
    parent = make("mlp_256x2", SHAPE)
    init = {k: v.clone() for k, v in parent.state_dict().items()}
    train(parent, x, y, CONFIG, 0)
    get_pruner("global_magnitude").prune(parent, 0.2, context(SHAPE))
    load_rewind_weights(parent, init)
    train(parent, x, y, CONFIG, 0)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), parent.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k


def test_erk_densities_hit_the_budget_and_cap_at_one():
    shapes = {"a": (256, 40), "b": (256, 256), "c": (10, 256), "d": (32, 1, 5)}
    for s in (0.5, 0.9, 0.98):
        d = erk_densities(shapes, s)
        kept = sum(d[n] * math.prod(shape) for n, shape in shapes.items())
        assert kept == pytest.approx((1 - s) * sum(math.prod(x) for x in shapes.values()))
        assert all(0 < v <= 1 for v in d.values())
    assert erk_densities(shapes, 0.5)["d"] == 1.0  # the tiny first conv stays dense


def test_lamp_score_formula():
    w = torch.tensor([0.5, -2.0, 1.0, 0.1])
    s = lamp_scores(w)
    sq = w**2
    for i in range(4):
        assert s[i].item() == pytest.approx((sq[i] / sq[sq >= sq[i]].sum()).item())
    assert s[1] == 1.0


def test_undecayed_reduces_to_taylor_without_weight_decay_and_differs_with_it():
    shape = SHAPE
    ctx = context(shape)
    ctx.weight_decay = 0.0
    scores = {}
    for name in ("taylor", "undecayed"):
        scores[name] = get_pruner(name).scores(make("mlp_256x2", shape), ctx)
    for n in scores["taylor"]:
        torch.testing.assert_close(scores["taylor"][n], scores["undecayed"][n])
    ctx.weight_decay = 0.5
    decayed = get_pruner("undecayed").scores(make("mlp_256x2", shape), ctx)
    w = make("mlp_256x2", shape).net[1].weight.detach()
    g_part = scores["taylor"]["net.1"]  # |w g|
    assert torch.all(decayed["net.1"] <= g_part + 0.5 * w * w + 1e-6)
    assert not torch.allclose(decayed["net.1"], g_part)


def test_synflow_is_data_free():
    model_a, model_b = make("cnn_32x3", SHAPE), make("cnn_32x3", SHAPE)
    get_pruner("synflow").prune(model_a, 0.9, PruneContext(0, input_shape=SHAPE))
    get_pruner("synflow").prune(model_b, 0.9, context(SHAPE))
    assert all(
        torch.equal(current_mask(a), current_mask(b))
        for a, b in zip(prunable_modules(model_a).values(), prunable_modules(model_b).values(), strict=True)
    )


def test_grasp_prunes_the_weights_that_raise_gradient_flow_least():
    """Removing the weights GraSP keeps should hurt the gradient norm more than removing pruned ones
    (first-order check of the sign convention, on a tiny MLP)."""
    from pruners.grasp import hessian_gradient_product

    torch.manual_seed(0)
    model = make("mlp_256x2", SHAPE)
    ctx = context(SHAPE)
    hg = hessian_gradient_product(model, ctx)
    w = model.net[3].weight.detach()
    keep_score = (w * hg["net.3"]).flatten()
    assert keep_score.abs().sum() > 0
    # -w*Hg is the predicted change of the gradient norm when w is removed: GraSP removes the
    # weights whose removal increases it most, i.e. those with the lowest keep-score
    get_pruner("grasp").prune(model, 0.5, ctx)
    mask = current_mask(model.net[3]).flatten()
    removed, kept = keep_score[mask == 0], keep_score[mask == 1]
    assert removed.mean() < kept.mean()
