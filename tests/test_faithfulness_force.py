"""``force`` and ``iter_snip`` against the paper's iteration written out independently (de Jorge et
al., "Progressive Skeletonization", ICLR 2021; naver/force ``iterative_pruning``).

Reference: a functional three-layer MLP, ``T`` steps, step ``t`` keeping ``k_t n`` weights
(``k_t = kappa^(t/T)``, or ``1 - t (1 - kappa) / T``), the gradient of the cross-entropy taken at
the masked weights ``w0 * m`` on the step's minibatch (the training examples in batches of
``batch_size``, cycled), the saliency ``|w0 * g|`` (FORCE: every weight, pruned or not) or
``|w * g|`` with pruned weights never chosen again (Iter SNIP), the global top ``k_t n`` kept.
Tolerance: the final masks equal the reference's exactly.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruners import PruneContext, get_pruner
from pruners.masks import current_mask


def mlp():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 3))


def examples():
    g = torch.Generator().manual_seed(4)
    return torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)


def context():
    x, y = examples()
    return PruneContext(seed=0, batches=[(x[:20], y[:20]), (x[20:], y[20:])])


def reference(sparsity, steps, mode, batch_size, recover):
    model = mlp()
    w0 = [model[i].weight.detach() for i in (0, 2, 4)]  # float32, as the network
    b = [model[i].bias.detach() for i in (0, 2, 4)]
    x, y = examples()
    batches = [
        (x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, 40 - batch_size + 1, batch_size)
    ]
    total = sum(w.numel() for w in w0)
    masks = [torch.ones_like(w) for w in w0]
    kappa = 1 - sparsity
    for t in range(1, steps + 1):
        keep_frac = kappa ** (t / steps) if mode == "exp" else 1 - t * (1 - kappa) / steps
        keep = total - round((1 - keep_frac if t < steps else sparsity) * total)
        xb, yb = batches[(t - 1) % len(batches)]
        w = [(wi * m).requires_grad_(True) for wi, m in zip(w0, masks, strict=True)]
        h = F.relu(xb @ w[0].T + b[0])
        h = F.relu(h @ w[1].T + b[1])
        loss = F.cross_entropy(h @ w[2].T + b[2], yb)
        grads = torch.autograd.grad(loss, w)
        if recover:  # FORCE: the initial weights, every connection a candidate
            saliency = [(wi * g).abs() for wi, g in zip(w0, grads, strict=True)]
        else:  # Iter SNIP: the current weights, pruned connections never return
            saliency = [
                torch.where(m > 0, (wi.detach() * g).abs(), -1.0)
                for wi, g, m in zip(w, grads, masks, strict=True)
            ]
        flat = torch.cat([s.flatten() for s in saliency])
        ordered = torch.sort(flat, descending=True).values
        assert ordered[keep - 1] - ordered[keep] > 1e-6 * ordered[keep - 1]  # no (near) tie at the cut
        masks = [(s >= ordered[keep - 1]).float() for s in saliency]
    return masks


@pytest.mark.parametrize(
    ("name", "recover"), [("force", True), ("iter_snip", False)]
)  # fmt: skip
@pytest.mark.parametrize(("mode", "sparsity"), [("exp", 0.9), ("linear", 0.8)])
def test_masks_equal_the_reference(name, recover, mode, sparsity):
    config = {"steps": 7, "mode": mode, "batch_size": 16, "batches_per_step": 1}
    expected = reference(sparsity, 7, mode, 16, recover)
    model = mlp()
    get_pruner(name, config).prune(model, sparsity, context())
    masks = [current_mask(model[i]) for i in (0, 2, 4)]
    for got, want in zip(masks, expected, strict=True):
        assert torch.equal(got, want)


def test_force_lets_pruned_weights_return_and_iter_snip_does_not():
    config = {"steps": 7, "mode": "exp", "batch_size": 16, "batches_per_step": 1}
    force = mlp()
    get_pruner("force", config).prune(force, 0.9, context())
    one_step = reference(1 - (1 - 0.9) ** (1 / 7), 1, "exp", 16, True)  # FORCE's mask after its first step
    final = [current_mask(force[i]) for i in (0, 2, 4)]
    returned = sum(int(((a == 0) & (b == 1)).sum()) for a, b in zip(one_step, final, strict=True))
    assert returned > 0  # weights pruned at step 1 are back in the final FORCE mask
    snip = mlp()
    get_pruner("iter_snip", config).prune(snip, 0.9, context())
    assert any(not torch.equal(current_mask(snip[i]), m) for i, m in zip((0, 2, 4), final, strict=True))
