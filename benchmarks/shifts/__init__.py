"""Distribution-shift sets: image corruptions (CIFAR-10-C, MNIST-C), MNIST-1D sequence shifts
and OOD sets, in one registry (``SHIFTS``), generated once per (dataset, shift, severity) and
cached. Tables of every type and its severity parameters: ``benchmarks/shifts/README.md``.
"""

from benchmarks.shifts import image, ood, sequence  # noqa: F401  (registration side effects)
from benchmarks.shifts.base import SEVERITIES, SHIFTS, Shift, ShiftUnavailable
from benchmarks.shifts.sets import (
    ShiftSet,
    applicable_shifts,
    build_shift_set,
    clear_memory,
    load_shift_set,
    shift_sets,
)

__all__ = [
    "SEVERITIES",
    "SHIFTS",
    "Shift",
    "ShiftSet",
    "ShiftUnavailable",
    "applicable_shifts",
    "build_shift_set",
    "clear_memory",
    "load_shift_set",
    "shift_sets",
]
