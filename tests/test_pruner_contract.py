"""The pruner contract, parametrised over every registered pruner and architecture.

Every pruner, on every arch: the achieved sparsity equals the target (weights, or units for
structured pruners), masked tensors stay exactly zero through training, only training
data are used, the same seed gives the same masks, and it declares kind, timing, version.
"""

import dataclasses
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.archs import ARCHS, build_arch, unit_groups
from benchmarks.datasets import load_dataset
from benchmarks.pipeline import tensor_training
from benchmarks.training import TrainConfig, train
from core.spec import CellSpec
from pruners import PRUNERS, PhasePruner, PruneContext, get_pruner
from pruners.masks import current_mask, effective_weight, prunable_modules, sparsity_stats
from pruners.structured import alive_units, unit_sparsity

SHAPES = {"1d": (1, 40), "2d": (1, 8, 8)}
HEAVY = 300_000  # archs with more parameters at the test shape run only with -m slow
# Cheaper configs on the archs ``harness check-pruner`` reduces them on (``harness.check.is_heavy``:
# over 200k parameters or 16 prunable layers): synflow's 100 rounds (its paper's) and force's /
# iter_snip's 60 steps take minutes there; 5 rounds or steps still run the iterative schedule
# (re-scoring the masked network), so the contract is the same.
HEAVY_CONFIG = {"synflow": {"rounds": 5}, "force": {"steps": 5}, "iter_snip": {"steps": 5}}


@functools.cache
def _arch_params(name):
    return sum(p.numel() for p in build_arch(name, SHAPES["1d"], 10).parameters())


@functools.cache
def _reduced(name):
    from harness.check import is_heavy

    return is_heavy(name)


def pruner_for(name, arch):
    """Pruner ``name`` for a test on ``arch``: its defaults, or ``HEAVY_CONFIG`` on a heavy arch."""
    return get_pruner(name, HEAVY_CONFIG.get(name) if _reduced(arch) else None)


ARCH_PARAMS = [
    pytest.param(a, marks=pytest.mark.slow) if _arch_params(a) > HEAVY else a for a in ARCHS.names()
]


def arch_sparsity(sparsities: list[float]) -> list:
    """(arch, sparsity) cases: every sparsity on light archs, the highest one on heavy archs
    (slow), so every pruner x arch pair is still checked."""
    cases = []
    for a in ARCHS.names():
        if _arch_params(a) > HEAVY:
            cases.append(pytest.param(a, sparsities[-1], marks=pytest.mark.slow))
        else:
            cases += [(a, s) for s in sparsities]
    return cases


STRUCTURED = [p for p in PRUNERS.names() if PRUNERS.get(p).kind == "structured"]
UNSTRUCTURED = [p for p in PRUNERS.names() if PRUNERS.get(p).kind == "unstructured"]


def make(arch, shape, seed=0):
    torch.manual_seed(seed)
    return build_arch(arch, shape, 10)


def context(shape, seed=0):
    g = torch.Generator().manual_seed(123)
    batches = [
        (torch.randn(32, *shape, generator=g), torch.randint(0, 10, (32,), generator=g)) for _ in range(2)
    ]
    return PruneContext(seed=seed, batches=batches, weight_decay=1e-4)


def all_masks(model):
    """Every mask buffer of the model (weights, biases, BatchNorm scale/shift), by name."""
    return {n: b.clone() for n, b in model.named_buffers() if n.endswith("_mask")}


@pytest.mark.parametrize("pruner", UNSTRUCTURED)
@pytest.mark.parametrize(("arch", "sparsity"), arch_sparsity([0.5, 0.98]))
def test_unstructured_sparsity_matches_target(pruner, arch, sparsity):
    shape = SHAPES["1d"]
    model = make(arch, shape)
    pruner_for(pruner, arch).prune(model, sparsity, context(shape))
    modules = prunable_modules(model)
    total = sum(m.weight_orig.numel() for m in modules.values())
    zeros = sum((current_mask(m) == 0).sum().item() for m in modules.values())
    assert abs(zeros - sparsity * total) <= len(modules)  # within one weight per layer
    assert sparsity_stats(model)["achieved_sparsity"] == pytest.approx(zeros / total)


@pytest.mark.parametrize("pruner", STRUCTURED)
@pytest.mark.parametrize(("arch", "sparsity"), arch_sparsity([0.5, 0.9]))
def test_structured_unit_sparsity_matches_target_and_weights_follow(pruner, arch, sparsity):
    shape = SHAPES["1d"]
    model = make(arch, shape)
    groups = unit_groups(model)
    get_pruner(pruner).prune(model, sparsity, context(shape))
    sizes = [alive_units(model, g).numel() for g in groups]
    removed = sum(int((~alive_units(model, g)).sum()) for g in groups)
    assert abs(removed - sparsity * sum(sizes)) <= len(groups)  # within one unit per layer
    assert unit_sparsity(model) == pytest.approx(removed / sum(sizes))
    assert all(alive_units(model, g).any() for g in groups), "a layer lost every unit"
    # the weight-level sparsity is what the masks say: removed rows plus the consumers' dead inputs
    modules = prunable_modules(model)
    expected = 0
    for g in groups:
        dead = ~alive_units(model, g)
        producer, consumer = modules[g.producer], modules[g.consumer]
        expected += int(dead.sum()) * producer.weight[0].numel()
        expected += int(dead.sum()) * g.positions * consumer.weight.shape[0] * consumer.weight[0, 0].numel()
    # a layer both consumer and producer counts its dead rows x dead columns twice
    for g in groups:
        for h in groups:
            if g.consumer == h.producer:
                rows, cols = int((~alive_units(model, h)).sum()), int((~alive_units(model, g)).sum())
                expected -= rows * cols * g.positions * modules[h.producer].weight[0, 0].numel()
    total = sum(effective_weight(m).numel() for m in modules.values())
    assert sparsity_stats(model)["achieved_sparsity"] == pytest.approx(expected / total)


def _train_briefly(model, shape):
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(256, *shape, generator=g), torch.randint(0, 10, (256,), generator=g)
    train(model, x, y, TrainConfig(epochs=2, batch_size=64, lr=1e-2, weight_decay=1e-3), seed=0)


@pytest.mark.parametrize("pruner", PRUNERS.names())
@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_masked_tensors_stay_zero_through_training(pruner, arch):
    shape = SHAPES["2d"]
    model = make(arch, shape)
    unmasked = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruner_for(pruner, arch).prune(model, 0.8, context(shape))
    masks = all_masks(model)
    assert masks, "pruning masked nothing"
    for n, p in model.named_parameters():  # tensors without a mask are untouched by pruning
        if not n.endswith("_orig"):
            assert torch.equal(p, unmasked[n]), f"{n} changed by pruning"
    _train_briefly(model, shape)
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        module_name, _, buffer = name.rpartition(".")
        tensor = getattr(modules[module_name], buffer[: -len("_mask")])
        assert torch.all(tensor[mask == 0] == 0), f"{pruner} on {arch}: {name} regrew"
        assert torch.equal(getattr(modules[module_name], buffer), mask), f"{name} changed in training"


@pytest.mark.parametrize("pruner", STRUCTURED)
@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_structured_units_are_whole_and_output_zero_after_training(pruner, arch):
    shape = SHAPES["2d"]
    model = make(arch, shape)
    get_pruner(pruner).prune(model, 0.5, context(shape))
    _train_briefly(model, shape)
    model.eval()
    assert any((~alive_units(model, g)).any() for g in unit_groups(model))
    for g in unit_groups(model):
        dead = ~alive_units(model, g)
        producer = model.get_submodule(g.producer)
        assert torch.all(effective_weight(producer)[dead] == 0)
        if producer.bias is not None:
            assert torch.all(producer.bias[dead] == 0)
        if g.norm is not None:  # BN scale and shift of a removed filter: exactly zero
            norm = model.get_submodule(g.norm)
            assert torch.all(norm.weight[dead] == 0) and torch.all(norm.bias[dead] == 0)
        seen: list[torch.Tensor] = []
        hook = model.get_submodule(g.norm or g.producer).register_forward_hook(
            lambda m, a, o, seen=seen: seen.append(o)
        )
        model(torch.randn(4, *shape))
        hook.remove()
        assert torch.all(seen[0].transpose(0, 1)[dead] == 0), "a removed unit still outputs non-zero"


class ForbiddenTensor(torch.Tensor):
    """Held out data: any torch operation on it (indexing, arithmetic, a forward pass) fails."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise AssertionError(f"held-out data touched by {getattr(func, '__name__', func)}")


def _forbid(t):
    return t.as_subclass(ForbiddenTensor)


@pytest.fixture(scope="module")
def guarded_digits():
    """The digits dataset with its validation and test splits poisoned."""
    data = load_dataset("digits")
    return dataclasses.replace(
        data,
        x_val=_forbid(data.x_val.clone()),
        y_val=_forbid(data.y_val.clone()),
        x_test=_forbid(data.x_test.clone()),
        y_test=_forbid(data.y_test.clone()),
    )


def test_forbidden_tensor_really_fails():
    t = _forbid(torch.ones(3))
    for op in (lambda: t + 1, lambda: t[0], lambda: torch.nn.functional.relu(t), lambda: t.shape):
        with pytest.raises(AssertionError, match="held-out"):
            op()


@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_pruners_score_on_training_data_only(pruner, guarded_digits):
    """The pipeline's context is built from the data with held-out splits poisoned; pruning
    (and a during-training pruner's whole sparse training, a phase pruner's whole phase) must
    never touch them."""
    from benchmarks.pipeline import prune_context

    data = guarded_digits
    spec = CellSpec("cnn_32x3", "digits", pruner, 0.5, 0)
    ctx = prune_context(spec, data)
    assert len(ctx.batches) > 0 and all(0 < x.shape[0] <= spec.eval.score_batch_size for x, _ in ctx.batches)
    train_rows = {tuple(r.tolist()) for r in data.x_train.flatten(1)}
    assert all(tuple(r.tolist()) in train_rows for x, _ in ctx.batches for r in x.flatten(1)[:16])
    model = make("cnn_32x3", data.input_shape)
    p = get_pruner(pruner)
    if p.timing == "during_training" or isinstance(p, PhasePruner):
        parent = make("cnn_32x3", data.input_shape).state_dict()
        run = tensor_training(
            data.x_train[:256], data.y_train[:256], TrainConfig(epochs=2, batch_size=64), 0,
            rewind_epoch=1, rewind_state=parent, parent_state=parent,
        )  # fmt: skip
        train_then_prune = p.prune_with_phase if isinstance(p, PhasePruner) else p.train_sparse
        train_then_prune(model, 0.5, ctx, run)
    else:
        p.prune(model, 0.5, ctx)
    assert all_masks(model)


@pytest.mark.parametrize("pruner", PRUNERS.names())
@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_same_inputs_and_seed_give_same_masks(pruner, arch):
    shape = SHAPES["1d"]
    masks = []
    for _ in range(2):
        model = make(arch, shape)
        pruner_for(pruner, arch).prune(model, 0.7, context(shape))
        masks.append(all_masks(model))
    assert masks[0].keys() == masks[1].keys()
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])


@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_pruner_declares_kind_timing_and_version(pruner):
    cls = PRUNERS.get(pruner)
    assert cls.kind in ("unstructured", "structured")
    assert cls.timing in ("after_training", "at_init", "during_training")
    assert isinstance(cls.version, str) and cls.version
    assert cls.__doc__ and cls.summary()
    doc = sys.modules[cls.__module__].__doc__ or ""
    assert "et al" in doc or "&" in doc, "module docstring must cite the paper"
    assert f"``{pruner}``" in doc, "module docstring must name the registry key"
    if cls.kind == "structured":
        assert callable(getattr(cls, "compact", None)) and callable(getattr(cls, "unit_sparsity", None))
    if cls.timing == "during_training":
        assert callable(getattr(cls, "train_sparse", None))
    if issubclass(cls, PhasePruner):  # a pruning phase on the trained parent, declared for scheduling
        assert cls.timing == "after_training" and callable(getattr(cls, "prune_with_phase", None))
        epochs = get_pruner(pruner).phase_epochs(TrainConfig())
        assert isinstance(epochs, int) and epochs >= 0


def test_zoo_has_every_family_and_harness_lists_it():
    assert len(PRUNERS) >= 16
    for timing in ("after_training", "at_init", "during_training"):
        assert any(PRUNERS.get(p).timing == timing for p in PRUNERS)
    assert STRUCTURED and UNSTRUCTURED
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "list", "pruners"], capture_output=True, text=True, cwd=root
    )
    assert proc.returncode == 0
    listed = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("  ")]
    assert len(listed) >= 16
    for name in PRUNERS:
        line = next(ln for ln in listed if ln[0] == name)
        assert line[1] == PRUNERS.get(name).kind and line[2] == PRUNERS.get(name).timing


def test_global_magnitude_keeps_the_largest_weights():
    model = make("mlp_256x2", SHAPES["1d"])
    before = {n: m.weight.detach().abs().clone() for n, m in prunable_modules(model).items()}
    get_pruner("global_magnitude").prune(model, 0.9, context(SHAPES["1d"]))
    kept = torch.cat([before[n][current_mask(m) == 1] for n, m in prunable_modules(model).items()])
    dropped = torch.cat([before[n][current_mask(m) == 0] for n, m in prunable_modules(model).items()])
    assert kept.min() >= dropped.max()


@pytest.mark.parametrize("pruner", ["random", "random_erk", "rigl"])
def test_random_pruners_differ_between_seeds(pruner):
    shape = SHAPES["1d"]
    masks = []
    for seed in (0, 1):
        model = make("mlp_256x2", shape)
        get_pruner(pruner).prune(model, 0.5, context(shape, seed))
        masks.append(current_mask(prunable_modules(model)["net.3"]))  # ERK keeps net.1 dense at 0.5
    assert not torch.equal(*masks)
