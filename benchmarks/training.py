"""Training recipes on in-memory tensors: batches are index slices of one permutation per epoch.

A recipe (``TrainConfig``) fixes optimizer, learning-rate schedule and epochs; the data order
comes from a ``torch.Generator`` seeded by the run's seed, so the same recipe and seed give
the same weights bit for bit on CPU. Weight decay is the coupled L2 term (``lambda * w`` added
to the gradient), the ``lambda`` that Undecayed Pruning's score uses.

Learning-rate schedules, with ``t`` the fraction of the run done:
- ``cosine``: ``lr * 0.5 * (1 + cos(pi * t))`` (Loshchilov & Hutter 2017)
- ``constant``: ``lr``
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.spec import TrainConfig

StepHook = Callable[[int, int], None]
"""Called after every optimizer step as ``hook(step, total_steps)``."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss."""


CROP_PADDING = 4


def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by 4 and random horizontal flip, for a batch of images
    ``(N, C, H, W)`` on its own device (the CIFAR augmentation of He et al. 2016), batched:
    one gather per batch, no per-sample Python work."""
    if x.dim() != 4:
        return x  # sequences and vectors are not augmented
    n, _, h, w = x.shape
    p = CROP_PADDING
    padded = F.pad(x, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None]).view(n, 1, h, 1)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]
    cols = torch.where(flip[:, None], cols.flip(1), cols).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


def accelerated(model: nn.Module, x: torch.Tensor) -> tuple[Callable, Callable]:
    """(forward, autocast context) for training on ``x``'s device.

    On CUDA: bf16 autocast and ``torch.compile`` when the environment sets
    ``PRUNEBENCH_COMPILE=1``. On CPU: the plain model in fp32 and no autocast. (Convolutional
    archs are channels-last on every device already: ``benchmarks.archs.build_arch``.)
    """
    if x.device.type != "cuda":
        return model, contextlib.nullcontext
    forward = torch.compile(model) if os.environ.get("PRUNEBENCH_COMPILE") == "1" else model
    return forward, lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD with momentum, in PyTorch's fused implementation (one kernel for all
    parameters instead of a Python loop over them: the same update rule, about 20% less
    time per step for the MLP on CPU)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        fused=True,
    )


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)  # drop the ragged last batch: BatchNorm needs > 1 example


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    seed: int,
    *,
    epoch_range: tuple[int, int] | None = None,
    step_hook: StepHook | None = None,
    epoch_hook: Callable[[int], None] | None = None,
    regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    meter: Callable[[nn.Module, int], None] | None = None,
) -> int:
    """Train ``model`` in place; returns the number of optimizer steps taken.

    ``regularizer(model)``, if given, is added to every minibatch loss (network slimming's
    L1 penalty on BatchNorm scales); ``step_hook`` runs after every optimizer step
    (gradual and dynamic pruning), ``epoch_hook(epoch)`` after every epoch (returning True
    ends training after that epoch: early stopping), and
    ``meter(model, examples)`` before every epoch (``benchmarks.budget``: what training costs).

    ``epoch_range=(a, b)`` replays epochs a..b-1 of the recipe (learning-rate rewinding,
    Renda et al. 2020): the schedule position and the data order are those of the full run.
    """
    start, stop = epoch_range if epoch_range is not None else (0, config.epochs)
    optimizer = make_optimizer(model, config)
    forward, autocast = accelerated(model, x)
    n = x.shape[0]
    per_epoch = steps_per_epoch(n, config.batch_size)
    total = per_epoch * max(config.epochs, 1)
    step = 0
    model.train()
    for epoch in range(start, stop):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        augment_gen = torch.Generator().manual_seed(seed * 100_003 + epoch + 7_777_777)
        if meter is not None:
            meter(model, per_epoch * min(config.batch_size, n))
        for b in range(per_epoch):
            global_step = epoch * per_epoch + b
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(global_step / total)
            idx = order[b * config.batch_size : (b + 1) * config.batch_size].to(x.device)
            inputs = x[idx] if config.augment == "none" else crop_flip(x[idx], augment_gen)
            with autocast():
                loss = F.cross_entropy(forward(inputs).float(), y[idx])
            if regularizer is not None:
                loss = loss + regularizer(model)
            if not torch.isfinite(loss):
                raise DivergenceError(f"non-finite training loss {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step_hook is not None:
                step_hook(global_step, total)
        if epoch_hook is not None and epoch_hook(epoch) is True:
            break
    model.eval()
    return step


def training_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, num_batches: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed, seeded list of training minibatches for data-dependent pruning scores."""
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed + 7919))
    out = []
    for b in range(num_batches):
        idx = order[(b * batch_size) % x.shape[0] :][:batch_size].to(x.device)
        out.append((x[idx], y[idx]))
    return out
