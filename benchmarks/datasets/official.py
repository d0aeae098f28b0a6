"""The official files of the real datasets (``benchmarks/datasets/real.py``), read through torchvision.

The data dir is ``$PRUNEBENCH_DATA`` (default ``~/.cache/prunebench/data``), holding the
official files in torchvision's layout::

    cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}     CIFAR-10 (python pickles)
    cifar-100-python/{train, test, meta}                                CIFAR-100
    svhn/{train_32x32.mat, test_32x32.mat}                              SVHN (cropped digits)
    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte              MNIST (IDX)
    FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte       Fashion-MNIST
    CIFAR-10-C/{<corruption>.npy, labels.npy}                           optional, official CIFAR-10-C
    CIFAR-100-C/{<corruption>.npy, labels.npy}                          optional, official CIFAR-100-C

Nothing is downloaded unless ``PRUNEBENCH_DOWNLOAD=1`` (then torchvision fetches what is
missing); a missing file raises ``DataMissing`` with one line naming the expected files.
Files are checked for presence, not for their MD5 sums, so the tests load tiny files
written in each official format through this same code.

Splits: the official test split is ``test``; ``val`` is a class-stratified 5,000 examples
of the official training split (seed 0), ``train`` the rest. Pixels are scaled to [0, 1]
and standardised per channel with the training split's mean and standard deviation
(``DatasetSplits.pixel_stats``). torchvision is imported when a dataset is loaded.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from benchmarks.files import data_dir
from benchmarks.splits import DatasetSplits

VAL_SIZE = 5000
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip


class DataMissing(FileNotFoundError):
    """A real dataset's files are not in the data dir; the message names them."""

    def __str__(self) -> str:
        return str(self.args[0])


def _download() -> bool:
    return os.environ.get("PRUNEBENCH_DOWNLOAD", "") == "1"


EXPECTED = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
    ),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"]),
    "svhn": ("svhn", ["train_32x32.mat", "test_32x32.mat"]),
    "mnist": (
        "MNIST/raw",
        [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")],
    ),
    "fashion_mnist": (
        "FashionMNIST/raw",
        [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")],
    ),
}


def check_files(name: str, root: Path | None = None) -> None:
    """Raise ``DataMissing`` naming the expected files when any is absent."""
    root = data_dir() if root is None else root
    folder, files = EXPECTED[name]
    missing = [f for f in files if not (root / folder / f).exists()]
    if missing:
        raise DataMissing(
            f"{name}: missing {', '.join(missing)} in {root / folder} (official files; set PRUNEBENCH_DATA "
            f"to the data dir, or PRUNEBENCH_DOWNLOAD=1 where the network allows)"
        )


def _torchvision_split(name: str, train: bool, root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """uint8 images (N, H, W, C) and int64 labels of one official split, via torchvision."""
    from torchvision import datasets as tv

    download = _download()
    if not download:
        check_files(name, root)

    def present(self) -> bool:  # presence instead of MD5 (tiny test files in the official format)
        folder = Path(self.root) / getattr(self, "base_folder", "")
        files = [f for f, _ in getattr(self, "train_list", []) + getattr(self, "test_list", [])]
        return (
            all((folder / f).exists() for f in files) if files else (Path(self.root) / self.filename).exists()
        )

    def load_meta(self) -> None:  # torchvision's, without the MD5 check
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as handle:
            meta = pickle.load(handle, encoding="latin1")
        self.classes = meta[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    if name in ("cifar10", "cifar100"):
        base = tv.CIFAR10 if name == "cifar10" else tv.CIFAR100
        overrides = {} if download else {"_check_integrity": present, "_load_meta": load_meta}
        cls = type(f"_{base.__name__}", (base,), overrides)
        ds = cls(str(root), train=train, download=download)
        return np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), tuple(ds.classes)
    if name == "svhn":
        cls = type("_SVHN", (tv.SVHN,), {} if download else {"_check_integrity": present})
        ds = cls(str(root / "svhn"), split="train" if train else "test", download=download)
        return (
            ds.data.transpose(0, 2, 3, 1),
            np.asarray(ds.labels, dtype=np.int64),
            tuple(str(d) for d in range(10)),
        )
    base = tv.MNIST if name == "mnist" else tv.FashionMNIST
    ds = base(str(root), train=train, download=download)
    classes = tuple(str(d) for d in range(10)) if name == "mnist" else FASHION_CLASSES
    return ds.data.numpy()[..., None], ds.targets.numpy().astype(np.int64), classes


def raw_split(
    name: str, train: bool, root: Path | str | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """One official split (memoised per data dir): uint8 images (N, H, W, C), labels, class names."""
    return _raw_split(name, train, str(data_dir() if root is None else Path(root).expanduser()))


@functools.cache
def _raw_split(name: str, train: bool, root: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    return _torchvision_split(name, train, Path(root))


def build_splits(name: str, description: str, root: Path | None = None) -> DatasetSplits:
    """Read the official files, split off validation, standardise per channel."""
    from sklearn.model_selection import train_test_split

    x_tr, y_tr, classes = raw_split(name, True, root)
    x_te, y_te, _ = raw_split(name, False, root)
    val = min(VAL_SIZE, len(y_tr) // 10)
    idx = np.arange(len(y_tr))
    counts = np.bincount(y_tr)
    stratify = y_tr if counts.min() >= 2 and val >= len(counts) else None
    train_idx, val_idx = train_test_split(idx, test_size=val, stratify=stratify, random_state=0)
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    pixels = x_tr[train_idx].astype(np.float64) / 255.0
    mean, std = pixels.mean((0, 1, 2)), pixels.std((0, 1, 2)) + 1e-12

    def tensor(x):
        return torch.from_numpy(
            ((x.astype(np.float32) / 255.0 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
        )

    return DatasetSplits(
        name,
        tensor(x_tr[train_idx]),
        torch.from_numpy(y_tr[train_idx]),
        tensor(x_tr[val_idx]),
        torch.from_numpy(y_tr[val_idx]),
        tensor(x_te),
        torch.from_numpy(y_te),
        tuple(str(c) for c in classes),
        description,
        (tuple(float(m) for m in mean), tuple(float(s) for s in std)),
    )
