"""The growing-regularization phase shared by ``greg1`` and ``greg2`` (Wang, Qin, Zhang & Fu,
"Neural pruning via growing regularization", ICLR 2021; the authors' code:
MingSun-Tse/Regularization-Pruning, ``pruner/reg_pruner.py``).

Both methods train the trained dense network for a phase of ``S`` SGD steps under a per-group
L2 penalty whose factors grow, then remove the selected groups (weights, or filters/neurons)
and hand the network to the cell's retraining. A step's loss is

    L(w) + 1/2 * sum_j lambda_j(t) * ||w_j||^2

(the authors add ``lambda_j * w_j`` to the gradient after backward, the same update); ``j``
runs over the groups of every prunable layer. The phase's optimizer is the authors' (SGD,
momentum 0.9, the recipe's weight decay, a constant learning rate). A group's magnitude is
``|w|`` for a weight and the mean ``|w|`` of its row for a filter or neuron (the authors'
``_get_score``); every layer loses the same fraction of its groups (the authors' layer-wise
pruning ratio), the lowest-magnitude ones: ``s`` for filters and neurons; for single weights the
first convolution stays dense, as in the authors' commands (stage 0 at ratio 0), and the other
layers take its share to put the model at ``s`` (``pruners.magnitude.uniform_sparsity``).

What the selection is and how the factors grow is each method's (``pruners.greg1``,
``pruners.greg2``); their schedules are per step, ``lambda(t)`` for the step ``t = 0 .. S-1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from core.config import param
from core.spec import TrainConfig
from pruners.base import PhasePruner, PruneContext, SparseTraining
from pruners.magnitude import first_convolution, uniform_sparsity
from pruners.masks import apply_masks, effective_weight, masks_from_scores, prunable_modules
from pruners.structured import apply_unit_masks, groups_of, select_units


@dataclass(frozen=True)
class PhaseConfig:
    """The regularization phase (both methods)."""

    epochs: int = param(10, "epochs of the training split the regularization phase trains", ge=1)
    lr: float = param(0.01, "the phase's constant SGD learning rate", gt=0.0)
    momentum: float = param(0.9, "the phase's SGD momentum (the authors' default)", ge=0.0, lt=1.0)
    ceiling: float = param(1.0, "tau: the penalty factor the selected groups grow to", gt=0.0)
    stabilize: float = param(
        1 / 11, "fraction of the phase's steps held at the ceiling before pruning", ge=0.0, lt=1.0
    )


def phase_recipe(config: PhaseConfig, train: TrainConfig) -> TrainConfig:
    """The phase's recipe: SGD with momentum at a constant rate, the cell's batch, weight decay
    and augmentation."""
    return replace(
        train,
        epochs=config.epochs,
        lr=config.lr,
        optimizer="sgd",
        momentum=config.momentum,
        schedule="constant",
    )


def linear_ramp(steps: int, start: float, stop: float) -> list[float]:
    """``steps`` factors growing linearly after ``start`` and reaching ``stop`` at the last:
    ``start + (stop - start) * (t + 1) / steps`` (the authors' constant increment per update)."""
    return [start + (stop - start) * (t + 1) / steps for t in range(steps)]


class Groups:
    """The prunable groups of a model: single weights (``structured=False``) or the producer rows
    of its unit groups (filters / hidden neurons), with one penalty factor per group."""

    def __init__(self, model: nn.Module, structured: bool) -> None:
        self.structured = structured
        if structured:
            self.modules = {g.producer: model.get_submodule(g.producer) for g in groups_of(model)}
        else:
            self.modules = prunable_modules(model)
        self.factors = {
            n: torch.zeros(self.shape(m), device=m.weight.device) for n, m in self.modules.items()
        }

    def shape(self, module: nn.Module) -> tuple[int, ...]:
        return (module.weight.shape[0],) if self.structured else tuple(module.weight.shape)

    def magnitudes(self) -> dict[str, torch.Tensor]:
        """``|w|`` per weight, or the mean ``|w|`` of each row (the authors' score)."""
        out = {}
        for name, module in self.modules.items():
            w = effective_weight(module).detach().abs()
            out[name] = w.flatten(1).mean(1) if self.structured else w
        return out

    def select(self, model: nn.Module, sparsity: float, sign: float) -> dict[str, torch.Tensor]:
        """Bool per group, True for the fraction ``sparsity`` of lowest magnitude in each layer
        (``sign = -1``: the highest, the ``invert`` mask control)."""
        scores = {n: sign * s for n, s in self.magnitudes().items()}
        if self.structured:
            keep = select_units(model, scores, sparsity, "layer")
            return {n: ~k.to(scores[n].device) for n, k in keep.items()}
        dense = first_convolution(model)  # as the authors' commands: the first convolution unpruned
        rest = uniform_sparsity(model, sparsity, dense)
        chosen = masks_from_scores(model, {n: s for n, s in scores.items() if n != dense}, rest, "layer")
        return {
            n: chosen[n] == 0 if n != dense else torch.zeros_like(s, dtype=torch.bool)
            for n, s in scores.items()
        }

    def apply(self, model: nn.Module, selected: dict[str, torch.Tensor]) -> None:
        """Mask the selected groups (a unit with its bias, BatchNorm and consumer inputs)."""
        if self.structured:
            apply_unit_masks(model, {n: ~s.cpu() for n, s in selected.items()})
        else:
            apply_masks(model, {n: (~s).float() for n, s in selected.items()})

    def set_factors(self, value: float, where: dict[str, torch.Tensor] | None = None) -> None:
        """Set the factor of every group (or of the groups ``where`` is True) to ``value``."""
        for name, f in self.factors.items():
            if where is None:
                f.fill_(value)
            else:
                f[where[name]] = value

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``1/2 * sum_j lambda_j * ||w_j||^2`` on the weights the forward pass uses."""
        total = torch.zeros((), device=next(iter(self.factors.values())).device)
        for name, module in self.modules.items():
            w = effective_weight(module)
            f = self.factors[name]
            if self.structured:
                f = f.view(-1, *[1] * (w.dim() - 1))
            total = total + 0.5 * (f * w * w).sum()
        return total


def run_phase(
    model: nn.Module,
    run: SparseTraining,
    config: PhaseConfig,
    groups: Groups,
    before_step: Callable[[int, int], None],
) -> int:
    """Train ``model`` for the phase under ``groups``' penalty; ``before_step(t, S)`` sets the
    factors that step ``t`` of ``S`` trains with. Returns ``S``."""
    recipe = phase_recipe(config, run.config)
    total = run.steps_per_epoch * config.epochs
    before_step(0, total)

    def after_step(step: int, _: int) -> None:
        if step + 1 < total:
            before_step(step + 1, total)

    run.train(model, recipe, regularizer=groups.penalty, step_hook=after_step)
    return total


class GregPruner(PhasePruner):
    """What GReg-1 and GReg-2 share: the phase's declared length, the final pruning event, and
    the unit scores of their structured variants (which also subclass ``StructuredPruner``)."""

    structured = False  # True: filters / neurons; False: single weights
    scope = "layer"
    invertible = True

    def phase_epochs(self, train: TrainConfig) -> int:
        return self.config.epochs

    def prune(self, model: nn.Module, sparsity: float, ctx: PruneContext) -> None:
        """The final pruning event alone: each layer's fraction ``sparsity`` of lowest-magnitude groups."""
        groups = Groups(model, self.structured)
        groups.apply(model, groups.select(model, sparsity, ctx.score_sign))

    def unit_scores(self, model: nn.Module, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return Groups(model, True).magnitudes()
