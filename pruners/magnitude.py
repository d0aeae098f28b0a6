"""Magnitude pruning: score ``s_i = |w_i|`` (Han et al., "Learning both weights and
connections for efficient neural networks", NeurIPS 2015; Zhu & Gupta 2017).

``global_magnitude`` ranks all prunable weights together, so layers end at different
densities; ``layer_magnitude`` removes the same fraction from every layer.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner, weights


@register_pruner
class GlobalMagnitude(ScorePruner):
    """Global unstructured magnitude: s = |w|, ranked across layers (Han et al. 2015)."""

    name = "global_magnitude"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return {n: w.abs() for n, w in weights(model).items()}


@register_pruner
class LayerMagnitude(GlobalMagnitude):
    """Layer-wise unstructured magnitude: s = |w|, same fraction per layer (Han et al. 2015)."""

    name = "layer_magnitude"
    scope = "layer"
