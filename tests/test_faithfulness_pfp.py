"""``pfp`` against the paper's algorithm written out independently (Liebenwein et al., "Provable
Filter Pruning for Efficient Neural Networks", ICLR 2020; the deterministic PFPNet of
lucaslie/torchprune).

Reference (``tests/sensitivity_reference.py``, explicit loops): the sensitivity of unit ``c`` is
the max of ``g_fjp`` over the points of ``S``, the consumer's outputs ``f``, patches ``p`` and
the inputs ``j`` of unit ``c``. The allocation: one ``eps`` for all layers, layer ``l`` keeping
``m_l = min(n_units, max(1, ceil(sum_c 1 - (1 - p_c)^n_l)))`` units, ``p = s / sum(s)``,
``n_l = ceil(K (6 + 2 eps) alpha_l S_l / eps^2)``, ``alpha_l = 2 C log(8 (P_l + 1) k_l / delta)``,
``eps`` searched (here by a plain bisection on ``log10 eps``) until the kept units are
``round((1 - s) N)``; for a reachable total the allocation is unique (every ``m_l`` is monotone in
``eps``). Tolerances: unit sensitivities to 1e-5 relative (the network's forward pass is float32,
the reference's float64), kept units and per-layer counts exactly.
"""

import math

import pytest
import torch

from pruners import PruneContext, get_pruner
from pruners.pfp import allocate
from pruners.structured import alive_units
from tests.sensitivity_reference import TINY_ETAS, contributions, data, layer_inputs, sample_size, tiny_cnn

DELTA, C, K = 1e-16, 3.0, 3.0
BIAS = 2.0
# (producer, consumer, units, the consumer's patches P and kernel size k)
GROUPS = [("conv1", "conv2", 4, 4, 3), ("conv2", "fc1", 3, 1, 1), ("fc1", "fc2", 5, 1, 1)]


def context(n=30):
    x = data(n, seed=2)
    y = torch.arange(n) % 3
    return PruneContext(seed=0, batches=[(x[:15], y[:15]), (x[15:], y[15:])])


def alpha(patches, kernel):
    return 2 * C * math.log(8 * (patches + 1) * kernel / DELTA)


@pytest.fixture(scope="module")
def reference_scores():
    model = tiny_cnn(BIAS)
    assert sample_size(TINY_ETAS, DELTA, C) > 30  # every example is in S
    inputs = layer_inputs(model, data(30, seed=2))
    out = {}
    for producer, consumer, units, _, _ in GROUPS:
        weight = getattr(model, consumer).weight.detach().flatten(1)
        per_input = contributions(weight, inputs[consumer]).amax(dim=(0, 1, 3))  # (J,)
        out[producer] = per_input.view(units, -1).amax(1)
    return out


def kept_per_layer(log10_eps, layers):
    """``m_l(eps)`` for ``layers`` = [(sensitivities, alpha_l)]."""
    eps = 10.0**log10_eps
    kept = []
    for scores, a in layers:
        s = [float(v) for v in scores]
        draws = K * (6 + 2 * eps) * a * sum(s) / eps**2 if eps**2 > 0 else math.inf
        draws = max(1, math.ceil(draws)) if math.isfinite(draws) else math.inf
        distinct = sum(1 - (1 - v / sum(s)) ** draws for v in s)
        kept.append(min(len(s), max(1, math.ceil(distinct - 1e-9))))
    return kept


def reference_allocation(layers, keep):
    lo, hi = -300.0, 150.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if sum(kept_per_layer(mid, layers)) >= keep:
            lo = mid
        else:
            hi = mid
    return kept_per_layer(lo, layers)


def test_unit_sensitivities_equal_the_reference(reference_scores):
    scores = get_pruner("pfp").unit_scores(tiny_cnn(BIAS), context())
    assert scores.keys() == reference_scores.keys()
    for name, ref in reference_scores.items():
        torch.testing.assert_close(scores[name].double(), ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.65])
def test_kept_units_and_layer_budgets_equal_the_reference(reference_scores, sparsity):
    layers = [(reference_scores[p], alpha(patches, k)) for p, _, _, patches, k in GROUPS]
    keep = 12 - round(sparsity * 12)
    counts = reference_allocation(layers, keep)
    assert sum(counts) == keep  # the search meets the target exactly here
    model = tiny_cnn(BIAS)
    get_pruner("pfp").prune(model, sparsity, context())
    for group, count in zip(model.unit_groups(), counts, strict=True):
        ordered = torch.sort(reference_scores[group.producer], descending=True).values
        assert count == len(ordered) or ordered[count - 1] - ordered[count] > 1e-4  # a unique choice
        expected = reference_scores[group.producer] >= ordered[count - 1]
        assert torch.equal(alive_units(model, group), expected), group.producer


def test_allocation_equals_the_reference_and_spends_less_where_sensitivity_concentrates():
    g = torch.Generator().manual_seed(3)
    spread = torch.rand(20, generator=g) + 0.5  # sensitivity shared by many units
    peaked = torch.rand(20, generator=g) ** 8  # concentrated on a few
    layers = [(spread, alpha(1, 1)), (peaked, alpha(1, 1)), (torch.rand(10, generator=g), alpha(16, 9))]
    probs = [s.double() / s.double().sum() for s, _ in layers]
    coeffs = [a * float(s.sum()) for s, a in layers]
    reached = 0
    for keep in range(3, 51):
        expected = reference_allocation(layers, keep)
        if sum(expected) != keep:
            continue  # a step of several units: prunebench's fill rule, not the paper's
        reached += 1
        assert allocate(probs, coeffs, [20, 20, 10], keep, K) == expected, keep
        if keep == 25:
            assert expected[0] > expected[1]  # the peaked layer keeps fewer units
    assert reached >= 40
