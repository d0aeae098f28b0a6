"""The pruner contract and registry.

A pruner is a class with a registry name, a ``kind`` (``unstructured``: single weights;
``structured``: whole filters or neurons), a ``timing`` (``after_training``: prunes a
trained dense parent; ``at_init``: chooses a mask before training from scratch;
``during_training``: prunes while training), a ``version`` and a ``Config``: a frozen
dataclass of its hyperparameters, each declared with ``param(default, "description")``.
The version and the resolved config enter every cell id, so changing a pruner's logic or
one of its defaults re-runs exactly its cells.

Pruners hold no I/O and import nothing of the harness or the benchmarks: everything they
may look at comes in a ``PruneContext`` (seeded randomness, *training* minibatches). A pruner
that trains gets a ``SparseTraining``, whose ``train`` runs the cell's training recipe (or one
the pruner derives from it) on the training split, charged to the cell's pruning budget, and
whose ``rewind`` restores the dense parent's early iterate. Two kinds of pruner train:

- a ``DuringTrainingPruner`` (timing ``during_training``) trains from a fresh initialisation
  (``train_sparse``);
- a ``PhasePruner`` (timing ``after_training``) starts from the trained dense parent like any
  after-training pruner, but runs a pruning phase of its own on it (``prune_with_phase``:
  training with a per-step regularizer and step/epoch hooks, e.g. GReg's growing penalty)
  before its masks are final; ``phase_epochs`` declares how long, for scheduling.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from core.config import make_config
from core.registry import Registry
from core.spec import TrainConfig
from pruners.masks import apply_masks, effective_weight, masks_from_scores, prunable_modules

PRUNERS: Registry = Registry("pruner")
KINDS = ("unstructured", "structured")
TIMINGS = ("after_training", "at_init", "during_training")


@dataclass(frozen=True)
class NoConfig:
    """A pruner without hyperparameters."""


@dataclass
class PruneContext:
    """What a pruner may use: seeded randomness, training batches, the training recipe."""

    seed: int
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()
    weight_decay: float = 0.0
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(default=F.cross_entropy)
    input_shape: tuple[int, ...] | None = None
    score_sign: float = 1.0  # -1.0 inverts the scores (the ``invert`` mask sanity control)

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
    Config: ClassVar[type] = NoConfig
    invertible: ClassVar[bool] = False  # whether PruneContext.score_sign inverts its choice
    # set by ``register_pruner``: the distribution that registered the class, None if built in
    plugin: ClassVar[tuple[str, str] | None] = None

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]

    @abstractmethod
    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        """Mask ``model`` in place so that a fraction ``sparsity`` of its units is zero."""


class ScorePruner(Pruner):
    """Scores every prunable weight and masks the lowest ``round(s * n)`` (ShrinkBench style)."""

    scope: ClassVar[str] = "global"
    invertible: ClassVar[bool] = True

    @abstractmethod
    def scores(self, model: nn.Module, ctx: PruneContext) -> dict[str, torch.Tensor]:
        """Module name -> score tensor of the weight's shape; higher means keep."""

    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: ctx.score_sign * s for n, s in self.scores(model, ctx).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, self.scope))


class TrainFn(Protocol):
    def __call__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        epoch_range: tuple[int, int] | None = None,
        step_hook: Callable[[int, int], None] | None = None,
        epoch_hook: Callable[[int], None] | None = None,
        regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    ) -> int: ...


@dataclass
class SparseTraining:
    """What a pruner that trains (``DuringTrainingPruner``, ``PhasePruner``) trains with.

    ``train(model, config=None, *, epoch_range, step_hook, epoch_hook, regularizer)`` trains
    on the cell's training split with its seed (``config`` defaults to the cell's recipe) and
    returns the optimizer steps taken; ``step_hook(step, total)`` runs after every step.
    ``rewind(model)`` loads the dense parent's epoch-``rewind_epoch`` iterate into the
    surviving weights (masks kept). ``parent_state`` is the trained dense parent.
    ``steps_per_epoch`` is the number of optimizer steps of one epoch. ``cache`` keeps
    intermediate states (IMP's rounds) that other cells of the same parent reuse.
    """

    config: TrainConfig
    seed: int
    train: TrainFn
    steps_per_epoch: int
    rewind_epoch: int = 0
    rewind: Callable[[nn.Module], None] | None = None
    parent_state: dict[str, torch.Tensor] | None = None
    cache: StateCache | None = None
    x: torch.Tensor | None = None  # the training split, for pruners that sample their own batches
    y: torch.Tensor | None = None


class StateCache(Protocol):
    """Intermediate model states shared by the cells of one dense parent (no I/O in pruners:
    the harness provides the storage)."""

    def get(self, key: str) -> dict[str, torch.Tensor] | None: ...
    def put(self, key: str, state: dict[str, torch.Tensor]) -> None: ...


class DuringTrainingPruner(Pruner):
    """Prunes inside a from-scratch training run; ``prune`` is one pruning event to ``sparsity``."""

    timing: ClassVar[str] = "during_training"
    uses_dense_parent: ClassVar[bool] = False  # True when it starts from the trained parent (imp)

    @abstractmethod
    def train_sparse(self, model: nn.Module, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        """Train ``model`` (a fresh initialisation) with ``run``; it ends at ``sparsity``."""

    def sparse_epochs(self, sparsity: float, train: TrainConfig, rewind_epoch: int) -> float:
        """Epochs its sparse training trains under the recipe ``train`` (the scheduler's longest-first
        order and the GPU estimate read it): the recipe's, unless the pruner says otherwise."""
        return float(train.epochs)


class PhasePruner(Pruner):
    """An after-training pruner with a pruning phase: it trains the trained dense parent before
    its masks are final (Wang et al. 2021's growing regularization), then the cell retrains.

    ``prune(model, sparsity, ctx)`` is the final pruning event alone (the masks the phase ends
    with, chosen on the model as it is); ``prune_with_phase`` is the whole procedure, training
    only through ``run.train`` (so the cell is charged every epoch of the phase, as
    ``epochs_prune`` and training FLOPs); ``phase_epochs(train)`` is the number of epochs it
    trains under the cell's dense recipe ``train``, which the scheduler and the GPU estimate read.
    """

    timing: ClassVar[str] = "after_training"

    @abstractmethod
    def phase_epochs(self, train: TrainConfig) -> int:
        """Epochs of the training split the phase trains (whole epochs: the budget counts epochs)."""

    @abstractmethod
    def prune_with_phase(
        self, model: nn.Module, sparsity: float, ctx: PruneContext, run: SparseTraining
    ) -> None:
        """Train ``model`` (the trained dense parent) with ``run``; it ends masked at ``sparsity``."""


def phase_epochs(pruner: Pruner, train: TrainConfig) -> int:
    """The epochs of ``pruner``'s pruning phase under recipe ``train`` (0 for pruners without one)."""
    return int(pruner.phase_epochs(train)) if isinstance(pruner, PhasePruner) else 0


def register_pruner(cls: type[Pruner]) -> type[Pruner]:
    """Class decorator: validates the declared kind, timing and config, registers under ``cls.name``.

    A name that is already registered is an error (a plugin cannot replace a pruner).
    """
    import dataclasses

    if cls.kind not in KINDS:
        raise ValueError(f"pruner {cls.name!r}: kind {cls.kind!r} is not one of {KINDS}")
    if cls.timing not in TIMINGS:
        raise ValueError(f"pruner {cls.name!r}: timing {cls.timing!r} is not one of {TIMINGS}")
    if not (dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen):
        raise ValueError(f"pruner {cls.name!r}: Config must be a frozen dataclass")
    if issubclass(cls, PhasePruner) and cls.timing != "after_training":
        raise ValueError(
            f"pruner {cls.name!r}: a PhasePruner prunes the trained parent (timing after_training)"
        )
    from pruners.plugins import registering_distribution

    cls.plugin = registering_distribution(cls)
    return PRUNERS.register(cls.name)(cls)


def make_pruner_config(name: str, values: dict | None = None, where: str = "pruner_config") -> Any:
    """The config of pruner ``name`` with ``values`` over its defaults (keys and types checked)."""
    return make_config(PRUNERS.get(name).Config, values, f"{where}[{name}]")


def get_pruner(name: str, config: dict | None = None) -> Pruner:
    cls = PRUNERS.get(name)
    return cls(make_pruner_config(name, config))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Effective (masked) prunable weights by module name, detached."""
    return {n: effective_weight(m).detach() for n, m in prunable_modules(model).items()}
