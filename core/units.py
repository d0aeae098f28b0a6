"""The units of structured pruning, as an architecture declares them.

An architecture lists its prunable unit groups in a ``unit_groups()`` method; structured
pruners (``pruners.structured``) and the stability study read them through ``unit_groups``,
so neither needs to know the architectures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitGroup:
    """Prunable units of one layer: output ``i`` of ``producer`` is channel ``i`` of ``norm``
    and feeds inputs ``i*positions .. (i+1)*positions - 1`` of ``consumer``."""

    producer: str
    norm: str | None
    consumer: str
    positions: int = 1


def unit_groups(model) -> list[UnitGroup]:
    """The structured-pruning groups an architecture declares (empty if it declares none)."""
    method = getattr(model, "unit_groups", None)
    return method() if method is not None else []
