"""The stability study's runs (benchmarks.stability): events, schedules, masks, determinism."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmarks import stability as st
from benchmarks.datasets import load_dataset
from benchmarks.stability_design import expand_stability
from core.spec import StabilitySpec, TrainConfig
from pruners.masks import current_mask

FAST = TrainConfig(epochs=6, lr=1e-3, weight_decay=0.0, schedule="constant")


def spec(**kw) -> StabilitySpec:
    base = dict(
        arch="mlp_256x2",
        dataset="digits",
        seed=0,
        target="prune_s",
        variant="permanent",
        every=1,
        first_event=1,
        last_event=4,
        final_fraction=0.5,
        layers=1,
        train=FAST,
    )
    base.update(kw)
    return StabilitySpec(**base)


def rows_of(rows, phase, metric=None):
    return [r for r in rows if r["phase"] == phase and (metric is None or r["metric"] == metric)]


def final(rows, metric):
    (r,) = [
        r
        for r in rows
        if r["phase"] == "final" and r["metric"] == metric and r["eval_set"] == "test" and r["class"] is None
    ]
    return r["value"]


@pytest.fixture(scope="module")
def rows_every_1():
    torch.set_num_threads(1)
    return st.run_stability(spec())


def test_events_are_recorded_on_the_full_test_set(rows_every_1):
    rows = rows_every_1
    n_test = load_dataset("digits").y_test.numel()
    pre, post = rows_of(rows, "event", "acc_pre"), rows_of(rows, "event", "acc_post")
    n_events = int(final(rows, "events"))
    assert len(pre) == len(post) == n_events == 4  # after epochs 1, 2, 3, 4
    assert [int(r["value"]) for r in rows_of(rows, "event", "epoch")] == [1, 2, 3, 4]
    for r in pre + post:  # accuracies on all n_test examples: multiples of 1 / n_test
        assert abs(r["value"] * n_test - round(r["value"] * n_test)) < 1e-6
    s = [100 * (1 - (a["value"] - b["value"]) / a["value"]) for a, b in zip(pre, post, strict=True)]
    assert final(rows, "stability") == pytest.approx(sum(s) / len(s))


def test_epoch_and_final_rows(rows_every_1):
    rows = rows_every_1
    ep = rows_of(rows, "epoch", "accuracy")
    assert sorted((r["eval_set"], r["step"]) for r in ep) == sorted(
        (s, e) for s in ("train", "val", "test") for e in range(FAST.epochs)
    )
    fin = {r["metric"] for r in rows_of(rows, "final")}
    assert fin >= {
        "accuracy",
        "recall",
        "stability",
        "best_test_accuracy",
        "val_selected_test_accuracy",
        "generalization_gap",
        "train_accuracy_before_last_event",
    }
    keys = {"phase", "eval_set", "kind", "severity", "metric", "class", "step", "value"}
    assert all(set(r) == keys for r in rows)
    curve = {(r["eval_set"], r["step"]): r["value"] for r in ep}
    window = [e for e in range(FAST.epochs) if e > final(rows, "last_event_epoch")]
    assert final(rows, "best_test_accuracy") == max(curve["test", e] for e in window)
    by_val = max(window, key=lambda e: (curve["val", e], -e))
    assert final(rows, "val_selected_test_accuracy") == curve["test", by_val]


def test_units_are_removed_with_pruner_masks_and_stay_zero():
    """A permanent run ends at the final fraction, removed units held by torch.nn.utils.prune
    masks (weights and the next layer's inputs), exactly zero after training."""
    torch.set_num_threads(1)
    s = spec(arch="cnn_32x3", dataset="digits", layers=2, last_event=3)
    data = load_dataset("digits")
    captured = {}
    original = st.train

    def spy(model, *a, **kw):
        out = original(model, *a, **kw)
        captured["model"] = model
        return out

    st.train = spy
    try:
        rows = st.run_stability(s)
    finally:
        st.train = original
    assert final(rows, "final_units_fraction") == 0.5
    model = captured["model"]
    groups = st.target_groups(model, 2)
    for g in groups:
        producer = model.get_submodule(g.producer)
        assert hasattr(producer, "weight_mask")
        dead = current_mask(producer).flatten(1).sum(1) == 0
        assert int(dead.sum()) == 16  # round(0.5 * 32)
        assert torch.all(producer.weight.detach()[dead] == 0)
    assert data.num_classes == 10


def test_intervals_reach_the_same_final_fraction_in_fewer_events():
    torch.set_num_threads(1)
    out = {}
    for every in (1, 3):
        rows = st.run_stability(spec(every=every))
        out[every] = (final(rows, "final_units_fraction"), int(final(rows, "events")))
    assert {f for f, _ in out.values()} == {0.5}
    assert out[1][1] == 4 and out[3][1] == 2  # after epochs 1..4, or 1 and 4


def test_event_counts_sum_to_the_target():
    for units, frac, n in ((256, 0.5, 100), (32, 0.5, 16), (32, 0.3, 8)):
        counts = st.event_counts(units, frac, n)
        assert sum(counts) == round(frac * units) and len(counts) == n and min(counts) >= 0
    assert st.event_counts(32, 0.5, 0) == []


def test_targets_choose_by_the_scorer():
    """prune_s removes what the scorer ranks lowest, prune_l the highest: compared on the
    first event's choice, from the same seed."""
    torch.set_num_threads(1)
    small = st.run_stability(spec(target="prune_s", last_event=1))
    large = st.run_stability(spec(target="prune_l", last_event=1))
    drop_s = rows_of(small, "event", "acc_pre")[0]["value"] - rows_of(small, "event", "acc_post")[0]["value"]
    drop_l = rows_of(large, "event", "acc_pre")[0]["value"] - rows_of(large, "event", "acc_post")[0]["value"]
    assert rows_of(small, "event", "acc_pre")[0]["value"] == rows_of(large, "event", "acc_pre")[0]["value"]
    assert drop_l > drop_s  # removing the largest-norm half hurts more


def test_seeds_are_deterministic():
    torch.set_num_threads(1)
    s = spec(target="prune_r")
    a, b = st.run_stability(s), st.run_stability(s)
    assert a == b
    c = st.run_stability(replace(s, seed=1))
    assert [r["value"] for r in c] != [r["value"] for r in a]


def test_baseline_and_noise_variants():
    torch.set_num_threads(1)
    base = st.run_stability(spec(target="none", variant="none"))
    assert not rows_of(base, "event") and final(base, "stability") == 100.0
    assert 0.0 < final(base, "train_accuracy_before_last_event") <= 1.0
    for variant in ("noise_zero", "noise_gauss"):
        rows = st.run_stability(spec(target="prune_l", variant=variant, noise_batches=3))
        assert len(rows_of(rows, "event", "acc_pre")) == 4
        assert final(rows, "final_units_fraction") == 0.0  # nothing removed for good
    zero = st.run_stability(spec(target="prune_l", variant="noise_zero", noise_batches=3))
    assert max(r["value"] for r in rows_of(zero, "event", "units_fraction")) > 0  # zeroed at events


def test_spec_ids_roundtrip_and_validation():
    s = spec()
    assert s.cell_id("1").startswith("s") and len(s.cell_id("1")) == 17
    assert StabilitySpec.from_dict(s.to_dict()) == s
    assert replace(s, seed=1).cell_id("1") != s.cell_id("1")
    assert s.cell_id("2") != s.cell_id("1")  # the scorer's version enters the id
    with pytest.raises(ValueError, match="baseline"):
        spec(target="none")
    with pytest.raises(ValueError, match="last_event"):
        spec(last_event=6)
    with pytest.raises(ValueError, match="noise_batches"):
        spec(variant="noise_zero")


def test_expand_stability_counts_and_errors():
    table = {
        "datasets": ["digits"],
        "archs": ["mlp_256x2", "cnn_32x3"],
        "seeds": 2,
        "targets": ["prune_s", "prune_l"],
        "every": [1, 2],
        "noise": {"noise_zero": ["prune_l"]},
        "noise_every": [1],
        "first_event": 1,
        "last_event": 3,
        "layers": 1,
        "train": {"epochs": 5, "lr": 1e-3, "weight_decay": 0.0, "schedule": "constant"},
    }
    specs = expand_stability(table)
    # per (arch, seed): 1 baseline + 2 targets x 2 intervals + 1 noise run
    assert len(specs) == 2 * 2 * (1 + 4 + 1)
    assert all(s.train.epochs == 5 and s.scorer == "l1_filter" and s.scorer_config == {"p": 2} for s in specs)
    assert len({s.cell_id("1") for s in specs}) == len(specs)
    with pytest.raises(ValueError, match=r"'targets'.*prune_x"):
        expand_stability({**table, "targets": ["prune_x"]})
    with pytest.raises(ValueError, match="unknown key 'sparsity'"):
        expand_stability({**table, "sparsity": [0.5]})
    with pytest.raises(ValueError, match="'seeds'"):
        expand_stability({k: v for k, v in table.items() if k != "seeds"})
    with pytest.raises(ValueError, match="'scorer'"):
        expand_stability({**table, "scorer": "global_magnitude"})
