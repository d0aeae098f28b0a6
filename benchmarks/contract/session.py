"""One check session of the pruner contract: the archs, the cases, every pruner call memoised and
run under the I/O guard (``benchmarks.contract.io_guard``), what the checks read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.contract.io_guard import guarded
from benchmarks.pipeline import tensor_training
from benchmarks.training import train
from core.spec import TrainConfig
from pruners.base import PhasePruner, PruneContext, Pruner, make_pruner_config
from pruners.masks import prunable_modules, refresh_masked

SHAPES = {"1d": (1, 40), "2d": (1, 8, 8)}
# CIFAR-scale archs, with more parameters or prunable layers at the 1-D shape: one sparsity, 1-D only
HEAVY_PARAMS, HEAVY_LAYERS = 200_000, 16
UNSTRUCTURED_SPARSITIES = (0.5, 0.9, 0.98)
STRUCTURED_SPARSITIES = (0.5, 0.9)
TRAIN_SPARSITY = 0.8  # the zero check's sparsity, and every train_sparse / prune_with_phase run's
# built-in pruners too slow on the heavy archs at their defaults (synflow: 100 rounds take
# 35-60 s on each of vgg_16_bn, resnet_18, wrn_16_8): the config used there instead; imp's
# rounds (8 at TRAIN_SPARSITY) take 32 s in all, within the minute; force and iter_snip: 60 steps
# (their authors' CIFAR setting) took 380 s on the heavy archs together
HEAVY_CONFIG: dict[str, dict] = {"synflow": {"rounds": 5}, "force": {"steps": 5}, "iter_snip": {"steps": 5}}
TRAIN_STEPS = {"light": 8, "heavy": 2}  # optimizer steps of the short training runs


def make(arch: str, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """The arch freshly initialised with ``seed``."""
    torch.manual_seed(seed)
    return build_arch(arch, shape, 10)


def context(shape: tuple[int, ...], seed: int = 0) -> PruneContext:
    """The pruner's view: seed ``seed`` and two fixed random training batches of 32."""
    g = torch.Generator().manual_seed(123)
    batches = [
        (torch.randn(32, *shape, generator=g), torch.randint(0, 10, (32,), generator=g)) for _ in range(2)
    ]
    return PruneContext(seed=seed, batches=batches, weight_decay=1e-4)


def all_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every mask buffer of the model (weights, biases, BatchNorm scale/shift), by name."""
    return {n: b.detach().clone() for n, b in model.named_buffers() if n.endswith("_mask")}


def is_heavy(arch: str) -> bool:
    """More than ``HEAVY_PARAMS`` parameters or ``HEAVY_LAYERS`` prunable layers at the 1-D shape."""
    model = build_arch(arch, SHAPES["1d"], 10)
    params = sum(p.numel() for p in model.parameters())
    return params > HEAVY_PARAMS or len(prunable_modules(model)) > HEAVY_LAYERS


def random_data(shape: tuple[int, ...], n: int, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


def train_briefly(model: nn.Module, shape: tuple[int, ...], steps: int = 8) -> None:
    """``steps`` optimizer steps (batches of 32, Adam, weight decay) on random tensors."""
    x, y = random_data(shape, 32 * steps)
    train(model, x, y, TrainConfig(epochs=1, batch_size=32, lr=1e-2, weight_decay=1e-3), seed=0)


def sparse_training_run(shape: tuple[int, ...], steps_per_epoch: int, parent: dict[str, torch.Tensor]):
    """A two-epoch ``SparseTraining`` on random tensors; ``parent`` is the dense parent and
    its rewind iterate (epoch 1)."""
    x, y = random_data(shape, 32 * steps_per_epoch)
    config = TrainConfig(epochs=2, batch_size=32, lr=1e-2, weight_decay=1e-4)
    return tensor_training(x, y, config, 0, rewind_epoch=1, rewind_state=parent, parent_state=parent)


def warm_up() -> None:
    """One training step of a tiny model outside the guard: torch imports ``torch._dynamo`` when
    the first optimizer is built, and that import probes the temp dir and creates a cache dir."""
    train_briefly(nn.Sequential(nn.Flatten(), nn.Linear(4, 10)), (4,), steps=1)


@dataclass(frozen=True)
class Case:
    arch: str
    shape: str  # a key of SHAPES
    sparsity: float
    seed: int = 0
    mode: str = "prune"  # or "train_sparse", "prune_with_phase"

    def __str__(self) -> str:
        seed = f" seed {self.seed}" if self.seed else ""
        return f"{self.arch} {self.shape} s={self.sparsity:g}{seed}" + (
            f" {self.mode}" if self.mode != "prune" else ""
        )


class CallFailed(Exception):
    """A pruner call raised; ``str`` is its first line, already recorded for the ``runs`` check."""


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail} ({self.seconds:.1f} s)"


@dataclass
class Session:
    name: str
    cls: type[Pruner]
    archs: list[str]
    heavy: dict[str, bool] = field(default_factory=dict)
    cache: dict[Case, nn.Module] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # arch -> first error
    io: list[str] = field(default_factory=list)
    trained: dict[Case, nn.Module] = field(default_factory=dict)  # the zero check's trained models
    calls: int = 0
    reduced: bool = False  # a heavy arch ran with HEAVY_CONFIG

    def __post_init__(self) -> None:
        self.heavy = {a: is_heavy(a) for a in self.archs}

    @property
    def light(self) -> list[str]:
        return [a for a in self.archs if not self.heavy[a]]

    @property
    def structured(self) -> bool:
        return self.cls.kind == "structured"

    @property
    def during(self) -> bool:
        return self.cls.timing == "during_training" and callable(getattr(self.cls, "train_sparse", None))

    @property
    def phase(self) -> bool:
        """An after-training pruner with a pruning phase on the parent (``PhasePruner``)."""
        return issubclass(self.cls, PhasePruner)

    @property
    def trains(self) -> bool:
        """Whether the pruner trains the model itself (its own training method is checked)."""
        return self.during or self.phase

    @property
    def training_mode(self) -> str:
        return "train_sparse" if self.during else "prune_with_phase"

    def pruner(self, arch: str) -> Pruner:
        reduced = HEAVY_CONFIG.get(self.name) if self.heavy[arch] and self.cls.plugin is None else None
        self.reduced |= reduced is not None
        return self.cls(make_pruner_config(self.name, reduced))

    def reduced_note(self) -> str:
        if not self.reduced:
            return ""
        values = ", ".join(f"{k}={v}" for k, v in HEAVY_CONFIG[self.name].items())
        return f"; {self.name} {values} on heavy archs"

    def call(self, case: Case, method: Callable[[], object]) -> object:
        """Run one pruner method under the I/O guard; a raise is recorded and re-raised as CallFailed."""
        self.calls += 1
        events: list[str] = []
        try:
            with guarded() as events:
                return method()
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            self.errors.setdefault(case.arch, f"{case}: {message}")
            raise CallFailed(message) from None
        finally:  # after the guard has handed over its events
            self.io += [f"{e} ({case})" for e in events]

    def pruned(self, case: Case, fresh: bool = False) -> nn.Module:
        """A copy of the model of ``case`` after ``prune`` (or ``train_sparse``), memoised."""
        if case in self.cache and not fresh:
            return copy.deepcopy(self.cache[case])
        shape = SHAPES[case.shape]
        model = make(case.arch, shape)
        pruner, ctx = self.pruner(case.arch), context(shape, case.seed)
        if case.mode == "prune":
            self.call(case, lambda: pruner.prune(model, case.sparsity, ctx))
        else:
            steps = TRAIN_STEPS["heavy" if self.heavy[case.arch] else "light"]
            run = sparse_training_run(shape, steps, make(case.arch, shape, seed=1).state_dict())
            method = getattr(pruner, case.mode)  # train_sparse or prune_with_phase
            self.call(case, lambda: method(model, case.sparsity, ctx, run))
        refresh_masked(model)  # masked attributes as leaves, so the model can be copied
        if not fresh:
            self.cache[case] = copy.deepcopy(model)
        return model

    def sparsity_cases(self) -> list[Case]:
        levels = STRUCTURED_SPARSITIES if self.structured else UNSTRUCTURED_SPARSITIES
        cases = []
        for arch in self.archs:
            if self.heavy[arch]:
                cases.append(Case(arch, "1d", levels[-1]))
            else:  # 2-D also at TRAIN_SPARSITY: the training cases
                cases += [Case(arch, "1d", s) for s in levels] + [Case(arch, "2d", levels[0])]
        return cases + self.training_cases()

    def training_cases(self) -> list[Case]:
        """The zero check's models: 2-D light archs at TRAIN_SPARSITY, heavy archs at their
        sparsity case, and each arch's own training run (train_sparse, prune_with_phase) for
        pruners that train."""
        levels = STRUCTURED_SPARSITIES if self.structured else UNSTRUCTURED_SPARSITIES
        if self.trains:
            return [
                Case(a, "1d" if self.heavy[a] else "2d", TRAIN_SPARSITY, mode=self.training_mode)
                for a in self.archs
            ]
        return [
            Case(a, "1d", levels[-1]) if self.heavy[a] else Case(a, "2d", TRAIN_SPARSITY) for a in self.archs
        ]
