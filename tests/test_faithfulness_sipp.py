"""``sipp`` against the paper's algorithm written out independently (Baykal, Liebenwein et al.,
"SiPPing Neural Networks", 2019; the deterministic SiPPNet of lucaslie/torchprune).

Reference (``tests/sensitivity_reference.py``, explicit loops): ``s_fj = max_{x in S} mean_p g_fjp``
on the first ``|S| = ceil(C log(8 eta* eta / delta))`` training examples, the network in eval
mode; the allocation keeps the global top ``(1 - s) n`` sensitivities, which fixes each layer's
sample size. Tolerances: sensitivities to 1e-5 relative (the network's forward pass is float32,
the reference's float64; both compute the sensitivities in float64), masks and per-layer sample
sizes exactly, at sparsities whose cut is not within 1e-4 of a tie.
"""

import pytest
import torch

from pruners import PruneContext, get_pruner
from pruners.masks import current_mask, prunable_modules
from tests.sensitivity_reference import TINY_ETAS, contributions, data, layer_inputs, sample_size, tiny_cnn

C = 0.5  # a small C, so that |S| (24 here) is below the 30 examples given and the cut is tested


def context(n=30):
    x = data(n)
    y = torch.arange(n) % 3
    return PruneContext(seed=0, batches=[(x[:15], y[:15]), (x[15:], y[15:])])


@pytest.fixture(scope="module")
def reference():
    model = tiny_cnn()
    size = sample_size(TINY_ETAS, 1e-16, C)
    assert 0 < size < 30
    inputs = layer_inputs(model, data(30)[:size])
    out = {}
    for name in ("conv1", "conv2", "fc1", "fc2"):
        weight = getattr(model, name).weight.detach()
        g = contributions(weight.flatten(1), inputs[name])  # (parts, F, J, P)
        out[name] = g.mean(-1).amax(0).view(weight.shape)
    return out


def test_sample_size_follows_the_papers_formula():
    from pruners.sensitivity import sample_size as module_size

    model = tiny_cnn()
    for delta, c in ((1e-16, 3.0), (1e-12, 3.0), (1e-16, C)):
        assert module_size(model, (2, 1, 8), delta, c) == sample_size(TINY_ETAS, delta, c)
    assert sample_size(TINY_ETAS, 1e-16, 3.0) == 140  # the authors' defaults on this model


def test_sensitivities_equal_the_reference(reference):
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = get_pruner("sipp", {"c_constant": C}).scores(model, context())
    assert scores.keys() == reference.keys()
    for name, ref in reference.items():
        assert scores[name].shape == ref.shape
        torch.testing.assert_close(scores[name].double(), ref, rtol=1e-5, atol=1e-7)
        assert float(ref.max()) <= 1.0 + 1e-12 and float(ref.min()) >= 0.0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("sparsity", [0.3, 0.6])
def test_masks_and_per_layer_sample_sizes_equal_the_reference(reference, sparsity):
    flat = torch.cat([r.flatten() for r in reference.values()])
    k = round(sparsity * flat.numel())
    ordered = torch.sort(flat).values
    assert ordered[k] - ordered[k - 1] > 1e-4  # no (near) tie at the cut: the mask is unique
    threshold = ordered[k - 1]
    model = tiny_cnn()
    get_pruner("sipp", {"c_constant": C}).prune(model, sparsity, context())
    modules = prunable_modules(model)
    sizes = {}
    for name, ref in reference.items():
        mask = current_mask(modules[name])
        assert torch.equal(mask.bool(), ref > threshold), name
        sizes[name] = int(mask.sum())
    assert sizes == {n: int((r > threshold).sum()) for n, r in reference.items()}
    assert sum(sizes.values()) == flat.numel() - k
    assert len(set(sizes.values())) > 1  # the layers get different budgets


def test_all_examples_are_used_when_fewer_than_the_sample_size(reference):
    model = tiny_cnn()
    inputs = layer_inputs(model, data(30))
    scores = get_pruner("sipp").scores(model, context())  # |S| = 140 > 30
    changed = 0.0
    for name, ref in reference.items():
        weight = getattr(model, name).weight.detach()
        expected = contributions(weight.flatten(1), inputs[name]).mean(-1).amax(0).view(weight.shape)
        torch.testing.assert_close(scores[name].double(), expected, rtol=1e-5, atol=1e-7)
        changed = max(changed, float((expected - ref).abs().max()))
    assert changed > 1e-3  # the 6 further examples matter
