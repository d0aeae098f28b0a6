"""``snip``: single-shot network pruning by connection sensitivity (Lee, Ajanthan & Torr,
"SNIP: Single-shot network pruning based on connection sensitivity", ICLR 2019).

At initialisation, the sensitivity of the loss to connection ``i`` is ``|dL/dc_i|`` for a
multiplicative gate ``c_i = 1`` on the weight, which equals ``|w_i * dL/dw_i|``::

    s_i = |w_i * g_i| / sum_j |w_j * g_j|,      g = mean_b dL_b/dw

on training batches, the network in train mode (batch statistics, as at the start of
training; running statistics are restored afterwards). The normalisation does not change
the ranking; the top ``(1 - sparsity)`` fraction is kept, ranked globally.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.scoring import weight_gradients


@register_pruner
class Snip(ScorePruner):
    """SNIP at init: s = |w * dL/dw| on training batches, global (Lee et al. 2019)."""

    name = "snip"
    timing = "at_init"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        grads = weight_gradients(model, ctx, train_mode=True)
        scores = {n: (w * grads[n]).abs() for n, w in weights(model).items()}
        norm = sum(s.sum() for s in scores.values()).clamp_min(1e-30)
        return {n: s / norm for n, s in scores.items()}
