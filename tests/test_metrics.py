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


# -- the declarations (core.metrics) ---------------------------------------------------------


def test_results_readme_metric_table_is_generated_from_the_declarations():
    from pathlib import Path

    from core.metrics_table import markdown_table

    text = (Path(__file__).resolve().parent.parent / "results" / "README.md").read_text()
    start = text.index("<!-- metrics table:")
    table = text[text.index("\n", start) + 1 : text.index("<!-- end of the metrics table -->")].strip()
    assert table == markdown_table(), "results/README.md: regenerate it: python -m core.metrics_table"


def test_every_stored_metric_is_declared_for_its_sets_and_every_declared_one_is_computed():
    """A real cell (every set, a structured pruner's compact model timed, its dense parent's rows)
    and a stability run store only declared metrics, each for a set kind it is declared for; every
    metric declared as computed from the logits has its implementation."""
    from benchmarks.pipeline import dense_rows, run_cell, train_parent
    from benchmarks.stability import run_stability
    from core.metrics import METRICS, computed_by, declared
    from core.spec import CellSpec, EvalConfig, RetrainConfig, StabilitySpec, TrainConfig

    config = EvalConfig(shift_set_size=20, ood_set_size=20, predictions=True)
    recipe = TrainConfig(epochs=1, batch_size=256)
    spec = CellSpec("cnn_32x3", "digits", "l1_filter", 0.5, 0, train=recipe, eval=config,
                    retrain_config=RetrainConfig(epochs=1))  # fmt: skip
    parent = train_parent(spec.parent)
    rows = (
        dense_rows(spec.parent, parent.state, config) + run_cell(spec, parent.state, parent.rewind_state).rows
    )
    rows += run_stability(
        StabilitySpec("mlp_256x2", "digits", 0, "prune_s", "permanent", first_event=1, last_event=1,
                      layers=1, train=TrainConfig(epochs=2, lr=1e-3, weight_decay=0.0, schedule="constant"))
    )  # fmt: skip
    stored = {(r["metric"], r["kind"]) for r in rows}
    for name, kind in stored:
        assert kind in declared(name).kinds, (name, kind)
    names = {n for n, _ in stored}
    for m in METRICS:  # every declaration is stored by one of them (a family by one member)
        assert any(declared(n) is m for n in names), m.names
    for name in (*computed_by("set"), *computed_by("per_class")):
        assert callable(metrics.implementation(name)), name
    for name in computed_by("ood"):
        statistic, score = name.split("_", 1)
        assert statistic in metrics.OOD_STATISTICS and score in metrics.OOD_SCORES


def test_a_row_of_an_undeclared_metric_or_set_is_refused():
    from core.metrics import metric_row

    assert metric_row("test", "clean", "accuracy", 1)["value"] == 1.0
    with pytest.raises(KeyError, match="not declared"):
        metric_row("test", "clean", "accuracy_top5", 0.5)
    with pytest.raises(ValueError, match="declared for ood sets"):
        metric_row("test", "clean", "auroc_msp", 0.5)


def test_bundle_range_check_reads_the_declared_ranges():
    import pandas as pd

    from harness.bundle_checks import _range_problems

    def problems(metric, value):
        row = {"cell_id": "c1", "phase": "retrained", "eval_set": "test", "metric": metric, "value": value}
        df = pd.DataFrame([row])
        return _range_problems(df)

    assert problems("brier", 1.8) == []  # the Brier score lies in [0, 2]
    assert problems("accuracy", 1.5) and problems("generalization_gap", -1.5)
    assert problems("generalization_gap", -0.5) == [] and problems("accuracy", float("nan")) == []
    assert "not one this prunebench defines" in problems("accuracy_top5", 0.5)[0]
