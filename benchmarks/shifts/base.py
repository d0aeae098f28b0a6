"""The shift registry: corruption types (severities 1-5) and OOD sets, with their parameters.

A ``Shift`` is registered under a snake_case name in ``SHIFTS``. It has a ``kind``:

- ``corruption``: ``apply`` maps clean test inputs to corrupted ones at a severity (or, for a
  family that ``regenerates``, builds the set from the dataset's own generator); its
  parameters are one row per severity in ``params``, read from ``severities.toml`` (one table
  per size class, e.g. ``tiny`` for the 8x8 digits and ``cifar`` for larger images), so every
  parameter is written down in one place;
- ``ood``: ``apply`` builds a set of inputs from outside the training distribution; its
  ``proximity`` is ``near`` (same low-level statistics, new semantics) or ``far``.

A corruption's ``domain`` is its family: ``image`` (CIFAR-10-C), ``grayscale`` (MNIST-C),
``sequence`` (generic sequence shifts) or ``mnist1d`` (the MNIST-1D generator's knobs). Which
families and OOD sets a dataset is evaluated on, the dataset declares (``ShiftProfile``).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)
KINDS = ("corruption", "ood")
SEVERITY_TABLES = Path(__file__).with_name("severities.toml")


@dataclass(frozen=True)
class Shift:
    name: str
    kind: str
    domain: str
    apply: Callable[..., Any]
    params: dict[str, tuple] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    proximity: str = ""  # ood only: near | far
    version: str = "1"
    regenerates: bool = False  # corruption only: apply(data, n, param, seed) -> (x, y)

    def param(self, severity: int, size_class: str = "any") -> Any:
        table = self.params.get(size_class, self.params.get("any"))
        if table is None:
            raise KeyError(f"shift {self.name!r} has no parameters for size class {size_class!r}")
        return table[severity - 1]


SHIFTS: Registry = Registry("shift")


class ShiftUnavailable(RuntimeError):
    """An OOD set whose source data is not present (a real dataset missing from the data dir)."""


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@functools.cache
def severity_tables() -> dict[str, dict[str, dict]]:
    """``severities.toml`` as ``{family: {corruption: {"source": citation, "params": {size class:
    rows}}}}``, each row a tuple with one entry per severity; read once."""
    raw = tomllib.loads(SEVERITY_TABLES.read_text())
    sources = raw.pop("sources")
    out: dict[str, dict[str, dict]] = {}
    for family, types in raw.items():
        for name, entry in types.items():
            params = {k: _tuples(v) for k, v in entry.items() if k != "source"}
            for size_class, rows in params.items():
                if len(rows) != len(SEVERITIES):
                    raise ValueError(f"corruption {name!r} ({size_class}): {len(rows)} rows, need 5")
            out.setdefault(family, {})[name] = {"source": sources[entry["source"]], "params": params}
    return out


def register_family(family: str, functions: Iterable[Callable], regenerates: bool = False) -> None:
    """Register a family's corruption functions, each under its own name, with its rows of
    ``severities.toml``. A function is ``fn(x, c, rng) -> x`` on clean test inputs, or with
    ``regenerates`` ``fn(data, n, c, seed) -> (x, y)``; its docstring's first line describes it."""
    entries = severity_tables()[family]
    by_name = {fn.__name__: fn for fn in functions}
    if set(by_name) != set(entries):
        raise ValueError(f"family {family!r}: functions {sorted(by_name)}, severity tables {sorted(entries)}")
    for name, entry in entries.items():
        fn = by_name[name]
        shift = Shift(
            name,
            "corruption",
            family,
            fn,
            entry["params"],
            _summary(fn),
            entry["source"],
            regenerates=regenerates,
        )
        SHIFTS.register(name)(shift)


def register_ood(name: str, proximity: str, source: str = "", version: str = "1") -> Callable:
    """Decorator for ``fn(data, n, rng) -> x`` (normalised like the dataset's inputs); a dataset
    that is evaluated on it lists ``name`` in its ``ShiftProfile.ood``."""
    if proximity not in ("near", "far"):
        raise ValueError(f"ood set {name!r}: proximity must be near or far")

    def decorator(fn: Callable) -> Callable:
        shift = Shift(name, "ood", "", fn, {}, _summary(fn), source, proximity, version)
        SHIFTS.register(name)(shift)
        return fn

    return decorator


def _summary(fn: Callable) -> str:
    doc = (fn.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""
