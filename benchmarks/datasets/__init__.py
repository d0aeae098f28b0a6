"""Datasets: one module each under ``benchmarks/datasets/``, found and imported here.

Each module registers its loader in ``DATASETS`` with what the rest of the code reads
(``benchmarks.datasets.base.Dataset``): split sizes, whether it needs files, and the shift
sets it is evaluated on (``ShiftProfile``: corruption families, severity table, OOD sets,
set sizes). Adding an embedded dataset is one new module here plus its line in a preset.

Embedded datasets (generated offline or shipped in a package, held as in-memory tensors):
``mnist1d`` and ``mnist1d_hard`` (``mnist1d.py``), ``digits`` (``digits.py``) and ``mnist5k``
(``mnist5k.py``). Real datasets for the GPU matrix (``cifar10``, ``cifar100``, ``svhn``,
``mnist``, ``fashion_mnist``, ``real.py``) are read from the data dir (``PRUNEBENCH_DATA``);
they are in no embedded preset.

Every dataset is a ``DatasetSplits`` of float32 inputs ``(N, C, L)`` or ``(N, C, H, W)``
and int64 labels. Generation is deterministic; each dataset is built once per process, and
generated MNIST-1D arrays are also cached on disk (``benchmarks.array_cache``), so a fresh
worker process reads them instead of regenerating them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from benchmarks.datasets.base import DATASETS, DIGIT_NAMES, Dataset, register_dataset
from benchmarks.splits import DatasetSplits

__all__ = [
    "DATASETS",
    "DIGIT_NAMES",
    "Dataset",
    "DatasetSplits",
    "describe",
    "embedded_names",
    "load_dataset",
    "register_dataset",
]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")  # each dataset module registers itself


@functools.cache
def load_dataset(name: str) -> DatasetSplits:
    """Build (once per process) and return the named dataset."""
    return DATASETS.get(name).load()


def describe(name: str) -> str:
    return DATASETS.get(name).description


def embedded_names() -> list[str]:
    """Datasets that need no files (generated offline or shipped in a package)."""
    return [n for n in DATASETS.names() if DATASETS.get(n).embedded]
