"""Where real data files live, and the official CIFAR-10-C / CIFAR-100-C arrays.

The data dir is ``$PRUNEBENCH_DATA`` (default ``~/.cache/prunebench/data``); its layout is in
``benchmarks.datasets.official``. Official corruption files (``CIFAR-10-C/<corruption>.npy`` and
``labels.npy``), when present, replace the generated corruptions of the same name
(``benchmarks.shifts.sets``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

OFFICIAL_C = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


def data_dir() -> Path:
    return Path(os.environ.get("PRUNEBENCH_DATA", "~/.cache/prunebench/data")).expanduser()


def official_corruption(data, shift_name: str, severity: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(uint8 images (10000, 32, 32, 3), labels) of one official corruption x severity, or None
    when the file is absent. Each official file stacks severities 1-5 of the 10,000 test images."""
    folder = OFFICIAL_C.get(data.name)
    if folder is None:
        return None
    path, labels = data_dir() / folder / f"{shift_name}.npy", data_dir() / folder / "labels.npy"
    if not (path.exists() and labels.exists()):
        return None
    images = np.load(path, mmap_mode="r")
    per = len(images) // 5
    y = np.load(labels)[(severity - 1) * per : severity * per].astype(np.int64)
    return np.asarray(images[(severity - 1) * per : severity * per]), y
