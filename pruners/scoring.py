"""Shared machinery of data-dependent scores: gradients on training batches, state kept intact.

Scoring runs forward/backward passes on ``PruneContext.batches`` (training minibatches
only). It must leave the model exactly as it found it: ``preserved`` restores BatchNorm
running statistics, the train/eval flag and clears ``.grad``, so a score never changes the
network it scores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from pruners.base import PruneContext
from pruners.masks import dense_weight, prunable_modules


@contextlib.contextmanager
def preserved(model: nn.Module, train_mode: bool) -> Iterator[nn.Module]:
    """Run ``model`` in train (batch statistics) or eval mode, then restore buffers, mode and grads."""
    was_training = model.training
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    model.train(train_mode)
    try:
        yield model
    finally:
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
        for p in model.parameters():
            p.grad = None
        model.train(was_training)


def weight_gradients(model: nn.Module, ctx: PruneContext, train_mode: bool) -> dict[str, torch.Tensor]:
    """Mean over ``ctx.batches`` of ``dL/dw`` for every prunable layer's effective weight ``w``.

    ``L`` is ``ctx.loss_fn`` alone (no weight-decay term). The gradient is taken with respect
    to the weight the forward pass uses (``weight_orig * weight_mask`` once pruned), so it is
    the dense gradient even at masked positions.
    """
    if len(ctx.batches) == 0:
        raise ValueError("this pruner is data-dependent: PruneContext.batches is empty")
    modules = prunable_modules(model)
    total = {n: torch.zeros_like(dense_weight(m)) for n, m in modules.items()}
    with preserved(model, train_mode):
        for x, y in ctx.batches:
            loss = ctx.loss_fn(model(x), y)
            grads = torch.autograd.grad(loss, [m.weight for m in modules.values()])
            for n, g in zip(modules, grads, strict=True):
                total[n] += g.detach()
    return {n: g / len(ctx.batches) for n, g in total.items()}
