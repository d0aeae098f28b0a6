"""The sparsity contract of ``pruners.base``, measured on a pruned model: what the masks say
against the target, and the slack the contract allows.

Unstructured: the zero entries of the ``torch.nn.utils.prune`` masks of the prunable layers
within one weight of ``s * n`` for a pruner of ``scope = "global"``, within one weight per layer
otherwise (layer-wise ranking rounds each layer). Structured: the removed units within one unit
per unit group of ``s * units``. ``harness check-pruner`` checks it on every arch, and every
cell checks it after pruning (``benchmarks.pipeline``): a cell that misses its target by more
is stored as ``failed`` with this module's sentence as its reason, never as an ``ok`` cell at
another sparsity than its spec says.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from core.units import unit_groups
from pruners.masks import current_mask, prunable_modules
from pruners.structured import alive_units


@dataclass(frozen=True)
class Deviation:
    """``off``: counted minus ``target * total`` (weights or units); ``bound``: the slack."""

    off: float
    bound: float
    counted: str  # e.g. "27000 of 30000 weights zero"
    rule: str  # e.g. "one weight per layer"

    @property
    def holds(self) -> bool:
        return abs(self.off) <= self.bound


class SparsityContractError(RuntimeError):
    """A pruned model whose sparsity is not its target's, beyond the contract's slack."""


def unstructured_deviation(scope: str | None, model: nn.Module, sparsity: float) -> Deviation:
    modules = prunable_modules(model)
    counts = [(int((current_mask(m) == 0).sum()), current_mask(m).numel()) for m in modules.values()]
    zeros, total = sum(z for z, _ in counts), sum(n for _, n in counts)
    if scope == "global":
        bound, rule = 1.0, "one weight overall"
    else:
        bound = float(len(counts))
        rule = "one weight per layer" if scope == "layer" else "one weight per layer (no scope declared)"
    return Deviation(zeros - sparsity * total, bound, f"{zeros} of {total} weights zero", rule)


def structured_deviation(model: nn.Module, sparsity: float) -> Deviation:
    groups = unit_groups(model)
    alive = [alive_units(model, g) for g in groups]
    removed, total = sum(int((~a).sum()) for a in alive), sum(a.numel() for a in alive)
    counted = f"{removed} of {total} units removed"
    return Deviation(removed - sparsity * total, float(len(groups)), counted, "one unit per group")


def deviation(pruner: type | object, model: nn.Module, sparsity: float) -> Deviation:
    """The model's deviation from ``sparsity`` by the pruner's kind and scope."""
    if getattr(pruner, "kind", None) == "structured":
        return structured_deviation(model, sparsity)
    return unstructured_deviation(getattr(pruner, "scope", None), model, sparsity)


def check_sparsity(pruner: type | object, model: nn.Module, sparsity: float) -> None:
    """Raise ``SparsityContractError`` (one sentence) when the model misses ``sparsity``."""
    d = deviation(pruner, model, sparsity)
    if not d.holds:
        unit = "units" if getattr(pruner, "kind", None) == "structured" else "weights"
        raise SparsityContractError(
            f"achieved sparsity misses the target {sparsity:g} by {d.off:+.0f} {unit} ({d.counted}); "
            f"the pruner contract allows {d.bound:g} ({d.rule})"
        )
