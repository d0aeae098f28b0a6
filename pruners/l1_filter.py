"""``l1_filter``: L1-norm filter pruning (Li, Kadav, Durdanovic, Samet & Graf, "Pruning
filters for efficient ConvNets", ICLR 2017).

Structured: the unit is a conv filter (output channel, with its BatchNorm scale and shift
and the next layer's input channel) or an MLP hidden neuron. Its score is the L1 norm of
its weights::

    s_j = (sum_{i, k} |W_{j, i, k}|^p)^(1/p),   p = 1 (the paper; ``p = 2`` is the L2 filter norm
                                                  of Bartoldson et al. 2020)

and each layer loses the same fraction of its units, the lowest-scoring ones (as in the
paper). In ``resnet_16x3`` only each block's inner conv is pruned (see ``benchmarks.archs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import PruneContext, register_pruner
from pruners.structured import StructuredPruner, effective, groups_of


@register_pruner
class L1Filter(StructuredPruner):
    """L1-norm filters/neurons: s_j = sum |W_j|, same fraction per layer (Li et al. 2017)."""

    name = "l1_filter"
    scope = "layer"

    @dataclass(frozen=True)
    class Config:
        p: int = param(1, "order of the filter norm (1: Li et al. 2017; 2: the L2 norm)", ge=1)

    def unit_scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        out = {}
        for g in groups_of(model):
            w = effective(model.get_submodule(g.producer), "weight")
            out[g.producer] = w.flatten(1).norm(p=self.config.p, dim=1)
        return out
