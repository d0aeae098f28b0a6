"""Distribution-shift sets: image corruptions (CIFAR-10-C, MNIST-C), sequence shifts and OOD
sets, in one registry (``SHIFTS``), generated once per (dataset, shift, severity) and cached.

The corruption families live here (``cifar_c``, ``mnist_c``, ``sequence``; their severity
parameters in ``severities.toml``); a dataset's own shifts and OOD sets live in its module
(``benchmarks/datasets/<name>.py``), which declares the sets it is evaluated on
(``ShiftProfile``). Tables of every type and its parameters: ``benchmarks/shifts/README.md``.
"""

from benchmarks.shifts import cifar_c, mnist_c, sequence  # noqa: F401  (registration side effects)
from benchmarks.shifts.base import SEVERITIES, SHIFTS, Shift, ShiftUnavailable, register_family, register_ood
from benchmarks.shifts.profile import DEFAULT_SET_SIZE, NO_SHIFTS, ShiftProfile
from benchmarks.shifts.sets import (
    ShiftSet,
    applicable_shifts,
    build_shift_set,
    clear_memory,
    load_shift_set,
    shift_sets,
)

__all__ = [
    "DEFAULT_SET_SIZE",
    "NO_SHIFTS",
    "SEVERITIES",
    "SHIFTS",
    "Shift",
    "ShiftProfile",
    "ShiftSet",
    "ShiftUnavailable",
    "applicable_shifts",
    "build_shift_set",
    "clear_memory",
    "load_shift_set",
    "register_family",
    "register_ood",
    "shift_sets",
]
