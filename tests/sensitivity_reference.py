"""An independent reference for the empirical sensitivity of SiPP and PFP (Baykal, Liebenwein et
al. 2019; Liebenwein et al. 2020), written from the papers' definition with explicit loops, and a
tiny fixed CNN to compute it on. Nothing here calls prunebench's pruners or their helpers.

For a layer with weight ``W`` (``F x J``) and input patches ``a`` (``J x P``, non-negative), the
relative contribution of edge ``(f, j)`` at patch ``p`` is::

    g_fjp = W_fj a_jp / sum_{k: sign W_fk = sign W_fj} W_fk a_kp      (0 when |sum| <= eps_float32)

and an input with negative entries counts as two points, its positive and its negative part.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.units import UnitGroup

EPS32 = float(torch.finfo(torch.float32).eps)
LENGTH = 8  # input (2, 1, LENGTH)


class TinyCNN(nn.Module):
    """conv(2->4, 1x3, pad 1)-BN-ReLU, conv(4->3, 1x3, stride 2, pad 1)-ReLU, fc(12->5)-ReLU, fc(5->3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 3, (1, 3), stride=(1, 2), padding=(0, 1))
        self.fc1 = nn.Linear(3 * LENGTH // 2, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.conv2(h))
        return self.fc2(F.relu(self.fc1(h.flatten(1))))

    def unit_groups(self):
        return [
            UnitGroup("conv1", "bn1", "conv2", 1),
            UnitGroup("conv2", None, "fc1", LENGTH // 2),
            UnitGroup("fc1", None, "fc2", 1),
        ]


def tiny_cnn(bias: float | None = None) -> TinyCNN:
    """Fixed weights, and BatchNorm running statistics far from the identity (eval mode matters).
    ``bias``: every hidden bias set to it (a positive one keeps most units active, so that few
    max-reduced sensitivities reach 1 in so small a network)."""
    torch.manual_seed(0)
    model = TinyCNN()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.3, 0.3)
        if bias is not None:
            for b in (model.bn1.bias, model.conv2.bias, model.fc1.bias):
                b.fill_(bias)
    return model.eval()


def data(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 2, 1, LENGTH, generator=torch.Generator().manual_seed(seed))


def patches(x: torch.Tensor, kernel: int, stride: int, pad: int) -> torch.Tensor:
    """``(n, C * kernel, P)`` of a height-1 input ``(n, C, 1, L)``, index by index (channel-major)."""
    n, c, _, length = x.shape
    out_len = (length + 2 * pad - kernel) // stride + 1
    out = torch.zeros(n, c * kernel, out_len, dtype=torch.float64)
    for i in range(n):
        for ch in range(c):
            for k in range(kernel):
                for p in range(out_len):
                    pos = p * stride + k - pad
                    if 0 <= pos < length:
                        out[i, ch * kernel + k, p] = float(x[i, ch, 0, pos])
    return out


def layer_inputs(model: TinyCNN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's input as ``(n, J, P)`` in float64, the network in eval mode, written out."""
    m = model
    w1, w2 = m.conv1.weight.detach().double().flatten(1), m.conv2.weight.detach().double().flatten(1)
    a1 = patches(x.double(), 3, 1, 1)
    y1 = torch.einsum("fj,njp->nfp", w1, a1) + m.conv1.bias.detach().double()[None, :, None]
    bn = m.bn1
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    y1 = (y1 - bn.running_mean.double()[None, :, None]) * scale[None, :, None] + bn.bias.detach().double()[
        None, :, None
    ]
    h1 = y1.clamp_min(0.0)
    a2 = patches(h1.unsqueeze(2), 3, 2, 1)
    h2 = (torch.einsum("fj,njp->nfp", w2, a2) + m.conv2.bias.detach().double()[None, :, None]).clamp_min(0.0)
    a3 = h2.reshape(h2.shape[0], -1)  # channel-major flatten
    h3 = (a3 @ m.fc1.weight.detach().double().T + m.fc1.bias.detach().double()).clamp_min(0.0)
    return {"conv1": a1, "conv2": a2, "fc1": a3.unsqueeze(-1), "fc2": h3.unsqueeze(-1)}


def contributions(w: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``g`` of every point part: ``(parts, F, J, P)``, loops over edges, patches and same-sign sums."""
    w = w.double()
    rows, cols = w.shape
    parts = []
    for i in range(a.shape[0]):
        point = a[i]
        halves = [point.clamp_min(0.0)] + ([(-point).clamp_min(0.0)] if bool((point < 0).any()) else [])
        for h in halves:
            g = torch.zeros(rows, cols, point.shape[-1], dtype=torch.float64)
            for f in range(rows):
                for p in range(point.shape[-1]):
                    for sign in (1.0, -1.0):
                        same = [k for k in range(cols) if float(w[f, k]) * sign > 0]
                        z = sum(float(w[f, k] * h[k, p]) for k in same)
                        if abs(z) <= EPS32:
                            continue
                        for j in same:
                            g[f, j, p] = float(w[f, j] * h[j, p]) / z
            parts.append(g)
    return torch.stack(parts)


def sample_size(etas: list[int], delta: float, c: float) -> int:
    """``|S| = ceil(C log(8 eta* eta / delta))``."""
    return math.ceil(c * math.log(8 * max(etas) * sum(etas) / delta))


# outputs per example of conv1 (4 x 8), conv2 (3 x 4), fc1, fc2
TINY_ETAS = [4 * LENGTH, 3 * LENGTH // 2, 5, 3]
