"""Masks over prunable weights, kept by ``torch.nn.utils.prune``.

Prunable weights are the ``weight`` tensors of Linear and Conv layers; biases and
normalisation layers stay dense. A mask is applied with ``prune.custom_from_mask``, which
reparameterises ``weight = weight_orig * weight_mask``: masked entries stay exactly zero
through any later training, and a second pruning round multiplies into the first mask.

Selecting the ``k = round(s * n)`` lowest scores (ties broken by position, so the result is
deterministic) makes the achieved sparsity equal the target to within one weight per
layer (layer-wise) or one weight overall (global).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module for every layer whose ``weight`` can be pruned, in definition order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def current_mask(module: nn.Module) -> torch.Tensor:
    mask = getattr(module, "weight_mask", None)
    return mask if mask is not None else torch.ones_like(module.weight)


def effective_weight(module: nn.Module) -> torch.Tensor:
    """``weight_orig * weight_mask`` (what the forward pass uses), or ``weight`` if unpruned."""
    if hasattr(module, "weight_mask"):
        return module.weight_orig * module.weight_mask
    return module.weight


def dense_weight(module: nn.Module) -> torch.Tensor:
    """The trainable tensor behind ``weight`` (``weight_orig`` once pruned)."""
    return getattr(module, "weight_orig", module.weight)


def _lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Zeros at the ``k`` lowest scores, ties by position: the first ``k`` of a stable ascending
    sort, found by selection (``kthvalue``, linear time; iterative pruners call it every round)."""
    flat = scores.flatten().double()
    mask = torch.ones(flat.numel(), dtype=torch.float32, device=scores.device)
    if k <= 0:
        return mask
    if k >= flat.numel() or bool(torch.isnan(flat).any()):  # NaN: leave the order to the sort
        mask[torch.argsort(flat, stable=True)[:k]] = 0.0
        return mask
    kth = torch.kthvalue(flat, k).values
    below = flat < kth
    mask[below] = 0.0
    ties = torch.nonzero(flat == kth).flatten()
    mask[ties[: k - int(below.sum())]] = 0.0
    return mask


def masks_from_scores(
    model: nn.Module, scores: dict[str, torch.Tensor], sparsity: float, scope: str
) -> dict[str, torch.Tensor]:
    """Keep the highest-scoring weights so that a fraction ``sparsity`` is zero.

    ``scope='global'`` ranks all layers together, ``'layer'`` ranks within each layer.
    Weights already masked are ranked lowest, so repeated pruning only adds zeros.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    modules = prunable_modules(model)
    ranked = {}
    for name, score in scores.items():
        alive = current_mask(modules[name]).bool()
        ranked[name] = torch.where(alive, score.detach().double(), float("-inf"))
    if scope == "layer":
        return {n: _lowest_k_mask(s, round(sparsity * s.numel())).view_as(s) for n, s in ranked.items()}
    if scope != "global":
        raise ValueError(f"scope {scope!r} is not one of: global, layer")
    flat = torch.cat([s.flatten() for s in ranked.values()])
    mask = _lowest_k_mask(flat, round(sparsity * flat.numel()))
    out, offset = {}, 0
    for name, s in ranked.items():
        out[name] = mask[offset : offset + s.numel()].view_as(s)
        offset += s.numel()
    return out


def mask_tensor(module: nn.Module, name: str, mask: torch.Tensor, replace: bool = False) -> None:
    """Mask ``module.<name>`` (weight, bias, BN scale ...) with ``torch.nn.utils.prune``.

    The first call reparameterises the tensor (``<name>_orig * <name>_mask``); later calls
    update the one ``<name>_mask`` buffer in place: multiplied into it (the default, so
    pruning only adds zeros) or, with ``replace=True``, overwritten (dynamic sparse training).
    """
    existing = getattr(module, f"{name}_mask", None)
    if existing is None:
        orig = getattr(module, name)
        prune.custom_from_mask(module, name, mask.to(device=orig.device, dtype=orig.dtype))
        return
    mask = mask.to(device=existing.device, dtype=existing.dtype)
    with torch.no_grad():
        existing.copy_(mask) if replace else existing.mul_(mask)
        setattr(module, name, getattr(module, f"{name}_orig") * existing)  # refresh before the next forward


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], replace: bool = False) -> None:
    modules = prunable_modules(model)
    for name, mask in masks.items():
        mask_tensor(modules[name], "weight", mask, replace)


def ensure_masks(model: nn.Module) -> None:
    """Give every prunable layer an (all-ones) mask, so later updates need no reparameterising
    while an optimizer holds the parameters."""
    for module in prunable_modules(model).values():
        if not hasattr(module, "weight_mask"):
            prune.identity(module, "weight")


def sparsity_stats(model: nn.Module) -> dict[str, float]:
    """Achieved sparsity of prunable weights (from masks) and parameter counts.

    ``achieved_sparsity = 1 - sum(masks) / n_prunable``; ``params_nonzero`` counts
    non-zero entries of the effective parameters (masked weights, biases, norm layers).
    """
    modules = prunable_modules(model)
    prunable_total = sum(dense_weight(m).numel() for m in modules.values())
    prunable_kept = sum(current_mask(m).sum().item() for m in modules.values())
    params_total = params_nonzero = 0
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            params_total += p.numel()
            mask = getattr(module, name[: -len("_orig")] + "_mask", None) if name.endswith("_orig") else None
            value = p * mask if mask is not None else p
            params_nonzero += int(torch.count_nonzero(value).item())
    return {
        "achieved_sparsity": 1.0 - prunable_kept / prunable_total,
        "prunable_total": float(prunable_total),
        "prunable_nonzero": float(prunable_kept),
        "params_total": float(params_total),
        "params_nonzero": float(params_nonzero),
    }


def refresh_masked(model: nn.Module) -> None:
    """Recompute every masked tensor attribute (``weight = weight_orig * weight_mask``) as a
    graph leaf. After a training step the attribute still holds the last forward's non-leaf
    product, which ``copy.deepcopy`` refuses; the next forward recomputes it either way."""
    with torch.no_grad():
        for module in model.modules():
            for buffer, mask in list(module.named_buffers(recurse=False)):
                if buffer.endswith("_mask"):
                    name = buffer[: -len("_mask")]
                    setattr(module, name, getattr(module, f"{name}_orig") * mask)
