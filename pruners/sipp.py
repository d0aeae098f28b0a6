"""``sipp``: sensitivity-informed provable pruning, deterministic variant (Baykal, Liebenwein,
Gilitschenski, Feldman & Rus, "SiPPing Neural Networks: Sensitivity-informed Provable Pruning
of Neural Networks", arXiv 2019; SIAM J. Math. Data Sci. 4(1), 2022).

Unstructured, after training, data-informed. The empirical sensitivity of weight ``w_ij``
(``i`` an output neuron or filter, ``j`` an input, or an input channel x kernel position) on a
small set ``S`` of inputs is its largest relative contribution to the neuron's pre-activation
(``pruners.sensitivity``: positive and negative weights apart, inputs split by sign, the mean
over a convolution's patches ``p``)::

    s_ij = max_{x in S} mean_p  w_ij a_jp(x) / sum_{k: sign w_ik = sign w_ij} w_ik a_kp(x)

    |S| = ceil(C log(8 eta* eta / delta))        (eta_l: outputs of layer l; eta = sum, eta* = max)

The budget is allocated over layers by the sensitivities themselves: the ``(1 - s) n`` largest
sensitivities of the whole network are kept, so layer ``l`` keeps ``m_l`` weights, its count
among them (the authors' ``SiPPAllocator``: a global top-k, counted per layer, per neuron and
per sign of the weight, then each neuron keeps its own ``m`` most sensitive weights, which is
the global top-k again). Kept weights are not rescaled (the deterministic sparsifier).

Defaults from the authors' code (lucaslie/torchprune): ``delta = 1e-16`` (the failure
probability ``coresets.deltaS`` of ``experiment/param/default.yaml``, which the SiPP CIFAR and
ImageNet configurations keep), ``C = 3`` (``experiment/evaluator.py``, ``c_constant``); the mean
over patches is ``SiPPTracker``'s reduction. On the default preset's models
(``mlp_512x2``, ``cnn_32x3_fc512``) ``|S|`` is about 160 examples; the 8 scoring batches hold 2048.

Differences from the authors' code, and why:

- ``S`` is the first ``|S|`` examples of ``PruneContext.batches`` (seeded training minibatches),
  not a held-out split of the validation set: prunebench's pruners see training data only.
  When the batches hold fewer examples, all of them are used.
- The sparsity is that of the prunable weights (Linear and Conv weights), exactly
  ``round(s n)`` of them masked; the authors' keep ratio counts every parameter and they root-find
  the ratio so that the size after a further gradient-based clean-up (weights whose gradient
  is zero on ``S`` also zeroed) meets it. Here no weight beyond the target is removed.
- The layers' inputs are taken in eval mode (BatchNorm running statistics), the trained
  network as it is evaluated; float64 throughout (the authors: float32).
- Only the deterministic variant (``SiPPNet``, "SiPPDet") is implemented: the randomised and
  hybrid ones (importance sampling with reweighted kept weights, layer budgets from a convex
  program) rescale surviving weights, which prunebench's masks never do. "Lost in Pruning"
  (Liebenwein et al. 2021), whose prune-potential study prunebench repeats, uses ``SiPPNet``.

What it does on small networks: a sensitivity's scale falls with the layer's fan-in, and only a
convolution's is averaged over patches, so the global threshold can empty a whole layer (the
second convolution of ``cnn_32x3_fc512`` on ``digits`` at sparsity 0.8; README, "Pruners"). The
authors' code has no guard against it either, and none is added.

Faithfulness reference (``tests/test_faithfulness_sipp.py``): the sensitivities by explicit loops
over points, neurons, inputs and patches from the formula above, ``|S|`` from its formula, and
the per-layer sample sizes of the global top-k; the masks equal the reference's.
"""

from __future__ import annotations

import torch

from pruners.base import PruneContext, ScorePruner, register_pruner
from pruners.masks import prunable_modules
from pruners.sensitivity import SampleConfig, layer_inputs, mean_patch_sensitivity, points, sample_size


@register_pruner
class SiPP(ScorePruner):
    """SiPP: s = max_S mean_p w a / z, an edge's share of its neuron, global (Baykal et al. 2019)."""

    name = "sipp"
    scope = "global"
    Config = SampleConfig

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        size = sample_size(model, ctx.example_shape(), self.config.delta, self.config.c_constant)
        modules = prunable_modules(model)
        inputs = layer_inputs(model, points(ctx, size), list(modules))
        return {n: mean_patch_sensitivity(m, inputs[n]) for n, m in modules.items()}
