"""``harness check-pruner NAME|MODULE:CLASS``: check one pruner against the pruner contract.

The contract of ``pruners.base`` (tested for the built-in zoo by ``tests/test_pruner_contract.py``),
checked for any one pruner, built in or brought by a plugin, one printed line per check:

- ``declares``: a ``kind``, ``timing`` and ``version``, a class docstring (its summary is what
  ``harness list`` shows) and a frozen ``Config`` dataclass whose fields each carry a
  description (``param(default, doc)``); structured pruners ``compact`` and ``unit_sparsity``,
  during-training ones ``train_sparse``.
- ``sparsity``: on every registered arch the achieved sparsity (what the ``torch.nn.utils.prune``
  masks say, which is what the harness records) equals the target ``s``: the number of zero
  weights within one weight of ``s * n`` for ``scope = "global"``, within one weight per layer
  otherwise (layer-wise ranking rounds each layer); for structured pruners the removed units
  within one unit per group, and ``unit_sparsity`` agreeing with the masks. Pruners that train
  are measured after ``prune`` and at the end of their own training: ``train_sparse``
  (during-training pruners) or ``prune_with_phase`` (phase pruners, on a trained parent).
- ``zero``: masked weights stay exactly zero, and masks unchanged, through a short training
  run (``benchmarks.training.train`` on random tensors); pruning leaves unmasked tensors
  untouched (except for pruners that train: during-training and phase pruners).
- ``structure`` (structured pruners): removed units are whole (weight rows, bias, BatchNorm
  scale and shift, the consumer's inputs), output exactly zero after training, and
  ``compact`` gives a smaller model with the same outputs.
- ``determinism``: the same model, inputs and seed give identical masks; whether another seed
  gives other masks is only reported.
- ``io``: while any pruner method runs, no file is opened, removed or renamed, no process
  started and no socket created (``sys.addaudithook``, PEP 578), apart from the import
  system's reads (sources, installed packages, package metadata: pruners import lazily). One
  training step before the checks imports what training imports lazily (``torch._dynamo``
  probes the temp dir), so that torch's own start-up is not charged to the pruner.
- ``runs``: no pruner call raised on any arch.

Archs are built at the contract test's small input shapes, 1-D ``(1, 40)`` and 2-D
``(1, 8, 8)``. The CIFAR-scale archs (over ``HEAVY_PARAMS`` parameters or ``HEAVY_LAYERS``
prunable layers at the 1-D shape) run at the 1-D shape and one sparsity only (the highest;
train_sparse at ``TRAIN_SPARSITY``), with fewer training steps, and a built-in pruner too slow
there at its defaults runs with a reduced config (``HEAVY_CONFIG``: synflow's rounds, force's and
iter_snip's steps; named in the detail lines), so that a check takes under a minute on one CPU
thread. Every pruner call is memoised per (arch, shape, sparsity, seed), so the checks share the
pruned models; the determinism check repeats calls uncached.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import os
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from benchmarks.archs import ARCHS, build_arch
from benchmarks.pipeline import tensor_training
from benchmarks.training import train
from core.spec import TrainConfig
from core.units import unit_groups
from pruners.base import (
    KINDS,
    PRUNERS,
    TIMINGS,
    PhasePruner,
    PruneContext,
    Pruner,
    make_pruner_config,
    register_pruner,
)
from pruners.contract import structured_deviation, unstructured_deviation
from pruners.masks import effective_weight, prunable_modules, refresh_masked
from pruners.plugins import PluginError
from pruners.structured import alive_units

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


# --- the I/O guard: an audit hook that records, while armed, what a pruner should never do

_ARMED = False
_IO_EVENTS: list[str] = []
_HOOK_INSTALLED = False
WATCHED = {
    "open", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "os.chown",
    "os.link", "os.symlink", "os.utime", "shutil.copyfile", "shutil.copytree", "shutil.move",
    "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp", "socket.__new__", "socket.connect",
    "socket.bind", "socket.getaddrinfo", "socket.sendto", "subprocess.Popen", "os.system", "os.exec",
    "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "urllib.Request", "http.client.connect",
    "sqlite3.connect",
}  # fmt: skip
IMPORT_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth", ".typed")


def _install_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(torch.__file__)}
    roots |= {
        p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


INSTALL_ROOTS = _install_roots()


def _importing() -> bool:
    """Whether an import is in progress on this thread (a module's code runs under the import system)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _is_import_io(event: str, args: tuple) -> bool:
    """The import system's I/O, which lazy imports inside a pruner cause: reads of sources and
    package metadata, reads while an import runs, and bytecode caching."""
    path = args[0] if args else None
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    path = os.fsdecode(path)
    if "__pycache__" in path:
        return True
    if event != "open":
        return False
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if (mode is not None and any(c in mode for c in "wax+")) or bool(flags & (os.O_WRONLY | os.O_RDWR)):
        return False  # writes are never the import system's
    parent = os.path.basename(os.path.dirname(path))
    return (
        path.endswith(IMPORT_SUFFIXES)
        or parent.endswith((".dist-info", ".egg-info"))  # importlib.metadata: entry points, versions
        or os.path.realpath(path).startswith(INSTALL_ROOTS)
        or _importing()
    )


def _audit(event: str, args: tuple) -> None:
    if not _ARMED or event not in WATCHED:
        return
    try:
        if not _is_import_io(event, args):
            what = os.fsdecode(args[0]) if args and isinstance(args[0], (str, bytes, os.PathLike)) else ""
            if event == "open" and len(args) > 1 and args[1]:
                what += f" (mode {args[1]})"
            _IO_EVENTS.append(f"{event} {what}".strip() if event != "socket.__new__" else "socket created")
    except Exception:  # an audit hook must never raise into the audited code
        _IO_EVENTS.append(event)


def warm_up() -> None:
    """One training step of a tiny model outside the guard: torch imports ``torch._dynamo`` when
    the first optimizer is built, and that import probes the temp dir and creates a cache dir."""
    train_briefly(nn.Sequential(nn.Flatten(), nn.Linear(4, 10)), (4,), steps=1)


@contextmanager
def guarded() -> Iterator[list[str]]:
    """Record the watched audit events raised inside the block (the list it yields)."""
    global _ARMED, _HOOK_INSTALLED
    if not _HOOK_INSTALLED:  # audit hooks cannot be removed: install one, arm it per call
        sys.addaudithook(_audit)
        _HOOK_INSTALLED = True
    start = len(_IO_EVENTS)
    events: list[str] = []
    _ARMED = True
    try:
        yield events
    finally:
        _ARMED = False
        events.extend(_IO_EVENTS[start:])
        del _IO_EVENTS[start:]


# --- one check session: every pruner call goes through ``call``, results are memoised


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


# --- the checks


def check_declares(s: Session) -> tuple[bool, str]:
    cls, problems = s.cls, []
    if getattr(cls, "kind", None) not in KINDS:
        problems.append(f"kind {getattr(cls, 'kind', None)!r} is not one of {', '.join(KINDS)}")
    if getattr(cls, "timing", None) not in TIMINGS:
        problems.append(f"timing {getattr(cls, 'timing', None)!r} is not one of {', '.join(TIMINGS)}")
    if not (isinstance(cls.version, str) and cls.version):
        problems.append(f"version {cls.version!r} must be a non-empty string")
    if not (cls.__doc__ or "").strip():
        problems.append("no class docstring (its first line is the summary harness list shows)")
    if inspect.isabstract(cls):
        problems.append(f"abstract method(s) not implemented: {', '.join(sorted(cls.__abstractmethods__))}")
    config = cls.Config
    fields: list[dataclasses.Field] = []
    if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
        problems.append(f"Config {getattr(config, '__name__', config)!r} is not a frozen dataclass")
    else:
        fields = list(dataclasses.fields(config))
        undocumented = [f.name for f in fields if not str(f.metadata.get("doc", "")).strip()]
        if undocumented:
            problems.append(
                f"Config field(s) {', '.join(undocumented)} have no description: use param(default, doc)"
            )
    needs = {"structured": ("compact", "unit_sparsity"), "during_training": ("train_sparse",)}
    for method in needs.get(cls.kind, ()) + needs.get(cls.timing, ()):
        if not callable(getattr(cls, method, None)):
            problems.append(
                f"a {cls.kind if method != 'train_sparse' else cls.timing} pruner needs {method}()"
            )
    phase = ""
    if s.phase and not problems:  # the declared phase length the scheduler reads
        try:
            epochs = cls(make_pruner_config(s.name)).phase_epochs(TrainConfig())
        except Exception as exc:
            epochs = f"an error ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
        if not (isinstance(epochs, int) and epochs >= 0):
            problems.append(f"phase_epochs() returned {epochs!r}, not a whole number of epochs >= 0")
        phase = f", a pruning phase of {epochs} epoch(s) under the default recipe"
    if problems:
        return False, "; ".join(problems)
    scope = getattr(cls, "scope", None)
    names = ", ".join(f.name for f in fields) or "none"
    return True, (
        f"kind {cls.kind}, timing {cls.timing}, version {cls.version!r}, scope {scope or 'undeclared'}, "
        f"frozen Config with {len(fields)} documented field(s) ({names}){phase}"
    )


def _unstructured_deviation(s: Session, model: nn.Module, sparsity: float) -> tuple[float, float, str]:
    """(zeros - s * n, bound, what was counted), by the pruner's declared scope."""
    d = unstructured_deviation(getattr(s.cls, "scope", None), model, sparsity)
    where = d.counted
    modules = prunable_modules(model)
    if not any(hasattr(m, "weight_mask") for m in modules.values()):
        zeroed = sum(int((m.weight == 0).sum()) for m in modules.values())
        where += (
            f", no torch.nn.utils.prune mask ({zeroed} weights zero without one; the harness counts masks)"
        )
    return d.off, d.bound, where


def _structured_deviation(s: Session, case: Case, model: nn.Module) -> tuple[float, float, str]:
    """(removed - s * units, bound, what was counted); inf when the units are inconsistent."""
    groups = unit_groups(model)
    alive = [alive_units(model, g) for g in groups]
    removed, total = sum(int((~a).sum()) for a in alive), sum(a.numel() for a in alive)
    empty = [g.producer for g, a in zip(groups, alive, strict=True) if not a.any()]
    if empty:
        return float("inf"), 0.0, f"layer {empty[0]} lost every unit"
    reported = float(s.call(case, lambda: s.cls(make_pruner_config(s.name)).unit_sparsity(model)))
    if abs(reported - removed / total) > 1e-9:
        return float("inf"), 0.0, f"unit_sparsity() says {reported:.4f}, the masks {removed / total:.4f}"
    d = structured_deviation(model, case.sparsity)
    return d.off, d.bound, d.counted


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _raised(raised: list[Case]) -> str:
    return f"; {len(raised)} case(s) raised ({raised[0]} first, see runs)" if raised else ""


def check_sparsity(s: Session) -> tuple[bool, str]:
    failures: list[str] = []
    raised: list[Case] = []
    worst: tuple[float, float, str, Case] | None = None
    cases = s.sparsity_cases()
    for case in cases:
        try:
            model = s.pruned(case)
            if s.structured:
                dev, bound, where = _structured_deviation(s, case, model)
            else:
                dev, bound, where = _unstructured_deviation(s, model, case.sparsity)
        except CallFailed:
            raised.append(case)
            continue
        if abs(dev) > bound:
            failures.append(f"{case}: off by {dev:+.1f} (bound {bound:g}), {where}")
        if worst is None or abs(dev) / max(bound, 1e-9) > abs(worst[0]) / max(worst[1], 1e-9):
            worst = (dev, bound, where, case)
    unit = "units" if s.structured else "weights"
    bound_rule = (
        "one unit per group"
        if s.structured
        else {"layer": "one weight per layer", "global": "one weight overall"}.get(
            getattr(s.cls, "scope", None), "one weight per layer (no scope declared)"
        )
    )
    if failures:
        more = f" (and {len(failures) - 1} more case(s))" if len(failures) > 1 else ""
        return False, f"{failures[0]}{more}; bound: {bound_rule}{_raised(raised)}{s.reduced_note()}"
    if raised:
        return False, f"could not measure{_raised(raised)}"
    assert worst is not None
    dev, bound, where, case = worst
    levels = "/".join(f"{x:g}" for x in (STRUCTURED_SPARSITIES if s.structured else UNSTRUCTURED_SPARSITIES))
    first, heavy = levels.split("/")[0], levels.split("/")[-1]
    two_d = f"2-D at {first}" + ("" if s.trains else f" and {TRAIN_SPARSITY:g}")
    extra = f"; {s.training_mode} at {TRAIN_SPARSITY:g}, 2-D (heavy: 1-D)" if s.trains else ""
    return True, (
        f"{_n(len(cases), 'case')} on {_n(len(s.archs), 'arch')}: prune 1-D at {levels}, {two_d} "
        f"(heavy: 1-D at {heavy}){extra}; worst {dev:+.2f} {unit} ({case}, {where}), "
        f"bound {bound_rule}{s.reduced_note()}"
    )


def _forward_tensors(model: nn.Module, shape: tuple[int, ...]) -> None:
    """One eval-mode forward: every masked attribute recomputed as the forward uses it."""
    model.eval()
    with torch.no_grad():
        model(random_data(shape, 2, seed=9)[0])


def check_zero(s: Session) -> tuple[bool, str]:
    problems: list[str] = []
    changed: list[str] = []  # reported after any regrowth
    raised: list[Case] = []
    cases = s.training_cases()
    for case in cases:
        shape = SHAPES[case.shape]
        try:
            model = s.pruned(case)
        except CallFailed:
            raised.append(case)
            continue
        masks = all_masks(model)
        modules = prunable_modules(model)
        unmasked_zero = {
            n: m.weight.detach() == 0 for n, m in modules.items() if not hasattr(m, "weight_mask")
        }
        if not any((m == 0).any() for m in masks.values()) and not any(
            z.any() for z in unmasked_zero.values()
        ):
            problems.append(f"{case}: pruning zeroed nothing")
            continue
        if not s.trains:  # pruning touches masks only: every tensor without one is as initialised
            init = dict(make(case.arch, shape).named_parameters())
            for n, p in model.named_parameters():
                if not n.endswith("_orig") and n in init and not torch.equal(p, init[n]):
                    changed.append(f"{case}: pruning changed {n}, a tensor without a mask")
                    break
        steps = TRAIN_STEPS["heavy" if s.heavy[case.arch] else "light"]
        try:
            train_briefly(model, shape, steps)
            _forward_tensors(model, shape)
        except Exception as exc:
            message = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            s.errors.setdefault(case.arch, f"{case}, training the pruned model: {message}")
            raised.append(case)
            continue
        named = dict(model.named_modules())
        for name, mask in masks.items():
            module_name, _, buffer = name.rpartition(".")
            module, tensor_name = named[module_name], buffer[: -len("_mask")]
            now = getattr(module, buffer, None)
            if now is None or not torch.equal(now, mask):
                problems.append(f"{case}: mask {name} changed in training")
            regrew = int((getattr(module, tensor_name).detach()[mask == 0] != 0).sum())
            if regrew:
                masked = int((mask == 0).sum())
                problems.append(
                    f"{case}: {regrew} of {masked} masked entries of {name[:-5]} regrew in {steps} steps"
                )
        for name, zero in unmasked_zero.items():
            regrew = int((modules[name].weight.detach()[zero] != 0).sum())
            if regrew:
                problems.append(
                    f"{case}: {regrew} of {int(zero.sum())} zeroed weights of {name} regrew in {steps} steps "
                    "(zeroed without a torch.nn.utils.prune mask)"
                )
        s.trained[case] = model
    problems += changed
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return False, f"{problems[0]}{more}{_raised(raised)}{s.reduced_note()}"
    if raised:
        return False, f"could not train{_raised(raised)}"
    what = f"{s.training_mode} at {TRAIN_SPARSITY:g}, 2-D (heavy: 1-D)"
    if not s.trains:
        heavy = (STRUCTURED_SPARSITIES if s.structured else UNSTRUCTURED_SPARSITIES)[-1]
        what = f"pruned to {TRAIN_SPARSITY:g}, 2-D (heavy: {heavy:g}, 1-D)"
    return True, (
        f"{_n(len(cases), 'arch')} {what}, then "
        f"{TRAIN_STEPS['light']} training steps ({TRAIN_STEPS['heavy']} on heavy archs): every masked entry "
        f"still exactly zero, masks unchanged{s.reduced_note()}"
    )


def check_structure(s: Session) -> tuple[bool, str]:
    problems: list[str] = []
    checked = 0
    for case, model in s.trained.items():
        shape = SHAPES[case.shape]
        model.eval()
        groups = unit_groups(model)
        dead_of = {g.producer: ~alive_units(model, g) for g in groups}
        if not any(d.any() for d in dead_of.values()):
            problems.append(f"{case}: no unit removed")
            continue
        for g in groups:
            dead = dead_of[g.producer]
            producer, consumer = model.get_submodule(g.producer), model.get_submodule(g.consumer)
            parts = [("bias", producer.bias[dead] if producer.bias is not None else None)]
            if g.norm is not None:
                norm = model.get_submodule(g.norm)
                parts += [("BatchNorm scale", norm.weight[dead]), ("BatchNorm shift", norm.bias[dead])]
            inputs = effective_weight(consumer).transpose(0, 1)[dead.repeat_interleave(g.positions)]
            parts.append((f"consumer {g.consumer} inputs", inputs))
            for what, values in parts:
                if values is not None and bool((values != 0).any()):
                    problems.append(
                        f"{case}: {what} of removed units of {g.producer} non-zero after training"
                    )
        seen: list[torch.Tensor] = []
        hooks = [
            model.get_submodule(g.norm or g.producer).register_forward_hook(
                lambda m, a, o, seen=seen: seen.append(o.detach())
            )
            for g in groups
        ]
        x = random_data(shape, 4, seed=11)[0]
        with torch.no_grad():
            out = model(x)
        for h in hooks:
            h.remove()
        for g, o in zip(groups, seen, strict=True):
            if bool((o.transpose(0, 1)[dead_of[g.producer]] != 0).any()):
                problems.append(f"{case}: a removed unit of {g.producer} outputs non-zero")
        pruner = s.cls(make_pruner_config(s.name))
        try:
            small = s.call(case, lambda pruner=pruner, model=model: pruner.compact(model))
        except CallFailed as exc:
            problems.append(f"{case}: compact() raised {exc}")
            continue
        with torch.no_grad():
            small_out = small.eval()(x)
        before = sum(int(p.numel()) for p in model.parameters())
        after = sum(int(p.numel()) for p in small.parameters())
        if after >= before:
            problems.append(f"{case}: compact() kept {after} of {before} parameters")
        error = float((small_out - out).abs().max())
        if error > 1e-4 * max(1.0, float(out.abs().max())):
            problems.append(f"{case}: the compacted model's outputs differ by up to {error:.2e}")
        checked += 1
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return False, problems[0] + more
    if not checked:
        return False, "no trained model to check (see zero)"
    return True, (
        f"{_n(checked, 'trained model')}: removed units whole (rows, bias, BatchNorm, consumer inputs) and "
        "output exactly zero; compact() smaller with the same outputs"
    )


def _signature(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every mask; where a layer has none, the pattern of its zero weights."""
    out = all_masks(model)
    for name, m in prunable_modules(model).items():
        if not hasattr(m, "weight_mask"):
            out[f"{name}.weight==0"] = m.weight.detach() == 0
    return out


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> str | None:
    """None when equal, else the first difference."""
    if a.keys() != b.keys():
        return f"mask names differ ({sorted(set(a) ^ set(b))[:3]})"
    for k in a:
        if not torch.equal(a[k], b[k]):
            return f"{k}: {int((a[k] != b[k]).sum())} of {a[k].numel()} entries differ"
    return None


def check_determinism(s: Session) -> tuple[bool, str]:
    levels = STRUCTURED_SPARSITIES if s.structured else UNSTRUCTURED_SPARSITIES
    cases = [Case(a, "1d", levels[0]) for a in s.light]
    if s.trains:
        cases += [c for c in s.training_cases() if not s.heavy[c.arch]]
    problems: list[str] = []
    raised: list[Case] = []
    for case in cases:
        try:
            first, again = s.pruned(case), s.pruned(case, fresh=True)
        except CallFailed:
            raised.append(case)
            continue
        diff = _same(_signature(first), _signature(again))
        if diff:
            problems.append(f"{case}: the same inputs and seed gave other masks ({diff})")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return False, problems[0] + more + _raised(raised)
    if raised or not cases:
        return False, f"could not compare{_raised(raised)}"
    probe = cases[-1]
    try:
        other = s.pruned(dataclasses.replace(probe, seed=1), fresh=True)
        varies = _same(_signature(s.pruned(probe)), _signature(other))
        seed_note = f"seed 1 gives {'other' if varies else 'the same'} masks ({probe})"
    except CallFailed as exc:
        seed_note = f"seed 1 raised ({probe}): {exc}"
    repeated = f"{_n(len(cases), 'case')} on {_n(len(s.light), 'light arch')} repeated"
    return True, f"{repeated}: identical masks; {seed_note}"


def check_io(s: Session) -> tuple[bool, str]:
    if s.io:
        more = f" (and {len(s.io) - 1} more)" if len(s.io) > 1 else ""
        return False, f"{s.io[0]}{more}; pruners get everything in PruneContext and must do no I/O"
    return True, f"no file, process or socket use in {s.calls} pruner calls"


def check_runs(s: Session) -> tuple[bool, str]:
    if s.errors:
        listed = "; ".join(s.errors.values())
        return False, f"{len(s.errors)} of {len(s.archs)} archs raised: {listed}"
    heavy = [a for a in s.archs if s.heavy[a]]
    note = f" ({', '.join(heavy)} at 1-D only)" if heavy else ""
    return (
        True,
        f"ran on all {_n(len(s.archs), 'arch')}{note}, 1-D and 2-D inputs, {s.calls} calls{s.reduced_note()}",
    )


# --- the command


def resolve(target: str) -> tuple[str, type[Pruner], bool]:
    """(registry name, class, whether registered here) of ``NAME`` or ``MODULE:CLASS``."""
    if ":" not in target:
        return target, PRUNERS.get(target), False
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise PluginError(f"check-pruner {target!r}: expected a registered name or MODULE:CLASS")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise PluginError(f"check-pruner {target!r}: module {module_name!r} failed to import: "
                          f"{type(exc).__name__}: {first}") from None  # fmt: skip
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, Pruner) and v.__module__ == module_name
        )
        raise PluginError(
            f"check-pruner {target!r}: module {module_name!r} has no {class_name!r}; "
            f"pruner classes there: {', '.join(found) or 'none'}"
        )
    if not (isinstance(cls, type) and issubclass(cls, Pruner)):
        raise PluginError(f"check-pruner {target!r}: {class_name} is not a subclass of prunebench.Pruner")
    name = getattr(cls, "name", None)
    if not isinstance(name, str):
        raise PluginError(
            f"check-pruner {target!r}: {class_name} has no name (its registry key, a class attribute)"
        )
    if name in PRUNERS:
        owner = PRUNERS.get(name)
        if owner is cls:
            return name, cls, False
        raise PluginError(
            f"check-pruner {target!r}: pruner name {name!r} is taken by "
            f"{owner.__module__}.{owner.__qualname__}; choose another name"
        )
    try:
        register_pruner(cls)
    except ValueError as exc:
        raise PluginError(f"check-pruner {target!r}: cannot register it: {exc}") from None
    return name, cls, True


CHECKS: dict[str, Callable[[Session], tuple[bool, str]]] = {
    "declares": check_declares,
    "sparsity": check_sparsity,
    "zero": check_zero,
    "structure": check_structure,
    "determinism": check_determinism,
    "io": check_io,
    "runs": check_runs,
}


def run_checks(
    name: str, cls: type[Pruner], archs: list[str], echo: Callable[[str], None] = print
) -> list[Result]:
    """Every check of the pruner registered as ``name``, each line echoed as it finishes."""
    session = Session(name, cls, archs)
    results = []
    for check, fn in CHECKS.items():
        if check == "structure" and not session.structured:
            continue
        start = time.perf_counter()
        try:
            ok, detail = fn(session)
        except Exception as exc:  # a pruner can break the check's own code: that is a failure too
            ok, detail = False, f"the check raised {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        results.append(Result(check, ok, detail, time.perf_counter() - start))
        echo(results[-1].line())
    return results


def check_pruner(target: str, plugins: tuple[str, ...] = (), archs: list[str] | None = None) -> int:
    """``harness check-pruner``: print one PASS/FAIL line per check and a summary; 0 if all pass.

    ``archs`` (default: every registered arch) narrows the check, for tests. A pruner class
    given as ``MODULE:CLASS`` that is not registered yet is registered for the check only.
    """
    from pruners.plugins import load_plugins

    load_plugins(plugins)
    name, cls, registered_here = resolve(target)
    for arch in archs or ():
        ARCHS.get(arch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        warm_up()
        results = run_checks(name, cls, list(archs) if archs else ARCHS.names())
    finally:
        torch.set_num_threads(threads)
        if registered_here:
            PRUNERS._entries.pop(name, None)
    passed, seconds = sum(r.ok for r in results), time.perf_counter() - start
    print(f"check-pruner {name}: {passed} of {len(results)} checks passed in {seconds:.1f} s")
    return 0 if passed == len(results) else 1
