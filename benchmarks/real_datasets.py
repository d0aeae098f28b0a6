"""Real datasets for the GPU matrix, read through torchvision from a data dir.

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
(``DatasetSplits.pixel_stats``). Registering the names imports nothing heavy: torchvision
is imported when a dataset is loaded. None of these is in an embedded preset.

OOD pairs (``kind='ood'`` rows, when both datasets are present): CIFAR-10 vs SVHN (far) and
CIFAR-100 (near); CIFAR-100 vs SVHN (far) and CIFAR-10 (near); SVHN vs CIFAR-10 (far);
MNIST vs Fashion-MNIST (far) and back. With official CIFAR-10-C / CIFAR-100-C files present,
their images replace the generated corruptions of the same name.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from benchmarks.files import data_dir
from benchmarks.shifts.base import ShiftUnavailable, register_ood
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


def cifar10() -> DatasetSplits:
    """CIFAR-10 (Krizhevsky 2009), 45000/5000/10000 32x32 colour images, 10 classes; needs files."""
    return build_splits("cifar10", cifar10.__doc__)


def cifar100() -> DatasetSplits:
    """CIFAR-100 (Krizhevsky 2009), 45000/5000/10000 32x32 colour images, 100 classes; needs files."""
    return build_splits("cifar100", cifar100.__doc__)


def svhn() -> DatasetSplits:
    """SVHN cropped digits (Netzer et al. 2011), 68257/5000/26032 32x32 colour images; needs files."""
    return build_splits("svhn", svhn.__doc__)


def mnist() -> DatasetSplits:
    """MNIST (LeCun et al. 1998), 55000/5000/10000 28x28 grey digits, 10 classes; needs files."""
    return build_splits("mnist", mnist.__doc__)


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


def _register_pair(name: str, source: str, targets: tuple[str, ...], proximity: str) -> None:
    def build(data, n, rng):
        return other_test_pixels(data, source, n, rng)

    build.__doc__ = f"Test images of {source} (another dataset, same image format)."
    register_ood(name, targets, proximity, f"{source} test split")(build)


_register_pair("far_svhn", "svhn", ("cifar10", "cifar100"), "far")
_register_pair("near_cifar100", "cifar100", ("cifar10",), "near")
_register_pair("near_cifar10", "cifar10", ("cifar100",), "near")
_register_pair("far_cifar10", "cifar10", ("svhn",), "far")
_register_pair("far_fashion_mnist", "fashion_mnist", ("mnist",), "far")
_register_pair("far_mnist", "mnist", ("fashion_mnist",), "far")


def real_sizes() -> dict[str, dict]:
    """What the GPU-hour estimate needs without the files: input shape, classes, training
    examples and examples evaluated per phase (train + test + the generated shift sets:
    19 corruption types x 5 severities and the OOD pairs, ``DEFAULT_SET_SIZE`` each)."""
    from benchmarks.shifts.sets import DEFAULT_SET_SIZE

    sizes = {  # name: (input shape, classes, official train, official test, OOD sets)
        "cifar10": ((3, 32, 32), 10, 50_000, 10_000, 2),
        "cifar100": ((3, 32, 32), 100, 50_000, 10_000, 2),
        "svhn": ((3, 32, 32), 10, 73_257, 26_032, 1),
        "mnist": ((1, 28, 28), 10, 60_000, 10_000, 1),
        "fashion_mnist": ((1, 28, 28), 10, 60_000, 10_000, 1),
    }
    out = {}
    for name, (shape, classes, n_train, n_test, ood) in sizes.items():
        train = n_train - min(VAL_SIZE, n_train // 10)
        corruption_sets = 19 * 5 if shape[0] == 3 else 7 * 5
        out[name] = {
            "input_shape": shape,
            "classes": classes,
            "train": train,
            "eval": train + n_test + (corruption_sets + ood) * DEFAULT_SET_SIZE,
        }
    return out


# Registered by ``benchmarks.datasets`` (this module imports no dataset registry).
REAL_DATASETS = {
    "cifar10": cifar10,
    "cifar100": cifar100,
    "svhn": svhn,
    "mnist": mnist,
    "fashion_mnist": fashion_mnist,
}
