"""What one dense parent and one pruning cell compute, with no I/O.

Dense parent: seed -> init -> train with the recipe (keeping the epoch-``k`` iterate for
weight rewinding) -> evaluate. Pruning cell (after-training pruners): load the parent ->
prune once -> evaluate *before any retraining* (the numbers the stability analysis needs)
-> retrain with the cell's recipe -> evaluate. Each evaluation covers every evaluation
set and records sparsity and parameter counts.
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
from pruners import PruneContext, get_pruner

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


def run_cell(
    spec: CellSpec,
    parent_state: dict[str, torch.Tensor],
    rewind_state: dict[str, torch.Tensor] | None,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> CellResult:
    """Prune a trained dense parent, evaluate, retrain, evaluate; rows for both phases."""
    pruner = get_pruner(spec.pruner)
    if pruner.timing != "after_training":
        raise NotImplementedError(f"pruner {spec.pruner!r} acts {pruner.timing}; not supported yet")
    data = load_dataset(spec.dataset)
    x, y = data.x_train.to(device), data.y_train.to(device)
    model = load_parent_model(spec.parent, copy.deepcopy(parent_state), device)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    ctx = PruneContext(
        seed=spec.seed,
        batches=training_batches(x, y, SCORE_BATCH_SIZE, spec.seed, SCORE_BATCHES),
        weight_decay=spec.train.weight_decay,
    )
    pruner.prune(model, spec.sparsity, ctx)
    seconds["prune"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = evaluate(model, data, "pruned", cache_dir)
    seconds["eval"] = time.perf_counter() - t

    t = time.perf_counter()
    retrain(model, x, y, spec.retrain, spec.train, spec.retrain_config, spec.seed, rewind_state)
    seconds["retrain"] = time.perf_counter() - t

    t = time.perf_counter()
    rows += evaluate(model, data, "retrained", cache_dir)
    seconds["eval"] += time.perf_counter() - t
    return CellResult(rows, seconds)
