"""Validation by simulation: synthetic stores with a planted effect of known size and with none,
run through the same analysis code as the real results.

Checks, per test: false-positive rate <= alpha + 0.03 under the null (>= 400 independent
scopes), power >= 0.8 at the planted size, and confidence intervals covering the planted
value at about their nominal 95% (0.90-0.99 here, given the Monte Carlo error of a few
hundred repetitions). Independent scopes are simulated as separate datasets of one store,
so every repetition also exercises the grouping code. Marked slow (about a minute).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import generalization_stability as gs
from analysis import intensification as it
from analysis import per_class as pc
from analysis import retrain_recipe as rr
from tests.test_claims import synth_prune, synth_stability

pytestmark = pytest.mark.slow
ALPHA = 0.05
N_NULL = 400


def _scoped(rows: list[dict], claim: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df[(df.claim == claim) & df.dataset.notna()]


def _run_intensification(b: float, reps: int, per_rep: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        cells, metrics = synth_prune(
            rng, seeds=8, b=b, noise=0.05, datasets=tuple(f"d{i}" for i in range(per_rep))
        )
        out.append(_scoped(it.analyze(cells, metrics), "intensification"))
    return pd.concat(out, ignore_index=True)


TESTS = ("t_one_sample[alpha-0.5]", "wilcoxon[alpha-0.5]", "t_one_sample[b]", "ols_cluster[d~rho-1]")


def test_intensification_null_false_positive_rate():
    df = _run_intensification(0.0, 20, 20, seed=11)
    for test in TESTS:
        p = df[df.test == test]["p"].to_numpy(float)
        assert p.size >= N_NULL
        assert np.mean(p < ALPHA) <= ALPHA + 0.03, test


def test_intensification_power_and_coverage_at_planted_slope():
    b = 0.4
    df = _run_intensification(b, 10, 20, seed=12)
    for test in TESTS:
        g = df[df.test == test]
        assert len(g) >= 200
        power = np.mean((g["p"] < ALPHA) & (g["estimate"] > 0))
        assert power >= 0.8, (test, power)
    for test in ("t_one_sample[b]", "ols_cluster[d~rho-1]"):  # b is the planted slope
        g = df[df.test == test]
        coverage = np.mean((g["ci_low"] <= b) & (b <= g["ci_high"]))
        assert 0.90 <= coverage <= 0.99, (test, coverage)


def test_per_class_damage_null_and_power():
    rng = np.random.default_rng(13)
    null, planted = [], []
    for _ in range(20):
        ds = tuple(f"d{i}" for i in range(20))
        cells, metrics = synth_prune(rng, seeds=8, datasets=ds)
        null.append(_scoped(pc.analyze(cells, metrics)[0], "per_class_damage"))
    for _ in range(5):
        ds = tuple(f"d{i}" for i in range(20))
        cells, metrics = synth_prune(rng, seeds=8, datasets=ds, class_shift={0: -0.1})
        planted.append(_scoped(pc.analyze(cells, metrics)[0], "per_class_damage"))
    null_p = pd.concat(null)["p"].to_numpy(float)
    assert null_p.size >= N_NULL
    assert np.mean(null_p < ALPHA) <= ALPHA + 0.03
    assert np.mean(pd.concat(planted)["p"].to_numpy(float) < ALPHA) >= 0.8


def _stability_reps(slope: float, reps: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        cells, metrics = synth_stability(rng, seeds=5, slope=slope, noise=0.01)
        rows = pd.DataFrame(gs.analyze(cells, metrics, n_perm=400, n_boot=400))
        out.append(rows[rows.claim == "stability_accuracy"])
    return pd.concat(out, ignore_index=True)


def test_stability_correlations_null_rate_power_and_coverage():
    null = _stability_reps(0.0, N_NULL, seed=14)
    for test in ("pearson", "kendall"):
        p = null[null.test == test]["p"].to_numpy(float)
        assert p.size >= N_NULL and np.mean(p < ALPHA) <= ALPHA + 0.03, test
    slope = -0.003  # S ~ N(95, 2), noise sd 0.01: corr = 2 slope / sqrt(4 slope^2 + noise^2)
    rho = 2 * slope / math.sqrt(4 * slope**2 + 0.01**2)
    tau = 2 / math.pi * math.asin(rho)  # Kendall's tau of a bivariate normal
    planted = _stability_reps(slope, 200, seed=15)
    for test, true in (("pearson", rho), ("kendall", tau)):
        g = planted[planted.test == test]
        assert np.mean((g["p"] < ALPHA) & (g["estimate"] < 0)) >= 0.8, test
        coverage = np.mean((g["ci_low"] <= true) & (true <= g["ci_high"]))
        assert 0.90 <= coverage <= 0.99, (test, coverage)


def test_retrain_recipe_null_rate_and_power():
    rng = np.random.default_rng(16)

    def reps(gain: float, n: int) -> pd.DataFrame:
        out = []
        for _ in range(n):
            cells, metrics = synth_prune(
                rng,
                seeds=5,
                datasets=tuple(f"d{i}" for i in range(20)),
                sparsities=(0.5, 0.9),
                retrain=("finetune", "lr_rewind"),
                recipe_gain=gain,
            )
            df = pd.DataFrame(rr.analyze(cells, metrics))
            out.append(df[df.sparsity.isna()])  # pooled over sparsities: n = 10 pairs
        return pd.concat(out, ignore_index=True)

    null = reps(0.0, 20)
    for test in ("t_paired[lr_rewind-finetune]", "wilcoxon[lr_rewind-finetune]"):
        p = null[null.test == test]["p"].to_numpy(float)
        assert p.size >= N_NULL and np.mean(p < ALPHA) <= ALPHA + 0.03, test
    planted = reps(0.004, 5)  # pair-difference sd is 0.002 * sqrt(2)
    for test in ("t_paired[lr_rewind-finetune]", "wilcoxon[lr_rewind-finetune]"):
        g = planted[planted.test == test]
        assert np.mean((g["p"] < ALPHA) & (g["estimate"] > 0)) >= 0.8, test
    g = planted[planted.test == "t_paired[lr_rewind-finetune]"]
    assert 0.90 <= np.mean((g["ci_low"] <= 0.004) & (g["ci_high"] >= 0.004)) <= 0.99
