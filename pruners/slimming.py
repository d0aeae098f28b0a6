"""``slimming``: network slimming (Liu, Li, Shen, Huang, Yan & Zhang, "Learning efficient
convolutional networks through network slimming", ICCV 2017).

Structured, during training. Train from scratch with an L1 penalty on the BatchNorm scales,
so that unneeded channels are driven towards zero, then remove the channels with the
smallest ``|gamma|``, ranked globally over all layers (every layer keeps one unit)::

    loss = CE + lambda * sum_channels |gamma|,   lambda = 1e-4;    s_j = |gamma_j|

The pruned network is then fine-tuned (the cell's retraining recipe). For units with no
BatchNorm (MLP hidden neurons) the scale is the L2 norm of the neuron's incoming weights
and bias, and the penalty the group lasso ``lambda * sum_j ||(W_j, b_j)||_2`` (Wen et al.,
"Learning structured sparsity in deep neural networks", NeurIPS 2016), its natural analogue;
as such norms are not comparable across layers of different fan-in, those units are ranked
within their layer (the same fraction removed from each).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner
from pruners.structured import StructuredPruner, apply_unit_masks, effective, groups_of, select_units


def unit_scales(model, detach: bool = True) -> dict[str, torch.Tensor]:
    """Producer name -> per-unit scale: |BN gamma|, or the L2 norm of (incoming weights, bias)."""
    out = {}
    for g in groups_of(model):
        if g.norm is not None:
            norm = model.get_submodule(g.norm)
            gamma = effective(norm, "weight") if detach else norm.weight
            out[g.producer] = gamma.abs()
        else:
            layer = model.get_submodule(g.producer)
            w = effective(layer, "weight") if detach else layer.weight
            parts = [w.flatten(1)]
            if layer.bias is not None:
                b = effective(layer, "bias") if detach else layer.bias
                parts.append(b.view(-1, 1))
            out[g.producer] = torch.cat(parts, 1).norm(dim=1)
    return out


@register_pruner
class Slimming(DuringTrainingPruner, StructuredPruner):
    """Network slimming: L1 on BN scales in training, prune smallest |gamma| globally (Liu et al. 2017)."""

    name = "slimming"
    scope = "global"

    @dataclass(frozen=True)
    class Config:
        penalty: float = param(1e-4, "lambda of the L1 penalty on BN scales (group lasso without BN)", ge=0.0)

    def unit_scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return unit_scales(model)

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        scope = "global" if all(g.norm is not None for g in groups_of(model)) else "layer"
        apply_unit_masks(model, select_units(model, self.unit_scores(model, ctx), sparsity, scope))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        strength = self.config.penalty

        def penalty(m) -> torch.Tensor:
            return strength * sum(s.sum() for s in unit_scales(m, detach=False).values())

        run.train(model, regularizer=penalty)
        self.prune(model, sparsity, ctx)
