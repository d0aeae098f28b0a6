"""``gmp``: gradual magnitude pruning with the cubic schedule (Zhu & Gupta, "To prune, or not
to prune: exploring the efficacy of pruning for model compression", ICLR workshop 2018).

From a fresh initialisation, train with the dense recipe while the sparsity of every layer
rises from ``s_i = 0`` to the target ``s_f`` over ``n`` pruning events spaced ``dt`` steps
apart from step ``t_0``::

    s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n * dt))^3

At each event every layer's smallest-magnitude weights are masked until the layer is at
``s_t`` (layer-wise ranking, as in the paper; masked weights stay masked). Here
``t_0 = 10%`` and ``t_0 + n*dt = 70%`` of the run's steps with ``n = 10`` events, so the
last 30% of the cosine schedule trains the final sparse network.
"""

from __future__ import annotations

import math

from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner, weights
from pruners.masks import apply_masks, ensure_masks, masks_from_scores

START, END, EVENTS = 0.1, 0.7, 10


def cubic_sparsity(step: int, total: int, final: float) -> float:
    """Zhu & Gupta's cubic schedule at ``step`` of ``total`` (0 before START, ``final`` after END)."""
    t0, t_end = START * total, END * total
    if step < t0:
        return 0.0
    progress = min(1.0, (step - t0) / max(t_end - t0, 1.0))
    return final + (0.0 - final) * (1.0 - progress) ** 3


def event_steps(total: int) -> list[int]:
    """The ``EVENTS`` steps (0-based, after which masks are updated), evenly spaced START..END."""
    t0, t_end = START * total, END * total
    return sorted({min(total - 1, math.ceil(t0 + (t_end - t0) * k / EVENTS)) for k in range(1, EVENTS + 1)})


@register_pruner
class Gmp(DuringTrainingPruner):
    """Gradual magnitude, cubic schedule s_t = s_f(1-(1-(t-t0)/(n dt))^3), layer-wise (Zhu & Gupta 2017)."""

    name = "gmp"

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: w.abs() for n, w in weights(model).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, "layer"))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        from benchmarks.training import steps_per_epoch, train

        total = steps_per_epoch(run.x.shape[0], run.config.batch_size) * max(run.config.epochs, 1)
        events = set(event_steps(total))
        ensure_masks(model)

        def hook(step: int, total_steps: int) -> None:
            if step in events:
                self.prune(model, cubic_sparsity(step + 1, total_steps, sparsity), ctx)

        train(model, run.x, run.y, run.config, run.seed, step_hook=hook)
        self.prune(model, sparsity, ctx)  # a no-op unless the run was shorter than the schedule
