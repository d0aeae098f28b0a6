"""``iter_snip``: iterative SNIP (de Jorge, Sanyal, Behl, Torr, Rogez & Dokania, "Progressive
Skeletonization: Trimming more fat from a network at initialization", ICLR 2021, Sec. 4).

Unstructured, at init, iterative: SNIP's connection sensitivity (Lee et al. 2019) re-computed
on the pruned network at each of ``T`` steps of the schedule of ``force`` (``k_t = kappa^(t/T)``)::

    s_i = | w_i * dL/dw_i (w) |,     w = w0 * m the current pruned weights

so a weight pruned at one step scores zero and stays pruned (the authors give the pruned
weights the minimum saliency and block their gradients), unlike FORCE, which scores with the
initial weights ``w0`` and lets pruned weights return.

Defaults from the authors' code (naver/force, ``iterative_pruning`` with ``prune_method = 1``):
as ``force`` (60 steps, exponential schedule, one minibatch of 128 per step). Differences from
it: as ``force`` (minibatches from ``PruneContext.batches``, cycled; exactly ``round(k_t n)``
weights kept per step).

Faithfulness reference (``tests/test_faithfulness_force.py``): the iteration written out on a
functional two-layer MLP; the masks equal the reference's.
"""

from __future__ import annotations

from pruners.base import register_pruner
from pruners.force import Force


@register_pruner
class IterSnip(Force):
    """Iterative SNIP at init: s = |w * dL/dw| on the pruned net, 60 steps (de Jorge et al. 2021)."""

    name = "iter_snip"
    recover = False
