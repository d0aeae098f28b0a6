"""Retraining recipes applied after pruning; masks stay fixed throughout.

- ``finetune``: ``E`` epochs at a fixed small learning rate ``finetune_lr`` (Han et al. 2015).
- ``lr_rewind``: replay the last ``E`` epochs of the original schedule, learning rates and
  data order included (Renda, Frankle & Carbin, ICLR 2020).
- ``weight_rewind``: reset the surviving weights to their values at epoch ``k`` of dense
  training and retrain epochs ``k..T`` of the original schedule (the lottery-ticket
  protocol with rewinding; Frankle et al., ICML 2020).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from benchmarks.spec import RetrainConfig
from benchmarks.training import TrainConfig, train


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
) -> None:
    if recipe == "finetune":
        config = replace(
            train_config, epochs=retrain_config.epochs, lr=retrain_config.finetune_lr, schedule="constant"
        )
        train(model, x, y, config, seed + 1)
    elif recipe == "lr_rewind":
        total = train_config.epochs
        train(model, x, y, train_config, seed, epoch_range=(max(0, total - retrain_config.epochs), total))
    elif recipe == "weight_rewind":
        if rewind_state is None:
            raise ValueError("weight_rewind needs the parent's rewind iterate")
        load_rewind_weights(model, rewind_state)
        train(model, x, y, train_config, seed, epoch_range=(retrain_config.rewind_epoch, train_config.epochs))
    else:
        raise ValueError(f"unknown retrain recipe {recipe!r}")
