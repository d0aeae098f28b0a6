"""Hand-written reference loops that ``python -m harness bench`` times against the harness.

- ``minimal_cell``: what one cell computes, written as plainly as PyTorch allows: seed,
  build, train the dense model (Adam, per-step cosine schedule, index-slice batches),
  evaluate every evaluation set (accuracy, cross-entropy, per-class recall, ECE, Brier, OOD
  AUROC / FPR95 with max-softmax and energy scores), global magnitude pruning with masks
  multiplied into the weights after every step, evaluate, fine-tune, evaluate.
- ``dataloader_train``: the same dense training through a per-sample ``Dataset`` and a
  ``DataLoader``, the way ShrinkBench feeds its models (``TrainingExperiment``: shuffle,
  batch 128, ``num_workers=8``, ``pin_memory=False``, workers not persistent, so started
  again every epoch; the loss and top-1 count read back every batch for the running
  averages it logs). ``num_workers=0`` gives the loader's best case here.

Every loop uses the harness's optimizer (``make_optimizer``), so the ratios isolate data
feeding and loop structure.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.datasets import DatasetSplits
from benchmarks.training import TrainConfig, make_optimizer


def _lr(config: TrainConfig, step: int, total: int) -> float:
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * step / total))


def _train(model, x, y, config: TrainConfig, seed: int, masks=None) -> None:
    opt = make_optimizer(model, config)
    per_epoch = max(1, len(y) // config.batch_size)
    total = per_epoch * config.epochs
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for b in range(per_epoch):
            for group in opt.param_groups:
                group["lr"] = _lr(config, epoch * per_epoch + b, total)
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for w, m in masks:
                        w.mul_(m)
    model.eval()


def _evaluate(model, sets, num_classes: int) -> dict:
    out = {}
    with torch.inference_mode():
        test_scores = None
        for name, kind, severity, x, y in sets:
            logits = model(x).double()
            if kind == "ood":
                out[(name, severity)] = logits
                continue
            prob = logits.softmax(1)
            conf, pred = prob.max(1)
            correct = (pred == y).double()
            bins = torch.clamp((conf * 15).long(), max=14)
            ece = sum(
                (bins == b).double().mean() * (conf[bins == b].mean() - correct[bins == b].mean()).abs()
                for b in range(15)
                if (bins == b).any()
            )
            out[(name, severity)] = {
                "accuracy": correct.mean().item(),
                "loss": F.cross_entropy(logits, y).item(),
                "recall": [correct[y == k].mean().item() for k in range(num_classes)],
                "ece": float(ece),
                "brier": ((prob - F.one_hot(y, num_classes)) ** 2).sum(1).mean().item(),
            }
            if name == "test":
                test_scores = logits
        for key, logits in list(out.items()):
            if isinstance(logits, torch.Tensor):
                scores_in = [test_scores.softmax(1).max(1).values, test_scores.logsumexp(1)]
                scores_out = [logits.softmax(1).max(1).values, logits.logsumexp(1)]
                res = {}
                for label, s_in, s_out in zip(("msp", "energy"), scores_in, scores_out, strict=True):
                    s = np.concatenate([s_in.numpy(), s_out.numpy()])
                    truth = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
                    res[f"auroc_{label}"] = roc_auc_score(truth, s)
                    res[f"fpr95_{label}"] = float((s_out.numpy() >= np.quantile(s_in.numpy(), 0.05)).mean())
                out[key] = res
    return out


def minimal_cell(
    arch: str,
    data: DatasetSplits,
    sets: list,
    sparsity: float,
    seed: int,
    train: TrainConfig,
    finetune: TrainConfig,
) -> dict[str, float]:
    """Seconds of each phase of one cell (dense training included), written plainly."""
    times = {}
    t = time.perf_counter()
    torch.manual_seed(seed)
    model = build_arch(arch, data.input_shape, data.num_classes)
    _train(model, data.x_train, data.y_train, train, seed)
    times["dense_train"] = time.perf_counter() - t

    t = time.perf_counter()
    _evaluate(model, sets, data.num_classes)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    flat = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    k = round(sparsity * flat.numel())
    threshold = flat.kthvalue(k).values if k else -1.0
    masks = [(m.weight, (m.weight.detach().abs() > threshold).float()) for m in layers]
    with torch.no_grad():
        for w, m in masks:
            w.mul_(m)
    _evaluate(model, sets, data.num_classes)
    times["prune_eval"] = time.perf_counter() - t

    t = time.perf_counter()
    _train(model, data.x_train, data.y_train, finetune, seed + 1, masks)
    _evaluate(model, sets, data.num_classes)
    times["retrain_eval"] = time.perf_counter() - t
    return times


class PerSampleDataset(torch.utils.data.Dataset):
    """The conventional dataset: raw arrays, each example converted and normalised in
    ``__getitem__`` (as torchvision's ``ToTensor`` + ``Normalize`` do), batched by the
    default collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x.numpy(), y.numpy()
        self.mean, self.std = float(self.x.mean()), float(self.x.std())

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.x[i]).float()
        return (x * self.std + self.mean - self.mean) / self.std, int(self.y[i])


SHRINKBENCH_WORKERS = 8  # ShrinkBench's TrainingExperiment.default_dl_kwargs


def dataloader_train(
    arch: str, data: DatasetSplits, config: TrainConfig, seed: int, num_workers: int = SHRINKBENCH_WORKERS
) -> float:
    """Seconds of the dense recipe fed by ``DataLoader`` over a per-sample ``Dataset``."""
    torch.manual_seed(seed)
    model = build_arch(arch, data.input_shape, data.num_classes)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data.x_train, data.y_train),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        pin_memory=False,
        generator=torch.Generator().manual_seed(seed),
    )
    opt = make_optimizer(model, config)
    total = len(loader) * config.epochs
    step, loss_sum, correct = 0, 0.0, 0
    start = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        for xb, yb in loader:
            for group in opt.param_groups:
                group["lr"] = _lr(config, step, total)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            correct += int((logits.argmax(1) == yb).sum())
            step += 1
    return time.perf_counter() - start
