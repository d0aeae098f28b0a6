"""``random``: uniform random unstructured pruning, layer by layer.

Score ``s_i ~ U(0, 1)`` i.i.d. from the cell's seeded generator; each layer loses the same
fraction of weights. The baseline every informed method must beat (Blalock et al.,
"What is the state of neural network pruning?", MLSys 2020).
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner
from pruners.masks import prunable_modules


@register_pruner
class RandomPruner(ScorePruner):
    """Random unstructured, uniform per layer: s ~ U(0,1) (Blalock et al. 2020 baseline)."""

    name = "random"
    scope = "layer"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        gen = ctx.generator()
        return {n: torch.rand(m.weight.shape, generator=gen) for n, m in prunable_modules(model).items()}
