"""The pruner contract, parametrised over every registered pruner and architecture."""

import pytest
import torch

from benchmarks.archs import ARCHS, build_arch
from benchmarks.training import TrainConfig, train
from pruners import PRUNERS, PruneContext, get_pruner
from pruners.masks import current_mask, effective_weight, prunable_modules, sparsity_stats

SHAPES = {"1d": (1, 40), "2d": (1, 8, 8)}


def make(arch, shape, seed=0):
    torch.manual_seed(seed)
    return build_arch(arch, shape, 10)


def context(shape, seed=0):
    g = torch.Generator().manual_seed(123)
    batches = [
        (torch.randn(32, *shape, generator=g), torch.randint(0, 10, (32,), generator=g)) for _ in range(2)
    ]
    return PruneContext(seed=seed, batches=batches, weight_decay=1e-4)


@pytest.mark.parametrize("pruner", PRUNERS.names())
@pytest.mark.parametrize("arch", ARCHS.names())
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
def test_achieved_sparsity_matches_target(pruner, arch, sparsity):
    shape = SHAPES["1d"]
    model = make(arch, shape)
    get_pruner(pruner).prune(model, sparsity, context(shape))
    modules = prunable_modules(model)
    total = sum(m.weight_orig.numel() for m in modules.values())
    zeros = sum((current_mask(m) == 0).sum().item() for m in modules.values())
    # within one weight per layer of the target
    assert abs(zeros - sparsity * total) <= len(modules)
    assert sparsity_stats(model)["achieved_sparsity"] == pytest.approx(zeros / total)


@pytest.mark.parametrize("pruner", PRUNERS.names())
@pytest.mark.parametrize("arch", ARCHS.names())
def test_pruned_weights_stay_zero_through_training_and_rest_stays_dense(pruner, arch):
    shape = SHAPES["2d"]
    model = make(arch, shape)
    dense_biases = {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith("weight")}
    get_pruner(pruner).prune(model, 0.8, context(shape))
    masks = {n: current_mask(m).clone() for n, m in prunable_modules(model).items()}
    for n, p in model.named_parameters():
        if n in dense_biases:
            assert torch.equal(p, dense_biases[n]), f"{n} changed by pruning"
    x, y = torch.randn(256, *shape), torch.randint(0, 10, (256,))
    train(model, x, y, TrainConfig(epochs=2, batch_size=64, lr=1e-2, weight_decay=1e-3), seed=0)
    for name, module in prunable_modules(model).items():
        w = effective_weight(module)
        assert torch.all(w[masks[name] == 0] == 0), f"{pruner} on {arch}: {name} regrew"
        assert torch.equal(current_mask(module), masks[name])


@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_same_inputs_and_seed_give_same_masks(pruner):
    shape = SHAPES["1d"]
    masks = []
    for _ in range(2):
        model = make("cnn_32x3", shape)
        get_pruner(pruner).prune(model, 0.7, context(shape))
        masks.append([current_mask(m) for m in prunable_modules(model).values()])
    assert all(torch.equal(a, b) for a, b in zip(*masks, strict=True))


@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_pruner_declares_kind_timing_and_version(pruner):
    cls = PRUNERS.get(pruner)
    assert cls.kind in ("unstructured", "structured")
    assert cls.timing in ("after_training", "at_init", "during_training")
    assert isinstance(cls.version, str) and cls.version
    assert cls.__doc__ and cls.summary()
    import sys

    assert "et al" in (sys.modules[cls.__module__].__doc__ or ""), "module docstring must cite the paper"


def test_global_magnitude_keeps_the_largest_weights():
    model = make("mlp_256x2", SHAPES["1d"])
    before = {n: m.weight.detach().abs().clone() for n, m in prunable_modules(model).items()}
    get_pruner("global_magnitude").prune(model, 0.9, context(SHAPES["1d"]))
    kept = torch.cat([before[n][current_mask(m) == 1] for n, m in prunable_modules(model).items()])
    dropped = torch.cat([before[n][current_mask(m) == 0] for n, m in prunable_modules(model).items()])
    assert kept.min() >= dropped.max()


def test_random_differs_between_seeds():
    shape = SHAPES["1d"]
    masks = []
    for seed in (0, 1):
        model = make("mlp_256x2", shape)
        get_pruner("random").prune(model, 0.5, context(shape, seed))
        masks.append(current_mask(prunable_modules(model)["net.1"]))
    assert not torch.equal(*masks)
