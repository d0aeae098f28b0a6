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

The cascade (``mode: "cascade"`` of the authors' experiment configurations, the protocol of their
papers and of "Lost in Pruning"): the target is reached in ``steps`` pruning steps, step ``t``
leaving the kept fraction ``(1 - s)^(t / T)`` of the prunable weights, the network re-scored as
it is (masked, retrained) before every step, and retrained ``retrain_epochs`` epochs between
steps (SGD at a constant ``retrain_lr`` with ``momentum``; the cell then fine-tunes with the
preset's recipe as every after-training pruner does). The phase is ``(T - 1) x retrain_epochs``
epochs, charged to the cell (``PhasePruner``). ``steps = 1`` is the one-shot ``SiPPNet``.
Difference: the authors retrain each step with the full training schedule; here 1 epoch per step
(10 steps: 9 epochs of phase), a CPU-sized reduction. Why the cascade: one-shot at sparsity 0.8
and above, a sensitivity's scale falls with the layer's fan-in and only a convolution's is
averaged over patches, so the global threshold can empty a whole layer (measured one-shot: the
second convolution of ``cnn_32x3_fc512`` on ``digits`` emptied at 0.8, every pair collapsed at
0.95); re-scoring after retraining lets the scales adjust between steps. The authors' code has
no guard against an emptied layer either, and none is added.

Faithfulness reference (``tests/test_faithfulness_sipp.py``): the sensitivities by explicit loops
over points, neurons, inputs and patches from the formula above, ``|S|`` from its formula, and
the per-layer sample sizes of the global top-k; the masks equal the reference's, and in the
cascade every step's masks equal an independent recomputation on the network that step found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from core.config import param
from core.spec import TrainConfig
from pruners.base import PhasePruner, PruneContext, ScorePruner, SparseTraining, register_pruner
from pruners.masks import prunable_modules
from pruners.sensitivity import SampleConfig, layer_inputs, mean_patch_sensitivity, points, sample_size


@dataclass(frozen=True)
class CascadeConfig(SampleConfig):
    """``|S|``'s constants (``SampleConfig``) and the cascade: steps and the retraining between them."""

    steps: int = param(
        10, "pruning steps to the target, kept fraction (1 - s)^(t / steps) after step t (1: one-shot)", ge=1
    )
    retrain_epochs: int = param(
        1, "epochs of retraining after every step but the last (0: re-score only)", ge=0
    )
    retrain_lr: float = param(0.01, "constant SGD learning rate of the retraining between steps", gt=0.0)
    momentum: float = param(0.9, "SGD momentum of the retraining between steps", ge=0.0, lt=1.0)


def cascade_sparsities(sparsity: float, steps: int) -> list[float]:
    """The sparsity after each step: ``1 - (1 - s)^(t / T)``, ``t = 1 .. T`` (the last exactly ``s``)."""
    return [1.0 - (1.0 - sparsity) ** (t / steps) for t in range(1, steps)] + [sparsity]


@register_pruner
class SiPP(PhasePruner, ScorePruner):
    """SiPP cascade: s = max_S mean_p w a / z, global, re-scored at each of 10 steps (Baykal et al. 2019)."""

    name = "sipp"
    version = "2"
    scope = "global"
    Config = CascadeConfig

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        size = sample_size(model, ctx.example_shape(), self.config.delta, self.config.c_constant)
        modules = prunable_modules(model)
        inputs = layer_inputs(model, points(ctx, size), list(modules))
        return {n: mean_patch_sensitivity(m, inputs[n]) for n, m in modules.items()}

    def phase_epochs(self, train: TrainConfig) -> int:
        return (self.config.steps - 1) * self.config.retrain_epochs

    def recipe(self, train: TrainConfig) -> TrainConfig:
        return replace(
            train,
            epochs=self.phase_epochs(train),
            lr=self.config.retrain_lr,
            optimizer="sgd",
            momentum=self.config.momentum,
            schedule="constant",
        )

    def prune_with_phase(
        self, model: nn.Module, sparsity: float, ctx: PruneContext, run: SparseTraining
    ) -> None:
        epochs = self.config.retrain_epochs
        targets = cascade_sparsities(sparsity, self.config.steps)
        for t, target in enumerate(targets):
            self.prune(model, target, ctx)
            if t < len(targets) - 1 and epochs > 0:
                run.train(model, self.recipe(run.config), epoch_range=(t * epochs, (t + 1) * epochs))
