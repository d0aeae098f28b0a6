import numpy as np
import pytest
import torch

from benchmarks.archs import ARCHS, build_arch
from benchmarks.datasets import embedded_names, generate_mnist1d, load_dataset, mnist1d_arrays


@pytest.mark.parametrize("name", embedded_names())
def test_dataset_splits_shapes_and_labels(name):
    d = load_dataset(name)
    assert d.num_classes == 10 and len(d.class_names) == 10
    for split in ("train", "val", "test"):
        x, y = d.split(split)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[0] == y.shape[0] > 0 and tuple(x.shape[1:]) == d.input_shape
        assert set(y.unique().tolist()) == set(range(10))


def test_mnist1d_keeps_the_original_split_sizes():
    d = load_dataset("mnist1d")
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (4000, 1000, 1000)
    assert d.input_shape == (1, 40)


def test_mnist1d_generation_is_deterministic_and_hard_variant_differs():
    x1, y1 = generate_mnist1d()
    x2, y2 = generate_mnist1d()
    assert (x1 == x2).all() and (y1 == y2).all()
    assert not torch.equal(load_dataset("mnist1d").x_train, load_dataset("mnist1d_hard").x_train)


def test_generated_mnist1d_is_cached_on_disk_bit_for_bit(tmp_path, monkeypatch):
    import benchmarks.datasets as datasets_module

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path))
    x_gen, y_gen = generate_mnist1d(shear_scale=1.0)
    x1, y1 = mnist1d_arrays(shear_scale=1.0)  # generated, then written
    files = list((tmp_path / "datasets").glob("mnist1d-*.npz"))
    assert len(files) == 1 and not list((tmp_path / "datasets").glob(".tmp-*"))

    def no_generation(**_):
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(datasets_module, "generate_mnist1d", no_generation)
    x2, y2 = mnist1d_arrays(shear_scale=1.0)  # read back
    for a, b in ((x_gen, x1), (x_gen, x2), (y_gen, y1), (y_gen, y2)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with pytest.raises(AssertionError, match="generated again"):
        mnist1d_arrays(shear_scale=0.9)  # other generator arguments: another entry


def test_a_damaged_dataset_cache_entry_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path))
    x_ref, _ = mnist1d_arrays(shear_scale=1.0)
    (entry,) = (tmp_path / "datasets").glob("mnist1d-*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])  # torn, as by a full disk
    x, _ = mnist1d_arrays(shear_scale=1.0)
    assert np.array_equal(x, x_ref)
    assert entry.stat().st_size > 1000  # rewritten whole


def test_an_empty_prunebench_cache_turns_the_dataset_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    mnist1d_arrays(shear_scale=1.0)
    assert not any(tmp_path.rglob("*.npz"))


def test_digits_split_is_stratified():
    d = load_dataset("digits")
    counts = torch.bincount(d.y_test, minlength=10)
    assert counts.max() - counts.min() <= 2


@pytest.mark.parametrize("arch", ARCHS.names())
@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8), (3, 16, 16)])
def test_every_arch_handles_1d_and_2d_inputs(arch, shape):
    model = build_arch(arch, shape, 7)
    out = model(torch.randn(5, *shape))
    assert out.shape == (5, 7)
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())
