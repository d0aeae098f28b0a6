"""``imp``: iterative magnitude pruning with weight rewinding (Frankle & Carbin, "The lottery
ticket hypothesis", ICLR 2019; Frankle, Dziugaite, Roy & Carbin, "Linear mode connectivity
and the lottery ticket hypothesis", ICML 2020).

Round 0 is the dense parent trained with the recipe. Each round then removes a fraction
``rate`` (20%) of the remaining weights by global magnitude ``s = |w|`` of the trained
network, rewinds the surviving weights to their values at epoch ``k`` of the dense run (the
parent's rewind iterate; ``k = 0`` is the lottery-ticket reset to initialisation) and
retrains epochs ``k..T`` of the recipe with the mask fixed. Round ``r`` reaches sparsity
``1 - (1 - rate)^r``; a target ``s`` takes the full rounds below it and one last round that
prunes exactly to ``s``: ``ceil(log(1 - s) / log(1 - rate))`` rounds (0.5: 4, 0.8: 8,
0.9: 11, 0.95: 14). The full rounds are the same for every target, so the cells of one
parent at different sparsities share them (``SparseTraining.cache``): one IMP run passes
through every grid point, each point a cell that adds only its own last round. Each cell is
still charged every round it stands on (the budget is cached with the state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import param
from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner, weights
from pruners.masks import apply_masks, masks_from_scores


def round_targets(sparsity: float, rate: float = 0.2) -> list[float]:
    """Cumulative sparsity after each round: 1 - (1-rate)^r, the last one clipped to ``sparsity``."""
    rounds = max(1, math.ceil(math.log(1.0 - sparsity) / math.log(1.0 - rate) - 1e-9))
    return [min(sparsity, 1.0 - (1.0 - rate) ** r) for r in range(1, rounds + 1)]


@register_pruner
class Imp(DuringTrainingPruner):
    """Iterative magnitude, rounds of 20% + rewinding to epoch k, global |w| (Frankle et al. 2019, 2020)."""

    name = "imp"
    uses_dense_parent = True
    invertible = True

    @dataclass(frozen=True)
    class Config:
        rate: float = param(0.2, "fraction of the remaining weights removed per round", gt=0.0, lt=1.0)

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: ctx.score_sign * w.abs() for n, w in weights(model).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, "global"))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        if run.parent_state is None or run.rewind is None:
            raise ValueError("imp needs the dense parent and its rewind iterate (SparseTraining)")
        targets = round_targets(sparsity, self.config.rate)
        model.load_state_dict(run.parent_state)
        start = 0
        if run.cache is not None:  # the deepest shared full round already computed for this parent
            for r in range(len(targets) - 1, 0, -1):
                state = run.cache.get(self._key(r, ctx))
                if state is not None:
                    self.prune(model, targets[r - 1], ctx)  # the mask buffers, then their values
                    model.load_state_dict(state)
                    start = r
                    break
        for r in range(start, len(targets)):
            self.prune(model, targets[r], ctx)
            run.rewind(model)
            run.train(model, epoch_range=(run.rewind_epoch, run.config.epochs))
            full = math.isclose(targets[r], 1.0 - (1.0 - self.config.rate) ** (r + 1))
            if run.cache is not None and full and r + 1 < len(targets):
                run.cache.put(self._key(r + 1, ctx), model.state_dict())

    def sparse_epochs(self, sparsity: float, train, rewind_epoch: int) -> float:
        """Every round retrains epochs ``k..T`` of the recipe."""
        return len(round_targets(sparsity, self.config.rate)) * (float(train.epochs) - rewind_epoch)

    def _key(self, rounds: int, ctx: PruneContext) -> str:
        sign = f"{ctx.score_sign:+.0f}"
        return f"imp-v{self.version}-rate{self.config.rate}-seed{ctx.seed}-sign{sign}-round{rounds}"
