"""Tiny files in each official format, loaded through the real loaders (torchvision underneath)."""

import pickle
import struct

import numpy as np
import pytest
import scipy.io

from benchmarks.datasets import DATASETS, describe, embedded_names
from benchmarks.datasets import official as rd
from benchmarks.shifts import SHIFTS, applicable_shifts, build_shift_set

N_TRAIN, N_TEST = 100, 20


def _images(n, h, w, c, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _labels(n, k=10):
    return np.arange(n) % k


def write_cifar(root, hundred=False):
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    k = 100 if hundred else 10

    def batch(name, n, seed):
        x = _images(n, 32, 32, 3, seed)
        data = {"data": x.transpose(0, 3, 1, 2).reshape(n, 3072), key: _labels(n, k).tolist()}
        (folder / name).write_bytes(pickle.dumps(data))
        return x

    if hundred:
        batch("train", N_TRAIN * 2, 1)
        test = batch("test", N_TEST, 2)
        meta = {"fine_label_names": [f"c{i}" for i in range(100)]}
        (folder / "meta").write_bytes(pickle.dumps(meta))
    else:
        for i in range(1, 6):
            batch(f"data_batch_{i}", N_TRAIN // 5, i)
        test = batch("test_batch", N_TEST, 9)
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(rd.CIFAR10_CLASSES)}))
    return test


def write_svhn(root):
    (root / "svhn").mkdir(parents=True)
    out = {}
    for split, n, seed in (("train", N_TRAIN, 3), ("test", N_TEST, 4)):
        x = _images(n, 32, 32, 3, seed)
        y = _labels(n)
        mat = {"X": x.transpose(1, 2, 3, 0), "y": np.where(y == 0, 10, y)[:, None].astype(np.uint8)}
        scipy.io.savemat(root / "svhn" / f"{split}_32x32.mat", mat)
        out[split] = (x, y)
    return out


def write_idx(root, folder):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", N_TRAIN, 5), ("t10k", N_TEST, 6)):
        x = _images(n, 28, 28, 1, seed)[..., 0]
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes()
        )
        labels = _labels(n).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_DATA", str(tmp_path))
    monkeypatch.delenv("PRUNEBENCH_DOWNLOAD", raising=False)
    return tmp_path


def _check(d, n_classes, shape):
    assert d.num_classes == n_classes and d.input_shape == shape
    assert len(d.y_train) + len(d.y_val) > len(d.y_val) > 0 and len(d.y_test) == N_TEST
    assert d.x_train.dtype.is_floating_point and d.x_train.shape[1:] == shape
    channel_means = d.x_train.mean((0, 2, 3))
    assert channel_means.abs().max() < 1e-4  # standardised with the training split's statistics
    assert len(d.pixel_stats[0]) == shape[0] and d.shifts is DATASETS.get(d.name).shifts


def test_cifar10_cifar100_svhn_mnist_fashion_load_from_official_formats(data_root):
    test = write_cifar(data_root)
    write_cifar(data_root, hundred=True)
    svhn = write_svhn(data_root)
    write_idx(data_root, "MNIST")
    write_idx(data_root, "FashionMNIST")
    c10 = DATASETS.get("cifar10").load()  # the registered loader reads the data dir
    _check(c10, 10, (3, 32, 32))
    mean, std = (np.asarray(v)[:, None, None] for v in c10.pixel_stats)
    np.testing.assert_allclose(
        c10.x_test[3].numpy() * std + mean, test[3].transpose(2, 0, 1) / 255, atol=1e-5
    )
    assert c10.class_names[0] == "airplane"
    _check(DATASETS.get("cifar100").load(), 100, (3, 32, 32))
    s = DATASETS.get("svhn").load()
    _check(s, 10, (3, 32, 32))
    assert s.y_test.tolist() == svhn["test"][1].tolist()  # label 10 means digit 0
    _check(DATASETS.get("mnist").load(), 10, (1, 28, 28))
    _check(DATASETS.get("fashion_mnist").load(), 10, (1, 28, 28))

    far_svhn = build_shift_set(c10, SHIFTS.get("far_svhn"), 0, 8)[0]
    assert far_svhn.shape == (8, 3, 32, 32) and np.isfinite(far_svhn).all()


def test_missing_files_raise_one_line_naming_them(data_root):
    with pytest.raises(rd.DataMissing) as err:
        rd.build_splits("cifar10", "", data_root)
    message = str(err.value)
    assert "\n" not in message and "data_batch_1" in message and "test_batch" in message
    assert "PRUNEBENCH_DATA" in message
    with pytest.raises(rd.DataMissing, match=r"train_32x32\.mat"):
        rd.build_splits("svhn", "", data_root)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_is_described_and_needs_files_only_if_real(name):
    entry = DATASETS.get(name)
    assert describe(name) and entry.name == name and sum(entry.splits) > 0
    assert entry.embedded == (name not in rd.EXPECTED)  # real datasets read their official files
    assert (name in embedded_names()) == entry.embedded
    if not entry.embedded:  # sized for the estimate without the files
        assert entry.meta["train"] == entry.splits[0] and entry.meta["eval"] > sum(entry.splits)


def test_official_cifar10c_files_replace_generated_corruptions(data_root):
    write_cifar(data_root)
    c10 = DATASETS.get("cifar10").load()  # the registered loader reads the data dir
    shift = SHIFTS.get("gaussian_noise")
    generated, _ = build_shift_set(c10, shift, 2, N_TEST)
    folder = data_root / "CIFAR-10-C"
    folder.mkdir()
    official = _images(5 * N_TEST, 32, 32, 3, 42)
    np.save(folder / "gaussian_noise.npy", official)
    np.save(folder / "labels.npy", np.tile(c10.y_test.numpy(), 5))
    x, y = build_shift_set(c10, shift, 2, N_TEST)
    mean, std = (np.asarray(v)[None, :, None, None] for v in c10.pixel_stats)
    expected = (official[N_TEST : 2 * N_TEST].transpose(0, 3, 1, 2) / 255 - mean) / std
    np.testing.assert_allclose(x, expected, atol=1e-5)
    assert y.tolist() == c10.y_test.tolist() and not np.allclose(x, generated)


def test_generated_corruptions_work_on_cifar_shaped_data(data_root):
    write_cifar(data_root)
    c10 = DATASETS.get("cifar10").load()  # the registered loader reads the data dir
    for shift in applicable_shifts(c10, "corruption"):  # every image corruption
        x, _ = build_shift_set(c10, shift, 5, N_TEST)
        assert x.shape == (N_TEST, 3, 32, 32) and np.isfinite(x).all()
