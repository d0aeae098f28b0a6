"""Metrics computed from logits and labels; every function returns plain floats.

Classification (``z_i`` logits, ``p_i = softmax(z_i)``, ``y_i`` label, n examples):

- accuracy: ``mean(argmax z_i == y_i)``
- loss: mean cross-entropy ``-mean(log p_i[y_i])`` (nats)
- recall of class k: ``r_k = #{i : y_i = k, argmax z_i = k} / #{i : y_i = k}``

Calibration: ``ece`` (15 equal-width confidence bins, Guo et al. 2017), ``nll``, ``brier``
(Brier 1950). OOD detection (in-distribution = positive class, higher score = more
in-distribution): scores ``msp_score`` (Hendrycks & Gimpel 2017) and ``energy_score``
(Liu et al. 2020); ``auroc`` and ``fpr_at_tpr`` (FPR at 95% TPR).

The ``grouped_*`` functions compute a metric for many evaluation sets at once from one
concatenated forward pass: ``groups[i]`` is the set of example i (0..G-1); every
per-set value is a scatter-add over examples (vectorised index arithmetic, no Python loop
over sets). The single-set functions are the one-group case.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn.functional as F

from core.metrics import declared

ECE_BINS = 15


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


def _one_group(logits: torch.Tensor) -> torch.Tensor:
    return torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Negative log-likelihood (nats), ``NLL = -1/n sum_i log p_i[y_i]`` (a proper scoring
    rule; Quinonero-Candela et al. 2006). For a softmax classifier it equals ``loss``."""
    return grouped_nll(logits, labels, _one_group(logits), 1)[0].item()


def brier(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Brier score (Brier 1950), multi-class form: ``1/n sum_i sum_k (p_ik - 1[y_i = k])^2``,
    in [0, 2], lower is better."""
    return grouped_brier(logits, labels, _one_group(logits), 1)[0].item()


def ece(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error (Naeini et al. 2015; Guo et al. 2017) with ``n_bins``
    equal-width bins of the confidence ``c_i = max_k p_ik``: bin b holds the c_i in
    ((b-1)/B, b/B] and ``ECE = sum_b |B_b|/n |acc(B_b) - conf(B_b)|``, in [0, 1], lower is better."""
    return grouped_ece(logits, labels, _one_group(logits), 1, n_bins)[0].item()


def _group_mean(values: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    sums = torch.zeros(n_groups, dtype=torch.float64, device=values.device).index_add_(0, groups, values)
    return sums / torch.bincount(groups, minlength=n_groups).double()


def grouped_accuracy(logits, labels, groups, n_groups) -> torch.Tensor:
    return _group_mean((logits.argmax(1) == labels).double(), groups, n_groups)


def grouped_nll(logits, labels, groups, n_groups) -> torch.Tensor:
    logp = torch.log_softmax(logits.double(), 1)
    return _group_mean(-logp.gather(1, labels[:, None])[:, 0], groups, n_groups)


def grouped_brier(logits, labels, groups, n_groups) -> torch.Tensor:
    p = torch.softmax(logits.double(), 1)
    sq = (p**2).sum(1) - 2 * p.gather(1, labels[:, None])[:, 0] + 1.0
    return _group_mean(sq, groups, n_groups)


def grouped_ece(logits, labels, groups, n_groups, n_bins: int = ECE_BINS) -> torch.Tensor:
    """ECE of every group: ``1/n_g sum_b |sum_{i in g, b} (correct_i - c_i)|``."""
    p = torch.softmax(logits.double(), 1)
    conf, pred = p.max(1)
    gap = (pred == labels).double() - conf
    bins = torch.clamp(torch.ceil(conf * n_bins).long() - 1, 0, n_bins - 1)
    per_bin = torch.zeros(n_groups * n_bins, dtype=torch.float64, device=logits.device)
    per_bin.index_add_(0, groups * n_bins + bins, gap)
    counts = torch.bincount(groups, minlength=n_groups).double()
    return per_bin.view(n_groups, n_bins).abs().sum(1) / counts


def grouped_recall(logits, labels, groups, n_groups, num_classes) -> torch.Tensor:
    """(n_groups, num_classes) per-class recall; NaN where a class is absent from a group."""
    correct = (logits.argmax(1) == labels).double()
    index = groups * num_classes + labels
    hits = torch.zeros(n_groups * num_classes, dtype=torch.float64, device=logits.device)
    hits.index_add_(0, index, correct)
    counts = torch.bincount(index, minlength=n_groups * num_classes).double()
    return (hits / counts).view(n_groups, num_classes)


# -- OOD detection ------------------------------------------------------------------------
def msp_score(logits: torch.Tensor) -> torch.Tensor:
    """Maximum softmax probability ``max_k p_k`` (Hendrycks & Gimpel 2017); higher = more in-distribution."""
    return torch.softmax(logits.double(), 1).max(1).values


def energy_score(logits: torch.Tensor) -> torch.Tensor:
    """Negative free energy ``logsumexp_k z_k`` (Liu et al. 2020, temperature 1); higher =
    more in-distribution."""
    return torch.logsumexp(logits.double(), 1)


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve of separating in-distribution (positive) from OOD examples by
    the score: the Mann-Whitney statistic ``P(s_in > s_out) + 1/2 P(s_in = s_out)``
    (Hanley & McNeil 1982), from average ranks. 1 is perfect, 0.5 is chance, higher is better."""
    from scipy.stats import rankdata

    s_in, s_out = np.asarray(scores_in, dtype=np.float64), np.asarray(scores_out, dtype=np.float64)
    n_in, n_out = len(s_in), len(s_out)
    ranks = rankdata(np.concatenate([s_in, s_out]))
    return float((ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """False-positive rate at ``tpr`` true-positive rate (Hendrycks & Gimpel 2017; Liang et al.
    2018): with the largest threshold t such that ``P(s_in >= t) >= tpr`` (the ceil(tpr n_in)-th
    largest in-distribution score), the fraction of OOD examples with ``s_out >= t``. 0 is
    perfect, lower is better."""
    s_in, s_out = np.asarray(scores_in, dtype=np.float64), np.asarray(scores_out, dtype=np.float64)
    k = max(1, int(np.ceil(tpr * len(s_in) - 1e-9)))
    threshold = np.sort(s_in)[::-1][k - 1]
    return float((s_out >= threshold).mean())


def implementation(name: str):
    """The function computing a declared per-set or per-class metric: its declaration's ``compute``
    (``core.metrics``), a callable or ``"module:function"``; ``ValueError`` when it declares none."""
    compute = declared(name).compute
    if compute is None:
        raise ValueError(f"metric {name!r} is not computed from the logits (it declares no compute)")
    if callable(compute):
        return compute
    module, _, function = compute.partition(":")
    return getattr(importlib.import_module(module), function)


OOD_SCORES = {"msp": msp_score, "energy": energy_score}
OOD_STATISTICS = {"auroc": auroc, "fpr95": fpr_at_tpr}
