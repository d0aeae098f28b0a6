"""Pruning methods: one module per method, each registered in ``PRUNERS`` by a decorator."""

from pruners import magnitude, random_pruning  # noqa: F401  (registration side effects)
from pruners.base import PRUNERS, PruneContext, Pruner, get_pruner

__all__ = ["PRUNERS", "PruneContext", "Pruner", "get_pruner"]
