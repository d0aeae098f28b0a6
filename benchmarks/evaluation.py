"""Evaluate a model on named evaluation sets and return tidy metric rows.

A row is ``{"eval_set", "kind", "severity", "metric", "class", "value"}``, ``class`` being
``None`` for whole-set metrics; the harness adds ``cell_id`` and ``phase``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmarks import metrics
from benchmarks.datasets import DatasetSplits
from pruners.masks import sparsity_stats

EVAL_BATCH = 4096


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def row(eval_set: str, kind: str, severity: int, metric: str, value: float, cls: int | None = None):
    return {
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": metric,
        "class": cls,
        "value": float(value),
    }


def classification_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    eval_set: str,
    kind: str = "clean",
    severity: int = 0,
) -> list[dict]:
    """Accuracy, cross-entropy loss and per-class recall of one evaluation set."""
    rows = [
        row(eval_set, kind, severity, "accuracy", metrics.accuracy(logits, labels)),
        row(eval_set, kind, severity, "loss", metrics.cross_entropy(logits, labels)),
    ]
    for k, r in enumerate(metrics.per_class_recall(logits, labels, num_classes)):
        rows.append(row(eval_set, kind, severity, "recall", r, k))
    return rows


def evaluation_sets(
    data: DatasetSplits, cache_dir: Path | None = None
) -> list[tuple[str, str, int, torch.Tensor, torch.Tensor]]:
    """(eval_set, kind, severity, x, y) for every set a phase is evaluated on.

    ``cache_dir`` is where generated shift sets are cached (``<results>/cache``).
    """
    return [("train", "clean", 0, data.x_train, data.y_train), ("test", "clean", 0, data.x_test, data.y_test)]


def evaluate(
    model: nn.Module,
    data: DatasetSplits,
    phase: str,
    cache_dir: Path | None = None,
    compact_model: nn.Module | None = None,
) -> list[dict]:
    """Every metric row of one phase: each evaluation set, plus model-level counts.

    ``compact_model`` is the physically smaller model a structured pruner hands back, for
    measuring real latency against the masked one.
    """
    rows: list[dict] = []
    for eval_set, kind, severity, x, y in evaluation_sets(data, cache_dir):
        logits = predict_logits(model, x)
        rows += classification_rows(logits, y, data.num_classes, eval_set, kind, severity)
    rows += [row("model", "model", 0, k, v) for k, v in sparsity_stats(model).items()]
    return [{"phase": phase, **r} for r in rows]
