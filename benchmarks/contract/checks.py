"""The checks of the pruner contract, one function per check (``CHECKS``), and ``run_checks``."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.contract.session import (
    SHAPES,
    STRUCTURED_SPARSITIES,
    TRAIN_SPARSITY,
    TRAIN_STEPS,
    UNSTRUCTURED_SPARSITIES,
    CallFailed,
    Case,
    Result,
    Session,
    all_masks,
    make,
    random_data,
    train_briefly,
)
from core.spec import TrainConfig
from core.units import unit_groups
from pruners.base import KINDS, TIMINGS, Pruner, make_pruner_config
from pruners.contract import structured_deviation, unstructured_deviation
from pruners.masks import effective_weight, prunable_modules
from pruners.structured import alive_units


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
    if not s.light:  # heavy archs only (a narrowed check): their own case, repeated
        cases = [Case(a, "1d", levels[-1]) for a in s.archs]
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
    archs = _n(len(s.light), "light arch") if s.light else _n(len(s.archs), "heavy arch")
    repeated = f"{_n(len(cases), 'case')} on {archs} repeated"
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
