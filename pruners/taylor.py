"""``taylor``: first-order Taylor importance (Molchanov et al., "Importance estimation for
neural network pruning", CVPR 2019).

The change of the loss when weight ``w_i`` is removed, to first order, is ``g_i * w_i``
with ``g_i = dL/dw_i``; its magnitude is the score::

    s_i = | w_i * mean_b dL_b/dw_i |

``g`` is the mean gradient of the cross-entropy over the training batches of the
``PruneContext`` (the model in eval mode: BatchNorm uses its running statistics, which are
restored afterwards). Ranked globally.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner, weights
from pruners.scoring import weight_gradients


@register_pruner
class Taylor(ScorePruner):
    """First-order Taylor: s = |w * dL/dw| on training batches, global (Molchanov et al. 2019)."""

    name = "taylor"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        grads = weight_gradients(model, ctx, train_mode=False)
        return {n: (w * grads[n]).abs() for n, w in weights(model).items()}
