"""Evaluate a model on named evaluation sets and return tidy metric rows.

A row is ``{"eval_set", "kind", "severity", "metric", "class", "value"}``, ``class`` being
``None`` for whole-set metrics; the harness adds ``cell_id`` and ``phase``.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks import metrics

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
