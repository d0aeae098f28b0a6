"""``harness check-pruner NAME|MODULE:CLASS``: the pruner contract (``benchmarks.contract``) for one
pruner, one printed line per check; the command's glue only: resolve the target, register a
class given as ``MODULE:CLASS`` for the check, pin one torch thread, print the summary.
"""

from __future__ import annotations

import importlib
import time

import torch

from benchmarks.archs import ARCHS
from benchmarks.contract import guarded, is_heavy, run_checks, warm_up
from pruners.base import PRUNERS, Pruner, register_pruner
from pruners.plugins import PluginError

__all__ = ["check_pruner", "guarded", "is_heavy", "resolve"]


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
