"""Pruners from outside the repository: entry points, ``--plugin MODULE``, ``plugins = [...]``.

A plugin is an importable module that registers pruners with ``prunebench.register_pruner``.
It is found three ways: the entry-point group ``prunebench.pruners`` of any installed
distribution (``[project.entry-points."prunebench.pruners"] name = "mypkg.pruners"``), the
CLI's ``--plugin MODULE`` and a preset's ``plugins = ["MODULE"]``. The harness imports the
same list in its own process, in every local worker and in every Slurm task
(``load_plugins``), so a cell runs the same code wherever it runs.

Each registered class records the distribution that provides it (``Pruner.plugin``): the
installed distribution that owns its top-level module, with that distribution's version; a
module imported from a path that no distribution owns is recorded as ``(module, "src-<hash>")``,
the hash of its source (every ``.py`` file of its top-level package, or its one file), so
editing it changes the cells' ids. Built-in pruners have none.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata as md
import inspect
import sys
from pathlib import Path

ENTRY_POINT_GROUP = "prunebench.pruners"
BUILTIN_PACKAGE = "pruners"


class PluginError(Exception):
    """A plugin that cannot be used; the message names it."""


def registering_distribution(cls: type) -> tuple[str, str] | None:
    """(distribution name, version) of the code that defines ``cls``; None for built-ins."""
    module = cls.__module__
    top = module.split(".")[0]
    if top == BUILTIN_PACKAGE:
        return None
    names = _distributions().get(top, [])
    if names:
        name = names[0]
        return name, md.version(name)
    return top, "src-" + source_hash(top, module)


def source_hash(top: str, module: str) -> str:
    """12 hex digits of the source of package ``top`` (every ``.py`` file under it, by relative
    path), or of module ``module``'s own file; the same in every process that imports it."""
    digest = hashlib.sha256()
    package = sys.modules.get(top)
    roots = [Path(d) for d in getattr(package, "__path__", [])]
    if roots:
        for root in roots:
            for path in sorted(root.rglob("*.py")):
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    else:
        try:
            digest.update(inspect.getsource(sys.modules[module]).encode())
        except (OSError, TypeError, KeyError):
            digest.update(module.encode())
    return digest.hexdigest()[:12]


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def entry_point_modules() -> list[str]:
    """The modules named by installed distributions in the ``prunebench.pruners`` group."""
    return sorted({ep.value.split(":")[0] for ep in md.entry_points(group=ENTRY_POINT_GROUP)})


_LOADED: set[str] = set()


def load_plugins(modules: list[str] | tuple[str, ...] = (), entry_points: bool = True) -> list[str]:
    """Import the pruner registry, every entry-point plugin and ``modules``; return the list imported.

    Importing twice is a no-op. A module that fails to import, or registers a pruner name
    that exists, raises ``PluginError`` naming it.
    """
    import pruners  # noqa: F401  (the built-in pruners register first)

    wanted = list(dict.fromkeys([*(entry_point_modules() if entry_points else []), *modules]))
    for module in wanted:
        if module in _LOADED or module in sys.modules:
            _LOADED.add(module)
            continue
        try:
            importlib.import_module(module)
        except (Exception, SystemExit) as exc:  # a plugin that calls sys.exit() is a failed import too
            raise PluginError(import_failure(module, exc)) from None
        _LOADED.add(module)
    return wanted


def import_failure(module: str, exc: BaseException) -> str:
    """One line naming the plugin and what went wrong."""
    first = (str(exc).splitlines() or [""])[0]
    if isinstance(exc, ValueError) and "registered twice" in first:  # core.registry's duplicate-name error
        return f"plugin {module!r}: {first}: prunebench or another plugin has that name; choose another name"
    if isinstance(exc, ModuleNotFoundError) and (exc.name == module or module.startswith(f"{exc.name}.")):
        return f"plugin {module!r} not found: it is neither installed nor on PYTHONPATH"
    return f"plugin {module!r} failed to import: {type(exc).__name__}: {first}"
