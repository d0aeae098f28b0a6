"""The stability study's ML part (benchmarks.stability): events, schedules, determinism."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from scipy import stats as sps

from benchmarks import stability as st
from benchmarks.datasets import load_dataset

FAST = replace(st.STABILITY_TRAIN, epochs=6)


def spec(**kw) -> st.StabilitySpec:
    base = dict(
        arch="mlp_256x2",
        dataset="digits",
        seed=0,
        target="prune_s",
        score="l2",
        schedule="few_large",
        variant="permanent",
        final_fraction=0.5,
        train=FAST,
    )
    base.update(kw)
    return st.StabilitySpec(**base)


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
def few_large_rows():
    torch.set_num_threads(1)
    return st.run_stability(spec())


def test_events_are_recorded_on_the_full_test_set(few_large_rows):
    rows = few_large_rows
    n_test = load_dataset("digits").y_test.numel()
    pre, post = rows_of(rows, "event", "acc_pre"), rows_of(rows, "event", "acc_post")
    n_events = int(final(rows, "events"))
    assert len(pre) == len(post) == n_events == 8  # few_large: round(1 / 0.13)
    assert [r["step"] for r in pre] == list(range(n_events))
    for r in pre + post:  # accuracies on all n_test examples: multiples of 1 / n_test
        assert abs(r["value"] * n_test - round(r["value"] * n_test)) < 1e-6
        assert r["eval_set"] == "test" and r["kind"] == "clean" and r["severity"] == 0
    s = [100 * (1 - (a["value"] - b["value"]) / a["value"]) for a, b in zip(pre, post, strict=True)]
    assert final(rows, "stability") == pytest.approx(sum(s) / len(s))


def test_epoch_and_final_rows(few_large_rows):
    rows = few_large_rows
    ep = rows_of(rows, "epoch", "accuracy")
    assert sorted((r["eval_set"], r["step"]) for r in ep) == sorted(
        (s, e) for s in ("train", "test") for e in range(FAST.epochs)
    )
    fin = rows_of(rows, "final")
    assert {r["metric"] for r in fin} >= {
        "accuracy",
        "loss",
        "recall",
        "stability",
        "best_test_accuracy",
        "generalization_gap",
    }
    assert {r["eval_set"] for r in fin if r["metric"] == "recall"} == {"train", "test"}
    keys = {"phase", "eval_set", "kind", "severity", "metric", "class", "step", "value"}
    assert all(set(r) == keys for r in rows)
    test_curve = {r["step"]: r["value"] for r in ep if r["eval_set"] == "test"}
    last = final(rows, "last_event_epoch")
    assert final(rows, "best_test_accuracy") == max(v for e, v in test_curve.items() if e >= last)


@pytest.mark.parametrize("arch", ["mlp_256x2", "cnn_32x3"])
def test_schedules_reach_the_same_final_fraction(arch):
    torch.set_num_threads(1)
    out = {}
    for schedule in st.SCHEDULES:
        rows = st.run_stability(spec(arch=arch, schedule=schedule, train=FAST))
        out[schedule] = (final(rows, "final_units_fraction"), int(final(rows, "events")))
    fractions = {f for f, _ in out.values()}
    assert fractions == {0.5}
    assert out["many_small"][1] > out["few_large"][1]


def test_event_counts_sum_to_the_target():
    for units, frac, n in ((256, 0.5, 100), (32, 0.5, 16), (32, 0.3, 8)):
        counts = st.event_counts(units, frac, 0.0, n)
        assert sum(counts) == round(frac * units) and len(counts) == n and min(counts) >= 0
    assert st.schedule_events(spec(schedule="many_small"), [256], 1000) == 100
    assert st.schedule_events(spec(schedule="many_small"), [32, 32], 1000) == 16
    assert st.schedule_events(spec(schedule="many_small"), [256], 20) == 20  # one event per step


def test_seeds_are_deterministic():
    torch.set_num_threads(1)
    s = spec(target="prune_r", train=FAST)
    a, b = st.run_stability(s), st.run_stability(s)
    assert a == b
    c = st.run_stability(replace(s, seed=1))
    assert [r["value"] for r in c] != [r["value"] for r in a]


def test_baseline_and_noise_variants():
    torch.set_num_threads(1)
    t = FAST
    base = st.run_stability(spec(target="none", score="none", schedule="none", variant="none", train=t))
    assert not rows_of(base, "event") and final(base, "stability") == 100.0
    for variant in ("noise_zero", "noise_gauss"):
        rows = st.run_stability(spec(variant=variant, train=t))
        assert len(rows_of(rows, "event", "acc_pre")) == 8
        assert final(rows, "final_units_fraction") == 0.0  # nothing removed for good
    zero = st.run_stability(spec(variant="noise_zero", train=t))
    assert max(r["value"] for r in rows_of(zero, "event", "units_fraction")) > 0  # zeroed at events


def test_ebn_formula_matches_monte_carlo_and_scipy():
    gamma = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    beta = torch.tensor([0.1, 0.3, -1.0], dtype=torch.float64)
    got = st.expected_bn_relu(gamma, beta)
    g, b = gamma.abs().numpy(), beta.numpy()
    ref = b * sps.norm.cdf(b / g) + g * sps.norm.pdf(b / g)
    assert got.numpy() == pytest.approx(ref)
    z = torch.randn(400_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mc = torch.relu(gamma * z + beta).mean(0)
    assert got.numpy() == pytest.approx(mc.numpy(), abs=5e-3)


def test_spec_ids_roundtrip_and_validation():
    s = spec()
    assert s.cell_id().startswith("s") and len(s.cell_id()) == 17
    assert st.StabilitySpec.from_dict(s.to_dict()) == s
    assert replace(s, seed=1).cell_id() != s.cell_id()
    with pytest.raises(ValueError, match="ebn"):
        spec(score="ebn")
    with pytest.raises(ValueError, match="schedule"):
        spec(schedule="weekly")


def test_expand_stability_counts_and_errors():
    table = {
        "datasets": ["digits"],
        "archs": ["mlp_256x2", "cnn_32x3"],
        "seeds": [0, 1],
        "targets": ["prune_s", "prune_l"],
        "scores": ["l2", "ebn"],
        "schedules": ["many_small"],
        "variants": ["permanent"],
        "epochs": 4,
    }
    specs = st.expand_stability(table)
    # mlp: 1 baseline + 2 targets x 1 score; cnn: 1 + 2 x 2; times 2 seeds
    assert len(specs) == 2 * (3 + 5)
    assert all(s.train.epochs == 4 and s.train.lr == 1e-3 and s.train.weight_decay == 0 for s in specs)
    assert len({s.cell_id() for s in specs}) == len(specs)
    with pytest.raises(ValueError, match=r"'targets'.*prune_x"):
        st.expand_stability({**table, "targets": ["prune_x"]})
    with pytest.raises(ValueError, match="unknown key 'sparsity'"):
        st.expand_stability({**table, "sparsity": [0.5]})
    with pytest.raises(ValueError, match="'seeds'"):
        st.expand_stability({k: v for k, v in table.items() if k != "seeds"})
