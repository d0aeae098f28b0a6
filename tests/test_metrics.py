import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks import metrics


def _data(n=400, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 3
    labels = torch.randint(0, k, (n,), generator=g)
    return logits, labels


def naive_ece(logits, labels, bins=15):
    p = torch.softmax(logits.double(), 1)
    conf, pred = p.max(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            acc = (pred[inside] == labels[inside]).double().mean()
            total += inside.double().mean() * abs(acc - conf[inside].mean())
    return float(total)


def test_ece_matches_a_loop_over_15_equal_width_bins():
    logits, labels = _data()
    assert metrics.ece(logits, labels) == pytest.approx(naive_ece(logits, labels), abs=1e-12)


def test_ece_is_zero_when_confidence_equals_accuracy():
    # two classes, confidence 0.75 everywhere, 3 of 4 correct: perfectly calibrated
    logits = torch.tensor([[np.log(3.0), 0.0]] * 4)
    labels = torch.tensor([0, 0, 0, 1])
    assert metrics.ece(logits, labels) == pytest.approx(0.0, abs=1e-12)
    assert metrics.ece(logits, torch.tensor([1, 1, 1, 1])) == pytest.approx(0.75)


def test_nll_and_brier_definitions():
    logits, labels = _data()
    assert metrics.nll(logits, labels) == pytest.approx(F.cross_entropy(logits.double(), labels).item())
    p = torch.softmax(logits.double(), 1)
    onehot = F.one_hot(labels, 5).double()
    assert metrics.brier(logits, labels) == pytest.approx(((p - onehot) ** 2).sum(1).mean().item())
    uniform = torch.zeros(10, 4)
    assert metrics.brier(uniform, torch.zeros(10, dtype=torch.long)) == pytest.approx(1 - 1 / 4)
    confident = torch.tensor([[50.0, 0.0]])
    assert metrics.brier(confident, torch.tensor([0])) == pytest.approx(0.0, abs=1e-12)
    assert metrics.brier(confident, torch.tensor([1])) == pytest.approx(2.0)


def test_grouped_metrics_equal_per_set_metrics():
    logits, labels = _data(n=600)
    groups = torch.arange(600) % 3
    acc = metrics.grouped_accuracy(logits, labels, groups, 3)
    nll = metrics.grouped_nll(logits, labels, groups, 3)
    ece = metrics.grouped_ece(logits, labels, groups, 3)
    brier = metrics.grouped_brier(logits, labels, groups, 3)
    recall = metrics.grouped_recall(logits, labels, groups, 3, 5)
    for g in range(3):
        sel = groups == g
        assert acc[g].item() == pytest.approx(metrics.accuracy(logits[sel], labels[sel]))
        assert nll[g].item() == pytest.approx(metrics.cross_entropy(logits[sel], labels[sel]))
        assert ece[g].item() == pytest.approx(naive_ece(logits[sel], labels[sel]))
        assert brier[g].item() == pytest.approx(metrics.brier(logits[sel], labels[sel]))
        assert recall[g].tolist() == pytest.approx(metrics.per_class_recall(logits[sel], labels[sel], 5))


def test_auroc_and_fpr95_agree_with_sklearn_including_ties():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    s_in = np.round(rng.normal(1.0, 1.0, 300), 1)  # rounding makes ties
    s_out = np.round(rng.normal(0.0, 1.0, 200), 1)
    truth = np.r_[np.ones(300), np.zeros(200)]
    scores = np.r_[s_in, s_out]
    assert metrics.auroc(s_in, s_out) == pytest.approx(roc_auc_score(truth, scores))
    fpr, tpr, _ = roc_curve(truth, scores)
    assert metrics.fpr_at_tpr(s_in, s_out) == pytest.approx(fpr[np.searchsorted(tpr, 0.95)])


def test_ood_scores_and_extremes():
    assert metrics.auroc([3, 4, 5], [0, 1, 2]) == 1.0
    assert metrics.auroc([0, 1, 2], [3, 4, 5]) == 0.0
    assert metrics.fpr_at_tpr([3, 4, 5], [0, 1, 2]) == 0.0
    assert metrics.fpr_at_tpr([0, 1, 2], [3, 4, 5]) == 1.0
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert metrics.msp_score(logits).tolist() == pytest.approx([np.exp(2) / (np.exp(2) + 2), 1 / 3])
    assert metrics.energy_score(logits).tolist() == pytest.approx([np.log(np.exp(2) + 2), np.log(3)])
