"""The shift registry: corruption types (severities 1-5) and OOD sets, with their parameters.

A ``Shift`` is registered under a snake_case name in ``SHIFTS``. It has a ``kind``:

- ``corruption``: ``apply`` maps clean test inputs to corrupted ones at a severity; its
  parameters are one row per severity in ``params`` (a table keyed by size class for
  images: ``tiny`` for images under 16 pixels a side such as the 8x8 digits, ``cifar``
  otherwise), so every parameter is written down in one place;
- ``ood``: ``apply`` builds a set of inputs from outside the training distribution; its
  ``proximity`` is ``near`` (same low-level statistics, new semantics) or ``far``.

``domain`` says which datasets a shift applies to: ``image`` (any image), ``grayscale``
(single-channel images), ``sequence`` (MNIST-1D sequences, generic), ``mnist1d`` (the
MNIST-1D generator's own knobs) or, for OOD sets, a tuple of dataset names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)
KINDS = ("corruption", "ood")


@dataclass(frozen=True)
class Shift:
    name: str
    kind: str
    domain: str | tuple[str, ...]
    apply: Callable[..., Any]
    params: dict[str, tuple] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    proximity: str = ""  # ood only: near | far
    version: str = "1"

    def param(self, severity: int, size_class: str = "any") -> Any:
        table = self.params.get(size_class, self.params.get("any"))
        if table is None:
            raise KeyError(f"shift {self.name!r} has no parameters for size class {size_class!r}")
        return table[severity - 1]


SHIFTS: Registry = Registry("shift")


class ShiftUnavailable(RuntimeError):
    """An OOD set whose source data is not present (a real dataset missing from the data dir)."""


def register_corruption(
    name: str, domain: str, params: dict[str, tuple] | tuple, source: str = "", version: str = "1"
) -> Callable:
    """Decorator for ``fn(x, param, rng) -> x``; ``params`` holds one entry per severity 1-5."""
    table = params if isinstance(params, dict) else {"any": params}
    for size_class, row in table.items():
        if len(row) != len(SEVERITIES):
            raise ValueError(f"corruption {name!r} ({size_class}): need 5 severities, got {len(row)}")

    def decorator(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip().splitlines()
        shift = Shift(name, "corruption", domain, fn, table, doc[0] if doc else "", source, "", version)
        SHIFTS.register(name)(shift)
        return fn

    return decorator


def register_ood(
    name: str, datasets: tuple[str, ...], proximity: str, source: str = "", version: str = "1"
) -> Callable:
    """Decorator for ``fn(data, n, rng) -> x`` (normalised like the dataset's inputs)."""
    if proximity not in ("near", "far"):
        raise ValueError(f"ood set {name!r}: proximity must be near or far")

    def decorator(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip().splitlines()
        shift = Shift(name, "ood", datasets, fn, {}, doc[0] if doc else "", source, proximity, version)
        SHIFTS.register(name)(shift)
        return fn

    return decorator
