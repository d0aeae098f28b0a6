"""The pruning cell (``cell_type = "prune"``): one pruner at one sparsity on a dense parent.

Its spec is ``core.spec.CellSpec``, its flow ``benchmarks.pipeline.run_cell``; this module gives
it the ``benchmarks.cell_kind`` interface: id, the epochs it trains, its row, its run against the
store's dense parents, and what a bundle's copy of it must satisfy.
"""

from __future__ import annotations

from typing import ClassVar

from benchmarks.cell_kind import CellEnvironment, CellKind, CellOutput, register_kind
from core.spec import CellSpec, EvalConfig, ParentSpec, RetrainConfig, TrainConfig, canonical_json


def plugin_columns(cls) -> dict:
    """The ``plugin`` and ``plugin_version`` columns of a pruner class (null for built-in ones)."""
    return {
        "plugin": cls.plugin[0] if cls.plugin else None,
        "plugin_version": cls.plugin[1] if cls.plugin else None,
    }


@register_kind
class PruneCell(CellKind):
    name = "prune"
    spec_type = CellSpec
    label = "pruning cells"
    eval_passes = 3  # dense, pruned, retrained
    config_fields: ClassVar[dict[str, type]] = {
        "train": TrainConfig,
        "retrain_config": RetrainConfig,
        "eval": EvalConfig,
    }
    pruner_fields = ("pruner", "pruner_config")

    def cell_id(self, spec: CellSpec) -> str:
        from pruners import PRUNERS

        return spec.cell_id(PRUNERS.get(spec.pruner).version)

    def epochs(self, spec: CellSpec) -> float:
        """Training epoch-equivalents of the cell, its dense parent excluded: a pruning phase
        (``PhasePruner``), the sparse training of a during-training pruner (``sparse_epochs``), the
        retraining recipe, or the from-scratch training (at init, a control that trains from scratch)."""
        from benchmarks.controls import CONTROLS
        from benchmarks.retrain import retrain_epochs
        from pruners import get_pruner
        from pruners.base import phase_epochs

        pruner = get_pruner(spec.pruner, spec.pruner_config)
        total = float(spec.train.epochs)
        phase = float(phase_epochs(pruner, spec.train))
        if pruner.timing == "at_init":
            return total
        if CONTROLS.get(spec.control).from_scratch:
            return phase + total
        retrain = float(retrain_epochs(spec.retrain, spec.train, spec.retrain_config))
        if pruner.timing == "after_training":
            return phase + retrain
        return pruner.sparse_epochs(spec.sparsity, spec.train, spec.retrain_config.rewind_epoch) + retrain

    def parent(self, spec: CellSpec) -> ParentSpec:
        return spec.parent

    def eval_config(self, spec: CellSpec) -> EvalConfig:
        return spec.eval

    def row(self, spec: CellSpec, cell_id: str) -> dict:
        from pruners import PRUNERS

        pruner = PRUNERS.get(spec.pruner)
        return {
            "cell_id": cell_id,
            "parent_id": spec.parent.id,
            "cell_type": self.name,
            "arch": spec.arch,
            "dataset": spec.dataset,
            "pruner": spec.pruner,
            "pruner_kind": pruner.kind,
            "pruner_timing": pruner.timing,
            "pruner_version": pruner.version,
            "pruner_config": canonical_json(spec.pruner_config),
            **plugin_columns(pruner),
            "sparsity": spec.sparsity,
            "seed": spec.seed,
            "retrain": spec.retrain,
            "control": spec.control,
            "eval_sets": spec.eval.sets,
            "spec_json": canonical_json(spec.to_dict()),
        }

    def run(self, spec: CellSpec, env: CellEnvironment) -> CellOutput:
        from benchmarks.pipeline import run_cell

        self.check_plugin(spec)
        state, rewind, info = env.parent(spec.parent)
        dense = env.dense_rows(spec.parent, state, spec.eval)
        result = run_cell(
            spec,
            state,
            rewind,
            env.device,
            env.cache_dir,
            parent_budget=(info["epochs"], info["train_flops"]),
            state_cache=env.state_cache(spec.parent.id),
        )
        return CellOutput(
            dense + result.rows, result.seconds, {"dense_train_s": info["train_seconds"], **result.budget}
        )

    def budget_problem(self, spec: CellSpec, budget: list[float]) -> str | None:
        from benchmarks.pipeline import uses_dense_parent
        from pruners import PRUNERS

        dense, prune, retrain = budget
        wanted = float(spec.train.epochs) if uses_dense_parent(PRUNERS.get(spec.pruner)) else 0.0
        if dense != wanted:
            return f"epochs_dense {dense:g}, its spec's dense parent trains {wanted:g}"
        most = self.epochs(spec)
        if prune + retrain > most + 1e-9:
            return f"epochs_prune + epochs_retrain {prune + retrain:g}, more than its spec runs ({most:g})"
        return None

    def sparsity_check(self, spec: CellSpec) -> tuple[str, float]:
        from pruners import PRUNERS

        structured = PRUNERS.get(spec.pruner).kind == "structured"
        return ("unit_sparsity" if structured else "achieved_sparsity"), spec.sparsity

    def check_plugin(self, spec: CellSpec) -> None:
        """A cell names the plugin version it was planned with; a worker with another refuses it."""
        from pruners import PRUNERS

        plugin = PRUNERS.get(spec.pruner).plugin
        here = f"{plugin[0]}=={plugin[1]}" if plugin else None
        if here != spec.plugin:
            raise RuntimeError(
                f"pruner {spec.pruner!r} comes from {here or 'prunebench'} here, the cell needs {spec.plugin}"
            )
