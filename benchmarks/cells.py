"""Every kind of cell (``benchmarks.cell_kind``), and the one place a spec's kind is looked up.

Importing this module registers the kinds: the pruning cell (``benchmarks.prune_cell``) and the
stability run (``benchmarks.stability``). A spec's kind follows from its type; a stored or
untrusted spec's from its ``cell_type`` field (absent: a pruning cell, whose spec JSON has none).
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks import prune_cell, stability  # noqa: F401  (registration side effects)
from benchmarks.cell_kind import CELL_KINDS, CellEnvironment, CellKind, CellOutput

DEFAULT_KIND = "prune"


def kind_of(spec: Any) -> CellKind:
    """The registered kind whose spec type ``spec`` is."""
    for name in CELL_KINDS:
        kind = CELL_KINDS.get(name)
        if type(spec) is kind.spec_type:
            return kind
    raise TypeError(f"{type(spec).__name__} is not the spec of a registered cell kind")


def kind_named(d: dict) -> CellKind:
    """The kind a spec's JSON object names (``cell_type``; a pruning cell when it names none)."""
    return CELL_KINDS.get(d.get("cell_type", DEFAULT_KIND))


def spec_from_dict(d: dict) -> Any:
    return kind_named(d).from_dict(d)


def spec_from_json(spec_json: str) -> Any:
    """A cell spec of any kind, from its canonical JSON."""
    return spec_from_dict(json.loads(spec_json))


def cell_id(spec: Any) -> str:
    return kind_of(spec).cell_id(spec)


def cell_epochs(spec: Any) -> float:
    """Training epoch-equivalents of one cell, its dense parent excluded (the longest-first order
    and the GPU-hour estimate read it)."""
    return kind_of(spec).epochs(spec)


__all__ = [
    "CELL_KINDS",
    "CellEnvironment",
    "CellKind",
    "CellOutput",
    "cell_epochs",
    "cell_id",
    "kind_named",
    "kind_of",
    "spec_from_dict",
    "spec_from_json",
]
