"""``force``: foresight connection sensitivity, progressive skeletonization (de Jorge, Sanyal,
Behl, Torr, Rogez & Dokania, "Progressive Skeletonization: Trimming more fat from a network at
initialization", ICLR 2021).

Unstructured, at init, iterative. The mask is reached in ``T`` steps; step ``t`` keeps a
fraction ``k_t`` of all weights (the exponential schedule, ``kappa = 1 - s`` the final density;
``linear``: ``k_t = 1 - t (1 - kappa) / T``)::

    k_t = kappa^(t / T),  t = 1..T

Each step evaluates the gradient at the *sparsified* initial network ``w0 * m`` (the masked
weights set to zero, their gradients not blocked) on a training minibatch, and scores every
weight, pruned or not, with its initial value::

    s_i = | w0_i * dL/dw_i (w0 * m) |

then ``m`` = the global top ``k_t n`` of ``s``: a weight pruned earlier may come back
(`iter_snip`, in ``pruners.iter_snip``, instead scores ``|w * g|`` with the current, pruned
weights, so a pruned weight stays pruned). Network in train mode (batch statistics, restored
afterwards).

Defaults from the authors' code (naver/force): ``T = 60`` steps and the exponential schedule
(the README's CIFAR and ImageNet commands, ``--num_steps 60 --mode exp``; the argparse default
is 10 steps), one minibatch of 128 per step for CIFAR-10 (``--num_batches 1``, ``BATCH_SIZE =
128`` in ``experiments/experiments.py``; the README uses 10 for CIFAR-100's 100 classes,
prunebench's datasets have 10). ``pruning/pruning_algos.py``, ``iterative_pruning`` with
``prune_method = 3``.

Differences from the authors' code, and why:

- The minibatches come from ``PruneContext.batches`` (8 seeded batches of 256 in the default
  preset), cut into batches of ``batch_size`` and cycled, step ``t`` taking the next
  ``batches_per_step`` of them; the authors draw a fresh random batch of the training loader at
  every step (60 x 128 examples, here 2048 distinct ones, each seen about 4 times). A context
  with fewer examples than ``batch_size`` gives one batch of all of them.
- The mask keeps exactly ``round(k_t n)`` weights (ties by position); the authors keep every
  weight at or above the ``k_t n``-th score, a few more where scores tie.

Faithfulness reference (``tests/test_faithfulness_force.py``): the iteration written out on a
functional two-layer MLP from the equations above; the masks equal the reference's.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from core.config import param
from pruners.base import PruneContext, Pruner, register_pruner
from pruners.masks import apply_masks, effective_weight, ensure_masks, masks_from_scores, prunable_modules
from pruners.scoring import weight_gradients


def schedule(sparsity: float, steps: int, mode: str) -> list[float]:
    """The sparsity after each step: ``1 - k_t`` for ``t = 1..steps``."""
    kappa = 1.0 - sparsity
    if mode == "linear":
        out = [t * (1.0 - kappa) / steps for t in range(1, steps + 1)]
    else:
        out = [1.0 - kappa ** (t / steps) for t in range(1, steps + 1)]
    return [*out[:-1], sparsity]  # the last step at the target exactly


def minibatches(ctx: PruneContext, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``ctx.batches`` concatenated and cut into batches of ``size`` (a short remainder dropped)."""
    if len(ctx.batches) == 0:
        raise ValueError("this pruner is data-dependent: PruneContext.batches is empty")
    x = torch.cat([b[0] for b in ctx.batches])
    y = torch.cat([b[1] for b in ctx.batches])
    count = max(1, x.shape[0] // size)
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(count)]


@register_pruner
class Force(Pruner):
    """FORCE at init: s = |w0 * dL/dw(w0 * m)|, 60 steps, pruned weights may return (de Jorge et al. 2021)."""

    name = "force"
    timing = "at_init"
    invertible = True
    scope = "global"
    recover: ClassVar[bool] = True  # score with the initial weights, so pruned weights can return

    @dataclass(frozen=True)
    class Config:
        steps: int = param(60, "pruning steps T (naver/force README: --num_steps 60)", ge=1)
        mode: str = param(
            "exp", "density schedule: exp k_t = kappa^(t/T), or linear", choices=("exp", "linear")
        )
        batch_size: int = param(128, "examples per gradient minibatch (naver/force BATCH_SIZE)", ge=1)
        batches_per_step: int = param(1, "minibatches averaged per step (naver/force --num_batches)", ge=1)

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
        cfg = self.config
        batches = minibatches(ctx, cfg.batch_size)
        net = copy.deepcopy(model)
        ensure_masks(net)
        initial = {n: effective_weight(m).detach().clone() for n, m in prunable_modules(net).items()}
        masks: dict[str, torch.Tensor] = {}
        for t, target in enumerate(schedule(sparsity, cfg.steps, cfg.mode)):
            step = [
                batches[(t * cfg.batches_per_step + i) % len(batches)] for i in range(cfg.batches_per_step)
            ]
            grads = weight_gradients(net, dataclasses.replace(ctx, batches=step), train_mode=True)
            weight = (
                initial
                if self.recover
                else {n: effective_weight(m).detach() for n, m in prunable_modules(net).items()}
            )
            scores = {n: ctx.score_sign * (weight[n] * grads[n]).abs() for n in grads}
            masks = masks_from_scores(model if self.recover else net, scores, target, "global")
            apply_masks(net, masks, replace=self.recover)
        apply_masks(model, masks)
