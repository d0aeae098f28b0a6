"""``ebn_filter``: E[BN] channel pruning (Bartoldson, Morcos, Barbu & Erlebacher, "The
generalization-stability tradeoff in neural network pruning", NeurIPS 2020).

Structured. A BatchNorm channel with scale ``gamma`` and shift ``beta`` followed by a ReLU
outputs ``ReLU(gamma z + beta)`` with ``z`` about standard normal, whose expectation is the
channel's score (``Phi``/``phi`` the standard normal cdf/pdf)::

    E[BN] = beta * Phi(beta / |gamma|) + |gamma| * phi(beta / |gamma|)

(``max(beta, 0)`` when ``gamma = 0``). For a unit with no BatchNorm (an MLP neuron) the
same expectation is taken with the pre-activation's own mean ``mu`` and standard deviation
``sigma`` on the training batches: ``mu Phi(mu/sigma) + sigma phi(mu/sigma)``. Each layer
loses the same fraction of its units, the lowest expected activations first.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, register_pruner
from pruners.scoring import preserved
from pruners.structured import StructuredPruner, effective, groups_of

_NORMAL = torch.distributions.Normal(0.0, 1.0)


def expected_relu(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """E[ReLU(X)] for X ~ N(mean, std^2), elementwise; ``max(mean, 0)`` where ``std == 0``."""
    mean, std = mean.double(), std.double().abs()
    safe = std.clamp_min(1e-12)
    r = mean / safe
    value = mean * _NORMAL.cdf(r) + std * torch.exp(_NORMAL.log_prob(r))
    return torch.where(std > 0, value, mean.clamp_min(0.0))


def preactivation_moments(model, producer: str, ctx: PruneContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation per unit of ``producer``'s outputs over the training batches."""
    if len(ctx.batches) == 0:
        raise ValueError("ebn_filter needs training batches for units without BatchNorm")
    outs: list[torch.Tensor] = []
    handle = model.get_submodule(producer).register_forward_hook(
        lambda mod, args, out: outs.append(out.detach().transpose(0, 1).flatten(1))
    )
    try:
        with preserved(model, train_mode=False), torch.no_grad():
            for x, _ in ctx.batches:
                model(x)
    finally:
        handle.remove()
    z = torch.cat(outs, 1)
    return z.mean(1), z.std(1)


@register_pruner
class EbnFilter(StructuredPruner):
    """E[BN] channels: s = b Phi(b/|g|) + |g| phi(b/|g|), b/g BN shift/scale (Bartoldson et al. 2020)."""

    name = "ebn_filter"
    scope = "layer"

    def unit_scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        out = {}
        for g in groups_of(model):
            if g.norm is not None:
                norm = model.get_submodule(g.norm)
                out[g.producer] = expected_relu(effective(norm, "bias"), effective(norm, "weight"))
            else:
                out[g.producer] = expected_relu(*preactivation_moments(model, g.producer, ctx))
        return out
