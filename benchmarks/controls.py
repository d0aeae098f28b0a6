"""Mask sanity controls: registered transformations of a pruner's mask (``CellSpec.control``).

Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at Initialization: Why are We Missing
the Mark?", ICLR 2021; Su et al., "Sanity-Checking Pruning Methods: Random Tickets can Win the
Jackpot", NeurIPS 2020. A control changes one thing about a pruned cell and keeps the rest:

- ``none``: the pruner's own mask;
- ``shuffle_layer``: each prunable layer's mask permuted at random (its density kept, the choice
  of weights lost), for unstructured pruners;
- ``reinit``: the mask kept, the weights drawn anew (another seed's initialisation, masked
  entries zero), then the cell trains from scratch with the dense recipe;
- ``invert``: the pruner keeps the weights it scores lowest. An iterative pruner (``synflow``'s
  rounds, ``force``'s steps, ``imp``'s rounds, GReg's phase) re-scores between its steps, so only
  the pruner can invert each step's ranking: the control sets ``PruneContext.score_sign = -1`` and
  a pruner that honours it declares ``invertible``.

Each control declares which pruners it applies to (``refuses``: the reason a preset naming it for
a pruner is refused), what it changes in the pruner's context before pruning (``context``), what
it does to the pruned model (``transform``) and whether the cell then trains from scratch
(``from_scratch``). ``benchmarks.pipeline`` applies whichever the spec names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from benchmarks.archs import build_arch
from core.registry import Registry
from core.spec import MASK_CONTROLS, CellSpec
from pruners.base import PruneContext
from pruners.masks import current_mask, dense_weight, mask_tensor, prunable_modules

REINIT_SEED_OFFSET = 1_000_000_007  # the reinit control's fresh weights: another draw than the parent's
SHUFFLE_SALT = 4_242


@dataclass(frozen=True)
class MaskControl:
    name: str
    summary: str
    refuses: Callable[[type], str | None] = lambda cls: None
    context: Callable[[PruneContext], PruneContext] = lambda ctx: ctx
    transform: Callable[[nn.Module, CellSpec, object, PruneContext, str], None] | None = None
    from_scratch: bool = False  # the cell trains from scratch with the dense recipe afterwards


CONTROLS: Registry = Registry("mask control")


def register_control(control: MaskControl) -> MaskControl:
    return CONTROLS.register(control.name)(control)


def one_shot(own: Callable[[type], str | None] = lambda cls: None) -> Callable[[type], str | None]:
    """``own``'s refusal, else the rule every control but ``none`` shares: one-shot masks only."""

    def refuses(cls: type) -> str | None:
        problem = own(cls)
        if problem is None and cls.timing == "during_training":
            problem = f"mask controls apply to one-shot masks; {cls.name!r} prunes during training"
        return problem

    return refuses


def shuffle_within_layers(model: nn.Module, generator: torch.Generator) -> None:
    """Permute every prunable layer's mask at random: its density kept, its choice of weights lost."""
    for module in prunable_modules(model).values():
        mask = current_mask(module)
        perm = torch.randperm(mask.numel(), generator=generator).to(mask.device)
        mask_tensor(module, "weight", mask.flatten()[perm].view_as(mask).clone(), replace=True)


def reinitialise(model: nn.Module, arch: str, data, seed: int, device: str) -> None:
    """New initial weights (another seed's draw), masks kept and masked entries zero."""
    torch.manual_seed(seed + REINIT_SEED_OFFSET)
    fresh = build_arch(arch, data.input_shape, data.num_classes).to(device)
    own = model.state_dict()
    with torch.no_grad():
        for key, value in fresh.state_dict().items():
            target = key if key in own and not key.endswith("_mask") else f"{key}_orig"
            if target in own:
                own[target].copy_(value)
        for module in prunable_modules(model).values():
            dense_weight(module).mul_(current_mask(module))
            if hasattr(module, "weight_mask"):
                module.weight = module.weight_orig * module.weight_mask


register_control(MaskControl("none", "the pruner's own mask"))
register_control(
    MaskControl(
        "shuffle_layer",
        "each layer's mask permuted at random (densities kept)",
        refuses=one_shot(
            lambda cls: (
                None
                if cls.kind == "unstructured"
                else f"'shuffle_layer' shuffles weight masks; {cls.name!r} is structured"
            ),
        ),
        transform=lambda model, spec, data, ctx, device: shuffle_within_layers(
            model, ctx.generator(salt=SHUFFLE_SALT)
        ),
    )
)
register_control(
    MaskControl(
        "reinit",
        "the mask kept, the weights re-initialised, trained from scratch",
        refuses=one_shot(),
        transform=lambda model, spec, data, ctx, device: reinitialise(
            model, spec.arch, data, spec.seed, device
        ),
        from_scratch=True,
    )
)
register_control(
    MaskControl(
        "invert",
        "the weights the pruner scores lowest kept",
        refuses=one_shot(
            lambda cls: (
                None
                if getattr(cls, "invertible", False)
                else f"'invert' needs a pruner with scores to invert; {cls.name!r} has none"
            ),
        ),
        context=lambda ctx: replace(ctx, score_sign=-1.0),
    )
)
if tuple(CONTROLS._entries) != MASK_CONTROLS:  # the spec's valid values are the registered controls
    raise RuntimeError(f"mask controls {list(CONTROLS._entries)} differ from core.spec {MASK_CONTROLS}")
