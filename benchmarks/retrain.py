"""Retraining recipes applied after pruning; masks stay fixed throughout.

- ``finetune``: ``E`` epochs at a small learning rate ``finetune_lr``, fixed (Han et al. 2015) or
  decayed by a cosine (``finetune_schedule``).
- ``lr_rewind``: replay the last ``E`` epochs of the original schedule, learning rates and
  data order included (Renda, Frankle & Carbin, ICLR 2020).
- ``weight_rewind``: reset the surviving weights to their values at epoch ``k`` of dense
  training and retrain epochs ``k..T`` of the original schedule (the lottery-ticket
  protocol with rewinding; Frankle et al., ICML 2020).

Model selection (``RetrainConfig.selection``): ``best_val_loss`` keeps the epoch of lowest
loss on the validation split (never the test split), ``last`` the last epoch. With
``patience = p > 0`` (and ``best_val_loss``) retraining stops early once ``p`` epochs in a row
have not lowered the validation loss (early stopping, Prechelt 1998): the recipe's ``epochs``
is then a budget, and the cell is charged the epochs it ran.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.training import TrainConfig, train
from core.spec import RetrainConfig


def load_rewind_weights(model: nn.Module, rewind_state: dict[str, torch.Tensor]) -> None:
    """Copy the early iterate into the model, keeping masks.

    A masked tensor ``a.weight`` (or a structured pruner's ``a.bias``, a BatchNorm's scale)
    is stored as ``a.weight_orig`` next to its ``a.weight_mask``; the iterate's value goes
    into ``_orig`` and is multiplied by the mask, so masked entries stay zero in storage too.
    """
    own = model.state_dict()
    with torch.no_grad():
        for key, value in rewind_state.items():
            target = key if key in own else f"{key}_orig"
            if target not in own:
                raise KeyError(f"rewind iterate has {key!r}, which the model does not")
            own[target].copy_(value)
            mask = own.get(f"{key}_mask")
            if mask is not None:
                own[target].mul_(mask)


def retrain(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: str,
    train_config: TrainConfig,
    retrain_config: RetrainConfig,
    seed: int,
    rewind_state: dict[str, torch.Tensor] | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    meter: Callable[[nn.Module, int], None] | None = None,
) -> int | None:
    """Retrain ``model`` in place with ``recipe``; masks stay fixed.

    With ``retrain_config.selection == "best_val_loss"`` and a validation split ``val``, the
    weights of the retraining epoch with the lowest validation loss are kept (Good et al.
    2022 keep the lowest-validation-loss fine-tuning epoch); the return value is that epoch
    (1-based), or None when the last epoch is kept by design.
    """
    keeper = (
        BestEpoch(model, *val, patience=retrain_config.patience)
        if val is not None and retrain_config.selection == "best_val_loss"
        else None
    )
    hook = keeper.after_epoch if keeper is not None else None
    if recipe == "finetune":
        config = replace(
            train_config,
            epochs=retrain_config.epochs,
            lr=retrain_config.finetune_lr,
            schedule=retrain_config.finetune_schedule,
        )
        train(model, x, y, config, seed + 1, epoch_hook=hook, meter=meter)
    elif recipe == "lr_rewind":
        total = train_config.epochs
        start = max(0, total - retrain_config.epochs)
        train(model, x, y, train_config, seed, epoch_range=(start, total), epoch_hook=hook, meter=meter)
    elif recipe == "weight_rewind":
        if rewind_state is None:
            raise ValueError("weight_rewind needs the parent's rewind iterate")
        load_rewind_weights(model, rewind_state)
        epochs = (retrain_config.rewind_epoch, train_config.epochs)
        train(model, x, y, train_config, seed, epoch_range=epochs, epoch_hook=hook, meter=meter)
    else:
        raise ValueError(f"unknown retrain recipe {recipe!r}")
    return keeper.restore() if keeper is not None else None


def retrain_epochs(recipe: str, train_config: TrainConfig, retrain_config: RetrainConfig) -> int:
    """Epochs a recipe trains (the cell's retraining budget)."""
    if recipe == "weight_rewind":
        return max(0, train_config.epochs - retrain_config.rewind_epoch)
    if recipe == "lr_rewind":
        return min(retrain_config.epochs, train_config.epochs)
    return retrain_config.epochs


class BestEpoch:
    """Keeps the state of the epoch with the lowest validation loss (ties: the earlier epoch);
    with ``patience > 0``, ``after_epoch`` returns True (stop) once that many epochs in a row
    have not lowered it."""

    def __init__(self, model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, patience: int = 0) -> None:
        self.model, self.x, self.y, self.patience = model, x_val, y_val, patience
        self.best_loss, self.best_epoch, self.best_state, self.seen = float("inf"), None, None, 0

    def after_epoch(self, _epoch: int) -> bool:
        from benchmarks.evaluation import predict_logits

        self.seen += 1
        loss = float(F.cross_entropy(predict_logits(self.model, self.x), self.y))
        self.model.train()
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, self.seen
            self.best_state = copy.deepcopy(self.model.state_dict())
        return self.patience > 0 and self.seen - (self.best_epoch or 0) >= self.patience

    def restore(self) -> int | None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.best_epoch
