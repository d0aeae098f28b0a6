"""``gibbs``: Gibbs pruning (Labach & Valaee, "A framework for neural network pruning using Gibbs
distributions", GLOBECOM 2020, arXiv:2006.04981; the authors' code: j201/gibbs-pruning,
``gibbs_pruning.py``, Keras, the unstructured Hamiltonian).

During training from scratch, every step's forward pass uses a mask ``x`` sampled from a Gibbs
distribution over masks, ``p(x) ~ exp(-beta * H(x))``, with the unstructured Hamiltonian of a
layer whose target pruning fraction is ``p``::

    H(x) = sum_i (Q_p - w_i^2) * x_i,   x_i in {0, 1},   Q_p = the p-quantile of the layer's w^2

whose weights are independent: weight ``i`` is kept with probability

    P(x_i = 1) = sigma(beta * (w_i^2 - Q_p)) = 1 / (1 + exp(-beta * (w_i^2 - Q_p)))

(the authors sample ``keep = U > 1 / (1 + exp(beta * (w^2 - Q_p)))``, ``U ~ U[0, 1)``, the
same law; ``Q_p`` by linear interpolation). The inverse temperature is annealed geometrically
from ``beta_0 = 1`` (about half the weights dropped at random: a regulariser, like DropConnect)
to ``beta_1 = 10^4`` (nearly the deterministic magnitude threshold: adaptive pruning), then
held::

    beta(t) = beta_0 * (beta_1 / beta_0) ** min(1, t / (A - 1)),   A = round(anneal * S)

for the optimizer steps ``t = 0 .. S-1``; the authors' ``np.logspace(0, 4, 128)`` over the
first 128 of 200 epochs gives ``anneal = 0.64``. Gradients reach only the weights the step
kept (the forward uses ``w * x``); weight decay reaches all. At the end the mask is the
``beta -> infinity`` limit, the fraction ``p`` of lowest ``w^2`` of each layer removed, and the
cell retrains.

What differs from the authors' code, and why:

- ``beta`` moves every step, not once per epoch: the default preset trains 6 epochs, where
  the authors' per-epoch update over 64% of 200 epochs gives 128 levels; per step the same
  geometric path has one level per step.
- Layers: every prunable layer is pruned to the same fraction, except a first convolution,
  which stays dense with the others taking its share so the model is at the target
  (``pruners.magnitude.uniform_sparsity``, as ``layer_magnitude``). The authors' ResNet-20
  Gibbs-prunes the residual blocks' convolutions only, leaving the first convolution and the
  classifier dense; their code targets the same fraction ``p`` in each pruned layer.
- The final mask is the deterministic ``beta -> infinity`` one, with exactly ``round(p * n)``
  weights per layer (the authors' test mode samples once more at the last ``beta``, which
  can keep a few more or fewer).
- Training is the cell's recipe (the default preset: Adam, cosine, 6 epochs), not the
  authors' 200 epochs of Adam with step decays; the kernel- and filter-wise Hamiltonians are
  not implemented (the issue names the unstructured method).

Faithfulness (``tests/test_faithfulness_gibbs.py``): in a real run on a tiny MLP every step's
mask, recorded at the forward pass, equals ``U > 1 / (1 + exp(beta(t) (w^2 - Q_p)))`` re-derived
in the test (numpy's linear percentile, the test's own schedule, the same documented uniform
draws: ``PruneContext.generator(GIBBS_SALT)``, one ``torch.rand`` of each pruned layer's shape
per step, in layer order); the keep frequencies match the probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import param
from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner
from pruners.magnitude import first_convolution, uniform_sparsity
from pruners.masks import apply_masks, dense_weight, ensure_masks, masks_from_scores, prunable_modules

GIBBS_SALT = 6_011  # the stream of uniform draws of the sampled masks


def beta_at(step: int, total: int, beta_start: float, beta_end: float, anneal: float) -> float:
    """``beta(t)``: geometric from ``beta_start`` to ``beta_end`` over the first ``anneal`` of the steps."""
    steps = max(2, round(anneal * total))
    return beta_start * (beta_end / beta_start) ** min(1.0, step / (steps - 1))


def keep_probability(score: torch.Tensor, fraction: float, beta: float) -> torch.Tensor:
    """``sigma(beta * (s - Q_p))`` with ``Q_p`` the ``fraction``-quantile of ``s`` (``s = w^2``)."""
    q = torch.quantile(score.flatten().double(), fraction)
    return torch.sigmoid(beta * (score.double() - q)).to(score.dtype)


@dataclass(frozen=True)
class GibbsConfig:
    beta_start: float = param(1.0, "inverse temperature at the first step (authors: 10^0)", gt=0.0)
    beta_end: float = param(1e4, "inverse temperature reached and held (authors: 10^4)", gt=0.0)
    anneal: float = param(
        0.64, "fraction of the steps over which beta anneals (authors: 128 of 200 epochs)", gt=0.0, le=1.0
    )


@register_pruner
class Gibbs(DuringTrainingPruner):
    """Gibbs pruning: masks drawn with P(keep) = sigma(beta (w^2 - Q_p)), beta annealed (Labach & Valaee)."""

    name = "gibbs"
    scope = "layer"
    invertible = True
    Config = GibbsConfig

    def fractions(self, model, sparsity: float) -> dict[str, float]:
        """Per-layer pruning fraction: the first convolution 0, the others its share of ``sparsity``."""
        dense = first_convolution(model)
        rest = uniform_sparsity(model, sparsity, dense)
        return {n: (0.0 if n == dense else rest) for n in prunable_modules(model)}

    def scores(self, model, ctx: PruneContext) -> dict[str, torch.Tensor]:
        """``w^2`` of the dense (trainable) weights, inverted by the ``invert`` control."""
        return {n: ctx.score_sign * dense_weight(m).detach() ** 2 for n, m in prunable_modules(model).items()}

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        """The ``beta -> infinity`` mask: each layer's fraction of lowest ``w^2`` removed."""
        modules = prunable_modules(model)
        if any(hasattr(m, "weight_mask") for m in modules.values()):  # the sampled masks are not a choice
            apply_masks(
                model, {n: torch.ones_like(dense_weight(m)) for n, m in modules.items()}, replace=True
            )
        scores = self.scores(model, ctx)
        masks = {}
        for name, fraction in self.fractions(model, sparsity).items():
            masks[name] = masks_from_scores(model, {name: scores[name]}, fraction, "layer")[name]
        apply_masks(model, masks, replace=True)

    def sample(
        self, model, fractions: dict[str, float], beta: float, ctx: PruneContext, g: torch.Generator
    ) -> None:
        """Draw every pruned layer's mask for the next step: ``keep = U > 1 - P(keep)``."""
        scores = self.scores(model, ctx)
        masks = {}
        for name, fraction in fractions.items():
            if fraction == 0.0:
                continue
            u = torch.rand(scores[name].shape, generator=g).to(scores[name].device)
            p_prune = 1.0 - keep_probability(scores[name], fraction, beta)
            masks[name] = (u > p_prune).float()
        apply_masks(model, masks, replace=True)

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        cfg = self.config
        fractions = self.fractions(model, sparsity)
        total = run.steps_per_epoch * max(run.config.epochs, 1)
        g = ctx.generator(salt=GIBBS_SALT)
        ensure_masks(model)  # mask buffers before the optimizer sees weight_orig
        self.sample(model, fractions, beta_at(0, total, cfg.beta_start, cfg.beta_end, cfg.anneal), ctx, g)

        def hook(step: int, total_steps: int) -> None:
            if step + 1 < total_steps:
                beta = beta_at(step + 1, total_steps, cfg.beta_start, cfg.beta_end, cfg.anneal)
                self.sample(model, fractions, beta, ctx, g)

        run.train(model, step_hook=hook)
        self.prune(model, sparsity, ctx)
