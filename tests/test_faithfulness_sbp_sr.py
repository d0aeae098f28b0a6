"""SBP-SR (Hayou et al., ICLR 2021) against the paper's algorithm, re-derived here.

No code by the authors is public; the reference is the paper: (1) the ReLU edge-of-chaos
initialisation ``W ~ N(0, 2 / fan_in)``, (2) sensitivity-based pruning ``|w dL/dw|`` ranked
globally (SNIP), (3) the rescaling trick, ``rho_beta^2 = sum_ij W_ij beta^2 / sum_ij W_ij beta^2
delta_ij beta`` per layer and kernel position. The test recomputes the SNIP scores with its own
autograd pass and the factors with its own sums; the mask must be equal and the kept weights
equal to ``rho * W`` (relative 1e-6). The paper's claim for the trick, that the rescaled sparse
network is back on the edge of chaos, is checked on a deep ReLU MLP pruned at random (a mask
independent of the signal, as the paper's mean-field argument assumes): its pre-activation
variance at every depth stays within a factor 3 of the dense network's, the unrescaled one's
collapses geometrically.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.nets import MLP, SimpleCNN
from pruners import PruneContext, get_pruner
from pruners.masks import current_mask, prunable_modules, refresh_masked
from pruners.sbp_sr import EOC_SALT, eoc_initialise, rescale


def batches(shape, classes, seed=2):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(32, *shape, generator=g), torch.randint(0, classes, (32,), generator=g))
        for _ in range(2)
    ]


def snip_scores(model, data):
    """|w * mean_b dL_b/dw| in train mode (the network's state restored afterwards)."""
    model = copy.deepcopy(model).train()
    layers = list(prunable_modules(model).values())
    grads = [torch.zeros_like(m.weight) for m in layers]
    for x, y in data:
        g = torch.autograd.grad(F.cross_entropy(model(x), y), [m.weight for m in layers])
        grads = [a + b for a, b in zip(grads, g, strict=True)]
    return [(m.weight.detach() * (gr / len(data))).abs() for m, gr in zip(layers, grads, strict=True)]


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_mask_is_snip_on_the_eoc_init_and_kept_weights_are_rescaled(arch):
    torch.manual_seed(0)
    shape, classes = ((1, 24), 5) if arch == "mlp" else ((1, 8, 8), 5)
    model = MLP(shape, classes, 32, 2) if arch == "mlp" else SimpleCNN(shape, classes, 8, 2, hidden=32)
    data = batches(shape, classes)
    ctx = PruneContext(7, data, input_shape=shape)
    reference = copy.deepcopy(model)
    eoc_initialise(reference, ctx.generator(salt=EOC_SALT))  # step 1, checked on its own below
    scores = snip_scores(reference, data)
    flat = torch.cat([s.flatten() for s in scores]).double()
    k = round(0.9 * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    keep[torch.argsort(flat, stable=True)[:k]] = False

    get_pruner("sbp_sr").prune(model, 0.9, ctx)

    offset = 0
    for m, ref in zip(prunable_modules(model).values(), prunable_modules(reference).values(), strict=True):
        w = ref.weight.detach().double()
        delta = keep[offset : offset + w.numel()].view_as(w)
        offset += w.numel()
        assert torch.equal(current_mask(m).bool(), delta)
        rho = torch.ones_like(w)
        for pos in torch.cartesian_prod(*[torch.arange(d) for d in w.shape[2:]]) if w.dim() > 2 else [()]:
            index = (slice(None), slice(None), *[int(p) for p in torch.atleast_1d(pos)])
            dense, kept = (w[index] ** 2).sum(), (w[index] ** 2 * delta[index]).sum()
            rho[index] = torch.sqrt(dense / kept) if kept > 0 else 1.0
        assert torch.allclose(m.weight_orig.detach().double()[delta], (rho * w)[delta], rtol=1e-6, atol=0)
        assert torch.all(m.weight[~delta] == 0)


def test_eoc_initialisation_is_he_normal():
    layer = nn.Linear(400, 300)
    eoc_initialise(nn.Sequential(layer), torch.Generator().manual_seed(0))
    w = layer.weight.detach()
    assert abs(float(w.mean())) < 0.002
    assert float(w.std()) == pytest.approx((2 / 400) ** 0.5, rel=0.02)


def deep_variances(model, x):
    """The pre-activation variance of every linear layer, input to output."""
    out = []
    hooks = [
        m.register_forward_hook(lambda m, a, o: out.append(float(o.var())))
        for m in model
        if isinstance(m, nn.Linear)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return out


def test_rescaling_puts_a_pruned_network_back_on_the_edge_of_chaos():
    """The paper's Proposition (the rescaled sparse network is on the EOC) for a mask that does
    not depend on the signal, as its mean-field argument assumes: a 16-layer ReLU MLP on the EOC,
    90% of each layer removed at random, keeps the dense network's pre-activation variance at
    every depth when rescaled (within a factor 3: finite-width fluctuations compound over the
    layers) and loses it geometrically when not (by 10^-6 and more at depth 16)."""
    depth, width = 16, 256
    layers = [nn.Linear(32, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    torch.manual_seed(1)
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)  # the EOC of ReLU: sigma_b = 0
    ctx = PruneContext(0, batches((32,), 10), input_shape=(32,))
    x = torch.randn(512, 32, generator=torch.Generator().manual_seed(9))
    eoc_initialise(model, ctx.generator(salt=EOC_SALT))
    dense = deep_variances(model, x)
    plain = copy.deepcopy(model)
    get_pruner("random").prune(plain, 0.9, ctx)
    refresh_masked(plain)  # masked weights as graph leaves, so the model can be copied
    rescaled = copy.deepcopy(plain)
    rescale(rescaled)
    for q_dense, q_rescaled in zip(dense, deep_variances(rescaled, x), strict=True):
        assert 1 / 3 < q_rescaled / q_dense < 3.0, (q_rescaled, q_dense)
    assert deep_variances(plain, x)[depth - 1] / dense[depth - 1] < 1e-6
