"""Real datasets for the GPU matrix, read from the official files (``benchmarks.datasets.official``).

CIFAR-10, CIFAR-100, SVHN, MNIST and Fashion-MNIST: ``val`` is 5,000 examples of the official
training split, ``test`` the official test split. None of these is in an embedded preset.

Shift sets (1,000 examples each): every image corruption at the ``cifar`` severity table, and
for the grey ones the MNIST-C corruptions too; with official CIFAR-10-C / CIFAR-100-C files
present, their images replace the generated corruptions of the same name. OOD pairs (``ood``
rows, when both datasets are present): CIFAR-10 vs SVHN (far) and CIFAR-100 (near); CIFAR-100
vs SVHN (far) and CIFAR-10 (near); SVHN vs CIFAR-10 (far); MNIST vs Fashion-MNIST (far) and back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from benchmarks.datasets.base import register_dataset
from benchmarks.datasets.official import DataMissing, build_splits, raw_split
from benchmarks.shifts import DEFAULT_SET_SIZE, ShiftProfile, ShiftUnavailable, register_ood
from benchmarks.splits import DatasetSplits

COLOUR = ShiftProfile(corruptions=("image",), tables=("cifar",))
GREY = ShiftProfile(corruptions=("image", "grayscale"), tables=("cifar_gray", "cifar"))


def real_dataset(
    name: str, shape: tuple[int, ...], classes: int, splits: tuple[int, int, int], shifts: ShiftProfile
) -> Callable:
    """``register_dataset`` for a dataset that needs files, with what the GPU-hour estimate needs
    without them: input shape, classes, training examples and examples evaluated per phase
    (train + test + the generated shift sets: 19 corruption types x 5 severities for colour
    images, 7 x 5 for grey ones, and the OOD sets, ``DEFAULT_SET_SIZE`` each)."""
    corruption_sets = 19 * 5 if shape[0] == 3 else 7 * 5
    evaluated = splits[0] + splits[2] + (corruption_sets + len(shifts.ood)) * DEFAULT_SET_SIZE
    meta = {"input_shape": shape, "classes": classes, "train": splits[0], "eval": evaluated}
    return register_dataset(name, splits, shifts, embedded=False, meta=meta)


@real_dataset(
    "cifar10", (3, 32, 32), 10, (45_000, 5_000, 10_000), replace(COLOUR, ood=("far_svhn", "near_cifar100"))
)
def cifar10() -> DatasetSplits:
    """CIFAR-10 (Krizhevsky 2009), 45000/5000/10000 32x32 colour images, 10 classes; needs files."""
    return build_splits("cifar10", cifar10.__doc__)


@real_dataset(
    "cifar100", (3, 32, 32), 100, (45_000, 5_000, 10_000), replace(COLOUR, ood=("far_svhn", "near_cifar10"))
)
def cifar100() -> DatasetSplits:
    """CIFAR-100 (Krizhevsky 2009), 45000/5000/10000 32x32 colour images, 100 classes; needs files."""
    return build_splits("cifar100", cifar100.__doc__)


@real_dataset("svhn", (3, 32, 32), 10, (68_257, 5_000, 26_032), replace(COLOUR, ood=("far_cifar10",)))
def svhn() -> DatasetSplits:
    """SVHN cropped digits (Netzer et al. 2011), 68257/5000/26032 32x32 colour images; needs files."""
    return build_splits("svhn", svhn.__doc__)


@real_dataset("mnist", (1, 28, 28), 10, (55_000, 5_000, 10_000), replace(GREY, ood=("far_fashion_mnist",)))
def mnist() -> DatasetSplits:
    """MNIST (LeCun et al. 1998), 55000/5000/10000 28x28 grey digits, 10 classes; needs files."""
    return build_splits("mnist", mnist.__doc__)


@real_dataset("fashion_mnist", (1, 28, 28), 10, (55_000, 5_000, 10_000), replace(GREY, ood=("far_mnist",)))
def fashion_mnist() -> DatasetSplits:
    """Fashion-MNIST (Xiao et al. 2017), 55000/5000/10000 28x28 grey images; needs files."""
    return build_splits("fashion_mnist", fashion_mnist.__doc__)


# -- OOD sets from another real dataset -----------------------------------------------------
def other_test_pixels(data: DatasetSplits, source: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` test images of ``source`` in [0, 1], (n, C, H, W), standardised like ``data``."""
    try:
        x, _, _ = raw_split(source, False)
    except DataMissing as exc:
        raise ShiftUnavailable(str(exc)) from None
    if x.shape[1:3] != tuple(data.input_shape[1:]) or x.shape[3] != data.input_shape[0]:
        raise ShiftUnavailable(
            f"{source} images {x.shape[1:]} do not match {data.name} inputs {data.input_shape}"
        )
    idx = np.sort(rng.permutation(len(x))[: min(n, len(x))])
    pixels = x[idx].astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    mean, std = (np.asarray(v)[None, :, None, None] for v in data.pixel_stats)
    return ((pixels - mean) / std).astype(np.float32)


def _register_pair(name: str, source: str, proximity: str) -> None:
    def build(data, n, rng):
        return other_test_pixels(data, source, n, rng)

    build.__doc__ = f"Test images of {source} (another dataset, same image format)."
    register_ood(name, proximity, f"{source} test split")(build)


_register_pair("far_svhn", "svhn", "far")
_register_pair("near_cifar100", "cifar100", "near")
_register_pair("near_cifar10", "cifar10", "near")
_register_pair("far_cifar10", "cifar10", "far")
_register_pair("far_fashion_mnist", "fashion_mnist", "far")
_register_pair("far_mnist", "mnist", "far")
