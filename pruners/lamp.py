"""``lamp``: layer-adaptive magnitude-based pruning (Lee et al., "Layer-adaptive sparsity for
the magnitude-based pruning", ICLR 2021).

Within one layer, sort the weights by magnitude, ``|w_1| <= |w_2| <= ... <= |w_n|``; the
LAMP score of weight ``u`` is its squared magnitude over the squared magnitudes of every
weight at least as large::

    score(u) = w_u^2 / sum_{v >= u} w_v^2

All layers' scores are then ranked together (global). The largest weight of every layer
scores 1, so no layer is ever emptied, and the induced layer-wise sparsities adapt to the
layers' weight distributions. Ties are broken by position (stable sort), so the score is
deterministic.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner, weights


def lamp_scores(w: torch.Tensor) -> torch.Tensor:
    """LAMP score of every entry of one layer's weight tensor (same shape)."""
    sq = w.detach().flatten().double() ** 2
    order = torch.argsort(sq, stable=True)
    ranked = sq[order]
    suffix = torch.flip(torch.cumsum(torch.flip(ranked, [0]), 0), [0])
    out = torch.empty_like(sq)
    out[order] = ranked / suffix.clamp_min(torch.finfo(torch.float64).tiny)
    return out.view_as(w)


@register_pruner
class Lamp(ScorePruner):
    """LAMP: s_u = w_u^2 / sum_{|w_v| >= |w_u|} w_v^2 per layer, ranked globally (Lee et al. 2021)."""

    name = "lamp"
    scope = "global"

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return {n: lamp_scores(w) for n, w in weights(model).items()}
