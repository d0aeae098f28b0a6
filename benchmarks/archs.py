"""Architectures for 1-D sequences ``(C, L)`` and 2-D images ``(C, H, W)``.

Names carry their size (open_lth style): ``mlp_256x2`` is two hidden layers of 256 units,
``cnn_32x3`` three conv-BN-ReLU layers of 32 channels (``cnn_32x3_fc256`` the same with a
256-unit hidden layer before the classifier), ``resnet_16x3`` a residual CNN of
three stages (16, 32, 64 channels, one basic block each, He et al. 2016). Every factory
takes ``(input_shape, num_classes)`` and picks 1-D or 2-D layers from the input rank.

Layout: a sequence ``(C, L)`` is convolved as a height-1 image ``(C, 1, L)`` with ``(1, k)``
kernels (``as_image``; the same function as a 1-D convolution, weights ``(out, in, 1, k)``),
and ``build_arch`` puts every convolutional arch in channels-last memory format, on every
device. oneDNN's channels-last kernels are faster on CPU than its 1-D and channel-first
ones: a ``cnn_32x3_fc256`` training step on MNIST-1D takes about 3.5 ms instead of 4.4 ms,
``resnet_16x3`` 7.7 instead of 11.3 (one thread). Flattening keeps channel-major order, so
``positions`` below means the same in either layout.

Structure for structured pruning: every arch class lists its ``unit_groups()``, explicitly
(never inferred from module order at prune time). A group is one layer whose output units
(conv filters / hidden neurons) may be removed: the ``producer`` layer, the BatchNorm that
normalises its outputs (``norm``, or ``None``), and the ``consumer`` layer whose inputs
shrink with it (``positions`` consumer inputs per unit when a flatten sits in between).
The classifier's outputs are never a group. In ``resnet_16x3`` only the inner conv of each
block (``conv1``/``bn1``, consumed by ``conv2``) is a group: the block outputs are tied
across the residual additions, the usual restriction (Li et al. 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.cifar_archs import CIFAR_ARCHS
from benchmarks.nets import MLP, LeNet5, SimpleCNN, StagedResNet
from core.registry import Registry
from core.units import UnitGroup, unit_groups  # noqa: F401  (re-exported: each arch declares its unit groups)

ARCHS: Registry = Registry("architecture")


def build_arch(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The named arch; a convolutional one in channels-last layout (see the module docstring)."""
    model = ARCHS.get(name)(input_shape, num_classes)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


def describe(name: str) -> str:
    return (ARCHS.get(name).__doc__ or "").strip().splitlines()[0]


@ARCHS.register("mlp_256x2")
def mlp_256x2(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """MLP, two hidden ReLU layers of 256 units (MNIST-1D's MLP baseline, wider)."""
    return MLP(input_shape, num_classes, width=256, depth=2)


@ARCHS.register("mlp_512x2")
def mlp_512x2(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two hidden ReLU layers of 512 units (287k weights on MNIST-1D): the leaderboard's MLP, wide
    enough that magnitude pruning to 90% recovers after fine-tuning."""
    return MLP(input_shape, num_classes, width=512, depth=2)


@ARCHS.register("cnn_32x3")
def cnn_32x3(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CNN, three conv-BN-ReLU layers of 32 channels (k5 s1, k3 s2, k3 s2), linear head."""
    return SimpleCNN(input_shape, num_classes, width=32, depth=3)


@ARCHS.register("cnn_32x3_fc256")
def cnn_32x3_fc256(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CNN, the three conv layers of cnn_32x3, then a hidden ReLU layer of 256 units (Conv-4 style head)."""
    return SimpleCNN(input_shape, num_classes, width=32, depth=3, hidden=256)


@ARCHS.register("cnn_32x3_fc512")
def cnn_32x3_fc512(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """cnn_32x3 with a 512-unit hidden layer (the Conv-2/4/6 head of Frankle & Carbin 2019 at
    twice the width of cnn_32x3_fc256): the leaderboard's CNN."""
    return SimpleCNN(input_shape, num_classes, width=32, depth=3, hidden=512)


@ARCHS.register("cnn_64x3_fc512")
def cnn_64x3_fc512(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """cnn_32x3_fc512 at twice the width (64 channels): the generalization-stability study's CNN, wide
    enough that removing one filter is a small event (Bartoldson et al. 2020 prune 512-filter layers)."""
    return SimpleCNN(input_shape, num_classes, width=64, depth=3, hidden=512)


@ARCHS.register("lenet5")
def lenet5(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998), ReLU and max-pooling: conv 6@5x5, conv 16@5x5, 120, 84 (61k weights
    on 28x28 MNIST): the MNIST model of Good et al. 2022's intensification study."""
    return LeNet5(input_shape, num_classes)


@ARCHS.register("resnet_16x3")
def resnet_16x3(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Residual CNN, stem + three basic blocks of 16/32/64 channels, global average pool."""
    return StagedResNet(input_shape, num_classes, (16, 32, 64), blocks=1)


# The CIFAR-scale architectures of the GPU matrix (``benchmarks.cifar_archs``).
for _name, _build in CIFAR_ARCHS.items():
    ARCHS.register(_name)(_build)
