"""``random_erk``: random pruning at initialisation with the Erdős–Rényi-Kernel layer-wise
densities (Evci, Gale, Menick, Castro & Elsen, "Rigging the lottery: making all tickets
winners", ICML 2020; as a baseline in Liu et al., "The unreasonable effectiveness of random
pruning", ICLR 2022).

Layer ``l`` with weight shape ``(n_out, n_in, k_1, ..., k_d)`` gets density::

    d_l = min(1, eps * (n_out + n_in + sum_j k_j) / (n_out * n_in * prod_j k_j))

(``(n_out + n_in) / (n_out * n_in)`` for a Linear layer), with ``eps`` solved so that
``sum_l d_l * n_l = (1 - sparsity) * sum_l n_l``; layers that would exceed density 1 stay
dense and ``eps`` is solved again over the rest. Within a layer, ``round(d_l * n_l)``
weights chosen uniformly at random (seeded) are kept.
"""

from __future__ import annotations

import math

import torch

from pruners.base import PruneContext, Pruner, register_pruner
from pruners.masks import apply_masks, prunable_modules


def erk_densities(shapes: dict[str, tuple[int, ...]], sparsity: float) -> dict[str, float]:
    """Per-layer densities of the ERK distribution at the given overall sparsity."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: sum(s) / sizes[n] for n, s in shapes.items()}
    budget = (1.0 - sparsity) * sum(sizes.values())
    dense: set[str] = set()
    while True:
        free = [n for n in shapes if n not in dense]
        left = budget - sum(sizes[n] for n in dense)
        eps = left / sum(raw[n] * sizes[n] for n in free)
        over = {n for n in free if eps * raw[n] > 1.0}
        if not over:
            break
        dense |= over
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def random_masks(model, densities: dict[str, float], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Keep ``round(d * n)`` uniformly random weights of every layer (at least one)."""
    masks = {}
    for name, module in prunable_modules(model).items():
        n = module.weight.numel()
        keep = min(n, max(1, round(densities[name] * n)))
        mask = torch.zeros(n)
        mask[torch.randperm(n, generator=generator)[:keep]] = 1.0
        masks[name] = mask.view(module.weight.shape)
    return masks


@register_pruner
class RandomErk(Pruner):
    """Random at init, ERK densities d_l ~ (n_in+n_out+sum k)/(n_in n_out prod k) (Evci et al. 2020)."""

    name = "random_erk"
    timing = "at_init"

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        shapes = {n: tuple(m.weight.shape) for n, m in prunable_modules(model).items()}
        apply_masks(model, random_masks(model, erk_densities(shapes, sparsity), ctx.generator()))
