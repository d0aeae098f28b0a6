"""Hand-written reference loops that ``python -m harness bench`` times against the harness.

- ``minimal_cell``: what one cell computes, written as plainly as PyTorch allows: seed,
  build, train the dense model (Adam, per-step cosine schedule, index-slice batches),
  evaluate every evaluation set (accuracy, cross-entropy, per-class recall, ECE, Brier, OOD
  AUROC / FPR95 with max-softmax and energy scores), global magnitude pruning with masks
  multiplied into the weights after every step, evaluate, fine-tune, evaluate.
- ``minimal_cell(..., loader_workers=8)``: the same cell fed the conventional way, the way
  ShrinkBench feeds its models (``TrainingExperiment``): every training epoch and every
  evaluation set goes through a per-sample ``Dataset`` and a ``DataLoader`` (batch 128,
  ``num_workers=8``, ``pin_memory=False``, workers not persistent, so started again for
  every epoch and every set; training shuffles, evaluation does not; the loss and top-1
  count read back every training batch for the running averages it logs).
- ``dataloader_train``: the dense training alone, fed by that loader.
  ``num_workers=0`` gives the loader's best case here.

Every loop uses the harness's optimizer (``make_optimizer``), so the ratios isolate data
feeding and loop structure.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.datasets import DatasetSplits
from benchmarks.training import TrainConfig, make_optimizer

SHRINKBENCH_WORKERS = 8  # ShrinkBench's TrainingExperiment.default_dl_kwargs
EVAL_LOADER_BATCH = 128  # ShrinkBench evaluates with the training loader's settings


def _lr(config: TrainConfig, step: int, total: int) -> float:
    return config.lr_at(step / total)


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, workers: int, seed: int | None):
    """ShrinkBench's loader over a per-sample dataset; ``seed`` shuffles (training)."""
    shuffle = seed is not None
    return torch.utils.data.DataLoader(
        PerSampleDataset(x, y),
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle,  # as the harness: BatchNorm needs more than one example
        num_workers=workers,
        pin_memory=False,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )


def _train(
    model, x, y, config: TrainConfig, seed: int, masks=None, loader_workers: int | None = None
) -> None:
    """Index-slice batches of in-memory tensors, or (``loader_workers`` set) a ``DataLoader``."""
    opt = make_optimizer(model, config)
    per_epoch = max(1, len(y) // config.batch_size)
    total = per_epoch * config.epochs
    loader = None if loader_workers is None else _loader(x, y, config.batch_size, loader_workers, seed)
    step, loss_sum, correct = 0, 0.0, 0
    model.train()
    for epoch in range(config.epochs):
        if loader is None:
            order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
            slices = (order[b * config.batch_size : (b + 1) * config.batch_size] for b in range(per_epoch))
            batches = ((x[idx], y[idx]) for idx in slices)
        else:
            batches = iter(loader)  # not persistent: the workers start again every epoch
        for xb, yb in batches:
            for group in opt.param_groups:
                group["lr"] = _lr(config, step, total)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for w, m in masks:
                        w.mul_(m)
            if loader is not None:  # ShrinkBench's running loss and top-1 averages
                loss_sum += loss.item()
                correct += int((logits.argmax(1) == yb).sum())
            step += 1
    model.eval()


def _predict(model, x, y, loader_workers: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole set: one forward pass, or batches from a ``DataLoader``."""
    if loader_workers is None:
        return model(x), y
    batches = [(model(xb), yb) for xb, yb in _loader(x, y, EVAL_LOADER_BATCH, loader_workers, None)]
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def _evaluate(model, sets, num_classes: int, loader_workers: int | None = None) -> dict:
    out = {}
    with torch.inference_mode():
        test_scores = None
        for name, kind, severity, x_set, y_set in sets:
            logits, y = _predict(model, x_set, y_set, loader_workers)
            logits = logits.double()
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
    loader_workers: int | None = None,
) -> dict[str, float]:
    """Seconds of each phase of one cell (dense training included), written plainly; with
    ``loader_workers`` every batch comes from a per-sample ``DataLoader`` instead."""
    feed = {"loader_workers": loader_workers}
    times = {}
    t = time.perf_counter()
    torch.manual_seed(seed)
    model = build_arch(arch, data.input_shape, data.num_classes)
    _train(model, data.x_train, data.y_train, train, seed, **feed)
    times["dense_train"] = time.perf_counter() - t

    t = time.perf_counter()
    _evaluate(model, sets, data.num_classes, **feed)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    flat = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    k = round(sparsity * flat.numel())
    threshold = flat.kthvalue(k).values if k else -1.0
    masks = [(m.weight, (m.weight.detach().abs() > threshold).float()) for m in layers]
    with torch.no_grad():
        for w, m in masks:
            w.mul_(m)
    _evaluate(model, sets, data.num_classes, **feed)
    times["prune_eval"] = time.perf_counter() - t

    t = time.perf_counter()
    _train(model, data.x_train, data.y_train, finetune, seed + 1, masks, **feed)
    _evaluate(model, sets, data.num_classes, **feed)
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


def dataloader_train(
    arch: str, data: DatasetSplits, config: TrainConfig, seed: int, num_workers: int = SHRINKBENCH_WORKERS
) -> float:
    """Seconds of the dense recipe fed by ``DataLoader`` over a per-sample ``Dataset``."""
    torch.manual_seed(seed)
    model = build_arch(arch, data.input_shape, data.num_classes)
    start = time.perf_counter()
    _train(model, data.x_train, data.y_train, config, seed, loader_workers=num_workers)
    return time.perf_counter() - start
