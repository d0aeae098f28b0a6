"""prunebench's public API: what an outside package imports to bring its own pruner.

Stable: every name below keeps its meaning within a major version (``API_VERSION``).

A pruner is a class registered with ``@register_pruner``: a ``name``, a ``kind``
(``"unstructured"`` or ``"structured"``), a ``timing`` (``"after_training"``, ``"at_init"``
or ``"during_training"``), a ``version`` and a ``Config``, a frozen dataclass of its
hyperparameters declared with ``param(default, "description")``. Subclass

- ``ScorePruner`` and return ``scores(model, ctx)`` (higher keeps; the lowest
  ``round(s * n)`` are masked, globally or per layer by ``scope``), or
- ``Pruner`` and implement ``prune(model, sparsity, ctx)`` with the mask helpers, or
- ``StructuredPruner`` and return ``unit_scores(model, ctx)`` per unit group (override ``prune``
  to allocate a budget per layer yourself: ``select_units_by_count`` removes a given number of
  the lowest-scoring units of each group), or
- ``DuringTrainingPruner`` and implement ``train_sparse(model, sparsity, ctx, run)``, training
  through ``run.train(...)`` (a ``SparseTraining``) from a fresh initialisation, or
- ``PhasePruner`` (timing ``"after_training"``) and implement ``prune(model, sparsity, ctx)``
  (the final pruning event), ``prune_with_phase(model, sparsity, ctx, run)`` (a pruning phase
  on the trained dense parent through ``run.train(model, config, regularizer=..., step_hook=...,
  epoch_hook=...)``, then the final masks) and ``phase_epochs(train)`` (the phase's length in
  epochs, for scheduling; the cell is charged what ``run.train`` ran).

``PruneContext`` carries the seed (``ctx.generator()``), training minibatches
(``ctx.batches``) and the recipe's weight decay. Make the module importable (installed,
or on ``PYTHONPATH``) and name it with ``--plugin MODULE``, a preset's ``plugins = [...]``
or the entry-point group ``prunebench.pruners``; ``harness check-pruner`` checks the contract.
"""

from core.config import param
from core.units import UnitGroup, unit_groups
from pruners.base import (
    DuringTrainingPruner,
    PhasePruner,
    PruneContext,
    Pruner,
    ScorePruner,
    SparseTraining,
    register_pruner,
    weights,
)
from pruners.masks import (
    apply_masks,
    current_mask,
    effective_weight,
    masks_from_scores,
    prunable_modules,
    sparsity_stats,
)
from pruners.structured import StructuredPruner, apply_unit_masks, select_units, select_units_by_count

API_VERSION = "1"

__all__ = [
    "API_VERSION",
    "DuringTrainingPruner",
    "PhasePruner",
    "PruneContext",
    "Pruner",
    "ScorePruner",
    "SparseTraining",
    "StructuredPruner",
    "UnitGroup",
    "apply_masks",
    "apply_unit_masks",
    "current_mask",
    "effective_weight",
    "masks_from_scores",
    "param",
    "prunable_modules",
    "register_pruner",
    "select_units",
    "select_units_by_count",
    "sparsity_stats",
    "unit_groups",
    "weights",
]
