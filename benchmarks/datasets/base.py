"""The dataset registry: what one dataset module declares (``Dataset``) and its decorator.

A dataset module (``benchmarks/datasets/<name>.py``) registers a loader with
``@register_dataset``, declaring beside it the split sizes, whether it needs files, and its
``ShiftProfile``: the corruption families and severity table that apply, its OOD sets (which
the module usually defines itself, ``register_ood``) and the examples per set. Everything
else reads these declarations: loading (``load_dataset``), the shift sets
(``benchmarks.shifts.sets``, through ``DatasetSplits.shifts``), the set sizes that enter
every cell id (``benchmarks.matrix.resolved_eval``), the estimate and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from benchmarks.shifts.profile import ShiftProfile
from benchmarks.splits import DatasetSplits
from core.registry import Registry

DIGIT_NAMES = tuple(str(d) for d in range(10))  # class names of the digit datasets


@dataclass(frozen=True)
class Dataset:
    name: str
    loader: Callable[[], DatasetSplits]  # builds the splits; its docstring's first line describes them
    splits: tuple[int, int, int]  # train, validation and test examples
    shifts: ShiftProfile
    embedded: bool = True  # generated offline or shipped in a package: needs no files
    # datasets that need files: what the GPU-hour estimate needs without them (``harness.estimate``)
    meta: dict | None = None

    @property
    def description(self) -> str:
        return (self.loader.__doc__ or "").strip().splitlines()[0]

    def load(self) -> DatasetSplits:
        """Build the splits (every call: ``load_dataset`` caches) with the declared profile attached."""
        return replace(self.loader(), shifts=self.shifts)


DATASETS: Registry[Dataset] = Registry("dataset")


def register_dataset(
    name: str,
    splits: tuple[int, int, int],
    shifts: ShiftProfile,
    embedded: bool = True,
    meta: dict | None = None,
) -> Callable:
    """Decorator for a loader ``fn() -> DatasetSplits``: registers ``Dataset(name, fn, ...)``."""

    def decorator(fn: Callable[[], DatasetSplits]) -> Callable[[], DatasetSplits]:
        DATASETS.register(name)(Dataset(name, fn, splits, shifts, embedded, meta))
        return fn

    return decorator


def image_splits(
    name: str,
    pixels: np.ndarray,
    labels: np.ndarray,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray],
    class_names: tuple[str, ...],
    description: str,
) -> DatasetSplits:
    """Single-channel images ``pixels`` (N, 1, H, W) in [0, 1] split at the index arrays ``parts``
    (train, validation, test; each taken in sorted order) and standardised with the training
    split's mean and standard deviation (``pixel_stats``, through which shifts corrupt pixels)."""
    mean, std = pixels[parts[0]].mean(), pixels[parts[0]].std()
    x = (pixels - mean) / std
    tensors = [t for i in map(np.sort, parts) for t in (torch.from_numpy(x[i]), torch.from_numpy(labels[i]))]
    return DatasetSplits(name, *tensors, class_names, description, ((float(mean),), (float(std),)))
