"""Magnitude pruning: score ``s_i = |w_i|`` (Han et al., "Learning both weights and
connections for efficient neural networks", NeurIPS 2015; Zhu & Gupta 2017).

``global_magnitude`` ranks all prunable weights together, so layers end at different
densities. ``layer_magnitude`` is the *uniform* allocation as Evci et al. ("Rigging the
Lottery", ICML 2020, section 3) define it after Gale et al. ("The State of Sparsity in Deep
Neural Networks", 2019): every layer is pruned to the same sparsity except the first
convolution, which stays dense. That layer sees the raw input through a handful of weights
per filter (5 on MNIST-1D, 25 on 8x8 digits): at 90% sparsity it would keep about one weight
for every second filter, cutting the network off from its input, while holding under 2% of
the weights. To keep the overall sparsity at the target ``S``, the other layers take its
share: with ``N`` prunable weights of which ``n_0`` in the first convolution, each of them is
pruned to ``S * N / (N - n_0)``. An MLP has no convolution, so every layer is at ``S``.
"""

from __future__ import annotations

import torch
from torch import nn

from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.masks import apply_masks, masks_from_scores, prunable_modules


@register_pruner
class GlobalMagnitude(ScorePruner):
    """Global unstructured magnitude: s = |w|, ranked across layers (Han et al. 2015)."""

    name = "global_magnitude"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return {n: w.abs() for n, w in weights(model).items()}


def first_convolution(model: nn.Module) -> str | None:
    """Name of the first prunable layer if it is a convolution (archs define layers in
    forward order), else None."""
    modules = prunable_modules(model)
    if not modules:
        return None
    name, module = next(iter(modules.items()))
    return name if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else None


def uniform_sparsity(model: nn.Module, sparsity: float, dense: str | None) -> float:
    """The per-layer sparsity that puts the model at ``sparsity`` with layer ``dense`` unpruned."""
    if dense is None:
        return sparsity
    sizes = {n: m.weight.numel() for n, m in prunable_modules(model).items()}
    total, kept_dense = sum(sizes.values()), sizes[dense]
    rest = sparsity * total / (total - kept_dense)
    if rest >= 1.0:
        raise ValueError(
            f"sparsity {sparsity}: layer_magnitude keeps the first convolution {dense!r} dense "
            f"({kept_dense} of {total} weights), so the most it can reach is "
            f"{(total - kept_dense) / total:.4f}"
        )
    return rest


@register_pruner
class LayerMagnitude(GlobalMagnitude):
    """Uniform magnitude: s = |w|, same fraction per layer, first conv dense (Evci et al. 2020)."""

    name = "layer_magnitude"
    scope = "layer"
    version = "2"  # 1 pruned the first convolution too

    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
        dense = first_convolution(model)
        rest = uniform_sparsity(model, sparsity, dense)
        scores = {n: ctx.score_sign * s for n, s in self.scores(model, ctx).items()}
        masks = masks_from_scores(model, {n: s for n, s in scores.items() if n != dense}, rest, "layer")
        if dense is not None:  # an all-ones mask, so every prunable layer carries one
            masks[dense] = torch.ones_like(scores[dense], dtype=torch.float32)
        apply_masks(model, masks)
