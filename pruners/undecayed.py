"""``undecayed``: Undecayed Pruning, UP (Good et al., "Recall distortion in neural network
pruning and the undecayed pruning algorithm", NeurIPS 2022).

Score, from the first author's public code (see ``shared/design/claims.md``)::

    s_i = -w_i * g_i + lambda * w_i^2

``g`` is the mean loss gradient on training batches *without* the weight-decay term, and
``lambda`` the weight decay of the training recipe (``PruneContext.weight_decay``). The
weights with the smallest ``|s_i|`` are pruned, ranked globally. With ``lambda = 0`` the
ranking is that of first-order Taylor; the ``lambda w^2`` term accounts for the decay that
the trained weights balance against.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.scoring import weight_gradients


@register_pruner
class Undecayed(ScorePruner):
    """Undecayed Pruning: s = |-w*g + lambda*w^2|, g without weight decay, global (Good et al. 2022)."""

    name = "undecayed"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        grads = weight_gradients(model, ctx, train_mode=False)
        lam = ctx.weight_decay
        return {n: (-w * grads[n] + lam * w * w).abs() for n, w in weights(model).items()}
