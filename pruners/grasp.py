"""``grasp``: gradient signal preservation (Wang, Zhang & Grosse, "Picking winning tickets
before training by preserving gradient flow", ICLR 2020).

GraSP keeps the weights whose removal least reduces the gradient norm after pruning. With
``g = dL/dw`` and ``H`` the Hessian of the loss, removing weight ``i`` changes the gradient
flow ``g^T g`` by about ``-2 w_i (H g)_i``; the paper's score is ``S(-w) = -w * (H g)`` and
it removes the weights with the *largest* ``S``. Here the keep-score is its negative::

    s_i = w_i * (H g)_i ,        H g = d/dw [ g(w)^T stopgrad(g) ]

computed on training batches with the logits divided by a temperature ``T = 200`` (as in
the paper's code), network in train mode (running statistics restored). Ranked globally,
lowest ``s`` pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.masks import prunable_modules
from pruners.scoring import preserved


def hessian_gradient_product(model, ctx: PruneContext, temperature: float = 200.0) -> dict[str, torch.Tensor]:
    if len(ctx.batches) == 0:
        raise ValueError("grasp is data-dependent: PruneContext.batches is empty")
    modules = prunable_modules(model)
    with preserved(model, train_mode=True):
        g = None
        for x, y in ctx.batches:
            loss = ctx.loss_fn(model(x) / temperature, y)
            grads = torch.autograd.grad(loss, [m.weight for m in modules.values()])
            g = (
                [gi.detach() for gi in grads]
                if g is None
                else [a + b.detach() for a, b in zip(g, grads, strict=True)]
            )
        hg = [torch.zeros_like(gi) for gi in g]
        for x, y in ctx.batches:
            loss = ctx.loss_fn(model(x) / temperature, y)
            ws = [m.weight for m in modules.values()]
            grads = torch.autograd.grad(loss, ws, create_graph=True)
            z = sum((gi * g0).sum() for gi, g0 in zip(grads, g, strict=True))
            for acc, h in zip(hg, torch.autograd.grad(z, ws), strict=True):
                acc += h.detach()
    return dict(zip(modules, hg, strict=True))


@register_pruner
class Grasp(ScorePruner):
    """GraSP at init: keep-score s = w * (H g) (prunes largest -w*Hg), global (Wang et al. 2020)."""

    name = "grasp"
    timing = "at_init"
    scope = "global"

    @dataclass(frozen=True)
    class Config:
        temperature: float = param(200.0, "softmax temperature T of the Hessian-gradient product", gt=0.0)

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        hg = hessian_gradient_product(model, ctx, self.config.temperature)
        return {n: w * hg[n] for n, w in weights(model).items()}
