"""The pruner contract and registry.

A pruner is a class with a registry name, a ``kind`` (``unstructured``: single weights;
``structured``: whole filters or neurons), a ``timing`` (``after_training``: prunes a
trained dense parent; ``at_init``: chooses a mask before training from scratch;
``during_training``: prunes while training) and a ``version`` that enters every cell id, so
changing a pruner's logic invalidates its stored results.

Pruners hold no I/O: everything they may look at comes in a ``PruneContext``, whose
``batches`` are training minibatches only. A during-training pruner also gets a
``SparseTraining`` (the training split, the recipe, and for rewinding the dense parent and
its epoch-``k`` iterate) and runs the whole sparse training itself in ``train_sparse``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.registry import Registry
from benchmarks.training import TrainConfig
from pruners.masks import apply_masks, masks_from_scores, prunable_modules

PRUNERS: Registry = Registry("pruner")
KINDS = ("unstructured", "structured")
TIMINGS = ("after_training", "at_init", "during_training")


@dataclass
class PruneContext:
    """What a pruner may use: seeded randomness, training batches, the training recipe."""

    seed: int
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()
    weight_decay: float = 0.0
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(default=F.cross_entropy)
    input_shape: tuple[int, ...] | None = None

    def example_shape(self) -> tuple[int, ...]:
        """Shape of one input (data-free pruners need only this), from ``input_shape`` or a batch."""
        if self.input_shape is not None:
            return tuple(self.input_shape)
        if len(self.batches) == 0:
            raise ValueError("PruneContext needs input_shape or at least one batch")
        return tuple(self.batches[0][0].shape[1:])

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


class Pruner(ABC):
    name: ClassVar[str]
    kind: ClassVar[str] = "unstructured"
    timing: ClassVar[str] = "after_training"
    version: ClassVar[str] = "1"

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]

    @abstractmethod
    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        """Mask ``model`` in place so that a fraction ``sparsity`` of its units is zero."""


class ScorePruner(Pruner):
    """Scores every prunable weight and masks the lowest ``round(s * n)`` (ShrinkBench style)."""

    scope: ClassVar[str] = "global"

    @abstractmethod
    def scores(self, model: nn.Module, ctx: PruneContext) -> dict[str, torch.Tensor]:
        """Module name -> score tensor of the weight's shape; higher means keep."""

    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        scores = self.scores(model, ctx)
        apply_masks(model, masks_from_scores(model, scores, sparsity, self.scope))


@dataclass
class SparseTraining:
    """What a during-training pruner trains on: training split, recipe, seed, rewind points."""

    x: torch.Tensor
    y: torch.Tensor
    config: TrainConfig
    seed: int
    rewind_epoch: int = 0
    rewind_state: dict[str, torch.Tensor] | None = None
    parent_state: dict[str, torch.Tensor] | None = None


class DuringTrainingPruner(Pruner):
    """Prunes inside a from-scratch training run; ``prune`` is one pruning event to ``sparsity``."""

    timing: ClassVar[str] = "during_training"

    @abstractmethod
    def train_sparse(self, model: nn.Module, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        """Train ``model`` (a fresh initialisation) with ``run``; it ends at ``sparsity``."""


def register_pruner(cls: type[Pruner]) -> type[Pruner]:
    """Class decorator: validates the declared kind and timing, registers under ``cls.name``."""
    if cls.kind not in KINDS:
        raise ValueError(f"pruner {cls.name!r}: kind {cls.kind!r} is not one of {KINDS}")
    if cls.timing not in TIMINGS:
        raise ValueError(f"pruner {cls.name!r}: timing {cls.timing!r} is not one of {TIMINGS}")
    return PRUNERS.register(cls.name)(cls)


def get_pruner(name: str) -> Pruner:
    return PRUNERS.get(name)()


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Effective (masked) prunable weights by module name, detached."""
    from pruners.masks import effective_weight

    return {n: effective_weight(m).detach() for n, m in prunable_modules(model).items()}
