"""``gmp``: gradual magnitude pruning with the cubic schedule (Zhu & Gupta, "To prune, or not
to prune: exploring the efficacy of pruning for model compression", ICLR workshop 2018).

From a fresh initialisation, train with the dense recipe while the sparsity of every layer
rises from ``s_i = 0`` to the target ``s_f`` over ``n`` pruning events spaced ``dt`` steps
apart from step ``t_0``::

    s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n * dt))^3

At each event every layer's smallest-magnitude weights are masked until the layer is at
``s_t`` (layer-wise ranking, as in the paper; masked weights stay masked). By default
``t_0 = 10%`` and ``t_0 + n*dt = 70%`` of the run's steps with ``n = 10`` events, so the
last 30% of the cosine schedule trains the final sparse network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import param
from pruners.base import DuringTrainingPruner, PruneContext, SparseTraining, register_pruner, weights
from pruners.masks import apply_masks, ensure_masks, masks_from_scores


@dataclass(frozen=True)
class GmpConfig:
    start: float = param(
        0.1, "fraction of the run's steps before the first pruning event (t_0)", ge=0.0, lt=1.0
    )
    end: float = param(
        0.7, "fraction of the run's steps at the last pruning event (t_0 + n dt)", gt=0.0, le=1.0
    )
    events: int = param(10, "number of pruning events n", ge=1)


def cubic_sparsity(step: int, total: int, final: float, config: GmpConfig = GmpConfig()) -> float:
    """Zhu & Gupta's cubic schedule at ``step`` of ``total`` (0 before ``start``, ``final`` after ``end``)."""
    t0, t_end = config.start * total, config.end * total
    if step < t0:
        return 0.0
    progress = min(1.0, (step - t0) / max(t_end - t0, 1.0))
    return final + (0.0 - final) * (1.0 - progress) ** 3


def event_steps(total: int, config: GmpConfig = GmpConfig()) -> list[int]:
    """The ``events`` steps (0-based, after which masks are updated), evenly spaced start..end."""
    t0, t_end, n = config.start * total, config.end * total, config.events
    return sorted({min(total - 1, math.ceil(t0 + (t_end - t0) * k / n)) for k in range(1, n + 1)})


@register_pruner
class Gmp(DuringTrainingPruner):
    """Gradual magnitude, cubic schedule s_t = s_f(1-(1-(t-t0)/(n dt))^3), layer-wise (Zhu & Gupta 2017)."""

    name = "gmp"
    Config = GmpConfig

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: w.abs() for n, w in weights(model).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, "layer"))

    def train_sparse(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        total = run.steps_per_epoch * max(run.config.epochs, 1)
        events = set(event_steps(total, self.config))
        ensure_masks(model)

        def hook(step: int, total_steps: int) -> None:
            if step in events:
                self.prune(model, cubic_sparsity(step + 1, total_steps, sparsity, self.config), ctx)

        run.train(model, step_hook=hook)
        self.prune(model, sparsity, ctx)  # a no-op unless the run was shorter than the schedule
