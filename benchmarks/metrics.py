"""Metrics computed from logits and labels; every function returns plain floats.

- accuracy: ``mean(argmax z_i == y_i)``
- loss: mean cross-entropy ``-mean(log softmax(z_i)[y_i])`` (nats)
- recall of class k: ``r_k = #{i : y_i = k, argmax z_i = k} / #{i : y_i = k}``
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).double().mean().item()


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return F.cross_entropy(logits.double(), labels).item()


def per_class_recall(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Recall of every class; NaN for a class absent from ``labels``."""
    correct = (logits.argmax(1) == labels).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, correct)
    counts = torch.bincount(labels, minlength=num_classes).double()
    return (hits / counts).tolist()  # 0/0 -> nan
