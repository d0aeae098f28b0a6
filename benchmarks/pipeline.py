"""What one dense parent and one pruning cell compute, with no I/O.

Dense parent: seed -> init -> train with the recipe (keeping the epoch-``k`` iterate for
weight rewinding); its evaluation rows (phase ``dense``) are computed per evaluation config
(``dense_rows``) and the harness copies them into every cell of the parent. A cell's flow
depends on when its pruner acts (``Pruner.timing``):

- ``after_training``: load the trained parent -> prune once (scores on training batches;
  a ``PhasePruner`` first runs its pruning phase on the parent through ``SparseTraining``,
  charged to ``epochs_prune``) -> evaluate ``pruned`` (before any retraining) -> retrain with
  the cell's recipe
  (``finetune``, ``lr_rewind``, ``weight_rewind``; the lowest-validation-loss epoch kept when
  ``retrain_config.selection`` says so) -> evaluate ``retrained``.
- ``at_init``: fresh init with the cell's seed (the parent's own initialisation) -> choose
  the mask (scores on training batches only) -> evaluate ``pruned`` -> train from scratch
  with the dense recipe, masks fixed -> evaluate ``retrained``. The cell's ``retrain``
  recipe is not applied (from-scratch training is the retraining).
- ``during_training``: the pruner drives a from-scratch sparse training run with the dense
  recipe through ``SparseTraining`` (``imp``: rounds from the trained parent, rewinding to
  its epoch-``k`` iterate) -> evaluate ``pruned`` at the end of its sparse training ->
  retrain with the cell's recipe -> evaluate ``retrained``.

Mask sanity controls (``CellSpec.control``, ``benchmarks.controls``): the control the spec names
changes the pruner's context before pruning and the pruned model after it, and may make the cell
train from scratch (``reinit``). The ``pruned`` phase is evaluated on the clean splits only (no
analysis reads it on shifted sets); ``retrained`` on the cell's ``EvalConfig``.

After pruning, the model's sparsity must be the spec's within the pruner contract's slack
(``pruners.contract``): a cell that misses it fails with that reason.

The cell's budget (``benchmarks.budget``) is the training epochs and FLOPs of the dense
parent (when the cell's model descends from it), of the pruning procedure and of the
retraining. Its ``seconds`` are ``prune`` (mask choice; for during-training pruners the
whole sparse training run, for phase pruners their phase), ``retrain`` and ``eval``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.budget import BudgetMeter
from benchmarks.controls import CONTROLS
from benchmarks.datasets import DatasetSplits, load_dataset
from benchmarks.evaluation import evaluate
from benchmarks.retrain import load_rewind_weights, retrain
from benchmarks.training import steps_per_epoch, train, training_batches
from core.metrics import metric_row
from core.spec import CellSpec, EvalConfig, ParentSpec, TrainConfig
from pruners import DuringTrainingPruner, PhasePruner, PruneContext, Pruner, SparseTraining, get_pruner
from pruners.base import StateCache
from pruners.contract import check_sparsity


@dataclass
class ParentResult:
    state: dict[str, torch.Tensor]
    rewind_state: dict[str, torch.Tensor]
    train_seconds: float
    epochs: float
    flops: float


@dataclass
class CellResult:
    rows: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)
    budget: dict[str, float] = field(default_factory=dict)


def fresh_model(arch: str, data: DatasetSplits, seed: int, device: str = "cpu") -> nn.Module:
    torch.manual_seed(seed)
    return build_arch(arch, data.input_shape, data.num_classes).to(device)


def train_parent(spec: ParentSpec, device: str = "cpu") -> ParentResult:
    data = load_dataset(spec.dataset)
    model = fresh_model(spec.arch, data, spec.seed, device)
    rewind: dict[str, torch.Tensor] = {}

    def keep_rewind(epoch: int) -> None:
        if epoch + 1 == spec.rewind_epoch:
            rewind.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    if spec.rewind_epoch == 0:
        keep_rewind(-1)
    meter = BudgetMeter(data.input_shape)
    start = time.perf_counter()
    x, y = data.x_train.to(device), data.y_train.to(device)
    train(model, x, y, spec.train, spec.seed, epoch_hook=keep_rewind, meter=meter)
    seconds = time.perf_counter() - start
    return ParentResult(model.state_dict(), rewind, seconds, meter.epochs, meter.flops)


def load_parent_model(spec: ParentSpec, state: dict[str, torch.Tensor], device: str = "cpu") -> nn.Module:
    data = load_dataset(spec.dataset)
    model = build_arch(spec.arch, data.input_shape, data.num_classes).to(device)
    model.load_state_dict(state)
    return model.eval()


def dense_rows(
    spec: ParentSpec, state: dict[str, torch.Tensor], config: EvalConfig, device: str = "cpu", cache_dir=None
) -> list[dict]:
    """The parent's ``dense`` evaluation rows under one evaluation config."""
    model = load_parent_model(spec, copy.deepcopy(state), device)
    return evaluate(model, load_dataset(spec.dataset), "dense", cache_dir, config=config)


def prune_context(spec: CellSpec, data: DatasetSplits, device: str = "cpu") -> PruneContext:
    """The pruner's view: seeded randomness and a fixed list of *training* minibatches, as the
    spec's mask control changes it (``benchmarks.controls``: ``invert`` reverses the ranking)."""
    x, y = data.x_train.to(device), data.y_train.to(device)
    ctx = PruneContext(
        seed=spec.seed,
        batches=training_batches(x, y, spec.eval.score_batch_size, spec.seed, spec.eval.score_batches),
        weight_decay=spec.train.weight_decay,
        input_shape=data.input_shape,
    )
    return CONTROLS.get(spec.control).context(ctx)


def structure_rows(pruner: Pruner, model: nn.Module, phase: str) -> list[dict]:
    """The ``unit_sparsity`` row of a structured pruner (none for unstructured ones)."""
    if pruner.kind != "structured":
        return []
    return [model_row(phase, "unit_sparsity", float(pruner.unit_sparsity(model)))]


def model_row(phase: str, metric: str, value: float) -> dict:
    return metric_row("model", "model", metric, value, phase=phase)


def evaluate_phase(
    pruner: Pruner,
    model: nn.Module,
    data: DatasetSplits,
    phase: str,
    cache_dir: Path | None,
    config: EvalConfig,
) -> list[dict]:
    compact = pruner.compact(model) if pruner.kind == "structured" else None
    return evaluate(model, data, phase, cache_dir, compact_model=compact, config=config) + structure_rows(
        pruner, model, phase
    )


def tensor_training(
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    seed: int,
    rewind_epoch: int = 0,
    rewind_state: dict[str, torch.Tensor] | None = None,
    parent_state: dict[str, torch.Tensor] | None = None,
    meter: BudgetMeter | None = None,
    cache: StateCache | None = None,
) -> SparseTraining:
    """The ``SparseTraining`` a during-training or phase pruner trains through, on training tensors
    ``x, y`` (pruners get the training function from here instead of importing ``benchmarks.training``)."""

    def train_fn(model, config_=None, *, epoch_range=None, step_hook=None, epoch_hook=None, regularizer=None):
        return train(
            model,
            x,
            y,
            config_ or config,
            seed,
            epoch_range=epoch_range,
            step_hook=step_hook,
            epoch_hook=epoch_hook,
            regularizer=regularizer,
            meter=meter,
        )

    def rewind(model: nn.Module) -> None:
        if rewind_state is None:
            raise ValueError("this run has no rewind iterate")
        load_rewind_weights(model, rewind_state)

    return SparseTraining(
        config=config,
        seed=seed,
        train=train_fn,
        steps_per_epoch=steps_per_epoch(x.shape[0], config.batch_size),
        rewind_epoch=rewind_epoch,
        rewind=rewind,
        parent_state=parent_state,
        cache=MeteredCache(cache, meter) if cache is not None and meter is not None else cache,
        x=x,
        y=y,
    )


BUDGET_KEY = "__budget__"


class MeteredCache:
    """A ``StateCache`` that keeps the pruning budget spent up to each cached state, so a cell
    that resumes from a shared state (IMP's rounds) is charged every epoch it stands on."""

    def __init__(self, inner: StateCache, meter: BudgetMeter) -> None:
        self.inner, self.meter = inner, meter

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        state = self.inner.get(key)
        if state is None or BUDGET_KEY not in state:
            return None
        state = dict(state)
        self.meter.epochs, self.meter.flops = (float(v) for v in state.pop(BUDGET_KEY).tolist())
        return state

    def put(self, key: str, state: dict[str, torch.Tensor]) -> None:
        spent = torch.tensor([self.meter.epochs, self.meter.flops], dtype=torch.float64)
        self.inner.put(key, {**state, BUDGET_KEY: spent})


def uses_dense_parent(pruner: Pruner) -> bool:
    """Whether the cell's model descends from the trained dense parent (its training is charged)."""
    return pruner.timing == "after_training" or getattr(pruner, "uses_dense_parent", False)


def run_cell(
    spec: CellSpec,
    parent_state: dict[str, torch.Tensor],
    rewind_state: dict[str, torch.Tensor] | None,
    device: str = "cpu",
    cache_dir: Path | None = None,
    parent_budget: tuple[float, float] = (0.0, 0.0),
    state_cache: StateCache | None = None,
) -> CellResult:
    """Run one cell (flow by the pruner's timing, see the module docstring); rows of both phases.

    ``parent_budget`` is the dense parent's (epochs, training FLOPs).
    """
    pruner = get_pruner(spec.pruner, spec.pruner_config)
    data = load_dataset(spec.dataset)
    x, y = data.x_train.to(device), data.y_train.to(device)
    val = (data.x_val.to(device), data.y_val.to(device))
    control = CONTROLS.get(spec.control)
    ctx = prune_context(spec, data, device)
    prune_meter, retrain_meter = BudgetMeter(data.input_shape), BudgetMeter(data.input_shape)
    seconds: dict[str, float] = {}

    def training_run(cache: StateCache | None = None) -> SparseTraining:  # charged to the pruning budget
        return tensor_training(
            x,
            y,
            spec.train,
            spec.seed,
            spec.retrain_config.rewind_epoch,
            rewind_state,
            parent_state,
            prune_meter,
            cache,
        )

    t = time.perf_counter()
    if isinstance(pruner, PhasePruner):  # after training, with a pruning phase on the parent
        model = load_parent_model(spec.parent, copy.deepcopy(parent_state), device)
        pruner.prune_with_phase(model, spec.sparsity, ctx, training_run())
    elif pruner.timing == "after_training":
        model = load_parent_model(spec.parent, copy.deepcopy(parent_state), device)
        pruner.prune(model, spec.sparsity, ctx)
    elif pruner.timing == "at_init":
        model = fresh_model(spec.arch, data, spec.seed, device)
        pruner.prune(model, spec.sparsity, ctx)
    elif isinstance(pruner, DuringTrainingPruner):
        model = fresh_model(spec.arch, data, spec.seed, device)
        pruner.train_sparse(model, spec.sparsity, ctx, training_run(state_cache))
    else:
        raise NotImplementedError(f"pruner {spec.pruner!r}: timing {pruner.timing!r} has no pipeline")
    if control.transform is not None:
        control.transform(model, spec, data, ctx, device)
    check_sparsity(pruner, model, spec.sparsity)  # a missed target fails the cell (pruners.contract)
    seconds["prune"] = time.perf_counter() - t

    t = time.perf_counter()
    clean = replace(spec.eval, sets="clean")
    rows = evaluate_phase(pruner, model, data, "pruned", cache_dir, clean)
    seconds["eval"] = time.perf_counter() - t

    t = time.perf_counter()
    kept_epoch = None
    if pruner.timing == "at_init" or control.from_scratch:
        train(model, x, y, spec.train, spec.seed, meter=retrain_meter)
    else:
        kept_epoch = retrain(
            model,
            x,
            y,
            spec.retrain,
            spec.train,
            spec.retrain_config,
            spec.seed,
            rewind_state,
            val,
            meter=retrain_meter,
        )
    seconds["retrain"] = time.perf_counter() - t

    t = time.perf_counter()
    rows += evaluate_phase(pruner, model, data, "retrained", cache_dir, spec.eval)
    if kept_epoch is not None:
        rows.append(model_row("retrained", "kept_epoch", kept_epoch))
    seconds["eval"] += time.perf_counter() - t

    dense_epochs, dense_flops = parent_budget if uses_dense_parent(pruner) else (0.0, 0.0)
    budget = {
        "epochs_dense": dense_epochs,
        "epochs_prune": prune_meter.epochs,
        "epochs_retrain": retrain_meter.epochs,
        "train_flops": dense_flops + prune_meter.flops + retrain_meter.flops,
    }
    return CellResult(rows, seconds, budget)
