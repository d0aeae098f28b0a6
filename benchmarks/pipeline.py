"""What one dense parent and one pruning cell compute, with no I/O.

Dense parent: seed -> init -> train with the recipe (keeping the epoch-``k`` iterate for
weight rewinding) -> evaluate (phase ``dense``; the harness copies these rows into every
cell of the parent). A cell's flow depends on when its pruner acts (``Pruner.timing``):

- ``after_training``: load the trained parent -> prune once (scores on training batches)
  -> evaluate ``pruned`` (before any retraining) -> retrain with the cell's recipe
  (``finetune``, ``lr_rewind``, ``weight_rewind``) -> evaluate ``retrained``.
- ``at_init``: fresh init with the cell's seed (the parent's own initialisation) -> choose
  the mask (scores on training batches only) -> evaluate ``pruned`` -> train from scratch
  with the dense recipe, masks fixed -> evaluate ``retrained``. The cell's ``retrain``
  recipe is not applied (from-scratch training is the retraining); presets give at-init
  pruners a single ``retrain`` value.
- ``during_training``: the pruner drives a from-scratch sparse training run with the dense
  recipe (``gmp``, ``rigl``, ``slimming`` hook into ``benchmarks.training.train``; ``imp``
  runs rounds of pruning, rewinding to the parent's epoch-``k`` iterate and retraining)
  -> evaluate ``pruned`` at the end of its sparse training -> retrain with the cell's
  recipe -> evaluate ``retrained``.

Each evaluation covers every evaluation set and records weight-level sparsity
(``achieved_sparsity``, from the masks) and parameter counts; structured pruners add a
``unit_sparsity`` row (fraction of filters / neurons removed) and hand their physically
smaller model to ``evaluate`` as ``compact_model``. The cell's ``seconds`` are ``prune``
(mask choice; for during-training pruners the whole sparse training run), ``retrain``
(retraining; for at-init pruners the from-scratch training) and ``eval``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.datasets import DatasetSplits, load_dataset
from benchmarks.evaluation import evaluate
from benchmarks.retrain import retrain
from benchmarks.spec import CellSpec, ParentSpec
from benchmarks.training import train, training_batches
from pruners import DuringTrainingPruner, PruneContext, Pruner, SparseTraining, get_pruner

SCORE_BATCHES = 8
SCORE_BATCH_SIZE = 256


@dataclass
class ParentResult:
    state: dict[str, torch.Tensor]
    rewind_state: dict[str, torch.Tensor]
    rows: list[dict]
    train_seconds: float


@dataclass
class CellResult:
    rows: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)


def fresh_model(arch: str, data: DatasetSplits, seed: int, device: str = "cpu") -> nn.Module:
    torch.manual_seed(seed)
    return build_arch(arch, data.input_shape, data.num_classes).to(device)


def train_parent(spec: ParentSpec, device: str = "cpu", cache_dir: Path | None = None) -> ParentResult:
    data = load_dataset(spec.dataset)
    model = fresh_model(spec.arch, data, spec.seed, device)
    rewind: dict[str, torch.Tensor] = {}

    def keep_rewind(epoch: int) -> None:
        if epoch + 1 == spec.rewind_epoch:
            rewind.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    if spec.rewind_epoch == 0:
        keep_rewind(-1)
    start = time.perf_counter()
    train(
        model, data.x_train.to(device), data.y_train.to(device), spec.train, spec.seed, epoch_hook=keep_rewind
    )
    seconds = time.perf_counter() - start
    return ParentResult(model.state_dict(), rewind, evaluate(model, data, "dense", cache_dir), seconds)


def load_parent_model(spec: ParentSpec, state: dict[str, torch.Tensor], device: str = "cpu") -> nn.Module:
    data = load_dataset(spec.dataset)
    model = build_arch(spec.arch, data.input_shape, data.num_classes).to(device)
    model.load_state_dict(state)
    return model.eval()


def prune_context(spec: CellSpec, data: DatasetSplits, device: str = "cpu") -> PruneContext:
    """The pruner's view: seeded randomness and a fixed list of *training* minibatches."""
    x, y = data.x_train.to(device), data.y_train.to(device)
    return PruneContext(
        seed=spec.seed,
        batches=training_batches(x, y, SCORE_BATCH_SIZE, spec.seed, SCORE_BATCHES),
        weight_decay=spec.train.weight_decay,
        input_shape=data.input_shape,
    )


def structure_rows(pruner: Pruner, model: nn.Module, phase: str) -> list[dict]:
    """The ``unit_sparsity`` row of a structured pruner (none for unstructured ones)."""
    if pruner.kind != "structured":
        return []
    value = float(pruner.unit_sparsity(model))
    return [
        {
            "phase": phase,
            "eval_set": "model",
            "kind": "model",
            "severity": 0,
            "metric": "unit_sparsity",
            "class": None,
            "step": None,
            "value": value,
        }
    ]


def evaluate_phase(
    pruner: Pruner, model: nn.Module, data: DatasetSplits, phase: str, cache_dir: Path | None
) -> list[dict]:
    compact = pruner.compact(model) if pruner.kind == "structured" else None
    return evaluate(model, data, phase, cache_dir, compact_model=compact) + structure_rows(
        pruner, model, phase
    )


def run_cell(
    spec: CellSpec,
    parent_state: dict[str, torch.Tensor],
    rewind_state: dict[str, torch.Tensor] | None,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> CellResult:
    """Run one cell (flow by the pruner's timing, see the module docstring); rows of both phases."""
    pruner = get_pruner(spec.pruner)
    data = load_dataset(spec.dataset)
    x, y = data.x_train.to(device), data.y_train.to(device)
    ctx = prune_context(spec, data, device)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    if pruner.timing == "after_training":
        model = load_parent_model(spec.parent, copy.deepcopy(parent_state), device)
        pruner.prune(model, spec.sparsity, ctx)
    elif pruner.timing == "at_init":
        model = fresh_model(spec.arch, data, spec.seed, device)
        pruner.prune(model, spec.sparsity, ctx)
    elif isinstance(pruner, DuringTrainingPruner):
        model = fresh_model(spec.arch, data, spec.seed, device)
        run = SparseTraining(
            x,
            y,
            spec.train,
            spec.seed,
            rewind_epoch=spec.retrain_config.rewind_epoch,
            rewind_state=rewind_state,
            parent_state=parent_state,
        )
        pruner.train_sparse(model, spec.sparsity, ctx, run)
    else:
        raise NotImplementedError(f"pruner {spec.pruner!r}: timing {pruner.timing!r} has no pipeline")
    seconds["prune"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = evaluate_phase(pruner, model, data, "pruned", cache_dir)
    seconds["eval"] = time.perf_counter() - t

    t = time.perf_counter()
    if pruner.timing == "at_init":
        train(model, x, y, spec.train, spec.seed)
    else:
        retrain(model, x, y, spec.retrain, spec.train, spec.retrain_config, spec.seed, rewind_state)
    seconds["retrain"] = time.perf_counter() - t

    t = time.perf_counter()
    rows += evaluate_phase(pruner, model, data, "retrained", cache_dir)
    seconds["eval"] += time.perf_counter() - t
    return CellResult(rows, seconds)
