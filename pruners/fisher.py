"""``fisher``: diagonal empirical Fisher, the OBD saliency (LeCun, Denker & Solla, "Optimal
brain damage", NeurIPS 1990; Theis et al., "Faster gaze prediction with dense networks and
Fisher pruning", 2018).

OBD estimates the loss increase of deleting weight ``w_i`` at a minimum by the diagonal
second-order term ``0.5 * H_ii * w_i^2``; Theis et al. replace the Hessian by the empirical
Fisher information, the mean squared *per-example* gradient::

    F_ii = (1/N) sum_n (dL_n/dw_i)^2          s_i = 0.5 * F_ii * w_i^2

over the ``N`` examples of the training batches (model in eval mode, so examples are
independent). Ranked globally. A Linear layer's per-example gradient is the outer product
``delta_n a_n^T`` of its output gradient and input, so its Fisher is ``(delta^2)^T (a^2)``,
exact and cheap; conv layers (weights shared over positions) get true per-example
gradients from ``torch.func.vmap``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.masks import prunable_modules
from pruners.scoring import preserved

CHUNK = 128


def empirical_fisher(model, ctx: PruneContext) -> dict[str, torch.Tensor]:
    """Mean squared per-example gradient of every prunable layer's effective weight tensor.

    ``ctx.loss_fn`` must average over the batch (cross-entropy does): the summed loss is
    ``loss * batch_size``, whose output gradient row ``n`` is that of example ``n`` alone.
    """
    if len(ctx.batches) == 0:
        raise ValueError("fisher is data-dependent: PruneContext.batches is empty")
    modules = prunable_modules(model)
    linear = {n for n, m in modules.items() if isinstance(m, nn.Linear)}
    total = {n: torch.zeros_like(m.weight) for n, m in modules.items()}
    count = sum(int(x.shape[0]) for x, _ in ctx.batches)
    with preserved(model, train_mode=False):
        _linear_fisher(model, ctx, {n: modules[n] for n in linear}, total)
        _conv_fisher(model, ctx, {n: m for n, m in modules.items() if n not in linear}, total)
    return {n: t / count for n, t in total.items()}


def _linear_fisher(model, ctx: PruneContext, modules: dict[str, nn.Module], total: dict) -> None:
    if not modules:
        return
    inputs: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda mod, args, out, n=n: inputs.__setitem__(n, (args[0], out)))
        for n, m in modules.items()
    ]
    try:
        for x, y in ctx.batches:
            loss = ctx.loss_fn(model(x), y) * x.shape[0]
            outs = [inputs[n][1] for n in modules]
            deltas = torch.autograd.grad(loss, outs)
            for n, delta in zip(modules, deltas, strict=True):
                a = inputs[n][0].detach()
                total[n] += (delta.detach() ** 2).T @ (a**2)
    finally:
        for h in handles:
            h.remove()


def _conv_fisher(model, ctx: PruneContext, modules: dict[str, nn.Module], total: dict) -> None:
    if not modules:
        return
    keys = {n: f"{n}.weight_orig" if hasattr(m, "weight_mask") else f"{n}.weight" for n, m in modules.items()}
    masks = {n: m.weight_mask if hasattr(m, "weight_mask") else 1.0 for n, m in modules.items()}
    fixed = {k: v.detach() for k, v in [*model.named_parameters(), *model.named_buffers()]}
    trainable = {k: fixed[k] for k in keys.values()}

    def loss_one(w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **w}, (x.unsqueeze(0),))
        return ctx.loss_fn(out, y.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
    for x, y in ctx.batches:
        for i in range(0, x.shape[0], CHUNK):
            grads = per_example(trainable, x[i : i + CHUNK], y[i : i + CHUNK])
            for n, k in keys.items():  # d/d(orig) = mask * d/d(weight); masked entries are never kept
                total[n] += (grads[k].detach() ** 2).sum(0) * masks[n]


@register_pruner
class Fisher(ScorePruner):
    """Empirical-Fisher OBD: s = 0.5 * mean_n (dL_n/dw)^2 * w^2, global (LeCun 1990; Theis et al. 2018)."""

    name = "fisher"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        fisher = empirical_fisher(model, ctx)
        return {n: 0.5 * fisher[n] * w * w for n, w in weights(model).items()}
