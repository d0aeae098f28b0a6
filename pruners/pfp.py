"""``pfp``: provable filter pruning, deterministic variant (Liebenwein, Baykal, Lang, Feldman &
Rus, "Provable Filter Pruning for Efficient Neural Networks", ICLR 2020).

Structured (conv filters, hidden neurons), after training, data-informed. A unit ``c`` of a
layer is an input channel of the layer that consumes it (``unit_groups``); its sensitivity is
the largest relative contribution of any of its edges to any output of that consumer over a
small set ``S`` of inputs (``pruners.sensitivity``; the max over patches, output filters,
the channel's kernel positions or flattened positions, and ``S``)::

    s_c = max_{x in S} max_{i, k in c, p}  w_ik a_kp(x) / sum_{k': sign w_ik' = sign w_ik} w_ik' a_k'p(x)

with ``|S| = ceil(C log(8 eta* eta / delta))`` as for ``sipp``. Layer ``l`` keeps the ``m_l``
units of largest sensitivity, ``m_l`` from the paper's sample complexity for one shared
error ``eps`` (the authors' ``PFPAllocator``), with ``S_l = sum_c s_c`` and ``p_c = s_c / S_l``::

    alpha_l = 2 C log(8 (P_l + 1) k_l / delta)       (P_l patches, k_l kernel size of the consumer)
    n_l(eps) = ceil(K (6 + 2 eps) alpha_l S_l / eps^2)
    m_l(eps) = min(units_l, max(1, ceil(sum_c 1 - (1 - p_c)^n_l(eps))))   (expected distinct units)

and ``eps`` is found by bisection (in ``log eps`` over the authors' bracket ``[1e-300, 1e150]``)
so that ``sum_l m_l`` is the number of units to keep, ``round((1 - s) N)``: layers whose units
share their contribution evenly keep more. Kept units are not rescaled.

Defaults from the authors' code (lucaslie/torchprune): ``delta = 1e-16`` (``coresets.deltaS``
of ``experiment/param/default.yaml``, kept by the PFP CIFAR configurations), ``C = 3``
(``experiment/evaluator.py``), ``K = 3`` (``k_constant`` in ``PFPRandAllocator``); the max
reductions are ``PFPTracker``'s.

Differences from the authors' code, and why:

- The budget is prunebench's structured sparsity, the fraction of units removed over all unit
  groups; the authors root-find ``eps`` for a weight count that includes the consumers'
  removed inputs. The allocation rule (one ``eps`` for all layers) is the same. When several
  layers step past the target at one ``eps``, the remaining units go to those layers in
  order. Units of the network's input (the first layer's input features, which the authors'
  "in" mode may drop) are not units here, nor the classifier's outputs.
- A unit feeding a Linear layer through a flatten (a conv channel's positions) takes the max
  over its positions, as a conv channel takes the max over its kernel positions.
- ``S`` is drawn from ``PruneContext.batches`` (training data only; all of them when fewer than
  ``|S|``), the layers' inputs are taken in eval mode, float64 throughout.
- Only the deterministic variant (``PFPNet``, which "Lost in Pruning" uses) is implemented; the
  randomised ones sample and rescale units.

Faithfulness reference (``tests/test_faithfulness_pfp.py``): unit sensitivities by explicit loops
from the formula above, and the allocation by an independent search over ``eps`` on the formulas
for ``alpha_l``, ``n_l`` and ``m_l``; the kept units equal the reference's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import PruneContext, register_pruner
from pruners.sensitivity import (
    SampleConfig,
    layer_inputs,
    max_input_sensitivity,
    points,
    sample_size,
    unfolded,
)
from pruners.structured import (
    StructuredPruner,
    alive_units,
    apply_unit_masks,
    groups_of,
    select_units_by_count,
)

LOG10_EPS = (-300.0, 150.0)  # the authors' bracket for eps (BaseFilterAllocator / PFPRandAllocator)


def layer_counts(log10_eps: float, probs: list[torch.Tensor], coeffs: list[float], caps: list[int], k: float):
    """``m_l(eps)`` for every layer: expected distinct units in ``n_l(eps)`` draws from ``p_l``."""
    eps = 10.0**log10_eps
    out = []
    for p, coeff, cap in zip(probs, coeffs, caps, strict=True):
        draws = k * (6.0 + 2.0 * eps) * coeff / eps**2 if eps**2 > 0 else math.inf
        draws = max(1.0, float(math.ceil(draws))) if math.isfinite(draws) and coeff > 0 else draws
        draws = 1.0 if coeff <= 0 else draws
        distinct = float((1.0 - (1.0 - p) ** draws).sum())
        out.append(min(cap, max(1, math.ceil(distinct - 1e-9))))
    return out


def allocate(
    probs: list[torch.Tensor], coeffs: list[float], caps: list[int], keep: int, k: float
) -> list[int]:
    """Units kept per layer, summing to ``keep`` (at least one per layer, at most ``caps``)."""
    lo, hi = LOG10_EPS
    upper = layer_counts(lo, probs, coeffs, caps, k)
    if sum(upper) <= keep:  # even the smallest eps keeps too few: fill up from the capacities
        base, upper = upper, caps
    elif sum(layer_counts(hi, probs, coeffs, caps, k)) >= keep:
        return layer_counts(hi, probs, coeffs, caps, k)
    else:  # invariant: sum m(lo) > keep > ... >= sum m(hi)
        while hi - lo > 1e-12 * max(1.0, abs(lo)):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if sum(layer_counts(mid, probs, coeffs, caps, k)) >= keep:
                lo = mid
            else:
                hi = mid
        upper, base = layer_counts(lo, probs, coeffs, caps, k), layer_counts(hi, probs, coeffs, caps, k)
        if sum(upper) == keep:
            return upper
    out, deficit = list(base), keep - sum(base)
    for i, top in enumerate(upper):
        add = max(0, min(deficit, top - out[i]))
        out[i] += add
        deficit -= add
    return out


@register_pruner
class PFP(StructuredPruner):
    """PFP: unit sensitivity s_c = max_S max w a/z over its edges, eps-allocated (Liebenwein et al. 2020)."""

    name = "pfp"
    scope = "global"
    invertible = False  # the allocation reads the sensitivities as a distribution

    @dataclass(frozen=True)
    class Config(SampleConfig):  # delta and C enter alpha_l too
        k_constant: float = param(
            3.0, "constant K of the sample complexity n_l (torchprune k_constant)", gt=0.0
        )

    def _sensitivities(self, model, ctx: PruneContext):
        """(unit scores by producer, ``alpha_l`` by producer)."""
        size = sample_size(model, ctx.example_shape(), self.config.delta, self.config.c_constant)
        groups = groups_of(model)
        consumers = sorted({g.consumer for g in groups})
        inputs = layer_inputs(model, points(ctx, size), consumers)
        scores, alphas = {}, {}
        for g in groups:
            consumer = model.get_submodule(g.consumer)
            per_input = max_input_sensitivity(consumer, inputs[g.consumer])
            units = alive_units(model, g).numel()
            if per_input.numel() % units:
                raise ValueError(
                    f"{g.consumer} has {per_input.numel()} inputs, not a multiple of {units} units"
                )
            scores[g.producer] = per_input.view(units, -1).amax(1)
            patches = unfolded(consumer, inputs[g.consumer][:1]).shape[-1]
            kernel = consumer.weight[0, 0].numel()
            alphas[g.producer] = (
                2.0 * self.config.c_constant * math.log(8.0 * (patches + 1) * kernel / self.config.delta)
            )
        return scores, alphas

    def unit_scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return self._sensitivities(model, ctx)[0]

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
        scores, alphas = self._sensitivities(model, ctx)
        groups = groups_of(model)
        alive = {g.producer: alive_units(model, g) for g in groups}
        total = sum(a.numel() for a in alive.values())
        probs, coeffs, caps = [], [], []
        for g in groups:
            s = torch.where(alive[g.producer], scores[g.producer], 0.0)
            mass = float(s.sum())
            probs.append(s / mass if mass > 0 else s)
            coeffs.append(alphas[g.producer] * mass)
            caps.append(int(alive[g.producer].sum()))
        kept = allocate(probs, coeffs, caps, total - round(sparsity * total), self.config.k_constant)
        removed = {g.producer: alive[g.producer].numel() - m for g, m in zip(groups, kept, strict=True)}
        apply_unit_masks(model, select_units_by_count(model, scores, removed))
