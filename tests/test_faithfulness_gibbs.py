"""Gibbs pruning (Labach & Valaee 2020) against the algorithm re-derived from the paper and the
authors' code (j201/gibbs-pruning: ``GibbsPrunedConv2D.train_mask``, ``example.py``).

A real ``train_sparse`` run on a tiny MLP and on a tiny CNN records, at every training forward
pass, each layer's mask and the weights it masks. The test recomputes every step's mask from
the paper's unstructured Hamiltonian with its own tools: the authors' annealing
``np.logspace(0, 4, A)`` then ``10^4``, numpy's linear percentile for ``Q_p``, the authors'
``prune if U <= 1 / (1 + exp(beta (w^2 - Q_p)))`` and the documented uniform draws (one
``torch.rand`` of each pruned layer's shape per step, in layer order, from the cell's generator
with ``GIBBS_SALT``). Every recorded mask must equal the re-derived one, entry for entry.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.nets import MLP, SimpleCNN
from benchmarks.pipeline import tensor_training
from benchmarks.training import TrainConfig
from pruners import PruneContext, get_pruner
from pruners.gibbs import GIBBS_SALT, keep_probability
from pruners.masks import current_mask, prunable_modules

TRAIN = TrainConfig(epochs=3, batch_size=16, lr=1e-2, weight_decay=5e-4)
SPARSITY = 0.75


def record_run(model, shape, classes):
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(80, *shape, generator=g), torch.randint(0, classes, (80,), generator=g)
    seen = []

    def hook(module, args, out):
        if module.training:
            seen.append((module, module.weight_mask.clone(), module.weight_orig.detach().clone()))

    handles = [m.register_forward_hook(hook) for m in prunable_modules(model).values()]
    ctx = PruneContext(3, [(x[:32], y[:32])], 5e-4, input_shape=shape)
    run = tensor_training(x, y, TRAIN, 0)
    get_pruner("gibbs").train_sparse(model, SPARSITY, ctx, run)
    for h in handles:
        h.remove()
    return seen, ctx, run.steps_per_epoch * TRAIN.epochs


def fractions(model):
    """A first convolution stays dense; the other layers share the target (uniform allocation)."""
    modules = prunable_modules(model)
    first = next(iter(modules.values()))
    dense = isinstance(first, nn.Conv2d)
    total = sum(m.weight_orig.numel() for m in modules.values())
    rest = SPARSITY * total / (total - (first.weight_orig.numel() if dense else 0))
    return [(m, 0.0 if (dense and m is first) else rest) for m in modules.values()]


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_every_steps_mask_is_the_annealed_gibbs_sample(arch):
    torch.manual_seed(0)
    shape, classes = ((1, 12), 4) if arch == "mlp" else ((1, 6, 6), 4)
    model = MLP(shape, classes, 16, 2) if arch == "mlp" else SimpleCNN(shape, classes, 4, 2, hidden=16)
    seen, ctx, total = record_run(model, shape, classes)
    layers = fractions(model)
    per_step = len(layers)
    assert len(seen) == total * per_step  # one forward per step, every layer masked
    anneal = max(2, round(0.64 * total))
    betas = list(np.logspace(0, 4, anneal)) + [1e4] * (total - anneal)  # the authors' schedule
    g = ctx.generator(salt=GIBBS_SALT)
    for t in range(total):
        for k, (module, fraction) in enumerate(layers):
            seen_module, mask, w = seen[t * per_step + k]
            assert seen_module is module
            if fraction == 0.0:
                assert torch.all(mask == 1)  # the dense first convolution
                continue
            w2 = (w.double() ** 2).numpy()
            q = np.percentile(w2, 100 * fraction, method="linear")
            p_prune = 1.0 / (1.0 + np.exp(betas[t] * (w2 - q)))
            u = torch.rand(w.shape, generator=g).double().numpy()
            expected = torch.from_numpy((u > p_prune).astype(np.float32))
            assert torch.equal(mask, expected), (t, k, int((mask != expected).sum()))
    for module, fraction in layers:  # the end: beta -> infinity, the fraction of lowest w^2 removed
        w2 = module.weight_orig.detach().abs().flatten()
        removed = current_mask(module).flatten() == 0
        assert int(removed.sum()) == round(fraction * w2.numel())
        if 0 < removed.sum() < w2.numel():
            assert w2[removed].max() <= w2[~removed].min()


def test_keep_frequencies_follow_the_gibbs_probabilities():
    """Many draws at a fixed beta: each weight is kept with sigma(beta (w^2 - Q_p)) (binomial 5 sigma)."""
    w = torch.linspace(-1.0, 1.0, 41)
    beta, fraction, n = 8.0, 0.6, 4000
    q = float(np.percentile((w.double() ** 2).numpy(), 60, method="linear"))
    expected = torch.tensor([1 / (1 + math.exp(-beta * (float(v) ** 2 - q))) for v in w])
    assert torch.allclose(keep_probability(w**2, fraction, beta).double(), expected.double(), atol=1e-6)
    gibbs = get_pruner("gibbs")
    model = nn.Sequential(nn.Linear(41, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(w.view(1, -1))
    ctx = PruneContext(0, input_shape=(41,))
    g = ctx.generator(salt=GIBBS_SALT)
    kept = torch.zeros(41)
    for _ in range(n):
        gibbs.sample(model, {"0": fraction}, beta, ctx, g)
        kept += current_mask(model[0]).flatten()
    tol = 5 * torch.sqrt(expected * (1 - expected) / n) + 1e-9
    assert torch.all((kept / n - expected).abs() <= tol)
