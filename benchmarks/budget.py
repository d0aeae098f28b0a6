"""What it costs to make a model: training epochs and training FLOPs, per phase of a cell.

A ``BudgetMeter`` is handed to ``benchmarks.training.train`` and called before every epoch
with the model as it is then (masks included) and the number of examples the epoch trains
on. It counts the epoch and adds its training FLOPs::

    FLOPs_epoch = 3 * F_eff(model) * examples

``F_eff`` is the mask-aware forward FLOPs per example (``benchmarks.cost.flops``:
``flops_effective``, from ``torch.utils.flop_counter``), and the factor 3 counts the
backward pass as twice the forward (gradients with respect to activations and to weights),
the convention of Evci et al. 2020 (RigL) for sparse training FLOPs. Density is read once
per epoch, so a pruner that changes masks inside an epoch (``gmp``, ``rigl``) is charged at
the epoch's starting density. Scoring passes (a few minibatches) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from benchmarks import cost

BACKWARD_FACTOR = 3.0


@dataclass
class BudgetMeter:
    input_shape: tuple[int, ...]
    epochs: float = 0.0
    flops: float = 0.0

    def __call__(self, model: nn.Module, examples: int) -> None:
        self.epochs += 1.0
        self.flops += BACKWARD_FACTOR * cost.flops(model, self.input_shape)["flops_effective"] * examples
