"""Structured pruning: whole units (conv filters, hidden neurons), their masks and compaction.

The unit groups come from the architecture (``core.units.unit_groups``, declared by each
architecture): unit ``i`` of a group is output ``i`` of its ``producer`` (weight row and bias
entry), channel ``i`` of its BatchNorm (scale and shift) and the consumer's input(s) fed by it.
Removing a unit masks all of these with ``torch.nn.utils.prune``, so they stay exactly zero
through any retraining; a removed unit then outputs exactly zero, and ``compact`` can delete it
to give a physically smaller model with the same outputs. The classifier's outputs are never units.

The target sparsity of a structured pruner is the fraction of *units* removed:
``round(s * n)`` per group (``scope='layer'``), or ``round(s * N)`` over all groups ranked
together (``scope='global'``); either way every group keeps at least one unit. The
resulting weight sparsity is what the masks of the prunable layers give
(``achieved_sparsity``); ``unit_sparsity`` is the fraction of units removed.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import prune

from core.units import UnitGroup, unit_groups
from pruners.base import PruneContext, Pruner
from pruners.masks import current_mask, mask_tensor, refresh_masked


def groups_of(model: nn.Module) -> list[UnitGroup]:
    groups = unit_groups(model)
    if not groups:
        raise ValueError(f"{type(model).__name__} declares no unit groups for structured pruning")
    return groups


def alive_units(model: nn.Module, group: UnitGroup) -> torch.Tensor:
    """Bool per unit: not removed (its producer weight row is not entirely masked)."""
    mask = current_mask(model.get_submodule(group.producer))
    return mask.flatten(1).sum(1) > 0


def unit_sparsity(model: nn.Module) -> float:
    alive = [alive_units(model, g) for g in groups_of(model)]
    return 1.0 - sum(int(a.sum()) for a in alive) / sum(a.numel() for a in alive)


def select_units(
    model: nn.Module, scores: dict[str, torch.Tensor], sparsity: float, scope: str
) -> dict[str, torch.Tensor]:
    """Producer name -> bool keep vector: the lowest-scoring units removed, ties by position."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    groups = groups_of(model)
    ranked = {}
    for g in groups:
        alive = alive_units(model, g)
        ranked[g.producer] = torch.where(alive, scores[g.producer].detach().double(), float("-inf"))
    if scope == "layer":
        return select_units_by_count(
            model, scores, {n: round(sparsity * s.numel()) for n, s in ranked.items()}
        )
    keep = {n: torch.ones(s.numel(), dtype=torch.bool) for n, s in ranked.items()}
    if scope != "global":
        raise ValueError(f"scope {scope!r} is not one of: global, layer")
    names = [n for n, s in ranked.items() for _ in range(s.numel())]
    index = [i for s in ranked.values() for i in range(s.numel())]
    flat = torch.cat(list(ranked.values()))
    left = {n: s.numel() for n, s in ranked.items()}
    to_remove = round(sparsity * flat.numel())
    for j in torch.argsort(flat, stable=True).tolist():
        if to_remove == 0:
            break
        if left[names[j]] > 1:  # never empty a layer
            keep[names[j]][index[j]] = False
            left[names[j]] -= 1
            to_remove -= 1
    return keep


def select_units_by_count(
    model: nn.Module, scores: dict[str, torch.Tensor], removed: dict[str, int]
) -> dict[str, torch.Tensor]:
    """Producer name -> bool keep vector with ``removed[name]`` units of each group removed, its
    lowest-scoring ones (units already removed rank lowest and count; ties by position; every
    group keeps at least one unit): for pruners that allocate a budget per layer themselves."""
    keep = {}
    for g in groups_of(model):
        alive = alive_units(model, g)
        ranked = torch.where(alive, scores[g.producer].detach().double(), float("-inf"))
        k = max(0, min(int(removed.get(g.producer, 0)), ranked.numel() - 1))
        keep[g.producer] = torch.ones(ranked.numel(), dtype=torch.bool)
        keep[g.producer][torch.argsort(ranked, stable=True)[:k]] = False
    return keep


def unit_masks(model: nn.Module, keep: dict[str, torch.Tensor]) -> list[tuple[str, str, torch.Tensor]]:
    """(module name, tensor name, mask) for every tensor a set of kept units implies."""
    weight: dict[str, torch.Tensor] = {}
    out: list[tuple[str, str, torch.Tensor]] = []

    def wmask(name: str) -> torch.Tensor:
        if name not in weight:
            weight[name] = torch.ones_like(model.get_submodule(name).weight, dtype=torch.float32)
        return weight[name]

    for g in groups_of(model):
        k = keep[g.producer].float()
        producer = model.get_submodule(g.producer)
        wmask(g.producer).mul_(k.view(-1, *[1] * (producer.weight.dim() - 1)))
        if producer.bias is not None:
            out.append((g.producer, "bias", k.clone()))
        if g.norm is not None:
            out += [(g.norm, "weight", k.clone()), (g.norm, "bias", k.clone())]
        consumer = model.get_submodule(g.consumer)
        columns = k.repeat_interleave(g.positions)
        wmask(g.consumer).mul_(columns.view(1, -1, *[1] * (consumer.weight.dim() - 2)))
    return [(n, "weight", m) for n, m in weight.items()] + out


def apply_unit_masks(model: nn.Module, keep: dict[str, torch.Tensor]) -> None:
    for module, tensor, mask in unit_masks(model, keep):
        mask_tensor(model.get_submodule(module), tensor, mask)


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def _sliced_layer(layer: nn.Module, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Module:
    w = layer.weight.detach()
    b = layer.bias.detach() if layer.bias is not None else None
    if out_idx is not None:
        w = w[out_idx]
        b = b[out_idx] if b is not None else None
    if in_idx is not None:
        w = w[:, in_idx]
    if isinstance(layer, nn.Linear):
        new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    else:
        if layer.groups != 1:
            raise ValueError("compaction supports only groups=1 convolutions")
        new = type(layer)(
            w.shape[1], w.shape[0], layer.kernel_size, stride=layer.stride, padding=layer.padding,
            dilation=layer.dilation, bias=b is not None, padding_mode=layer.padding_mode,
        )  # fmt: skip
    new = new.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    if _is_channels_last(layer.weight):
        new = new.to(memory_format=torch.channels_last)  # the source layer's layout
    return new


def _is_channels_last(weight: torch.Tensor) -> bool:
    """A 4-D weight stored channels-last (and not also plain contiguous, as degenerate shapes are)."""
    return (
        weight.dim() == 4
        and weight.is_contiguous(memory_format=torch.channels_last)
        and not weight.is_contiguous()
    )


def _sliced_norm(norm: nn.Module, idx: torch.Tensor) -> nn.Module:
    new = type(norm)(len(idx), eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                     track_running_stats=norm.track_running_stats)  # fmt: skip
    new = new.to(device=norm.weight.device, dtype=norm.weight.dtype)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(norm, name) is not None:
                getattr(new, name).copy_(getattr(norm, name).detach()[idx])
        if norm.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(norm.num_batches_tracked)
    return new.train(norm.training)


def compact_model(model: nn.Module) -> nn.Module:
    """A physically smaller copy: removed units deleted from producer, BatchNorm and consumer.

    Every mask is made permanent first (``prune.remove``), so the copy holds plain tensors
    and computes what the masked model computes, up to float summation order. The copy keeps
    the source's memory layout: a sliced convolution is channels-last when its source was
    (``build_arch`` builds every convolutional arch channels-last), and so is every sliced
    convolution of a model any of whose convolutions is.
    """
    refresh_masked(model)
    small = copy.deepcopy(model)
    groups = groups_of(small)
    kept = {g.producer: torch.nonzero(alive_units(small, g)).flatten() for g in groups}
    for module in small.modules():
        for buffer in [n for n, _ in module.named_buffers(recurse=False) if n.endswith("_mask")]:
            prune.remove(module, buffer[: -len("_mask")])
    out_idx = {g.producer: kept[g.producer] for g in groups}
    in_idx = {}
    for g in groups:
        k = kept[g.producer]
        in_idx[g.consumer] = (k.view(-1, 1) * g.positions + torch.arange(g.positions)).flatten()
    for name in sorted(set(out_idx) | set(in_idx)):
        layer = small.get_submodule(name)
        _set_submodule(small, name, _sliced_layer(layer, out_idx.get(name), in_idx.get(name)))
    for g in groups:
        if g.norm is not None:
            _set_submodule(small, g.norm, _sliced_norm(small.get_submodule(g.norm), kept[g.producer]))
    if any(_is_channels_last(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d)):
        small = small.to(memory_format=torch.channels_last)
    return small


class StructuredPruner(Pruner):
    """Scores every unit and removes the lowest ``round(s * n)`` (per layer or globally)."""

    kind: ClassVar[str] = "structured"
    scope: ClassVar[str] = "layer"
    invertible: ClassVar[bool] = True

    @abstractmethod
    def unit_scores(self, model: nn.Module, ctx: PruneContext) -> dict[str, torch.Tensor]:
        """Producer name -> one score per unit; higher means keep."""

    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        scores = {n: ctx.score_sign * s for n, s in self.unit_scores(model, ctx).items()}
        apply_unit_masks(model, select_units(model, scores, sparsity, self.scope))

    def compact(self, model: nn.Module) -> nn.Module:
        return compact_model(model)

    def unit_sparsity(self, model: nn.Module) -> float:
        return unit_sparsity(model)


def effective(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor the forward pass uses (``<name>_orig * <name>_mask`` once masked)."""
    if hasattr(module, f"{name}_mask"):
        return (getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")).detach()
    value = getattr(module, name)
    return value.detach() if value is not None else None
