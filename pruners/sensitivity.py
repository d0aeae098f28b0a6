"""Empirical sensitivity of Baykal, Liebenwein et al.: the share of a neuron's pre-activation
that one weight carries, on a small set ``S`` of input points (shared by ``sipp`` and ``pfp``).

For a Linear or Conv2d layer with weight ``W`` (``F`` outputs x ``J`` inputs; a convolution's
input unfolded into ``P`` patches, a Linear layer has ``P = 1``) and a non-negative input
``a`` (``J x P``), split ``W`` by sign and let ``z+_fp = sum_{j: W_fj > 0} W_fj a_jp`` and
``z-_fp = sum_{j: W_fj < 0} W_fj a_jp`` (no bias). The relative contribution of weight
``(f, j)`` at patch ``p`` is::

    g_fjp(x) = W_fj a_jp(x) / z^{sign W_fj}_fp(x)        in [0, 1]; 0 where |z| <= eps

(``eps`` the float32 machine epsilon). An input with negative entries (the data, before
the first layer) is split into ``max(a, 0)`` and ``max(-a, 0)``, each treated as a point of
its own. SiPP reduces ``g`` over patches by the mean and over ``S`` by the max; PFP by the
max over patches, output filters and ``S``, per input channel.

The size of ``S`` follows the papers' sample complexity, as the authors' code computes it
(lucaslie/torchprune, ``experiment/util/data.py``): ``|S| = ceil(C log(8 eta* eta / delta))``
with ``eta_l`` the number of outputs of layer ``l`` for one example (features, or channels x
positions), ``eta = sum_l eta_l`` and ``eta* = max_l eta_l``. The computation is in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.config import param
from pruners.base import PruneContext
from pruners.masks import effective_weight, prunable_modules
from pruners.scoring import preserved


@dataclass(frozen=True)
class SampleConfig:
    """The constants of ``|S|`` (``sipp``'s config; ``pfp`` adds its own), torchprune's defaults."""

    delta: float = param(
        1e-16, "failure probability delta in |S| = ceil(C log(8 eta* eta / delta)) (torchprune deltaS)",
        gt=0.0, lt=1.0,
    )  # fmt: skip
    c_constant: float = param(3.0, "constant C in the size of S (torchprune c_constant)", gt=0.0)


EPS = float(torch.finfo(torch.float32).eps)  # |z| at or below it counts as zero (the authors' threshold)
BLOCK = 1 << 22  # elements of one intermediate block (32 MiB in float64)


def sample_size(model: nn.Module, shape: tuple[int, ...], delta: float, c: float) -> int:
    """``ceil(c log(8 eta* eta / delta))``, the size of ``S`` for ``model`` on inputs of ``shape``."""
    outputs: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, args, out, n=n: outputs.__setitem__(n, out[0].numel()))
        for n, m in prunable_modules(model).items()
    ]
    try:
        with preserved(model, train_mode=False), torch.no_grad():
            model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    eta, eta_star = sum(outputs.values()), max(outputs.values())
    return math.ceil(c * math.log(8.0 * eta_star * eta / delta))


def points(ctx: PruneContext, n: int) -> torch.Tensor:
    """The first ``n`` training examples of ``ctx.batches`` (all of them when there are fewer)."""
    if len(ctx.batches) == 0:
        raise ValueError("this pruner is data-dependent: PruneContext.batches is empty")
    return torch.cat([x for x, _ in ctx.batches])[:n]


def layer_inputs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The input of each named layer on ``x`` (eval mode; the model's state is restored)."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(
            lambda mod, args, out, n=n: seen.__setitem__(n, args[0].detach())
        )
        for n in names
    ]
    try:
        with preserved(model, train_mode=False), torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def unfolded(module: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """The layer's input as ``(n, J, P)`` in float64, ``J`` ordered as ``weight.flatten(1)``."""
    a = a.double()
    if isinstance(module, nn.Linear):
        return a.reshape(-1, a.shape[-1]).unsqueeze(-1)
    padding = getattr(module, "padding", None)
    padding = (0, 0) if padding == "valid" else padding
    conv = isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros"
    if conv and not isinstance(padding, str):
        return F.unfold(a, module.kernel_size, module.dilation, padding, module.stride)
    raise ValueError(
        "sensitivities are defined for Linear and Conv2d layers (groups 1, zero padding given as "
        f"numbers); got {module}"
    )


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The effective (masked) weight as ``(F, J)`` in float64."""
    return effective_weight(module).detach().double().flatten(1)


def halves(a: torch.Tensor) -> Iterator[torch.Tensor]:
    """``max(a, 0)``, and ``max(-a, 0)`` when ``a`` has a negative entry."""
    yield a.clamp_min(0.0)
    if bool((a < 0).any()):
        yield (-a).clamp_min(0.0)


def inverse_sums(w: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 / z+`` and ``1 / z-``, each ``(n, F, P)``, zero where ``|z| <= EPS``."""
    out = []
    for part in (w.clamp_min(0.0), w.clamp_max(0.0)):
        z = torch.matmul(part, h)
        r = torch.zeros_like(z)
        big = z.abs() > EPS
        r[big] = 1.0 / z[big]
        out.append(r)
    return out[0], out[1]


def _chunks(n: int, per_point: int) -> Iterator[slice]:
    step = max(1, BLOCK // max(1, per_point))
    for i in range(0, n, step):
        yield slice(i, i + step)


def mean_patch_sensitivity(module: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """SiPP: ``max_{x in S} mean_p g_fjp(x)``, the weight's shape (``a``: the layer's inputs on S)."""
    w = weight_matrix(module)
    positive = w > 0
    s = torch.zeros_like(w)
    x = unfolded(module, a)
    patches = x.shape[-1]
    if patches == 1:
        return linear_sensitivity(w, x).view_as(effective_weight(module))
    for h in halves(x):
        r_plus, r_minus = inverse_sums(w, h)
        for c in _chunks(h.shape[0], w.numel()):
            ht = h[c].transpose(1, 2)
            sums = torch.where(positive, torch.matmul(r_plus[c], ht), torch.matmul(r_minus[c], ht))
            s = torch.maximum(s, (w * sums / patches).amax(0))
    return s.view_as(effective_weight(module))


def linear_sensitivity(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``max_{x in S} g_fj(x)`` of one patch (``x``: ``(n, J, 1)``), as a max-times product:
    ``g_fj = |W_fj| a_j |r^{sign W_fj}_f|`` (``r = 1 / z``), so ``s_fj = |W_fj| max_x a_j(x)
    |r^{sign}_f(x)|``, accumulated one point at a time over blocks of rows that stay in cache
    (the same products as ``W_fj a_j / z_f``, without an ``F x J`` block per point)."""
    positive = w > 0
    rows = max(1, BLOCK // 128 // w.shape[1])
    s = torch.zeros_like(w)
    for h in halves(x):
        r_plus, r_minus = (r[..., 0].abs().T.contiguous() for r in inverse_sums(w, h))  # (F, n)
        inputs = h[..., 0]  # (n, J)
        for f in range(0, w.shape[0], rows):
            block = slice(f, f + rows)
            best_plus = torch.zeros_like(w[block])
            best_minus, tmp = torch.zeros_like(best_plus), torch.empty_like(best_plus)
            for i in range(inputs.shape[0]):
                for best, r in ((best_plus, r_plus), (best_minus, r_minus)):
                    torch.maximum(best, torch.mul(r[block, i, None], inputs[i], out=tmp), out=best)
            s[block] = torch.maximum(s[block], torch.where(positive[block], best_plus, best_minus))
    return w.abs() * s


def max_input_sensitivity(module: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """PFP: ``max_{x in S} max_f max_p g_fjp(x)`` for every input ``j`` (``J`` values).

    With ``q = (x, p)``: ``max_f g_fjq = a_jq max_f |W_fj| |r^{sign W_fj}_fq|``, ``r = 1 / z``, a
    max-times product accumulated one output ``f`` at a time (no ``F x J x P`` block per point).
    """
    w = weight_matrix(module)
    w_plus, w_minus = w.clamp_min(0.0), (-w).clamp_min(0.0)
    s = torch.zeros(w.shape[1], dtype=w.dtype, device=w.device)
    x = unfolded(module, a)
    for h in halves(x):
        r_plus, r_minus = inverse_sums(w, h)
        rows = h.shape[0] * h.shape[-1]
        r_plus = r_plus.transpose(1, 2).reshape(rows, -1)  # (Q, F)
        r_minus = r_minus.abs().transpose(1, 2).reshape(rows, -1)
        inputs = h.transpose(1, 2).reshape(rows, -1)  # (Q, J)
        for c in _chunks(rows, w.shape[1]):
            best = torch.zeros_like(inputs[c])
            tmp = torch.empty_like(best)
            for f in range(w.shape[0]):
                torch.maximum(best, torch.mul(r_plus[c, f, None], w_plus[f], out=tmp), out=best)
                torch.maximum(best, torch.mul(r_minus[c, f, None], w_minus[f], out=tmp), out=best)
            s = torch.maximum(s, (best * inputs[c]).amax(0))
    return s
