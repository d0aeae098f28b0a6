"""Structured pruners: the compact model is physically smaller and computes the same outputs."""

import pytest
import torch

from benchmarks.archs import build_arch, unit_groups
from benchmarks.contract import context, make
from benchmarks.contract.session import train_briefly
from benchmarks.training import TrainConfig, train
from pruners import PRUNERS, PruneContext, get_pruner
from pruners.ebn_filter import expected_relu
from pruners.structured import alive_units, compact_model, select_units
from tests.test_pruner_contract import ARCH_PARAMS, STRUCTURED

SHAPES = [(1, 40), (1, 8, 8)]


@pytest.mark.parametrize("pruner", STRUCTURED)
@pytest.mark.parametrize("arch", ARCH_PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=["1d", "2d"])
def test_compact_model_is_smaller_and_has_the_same_outputs(pruner, arch, shape):
    model = make(arch, shape)
    train_briefly(model, shape)  # non-trivial BatchNorm statistics
    p = get_pruner(pruner)
    p.prune(model, 0.6, context(shape))
    x = torch.randn(16, *shape)
    for stage in ("pruned", "retrained"):
        if stage == "retrained":
            train_briefly(model, shape)
        compact = p.compact(model)
        model.eval()
        compact.eval()
        assert sum(q.numel() for q in compact.parameters()) < sum(q.numel() for q in model.parameters()) * 0.8
        assert not any(n.endswith("_mask") for n, _ in compact.named_buffers())
        with torch.no_grad():
            torch.testing.assert_close(compact(x), model(x), rtol=1e-4, atol=1e-5)
        for g in unit_groups(model):  # producer outputs = units kept
            kept = int(alive_units(model, g).sum())
            assert compact.get_submodule(g.producer).weight.shape[0] == kept


def test_compact_removes_exactly_the_dead_units():
    model = make("cnn_32x3", (1, 40))
    get_pruner("l1_filter").prune(model, 0.5, context((1, 40)))
    small = compact_model(model)
    assert [small.get_submodule(f"features.{i}").out_channels for i in (0, 3, 6)] == [16, 16, 16]
    assert small.get_submodule("features.1").num_features == 16
    assert small.get_submodule("classifier.1").in_features == 16 * model.positions


def test_l1_filter_removes_the_smallest_l1_filters_per_layer():
    model = make("cnn_32x3", (1, 40))
    norms = {
        n: model.get_submodule(n).weight.detach().abs().flatten(1).sum(1)
        for n in ("features.0", "features.3")
    }
    get_pruner("l1_filter").prune(model, 0.25, context((1, 40)))
    for n, s in norms.items():
        alive = alive_units(model, next(g for g in unit_groups(model) if g.producer == n))
        assert int((~alive).sum()) == 8 and s[alive].min() >= s[~alive].max()


def test_ebn_expectation_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400_000, generator=g, dtype=torch.float64)
    for gamma, beta in [(1.0, 0.0), (0.5, -0.3), (-2.0, 1.0), (0.0, 0.7), (0.0, -0.7)]:
        mc = torch.relu(gamma * z + beta).mean()
        value = expected_relu(torch.tensor([beta]), torch.tensor([gamma]))
        assert value.item() == pytest.approx(mc.item(), abs=5e-3)


def test_global_unit_selection_keeps_one_unit_per_layer():
    model = make("cnn_32x3", (1, 40))
    scores = {g.producer: torch.full((32,), float(i)) for i, g in enumerate(unit_groups(model))}
    keep = select_units(model, scores, 0.97, "global")
    assert [int(k.sum()) for k in keep.values()] == [1, 1, 1]  # 93 of 96 removed, none emptied
    keep = select_units(model, scores, 0.5, "global")
    assert [int(k.sum()) for k in keep.values()] == [1, 15, 32]  # lowest-scoring layer goes first


def test_slimming_penalty_shrinks_bn_scales():
    shape = (1, 40)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, *shape, generator=g), torch.randint(0, 10, (256,), generator=g)
    from benchmarks.pipeline import tensor_training
    from pruners.slimming import unit_scales

    config = TrainConfig(epochs=3, batch_size=64, lr=1e-2, weight_decay=0.0)
    plain, slim = make("cnn_32x3", shape), make("cnn_32x3", shape)
    train(plain, x, y, config, seed=0)
    p = get_pruner("slimming", {"penalty": 1e-1})  # exaggerated so that three tiny epochs show it
    p.train_sparse(slim, 0.5, PruneContext(0, [(x[:32], y[:32])]), tensor_training(x, y, config, 0))
    total = lambda m: sum(s.sum() for s in unit_scales(m).values())
    assert total(slim) < 0.7 * total(plain)
    assert PRUNERS.get("slimming").kind == "structured"


def test_resnet_prunes_only_inner_convs():
    model = build_arch("resnet_16x3", (1, 40), 10)
    assert [g.producer for g in unit_groups(model)] == [f"blocks.{i}.conv1" for i in range(3)]
    assert all(g.consumer.endswith("conv2") and g.norm.endswith("bn1") for g in unit_groups(model))
