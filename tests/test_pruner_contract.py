"""The pruner contract, parametrised over every registered pruner and architecture.

The contract is one module, ``benchmarks.contract``, the one ``harness check-pruner`` runs: for
every pruner on every arch, the achieved sparsity equals the target (weights, or units for
structured pruners), masked tensors stay exactly zero through training, structured units are
removed whole, the same seed gives the same masks, no I/O, and it declares kind, timing, version.
Archs the contract calls heavy (CIFAR-scale) run under ``-m slow``, except ``FAST_HEAVY``, so one
heavy arch (and the contract's reduced configs there) is in the default suite. Below it, what the
contract does not cover: only training data are used (held-out splits poisoned), the module
docstring cites the paper, weight-level sparsity follows removed units.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.archs import ARCHS, unit_groups
from benchmarks.contract import SHAPES, context, is_heavy, make, run_checks, warm_up
from benchmarks.datasets import load_dataset
from benchmarks.pipeline import tensor_training
from benchmarks.training import TrainConfig
from core.spec import CellSpec
from pruners import PRUNERS, PhasePruner, get_pruner
from pruners.masks import current_mask, effective_weight, prunable_modules, sparsity_stats
from pruners.structured import alive_units

FAST_HEAVY = ("cifar_resnet_20",)  # a heavy arch in the default suite (its 1-D case, reduced configs)
HEAVY = {a: is_heavy(a) for a in ARCHS.names()}
CASES = [
    pytest.param(p, a, marks=pytest.mark.slow) if HEAVY[a] and a not in FAST_HEAVY else (p, a)
    for p in PRUNERS.names()
    for a in ARCHS.names()
]
ARCH_PARAMS = [pytest.param(a, marks=pytest.mark.slow) if HEAVY[a] else a for a in ARCHS.names()]
STRUCTURED = [p for p in PRUNERS.names() if PRUNERS.get(p).kind == "structured"]
UNSTRUCTURED = [p for p in PRUNERS.names() if PRUNERS.get(p).kind == "unstructured"]


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm_up()  # torch's lazy imports, outside the I/O guard (as check-pruner does)


@pytest.mark.parametrize(("pruner", "arch"), CASES)
def test_pruner_keeps_the_contract(pruner, arch):
    results = run_checks(pruner, PRUNERS.get(pruner), [arch], echo=lambda line: None)
    failed = [r.line() for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    checks = {r.name for r in results}
    assert checks >= {"declares", "sparsity", "zero", "determinism", "io", "runs"}
    assert ("structure" in checks) == (PRUNERS.get(pruner).kind == "structured")


def test_the_contract_runs_every_arch_and_check_pruner_calls_the_same_ones_heavy():
    from harness import check

    assert check.is_heavy is is_heavy and check.run_checks is run_checks
    assert [a for a in FAST_HEAVY if not HEAVY[a]] == []
    assert sum(not h for h in HEAVY.values()) >= 5


def all_masks(model):
    """Every mask buffer of the model (weights, biases, BatchNorm scale/shift), by name."""
    return {n: b.clone() for n, b in model.named_buffers() if n.endswith("_mask")}


@pytest.mark.parametrize("pruner", STRUCTURED)
def test_structured_weight_sparsity_is_what_the_removed_units_leave(pruner):
    """The weight-level sparsity the masks give (``achieved_sparsity``) is the removed rows plus the
    consumers' dead inputs."""
    shape = SHAPES["1d"]
    model = make("cnn_32x3_fc256", shape)
    groups = unit_groups(model)
    get_pruner(pruner).prune(model, 0.5, context(shape))
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


@pytest.mark.parametrize("pruner", UNSTRUCTURED)
def test_achieved_sparsity_is_what_the_masks_say(pruner):
    shape = SHAPES["1d"]
    model = make("mlp_256x2", shape)
    get_pruner(pruner).prune(model, 0.7, context(shape))
    modules = prunable_modules(model)
    total = sum(m.weight_orig.numel() for m in modules.values())
    zeros = sum((current_mask(m) == 0).sum().item() for m in modules.values())
    assert sparsity_stats(model)["achieved_sparsity"] == pytest.approx(zeros / total)


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
