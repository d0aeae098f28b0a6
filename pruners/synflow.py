"""``synflow``: iterative synaptic flow pruning (Tanaka, Kunin, Yamins & Ganguli, "Pruning
neural networks without any data by iteratively conserving synaptic flow", NeurIPS 2020).

Data-free. Replace every parameter and buffer by its absolute value (the network is
"linearised": BatchNorm in eval mode, ReLUs pass the all-positive signal), feed an all-ones
input and let ``R = 1^T f(1)`` be the summed output (the synaptic flow). The score is::

    s_i = | w_i * dR/dw_i |

Pruning is iterative: ``n = 100`` rounds, round ``k`` masking the lowest scores globally
until a fraction ``1 - (1 - sparsity)^(k/n)`` is pruned (the paper's exponential
schedule), re-scoring the masked network each round. Computed in float64 on a copy of the
model (products of many weights underflow float32), then the masks are copied back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import PruneContext, Pruner, register_pruner
from pruners.masks import apply_masks, current_mask, effective_weight, masks_from_scores, prunable_modules


def synflow_scores(model, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    modules = prunable_modules(model)
    model.zero_grad(set_to_none=True)
    ones = torch.ones(1, *shape, dtype=torch.float64)
    flow = model(ones).sum()
    grads = torch.autograd.grad(flow, [m.weight for m in modules.values()])
    return {
        n: (effective_weight(m) * g).detach().abs() for (n, m), g in zip(modules.items(), grads, strict=True)
    }


@register_pruner
class SynFlow(Pruner):
    """SynFlow at init, data-free: s = |w * dR/dw|, R = sum f_|w|(1), 100 rounds (Tanaka et al. 2020)."""

    name = "synflow"
    timing = "at_init"
    invertible = True

    @dataclass(frozen=True)
    class Config:
        rounds: int = param(100, "pruning rounds, sparsity 1 - (1 - s)^(k / rounds) after round k", ge=1)

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        shape = ctx.example_shape()
        linear = copy.deepcopy(model).double().eval()
        with torch.no_grad():
            for tensor in [*linear.parameters(), *linear.buffers()]:
                if tensor.is_floating_point():
                    tensor.abs_()
        rounds = self.config.rounds
        for k in range(1, rounds + 1):
            target = 1.0 - (1.0 - sparsity) ** (k / rounds)
            scores = {n: ctx.score_sign * s for n, s in synflow_scores(linear, shape).items()}
            apply_masks(linear, masks_from_scores(linear, scores, target, "global"))
        masks = {n: current_mask(m).float() for n, m in prunable_modules(linear).items()}
        apply_masks(model, masks)
