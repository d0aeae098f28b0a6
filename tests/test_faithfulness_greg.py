"""GReg-1 and GReg-2 (Wang et al., ICLR 2021) against the paper's algorithm, re-derived here.

A real phase runs on a tiny MLP (trained briefly on fixed data). The test sees only what the
training loop sees: the regularizer the pruner hands to ``run.train`` is wrapped, so every step
records the weights it is evaluated on and the penalty value. The test then recomputes, from
the paper's rules and the authors' code (``pruner/reg_pruner.py``), which groups are chosen and
which factor ``lambda_j(t)`` each step must use, and requires

    penalty(t) == 1/2 * sum_j lambda_j(t) * ||w_j(t)||^2      (relative tolerance 1e-5)

at every step, the final masks to be exactly the chosen groups, and the chosen groups to end
the phase far smaller than the kept ones (the point of the growing penalty).
"""

import dataclasses

import numpy as np
import pytest
import torch

from benchmarks.nets import MLP
from benchmarks.pipeline import tensor_training
from benchmarks.training import TrainConfig, train
from pruners import PruneContext, get_pruner
from pruners.masks import current_mask

SHAPE, CLASSES = (1, 12), 4
TRAIN = TrainConfig(epochs=3, batch_size=16, lr=1e-2, weight_decay=5e-4)
LAYERS = ["net.1", "net.3", "net.5"]


def setup():
    g = torch.Generator().manual_seed(11)
    x, y = torch.randn(96, *SHAPE, generator=g), torch.randint(0, CLASSES, (96,), generator=g)
    torch.manual_seed(0)
    model = MLP(SHAPE, CLASSES, width=16, depth=2)
    train(model, x, y, TRAIN, seed=0)  # the "trained parent"
    return model, x, y


def recorded_phase(pruner, sparsity, config):
    """Run ``pruner``'s phase; return (parent weights, per-step weights, per-step penalty, model)."""
    model, x, y = setup()
    parent = {n: model.get_submodule(n).weight.detach().clone() for n in LAYERS}
    run = tensor_training(x, y, TRAIN, 0)
    weights, penalties = [], []
    inner = run.train

    def train_recording(m, cfg=None, **kw):
        reg = kw.pop("regularizer")

        def recording(module):
            weights.append({n: module.get_submodule(n).weight.detach().clone() for n in LAYERS})
            value = reg(module)
            penalties.append(float(value.detach()))
            return value

        return inner(m, cfg, regularizer=recording, **kw)

    run = dataclasses.replace(run, train=train_recording)
    ctx = PruneContext(0, [(x[:32], y[:32])], 5e-4, input_shape=SHAPE)
    get_pruner(pruner, config).prune_with_phase(model, sparsity, ctx, run)
    return parent, weights, penalties, model, run.steps_per_epoch


# --- the paper's rules, written independently of pruners.greg*


def lowest(values, fraction):
    """Bool mask of the round(fraction * n) smallest entries (the authors sort ascending)."""
    flat = values.flatten().numpy()
    k = round(fraction * flat.size)
    out = np.zeros(flat.size, dtype=bool)
    out[np.argsort(flat, kind="stable")[:k]] = True
    return torch.from_numpy(out.reshape(values.shape))


def chosen_groups(w, fraction, filters):
    """GReg's L1 choice per layer: |w| per weight, or the mean |w| of each row (a filter or
    neuron; the classifier's outputs are not units)."""
    layers = LAYERS[:2] if filters else LAYERS
    return {n: lowest(w[n].abs().mean(1) if filters else w[n].abs(), fraction) for n in layers}


def growth(steps, start, stop):
    """The factor after each of ``steps`` equal increments from ``start`` to ``stop``."""
    return [start + (stop - start) * k / steps for k in range(1, steps + 1)]


def penalty(w, factors, filters):
    total = 0.0
    for n, f in factors.items():
        f, v = f.double(), w[n]
        sq = (v.double() ** 2).sum(1) if filters else v.double() ** 2
        total += 0.5 * float((f * sq).sum())
    return total


def factors_of(chosen, on, off):
    return {n: torch.where(c, torch.tensor(on), torch.tensor(off)) for n, c in chosen.items()}


@pytest.mark.parametrize(("pruner", "filters"), [("greg1", False), ("greg1_filter", True)])
def test_greg1_penalises_the_magnitude_choice_with_a_linearly_growing_factor(pruner, filters):
    config = {"epochs": 8, "ceiling": 1.0, "stabilize": 0.25}
    parent, weights, penalties, model, per_epoch = recorded_phase(pruner, 0.5, config)
    total = per_epoch * config["epochs"]
    assert len(penalties) == total  # one penalty per SGD step of the phase
    chosen = chosen_groups(parent, 0.5, filters)
    hold = round(0.25 * total)
    lam = growth(total - hold, 0.0, 1.0) + [1.0] * hold  # the factor of step t
    for t in range(total):
        expected = penalty(weights[t], factors_of(chosen, lam[t], 0.0), filters)
        assert penalties[t] == pytest.approx(expected, rel=1e-5), t
    _assert_masks_remove(model, chosen, filters)
    _assert_chosen_shrunk(parent, weights[-1], chosen, filters)


@pytest.mark.parametrize(("pruner", "filters"), [("greg2", False), ("greg2_filter", True)])
def test_greg2_grows_a_uniform_penalty_then_chooses_by_magnitude(pruner, filters):
    config = {"epochs": 8, "pick": 0.25, "stabilize": 0.125, "pick_ceiling": 0.05, "recover": -1e-3}
    parent, weights, penalties, model, per_epoch = recorded_phase(pruner, 0.5, config)
    total = per_epoch * config["epochs"]
    pick, hold = round(0.25 * total), round(0.125 * total)
    picking = growth(pick, 0.0, 0.05)
    growing = growth(total - pick - hold, 0.05, 1.0)
    # the choice: by magnitude, on the weights the last picking step trains (the authors pick
    # when the uniform factor reaches tau_pick, before that iteration's update)
    chosen = chosen_groups(weights[pick - 1], 0.5, filters)
    for t in range(total):
        if t < pick:
            factors = factors_of(chosen, picking[t], picking[t])  # uniform
        else:
            factors = factors_of(chosen, (growing + [growing[-1]] * hold)[t - pick], -1e-3)
        assert penalties[t] == pytest.approx(penalty(weights[t], factors, filters), rel=1e-5), t
    _assert_masks_remove(model, chosen, filters)
    _assert_chosen_shrunk(parent, weights[-1], chosen, filters)


def _assert_masks_remove(model, chosen, filters):
    """The final masks remove exactly the chosen weights, or the chosen units' whole rows."""
    for n, c in chosen.items():
        removed = current_mask(model.get_submodule(n)) == 0
        assert torch.equal(removed.all(1) if filters else removed, c), n


def _assert_chosen_shrunk(parent, end, chosen, filters):
    """The chosen groups lose far more of their magnitude over the phase than the kept ones."""
    for n in chosen:
        mag0 = parent[n].abs().mean(1) if filters else parent[n].abs()
        mag1 = end[n].abs().mean(1) if filters else end[n].abs()
        c = chosen[n]
        ratio_chosen = float(mag1[c].mean() / mag0[c].mean())
        ratio_kept = float(mag1[~c].mean() / mag0[~c].mean())
        assert ratio_chosen < 0.5 * ratio_kept, (n, ratio_chosen, ratio_kept)
