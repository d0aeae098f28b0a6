"""``sipp`` against the paper's algorithm written out independently (Baykal, Liebenwein et al.,
"SiPPing Neural Networks", 2019; the deterministic SiPPNet of lucaslie/torchprune).

Reference (``tests/sensitivity_reference.py``, explicit loops): ``s_fj = max_{x in S} mean_p g_fjp``
on the first ``|S| = ceil(C log(8 eta* eta / delta))`` training examples, the network in eval
mode; the allocation keeps the global top ``(1 - s) n`` sensitivities, which fixes each layer's
sample size. Tolerances: sensitivities to 1e-5 relative (the network's forward pass is float32,
the reference's float64; both compute the sensitivities in float64), masks and per-layer sample
sizes exactly, at sparsities whose cut is not within 1e-4 of a tie.
"""

import itertools

import pytest
import torch

from pruners import PruneContext, get_pruner
from pruners.masks import current_mask, prunable_modules
from tests.sensitivity_reference import TINY_ETAS, contributions, data, layer_inputs, sample_size, tiny_cnn

C = 0.5  # a small C, so that |S| (24 here) is below the 30 examples given and the cut is tested


def context(n=30):
    x = data(n)
    y = torch.arange(n) % 3
    return PruneContext(seed=0, batches=[(x[:15], y[:15]), (x[15:], y[15:])])


@pytest.fixture(scope="module")
def reference():
    model = tiny_cnn()
    size = sample_size(TINY_ETAS, 1e-16, C)
    assert 0 < size < 30
    inputs = layer_inputs(model, data(30)[:size])
    out = {}
    for name in ("conv1", "conv2", "fc1", "fc2"):
        weight = getattr(model, name).weight.detach()
        g = contributions(weight.flatten(1), inputs[name])  # (parts, F, J, P)
        out[name] = g.mean(-1).amax(0).view(weight.shape)
    return out


def test_sample_size_follows_the_papers_formula():
    from pruners.sensitivity import sample_size as module_size

    model = tiny_cnn()
    for delta, c in ((1e-16, 3.0), (1e-12, 3.0), (1e-16, C)):
        assert module_size(model, (2, 1, 8), delta, c) == sample_size(TINY_ETAS, delta, c)
    assert sample_size(TINY_ETAS, 1e-16, 3.0) == 140  # the authors' defaults on this model


def test_sensitivities_equal_the_reference(reference):
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = get_pruner("sipp", {"c_constant": C}).scores(model, context())
    assert scores.keys() == reference.keys()
    for name, ref in reference.items():
        assert scores[name].shape == ref.shape
        torch.testing.assert_close(scores[name].double(), ref, rtol=1e-5, atol=1e-7)
        assert float(ref.max()) <= 1.0 + 1e-12 and float(ref.min()) >= 0.0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("sparsity", [0.3, 0.6])
def test_masks_and_per_layer_sample_sizes_equal_the_reference(reference, sparsity):
    flat = torch.cat([r.flatten() for r in reference.values()])
    k = round(sparsity * flat.numel())
    ordered = torch.sort(flat).values
    assert ordered[k] - ordered[k - 1] > 1e-4  # no (near) tie at the cut: the mask is unique
    threshold = ordered[k - 1]
    model = tiny_cnn()
    get_pruner("sipp", {"c_constant": C}).prune(model, sparsity, context())
    modules = prunable_modules(model)
    sizes = {}
    for name, ref in reference.items():
        mask = current_mask(modules[name])
        assert torch.equal(mask.bool(), ref > threshold), name
        sizes[name] = int(mask.sum())
    assert sizes == {n: int((r > threshold).sum()) for n, r in reference.items()}
    assert sum(sizes.values()) == flat.numel() - k
    assert len(set(sizes.values())) > 1  # the layers get different budgets


def test_all_examples_are_used_when_fewer_than_the_sample_size(reference):
    model = tiny_cnn()
    inputs = layer_inputs(model, data(30))
    scores = get_pruner("sipp").scores(model, context())  # |S| = 140 > 30
    changed = 0.0
    for name, ref in reference.items():
        weight = getattr(model, name).weight.detach()
        expected = contributions(weight.flatten(1), inputs[name]).mean(-1).amax(0).view(weight.shape)
        torch.testing.assert_close(scores[name].double(), expected, rtol=1e-5, atol=1e-7)
        changed = max(changed, float((expected - ref).abs().max()))
    assert changed > 1e-3  # the 6 further examples matter


# --- the cascade (the authors' ``mode: "cascade"``): re-scored on the masked network at every step


STEPS, EPOCHS, TARGET = 3, 2, 0.7
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def plain_state(model):
    """The model's state with every masked weight as ``weight_orig * weight_mask`` (no masks)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            base = key[: -len("_orig")]
            state[base] = value * model.state_dict()[base + "_mask"]
        else:
            state[key] = value.clone()
    return state


def masks_of(model):
    return {n: current_mask(getattr(model, n)).bool().clone() for n in LAYERS}


def reference_step(state, alive, t):
    """Step ``t`` (1-based) recomputed: SiPP's sensitivities on the masked network ``state``, the
    step's target ``1 - (1 - s)^(t / T)``, the global top-k among the weights still alive."""
    model = tiny_cnn()
    model.load_state_dict(state)
    inputs = layer_inputs(model.eval(), data(30)[: sample_size(TINY_ETAS, 1e-16, C)])
    sens = {}
    for name in LAYERS:
        weight = getattr(model, name).weight.detach()
        sens[name] = contributions(weight.flatten(1), inputs[name]).mean(-1).amax(0).view(weight.shape)
    total = sum(a.numel() for a in alive.values())
    target = 1.0 - (1.0 - TARGET) ** (t / STEPS)
    prune_alive = round(target * total) - sum(int((~a).sum()) for a in alive.values())
    ordered = torch.sort(torch.cat([sens[n][alive[n]] for n in LAYERS])).values
    assert 0 < prune_alive < ordered.numel()
    assert ordered[prune_alive] - ordered[prune_alive - 1] > 1e-6  # no tie at the cut
    return {n: alive[n] & (sens[n] > ordered[prune_alive - 1]) for n in LAYERS}


def test_cascade_masks_equal_an_independent_recomputation_after_every_step():
    """Every step's masks are the reference's on the network as the step found it (retrained
    after the previous step); the retraining between steps is the declared, charged phase."""
    from benchmarks.budget import BudgetMeter
    from benchmarks.pipeline import tensor_training
    from core.spec import TrainConfig

    x = data(60, seed=5)
    y = torch.arange(60) % 3
    meter = BudgetMeter((2, 1, 8))
    run = tensor_training(x, y, TrainConfig(epochs=4, batch_size=20, weight_decay=1e-4), 0, meter=meter)
    pruner = get_pruner("sipp", {"c_constant": C, "steps": STEPS, "retrain_epochs": EPOCHS})
    model = tiny_cnn()
    seen = [(plain_state(model), masks_of(model))]  # (the state a step starts from, its alive weights)
    after_step = []
    train = run.train

    def recorded_train(m, config=None, **kwargs):
        recipe = (config.optimizer, config.lr, config.momentum, config.schedule)
        assert recipe == ("sgd", 0.01, 0.9, "constant")
        t = len(after_step)
        assert kwargs["epoch_range"] == (t * EPOCHS, (t + 1) * EPOCHS)
        assert config.epochs == (STEPS - 1) * EPOCHS
        after_step.append(masks_of(m))
        before = plain_state(m)
        steps = train(m, config, **kwargs)
        state = plain_state(m)
        assert any(not torch.equal(before[k], state[k]) for k in state)  # it trained
        seen.append((state, masks_of(m)))
        return steps

    run.train = recorded_train
    pruner.prune_with_phase(model, TARGET, context(), run)
    after_step.append(masks_of(model))
    assert len(after_step) == STEPS
    assert meter.epochs == pruner.phase_epochs(run.config) == (STEPS - 1) * EPOCHS
    sizes = []
    for t, ((state, alive), masks) in enumerate(zip(seen, after_step, strict=True), start=1):
        expected = reference_step(state, alive, t)
        for name in LAYERS:
            assert torch.equal(masks[name], expected[name]), (t, name)
        sizes.append([int(expected[n].sum()) for n in LAYERS])
    total = sum(m.numel() for m in after_step[-1].values())
    assert sum(sizes[-1]) == total - round(TARGET * total)
    assert all(sum(a) > sum(b) for a, b in itertools.pairwise(sizes))  # every step removes weights


def test_one_step_is_the_one_shot_method():
    """``steps = 1``: the one-shot SiPP of the authors' SiPPNet, nothing trained."""
    one_shot, cascade = tiny_cnn(), tiny_cnn()
    get_pruner("sipp", {"c_constant": C}).prune(one_shot, 0.6, context())

    class NoTraining:
        config = None

        def train(self, *args, **kwargs):
            raise AssertionError("one step trains nothing")

    pruner = get_pruner("sipp", {"c_constant": C, "steps": 1})
    assert pruner.phase_epochs(None) == 0
    pruner.prune_with_phase(cascade, 0.6, context(), NoTraining())
    assert all(torch.equal(masks_of(one_shot)[n], masks_of(cascade)[n]) for n in LAYERS)
