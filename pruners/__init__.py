"""Pruning methods: one module per method, each registered in ``PRUNERS`` by a decorator."""

from pruners import (  # noqa: F401  (registration side effects)
    ebn_filter,
    fisher,
    gibbs,
    gmp,
    grasp,
    greg1,
    greg2,
    imp,
    l1_filter,
    lamp,
    magnitude,
    random_erk,
    random_pruning,
    rigl,
    sbp_sr,
    slimming,
    snip,
    synflow,
    taylor,
    undecayed,
)
from pruners.base import (
    PRUNERS,
    DuringTrainingPruner,
    PhasePruner,
    PruneContext,
    Pruner,
    ScorePruner,
    SparseTraining,
    get_pruner,
    make_pruner_config,
)

__all__ = [
    "PRUNERS",
    "DuringTrainingPruner",
    "PhasePruner",
    "PruneContext",
    "Pruner",
    "ScorePruner",
    "SparseTraining",
    "get_pruner",
    "make_pruner_config",
]
