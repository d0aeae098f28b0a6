"""The kinds of cell a plan holds, behind one small interface (open_lth's branch registry).

A *cell* is one unit of work with a content-addressed spec: a pruning cell (``prune``,
``benchmarks.prune_cell``) or a run of the generalization-stability study (``stability``,
``benchmarks.stability``). Each kind is a ``CellKind`` registered in ``CELL_KINDS`` under the
name the store's ``cell_type`` column holds, and answers for its spec type everything the
harness, the scheduler, the GPU estimate, ``--filter`` and ``harness verify`` ask:

- ``cell_id(spec)``: the content id (``c...`` / ``s...``);
- ``epochs(spec)``: training epochs beyond the dense parent (the longest-first order, the GPU
  estimate, the re-run cost a verifier accepts), and ``parent(spec)`` / ``eval_config(spec)``:
  the dense parent it descends from and its evaluation settings (None for a kind without);
- ``row(spec, cell_id)``: the cell row's columns derived from the spec (the harness adds the
  preset, the device and the environment);
- ``run(spec, env)``: compute the cell (``env`` gives the stored dense parents), returning its
  metric rows, its seconds and the row's budget columns;
- ``filter_value``, ``budget_problem``, ``sparsity_check``: ``--filter KEY=GLOB`` and the
  bundle checks of ``harness verify``.

``benchmarks.cells`` imports every kind and dispatches on a spec's type: no other module asks
what kind of spec it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from core.registry import Registry
from core.spec import EvalConfig, ParentSpec


class CellEnvironment(Protocol):
    """What a running cell gets from the harness: the device, the shift-set cache and the store's
    dense parents (trained and evaluated once, shared by every cell of a parent)."""

    device: str
    cache_dir: Path | None

    def parent(self, spec: ParentSpec) -> tuple[dict, dict, dict]:
        """``(state, rewind state, record)`` of the dense parent, training it first if no run has."""

    def dense_rows(self, spec: ParentSpec, state: dict, config: EvalConfig) -> list[dict]:
        """The parent's ``dense`` metric rows under ``config``, evaluated once per (parent, config)."""

    def state_cache(self, parent_id: str) -> Any:
        """Intermediate states shared by the cells of one dense parent (``pruners.base.StateCache``)."""


@dataclass
class CellOutput:
    """A computed cell: its metric rows, the seconds of its phases (``prune``, ``retrain``,
    ``eval``) and the columns it adds to its row (the budget, ``dense_train_s``)."""

    rows: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)


class CellKind(ABC):
    """One kind of cell (see the module docstring); instances are registered in ``CELL_KINDS``."""

    name: ClassVar[str]  # the store's cell_type, and --filter cell_type=NAME
    spec_type: ClassVar[type]
    label: ClassVar[str]  # how the GPU estimate counts these cells ("pruning cells")
    eval_passes: ClassVar[int] = 0  # passes over every evaluation set (the GPU estimate)
    # the configs an untrusted spec's tables are checked as, and (name key, config key) of its pruner
    config_fields: ClassVar[dict[str, type]] = {}
    pruner_fields: ClassVar[tuple[str, str]]

    def from_dict(self, d: dict) -> Any:
        return self.spec_type.from_dict(d)

    @abstractmethod
    def cell_id(self, spec: Any) -> str: ...

    @abstractmethod
    def epochs(self, spec: Any) -> float:
        """Training epoch-equivalents of the cell, its dense parent excluded."""

    def parent(self, spec: Any) -> ParentSpec | None:
        return None

    def eval_config(self, spec: Any) -> EvalConfig | None:
        return None

    @abstractmethod
    def row(self, spec: Any, cell_id: str) -> dict:
        """The cell row's columns that follow from the spec (``core.schema.CELL_SCHEMA``)."""

    @abstractmethod
    def run(self, spec: Any, env: CellEnvironment) -> CellOutput: ...

    def filter_value(self, spec: Any, key: str) -> object:
        """The cell's value for ``--filter KEY=GLOB`` (``key`` one of ``benchmarks.filters.FILTER_KEYS``)."""
        return self.name if key == "cell_type" else getattr(spec, key, None)

    @abstractmethod
    def budget_problem(self, spec: Any, budget: list[float]) -> str | None:
        """What is wrong with a stored ``[epochs_dense, epochs_prune, epochs_retrain]``, or None."""

    def sparsity_check(self, spec: Any) -> tuple[str, float] | None:
        """``(metric, target)``: the retrained model metric that must be the spec's sparsity."""
        return None

    def check_plugin(self, spec: Any) -> None:  # noqa: B027  (most kinds name no plugin)
        """Raise ``RuntimeError`` when the pruner the spec names comes from another plugin version here."""


CELL_KINDS: Registry = Registry("cell kind")


def register_kind(cls: type[CellKind]) -> type[CellKind]:
    """Class decorator: one instance of the kind, registered under ``cls.name``."""
    CELL_KINDS.register(cls.name)(cls())
    return cls
