"""Pruning methods: one module per method, each registered in ``PRUNERS`` by a decorator."""

from pruners import (  # noqa: F401  (registration side effects)
    ebn_filter,
    fisher,
    force,
    gmp,
    grasp,
    imp,
    iter_snip,
    l1_filter,
    lamp,
    magnitude,
    pfp,
    random_erk,
    random_pruning,
    rigl,
    sipp,
    slimming,
    snip,
    synflow,
    taylor,
    undecayed,
)
from pruners.base import (
    PRUNERS,
    DuringTrainingPruner,
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
    "PruneContext",
    "Pruner",
    "ScorePruner",
    "SparseTraining",
    "get_pruner",
    "make_pruner_config",
]
