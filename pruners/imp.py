"""``imp``: iterative magnitude pruning with weight rewinding (Frankle & Carbin, "The lottery
ticket hypothesis", ICLR 2019; Frankle, Dziugaite, Roy & Carbin, "Linear mode connectivity
and the lottery ticket hypothesis", ICML 2020).

Round 0 is the dense parent trained with the recipe. Each round then removes 20% of the
remaining weights by global magnitude ``s = |w|`` of the trained network, rewinds the
surviving weights to their values at epoch ``k`` of the dense run (the parent's rewind
iterate; ``k = 0`` is the lottery-ticket reset to initialisation) and retrains epochs
``k..T`` of the recipe with the mask fixed. Rounds repeat until the target is reached,
the last round pruning only what is left to reach it exactly, so a target ``s`` takes
``ceil(log(1 - s) / log(0.8))`` rounds (0.5: 4, 0.8: 8, 0.9: 11, 0.95: 14, 0.98: 18).
"""

from __future__ import annotations

import math

from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner, weights
from pruners.masks import apply_masks, masks_from_scores

RATE = 0.2


def round_targets(sparsity: float, rate: float = RATE) -> list[float]:
    """Cumulative sparsity after each round: 1 - (1-rate)^r, the last one clipped to ``sparsity``."""
    rounds = max(1, math.ceil(math.log(1.0 - sparsity) / math.log(1.0 - rate) - 1e-9))
    return [min(sparsity, 1.0 - (1.0 - rate) ** r) for r in range(1, rounds + 1)]


@register_pruner
class Imp(DuringTrainingPruner):
    """Iterative magnitude, rounds of 20% + rewinding to epoch k, global |w| (Frankle et al. 2019, 2020)."""

    name = "imp"

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: w.abs() for n, w in weights(model).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, "global"))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        from benchmarks.retrain import load_rewind_weights
        from benchmarks.training import train

        if run.parent_state is None or run.rewind_state is None:
            raise ValueError("imp needs the dense parent and its rewind iterate (SparseTraining)")
        model.load_state_dict(run.parent_state)
        for target in round_targets(sparsity):
            self.prune(model, target, ctx)
            load_rewind_weights(model, run.rewind_state)
            train(
                model, run.x, run.y, run.config, run.seed, epoch_range=(run.rewind_epoch, run.config.epochs)
            )
