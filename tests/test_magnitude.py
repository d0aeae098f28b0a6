"""Magnitude pruners: global ranking, and the uniform allocation with the first conv dense."""

import pytest
import torch

from benchmarks.archs import build_arch
from pruners import PruneContext, get_pruner
from pruners.magnitude import first_convolution, uniform_sparsity
from pruners.masks import current_mask, prunable_modules


def _model(arch, shape, seed=0):
    torch.manual_seed(seed)
    return build_arch(arch, shape, 10)


def _zeros(model):
    return {n: int((current_mask(m) == 0).sum()) for n, m in prunable_modules(model).items()}


@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8)])
@pytest.mark.parametrize("arch", ["cnn_32x3_fc256", "resnet_16x3"])
def test_layer_magnitude_keeps_the_first_convolution_dense_and_meets_the_target(arch, shape):
    model = _model(arch, shape)
    first = first_convolution(model)
    assert first == next(iter(prunable_modules(model)))
    get_pruner("layer_magnitude").prune(model, 0.95, PruneContext(seed=0))
    zeros = _zeros(model)
    sizes = {n: m.weight_orig.numel() for n, m in prunable_modules(model).items()}
    assert zeros[first] == 0
    rest = uniform_sparsity(model, 0.95, first)
    assert rest > 0.95
    for name, size in sizes.items():
        if name != first:
            assert abs(zeros[name] - rest * size) <= 0.5  # the same fraction in every other layer
    total = sum(sizes.values())
    assert abs(sum(zeros.values()) - 0.95 * total) <= len(sizes)


def test_layer_magnitude_keeps_the_largest_weights_of_each_layer():
    model = _model("cnn_32x3_fc256", (1, 40))
    before = {n: m.weight.detach().abs().clone() for n, m in prunable_modules(model).items()}
    get_pruner("layer_magnitude").prune(model, 0.9, PruneContext(seed=0))
    for name, module in prunable_modules(model).items():
        mask = current_mask(module).bool()
        if (~mask).any():
            assert before[name][mask].min() >= before[name][~mask].max()


def test_an_mlp_has_no_dense_layer_and_every_layer_is_at_the_target():
    model = _model("mlp_256x2", (1, 40))
    assert first_convolution(model) is None
    get_pruner("layer_magnitude").prune(model, 0.9, PruneContext(seed=0))
    for name, module in prunable_modules(model).items():
        assert abs(_zeros(model)[name] - 0.9 * module.weight_orig.numel()) <= 0.5


def test_an_unreachable_target_names_the_dense_layer():
    model = _model("cnn_32x3", (1, 8, 8))  # first conv: 800 of 20,512 weights
    with pytest.raises(ValueError, match=r"features\.0.*the most it can reach is 0\.96"):
        get_pruner("layer_magnitude").prune(model, 0.97, PruneContext(seed=0))
    assert not any(hasattr(m, "weight_mask") for m in prunable_modules(model).values())
