"""``--filter KEY=GLOB``: which cells of a plan a run keeps.

A filter that matches no cell of the plan, or filters that together match none, are an error
that names them (a typo must not read as "everything is stored").
"""

from __future__ import annotations

import fnmatch

from benchmarks.cells import kind_of
from benchmarks.matrix import PresetError

FILTER_KEYS = ("arch", "dataset", "pruner", "sparsity", "seed", "retrain", "control", "cell_type")


def _filter_field(cell, key: str):
    """A cell's value for ``--filter``, as its kind answers (``CellKind.filter_value``)."""
    return kind_of(cell).filter_value(cell, key)


def apply_filters(cells: list, filters: list[str]) -> list:
    """Keep cells whose fields match every ``KEY=GLOB`` (``pruner=*magnitude``, ``seed=0``).

    A filter that matches no cell of the plan, or filters that together match none, are an
    error that names them (a typo must not read as "everything is stored")."""
    parsed = []
    for f in filters:
        key, sep, pattern = f.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise PresetError(f"--filter {f!r}: expected KEY=GLOB with KEY one of: {', '.join(FILTER_KEYS)}")
        parsed.append((f, key, pattern))

    def matches(cell, key, pattern) -> bool:
        return fnmatch.fnmatchcase(str(_filter_field(cell, key)), pattern)

    for f, key, pattern in parsed:
        if cells and not any(matches(c, key, pattern) for c in cells):
            values = sorted({str(_filter_field(c, key)) for c in cells})
            shown = ", ".join(values[:12]) + (", ..." if len(values) > 12 else "")
            raise PresetError(f"--filter {f!r} matches no cell of the plan; {key} values: {shown}")
    kept = [c for c in cells if all(matches(c, k, p) for _, k, p in parsed)]
    if parsed and cells and not kept:
        raise PresetError(f"--filter {' '.join(f for f, _, _ in parsed)}: together they match no cell")
    return kept
