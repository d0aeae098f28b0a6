"""CIFAR-scale architectures for the GPU matrix (the ``full`` preset).

- ``cifar_resnet_20``, ``cifar_resnet_56``: He et al., "Deep residual learning", CVPR 2016,
  section 4.2: a 3x3 stem of 16 channels, three stages of ``n = (depth - 2) / 6`` basic
  blocks with 16/32/64 channels (projection shortcuts where the shape changes, as in
  open_lth), global average pool, linear classifier.
- ``vgg_11_bn``, ``vgg_16_bn``: Simonyan & Zisserman, ICLR 2015, configurations A and D with
  BatchNorm after every conv, the CIFAR head of open_lth and Bartoldson et al. 2020 (global
  average pool, one linear layer). A max-pool is skipped when the feature map is already
  1 wide, so the same network also runs on the embedded 8x8 inputs.
- ``wrn_16_8``: Zagoruyko & Komodakis, "Wide residual networks", BMVC 2016: depth 16, widen
  factor 8 (128/256/512 channels), pre-activation blocks, no dropout.
- ``resnet_18``: the ImageNet ResNet-18 (He et al. 2016) with the usual CIFAR stem (3x3
  conv, stride 1, no max-pool), as used by Bartoldson et al. 2020: stages of 64/128/256/512
  channels, two basic blocks each.

All work on 1-D and 2-D inputs and declare their structured-pruning ``unit_groups``: the
inner conv of every residual block, every conv of a VGG.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.nets import StagedResNet, _layers, _max_pool, as_image
from core.units import UnitGroup

VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
}


class VGG(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int) -> None:
        super().__init__()
        conv, bn, pool = _layers(input_shape)
        max_pool = _max_pool(input_shape)
        layers: list[nn.Module] = []
        channels, size = input_shape[0], min(input_shape[1:])
        self.convs: list[int] = []
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                if size >= 2:
                    layers.append(max_pool(2))
                    size //= 2
                continue
            self.convs.append(len(layers))
            layers += [conv(channels, item, 3, padding=1, bias=False), bn(item), nn.ReLU()]
            channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(pool(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)

    def unit_groups(self) -> list[UnitGroup]:
        consumers = [f"features.{i}" for i in self.convs[1:]] + ["fc"]
        return [
            UnitGroup(f"features.{i}", f"features.{i + 1}", consumer)
            for i, consumer in zip(self.convs, consumers, strict=True)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(as_image(x))))


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-conv plus (projected) shortcut."""

    def __init__(self, conv: type, bn: type, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = bn(c_in)
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = bn(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = conv(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if not isinstance(self.shortcut, nn.Identity) else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class WideResNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int, widen: int) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth {depth} must be 6n + 4")
        conv, bn, pool = _layers(input_shape)
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = conv(input_shape[0], 16, 3, padding=1, bias=False)
        layers, channels = [], 16
        for stage, width in enumerate(widths):
            for b in range(n):
                layers.append(WideBlock(conv, bn, channels, width, 2 if stage > 0 and b == 0 else 1))
                channels = width
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Sequential(bn(channels), nn.ReLU(), pool(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)

    def unit_groups(self) -> list[UnitGroup]:
        return [
            UnitGroup(f"blocks.{i}.conv1", f"blocks.{i}.bn2", f"blocks.{i}.conv2")
            for i in range(len(self.blocks))
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.blocks(self.stem(as_image(x)))))


def cifar_resnet_20(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CIFAR ResNet-20 (He et al. 2016): 3 stages x 3 basic blocks, 16/32/64 channels, 0.27M params."""
    return StagedResNet(input_shape, num_classes, (16, 32, 64), 3)


def cifar_resnet_56(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CIFAR ResNet-56 (He et al. 2016): 3 stages x 9 basic blocks, 16/32/64 channels, 0.86M params."""
    return StagedResNet(input_shape, num_classes, (16, 32, 64), 9)


def vgg_11_bn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """VGG-11 with BatchNorm (Simonyan & Zisserman 2015), CIFAR head, 9.2M params."""
    return VGG(input_shape, num_classes, 11)


def vgg_16_bn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """VGG-16 with BatchNorm (Simonyan & Zisserman 2015), CIFAR head, 14.7M params."""
    return VGG(input_shape, num_classes, 16)


def wrn_16_8(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Wide ResNet-16-8 (Zagoruyko & Komodakis 2016), pre-activation, 11.0M params."""
    return WideResNet(input_shape, num_classes, 16, 8)


def resnet_18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet-18 (He et al. 2016) with a CIFAR stem, 64-512 channels, 11.2M params."""
    return StagedResNet(input_shape, num_classes, (64, 128, 256, 512), 2)


# Registered by ``benchmarks.archs`` (this module imports no registry).
CIFAR_ARCHS = {
    "cifar_resnet_20": cifar_resnet_20,
    "cifar_resnet_56": cifar_resnet_56,
    "vgg_11_bn": vgg_11_bn,
    "vgg_16_bn": vgg_16_bn,
    "wrn_16_8": wrn_16_8,
    "resnet_18": resnet_18,
}
