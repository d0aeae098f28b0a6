import pytest
import torch

from benchmarks.archs import ARCHS, build_arch
from benchmarks.datasets import embedded_names, load_dataset, mnist1d_arrays


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
    x1, y1 = mnist1d_arrays()
    x2, y2 = mnist1d_arrays()
    assert (x1 == x2).all() and (y1 == y2).all()
    assert not torch.equal(load_dataset("mnist1d").x_train, load_dataset("mnist1d_hard").x_train)


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
