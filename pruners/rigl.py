"""``rigl``: dynamic sparse training, "Rigging the lottery" (Evci, Gale, Menick, Castro &
Elsen, "Rigging the lottery: making all tickets winners", ICML 2020).

The network is sparse from the first step: a random mask with the ERK layer densities (see
``random_erk``) at the target sparsity. Every ``dt`` steps until ``T_end`` each layer
drops the fraction ``alpha_t`` of its active weights with the smallest magnitude and grows
as many inactive ones with the largest dense-gradient magnitude::

    drop: lowest |w| among active        grow: highest |dL/dw| among inactive
    alpha_t = (alpha / 2) * (1 + cos(pi * t / T_end)),   alpha = 0.3

Grown weights start at zero. By default (``Config``) ``T_end = 75%`` of the run's steps, 10 updates
(``dt = T_end / 10``), and the dense gradient is that of one seeded training minibatch.
Layer sparsities never change, so the run ends at the target exactly. The optimizer's
moment estimates of a regrown weight are not reset (a small simplification).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner
from pruners.masks import apply_masks, current_mask, dense_weight, prunable_modules
from pruners.random_erk import erk_densities, random_masks


def drop_fraction(step: int, end: int, alpha: float = 0.3) -> float:
    return alpha / 2 * (1 + math.cos(math.pi * step / end))


def dense_gradients(model, x: torch.Tensor, y: torch.Tensor, ctx: PruneContext) -> dict[str, torch.Tensor]:
    """``dL/dw`` of every layer's effective weight on one batch, masked positions included."""
    modules = prunable_modules(model)
    was_training = model.training
    model.eval()  # no BatchNorm statistic updates from this extra pass
    loss = ctx.loss_fn(model(x), y)
    grads = torch.autograd.grad(loss, [m.weight for m in modules.values()])
    model.train(was_training)
    return {n: g.detach() for n, g in zip(modules, grads, strict=True)}


def drop_and_grow(model, grads: dict[str, torch.Tensor], fraction: float) -> None:
    """One RigL update of every layer's mask; regrown weights are set to zero."""
    masks = {}
    for name, module in prunable_modules(model).items():
        mask = current_mask(module).flatten().clone()
        active = int(mask.sum().item())
        k = int(fraction * active)  # grow candidates: every inactive weight, the just-dropped included
        if k <= 0:
            continue
        magnitude = (dense_weight(module).detach().flatten() * mask).abs().double()
        magnitude[mask == 0] = float("inf")
        drop = torch.argsort(magnitude, stable=True)[:k]
        mask[drop] = 0.0
        score = grads[name].flatten().abs().double()
        score[mask == 1] = -float("inf")
        grow = torch.argsort(score, descending=True, stable=True)[:k]
        mask[grow] = 1.0
        regrown = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
        regrown[grow] = True
        with torch.no_grad():  # masked_fill_ writes through any memory layout (channels-last too)
            dense_weight(module).masked_fill_(regrown.view(module.weight.shape), 0.0)
        masks[name] = mask.view_as(module.weight)
    apply_masks(model, masks, replace=True)


@register_pruner
class Rigl(DuringTrainingPruner):
    """RigL dynamic sparse training: ERK init, drop lowest |w|, grow highest |grad| (Evci et al. 2020)."""

    name = "rigl"

    @dataclass(frozen=True)
    class Config:
        alpha: float = param(0.3, "initial drop fraction of the cosine schedule", gt=0.0, lt=1.0)
        end: float = param(
            0.75, "fraction of the run's steps after which masks stop changing (T_end)", gt=0.0, le=1.0
        )
        updates: int = param(10, "mask updates until T_end (dt = T_end / updates)", ge=1)

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        shapes = {n: tuple(m.weight.shape) for n, m in prunable_modules(model).items()}
        apply_masks(model, random_masks(model, erk_densities(shapes, sparsity), ctx.generator()))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        total = run.steps_per_epoch * max(run.config.epochs, 1)
        end = int(self.config.end * total)
        every = max(1, end // self.config.updates)
        self.prune(model, sparsity, ctx)
        with torch.no_grad():  # inactive weights start (and regrow) at zero
            for m in prunable_modules(model).values():
                dense_weight(m).mul_(m.weight_mask)
        gen = ctx.generator(salt=1)
        batch = min(run.config.batch_size, run.x.shape[0])

        def hook(step: int, total_steps: int) -> None:
            if (step + 1) % every == 0 and step + 1 < end:
                idx = torch.randperm(run.x.shape[0], generator=gen)[:batch].to(run.x.device)
                grads = dense_gradients(model, run.x[idx], run.y[idx], ctx)
                drop_and_grow(model, grads, drop_fraction(step + 1, end, self.config.alpha))

        run.train(model, step_hook=hook)
