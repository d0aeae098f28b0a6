"""Building blocks of the architectures (``benchmarks.archs`` registers the networks built from them).

A 1-D sequence ``(C, L)`` is convolved as a height-1 image with ``(1, k)`` kernels (oneDNN runs
channels-last 2-D convolutions faster on CPU); ``as_image`` adds the height axis. Each network
declares its structured-pruning ``unit_groups`` (``core.units``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from core.units import UnitGroup


def _line_conv(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True
) -> nn.Conv2d:
    """A 1-D convolution over a height-1 image: ``(1, k)`` kernel, stride and padding on width."""
    return nn.Conv2d(c_in, c_out, (1, kernel), stride=(1, stride), padding=(0, padding), bias=bias)


def _line_max_pool(kernel: int) -> nn.MaxPool2d:
    return nn.MaxPool2d((1, kernel))


def _layers(input_shape: tuple[int, ...]) -> tuple[Callable, type, type]:
    """Conv, BatchNorm and adaptive average pool classes for the input's spatial rank
    (sequences as height-1 images, see ``as_image``)."""
    rank = len(input_shape) - 1
    if rank == 1:
        return _line_conv, nn.BatchNorm2d, nn.AdaptiveAvgPool2d
    if rank == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d
    raise ValueError(f"input_shape {input_shape} must be (C, L) or (C, H, W)")


def _max_pool(input_shape: tuple[int, ...]) -> Callable[[int], nn.Module]:
    return _line_max_pool if len(input_shape) == 2 else nn.MaxPool2d


def as_image(x: torch.Tensor) -> torch.Tensor:
    """A batch of sequences ``(N, C, L)`` as height-1 images ``(N, C, 1, L)``; images as they are."""
    return x.unsqueeze(-2) if x.dim() == 3 else x


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, num_classes))
        self.net = nn.Sequential(*layers)
        self.depth = depth

    def unit_groups(self) -> list[UnitGroup]:
        # net = Flatten, (Linear, ReLU) * depth, Linear: hidden Linear i sits at index 1 + 2i
        return [UnitGroup(f"net.{1 + 2 * i}", None, f"net.{3 + 2 * i}") for i in range(self.depth)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SimpleCNN(nn.Module):
    """conv(k5, s1) then (depth-1) conv(k3, s2), each followed by BN and ReLU; flatten; then a
    hidden ReLU layer of ``hidden`` units when ``hidden > 0`` (the fully connected head of the
    Conv-2/4/6 networks of Frankle & Carbin 2019); linear classifier."""

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int, hidden: int = 0
    ):
        super().__init__()
        conv, bn, _ = _layers(input_shape)
        layers: list[nn.Module] = []
        channels = input_shape[0]
        for i in range(depth):
            kernel, stride = (5, 1) if i == 0 else (3, 2)
            layers += [
                conv(channels, width, kernel, stride=stride, padding=kernel // 2, bias=False),
                bn(width),
                nn.ReLU(),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(as_image(torch.zeros(1, *input_shape))).numel()
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
        else:
            head.append(nn.Linear(flat, num_classes))
        self.classifier = nn.Sequential(*head)
        self.depth, self.positions, self.hidden = depth, flat // width, hidden

    def unit_groups(self) -> list[UnitGroup]:
        # features = (conv, BN, ReLU) * depth: conv i at 3i, its BN at 3i + 1;
        # classifier = Flatten, Linear(flat, hidden), ReLU, Linear(hidden, classes) with a head
        groups = [
            UnitGroup(f"features.{3 * i}", f"features.{3 * i + 1}", f"features.{3 * i + 3}")
            for i in range(self.depth - 1)
        ]
        last = 3 * (self.depth - 1)
        groups.append(UnitGroup(f"features.{last}", f"features.{last + 1}", "classifier.1", self.positions))
        if self.hidden:
            groups.append(UnitGroup("classifier.1", None, "classifier.3"))
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(as_image(x)))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) as modern code writes it: conv 6@5x5 (padding 2) -> ReLU ->
    max-pool 2 -> conv 16@5x5 -> ReLU -> max-pool 2 -> flatten -> 120 -> ReLU -> 84 -> ReLU ->
    classes (61,470 weights on 28x28 MNIST). Inputs smaller than 28x28 get padding 2 on the
    second convolution too, so the network is defined for any input of at least 4 positions."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        conv, _, _ = _layers(input_shape)
        pool = _max_pool(input_shape)
        second_padding = 0 if min(input_shape[1:]) // 2 >= 5 else 2
        self.features = nn.Sequential(
            conv(input_shape[0], 6, 5, padding=2),
            nn.ReLU(),
            pool(2),
            conv(6, 16, 5, padding=second_padding),
            nn.ReLU(),
            pool(2),
        )
        with torch.no_grad():
            flat = self.features(as_image(torch.zeros(1, *input_shape))).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )
        self.positions = flat // 16

    def unit_groups(self) -> list[UnitGroup]:
        # features: conv 0, ReLU, pool, conv 3, ReLU, pool; classifier: Flatten, Linear 1, ReLU,
        # Linear 3, ReLU, Linear 5 (no BatchNorm)
        return [
            UnitGroup("features.0", None, "features.3"),
            UnitGroup("features.3", None, "classifier.1", self.positions),
            UnitGroup("classifier.1", None, "classifier.3"),
            UnitGroup("classifier.3", None, "classifier.5"),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(as_image(x)))


class BasicBlock(nn.Module):
    def __init__(self, conv: type, bn: type, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(c_out)
        self.conv2 = conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = bn(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), bn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class StagedResNet(nn.Module):
    """Stem, stages of basic blocks (first block of a later stage strides by 2), pool, linear."""

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...], blocks: int
    ) -> None:
        super().__init__()
        conv, bn, pool = _layers(input_shape)
        self.stem = nn.Sequential(
            conv(input_shape[0], widths[0], 3, padding=1, bias=False), bn(widths[0]), nn.ReLU()
        )
        layers, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BasicBlock(conv, bn, channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.Sequential(pool(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)

    def unit_groups(self) -> list[UnitGroup]:
        return [
            UnitGroup(f"blocks.{i}.conv1", f"blocks.{i}.bn1", f"blocks.{i}.conv2")
            for i in range(len(self.blocks))
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(as_image(x)))))
