"""``greg2`` and ``greg2_filter``: GReg-2 (Wang, Qin, Zhang & Fu, "Neural pruning via growing
regularization", ICLR 2021; the authors' code: MingSun-Tse/Regularization-Pruning,
``pruner/reg_pruner.py``, method ``GReg-2``).

A uniformly growing L2 penalty separates the weights by the curvature of the loss around them
(under ``lambda`` a weight settles at ``h / (h + lambda)`` of its value, ``h`` its curvature),
so that magnitude then tells importance without estimating the Hessian. The trained network
trains a phase of ``S`` SGD steps (``pruners.greg``) in three stages::

    picking,    t <  P:        lambda_j(t) = tau_pick * (t + 1) / P          for every group j
    at t = P - 1, before the step: choose, in every layer, the fraction s of lowest magnitude
    growing,    P <= t < P+G:  lambda_j(t) = tau_pick + (tau - tau_pick) * (t - P + 1) / G   chosen j
                               lambda_j(t) = r  (the "recover" factor, < 0)                  the others
    holding,    t >= P + G:    the factors of the last growing step

with ``P = round(pick * S)``, ``H = round(stabilize * S)`` holding steps and ``G = S - P - H``;
the chosen groups are then removed and the cell retrains. Unstructured (``greg2``: single
weights, the authors' ``--wg weight``) or structured (``greg2_filter``: filters / hidden
neurons by their mean ``|w|``, ``--wg filter``).

Defaults are the authors' (``option.py``, the README's CIFAR commands): ``tau_pick = 0.01``,
``tau = 1``, ``r = -1e-4``, momentum 0.9, the recipe's weight decay; their increments
(``1e-5`` while picking, ``1e-4`` while growing, every ``K = 10`` iterations) and ``K_s =
10^4`` holding iterations give the stages' shares ``pick = stabilize = 10^4 / 1.19 x 10^5``.

What differs from the authors' code, and why: as for ``greg1`` (``pruners.greg1``), the phase
is 10^2 - 10^3 steps instead of ~10^5, so the factors grow every step (``K = 1``) with the
stages' shares kept, at a learning rate of 0.01 instead of 0.001; the stages have fixed lengths
(the authors end growing filters early once the kept / chosen magnitude ratio passes 1000);
every layer loses the same fraction (single weights: the first convolution dense, as in their
commands; see ``pruners.greg``). In so short a phase the picking stage shrinks the weights by
little (``exp(-sum_t lr lambda(t) / (1 - 0.9))`` is about ``e^-0.01`` over its 7-26 steps,
against about ``e^-0.5`` over the authors' 10^4 iterations), so the curvature separation the
paper measures has no room: on ``mlp_512x2`` / MNIST-1D and ``cnn_32x3_fc512`` / digits at 0.9
every group GReg-2 chose was one GReg-1 chooses (the trained network's lowest magnitudes). The
methods then differ only by the picking stage's uniform penalty and the negative factor on the
kept groups.

``epochs = 10`` and ``lr = 0.01`` are ours (see ``pruners.greg1``).

Faithfulness (``tests/test_faithfulness_greg.py``): in a real phase on a tiny MLP every step's
penalty equals ``1/2 sum_j lambda_j(t) ||w_j(t)||^2`` with the three-stage schedule above and
the choice (lowest magnitude of the weights the last picking step trains) re-derived in the
test (relative tolerance 1e-5); the final masks remove exactly the chosen groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import param
from pruners.base import PruneContext, SparseTraining, register_pruner
from pruners.greg import GregPruner, Groups, PhaseConfig, linear_ramp, run_phase
from pruners.structured import StructuredPruner

AUTHORS_SHARE = 1e4 / 1.19e5  # picking and holding iterations of the authors' CIFAR phase


@dataclass(frozen=True)
class Greg2Config(PhaseConfig):
    """GReg-2's phase: the shared fields and its picking stage."""

    stabilize: float = param(
        AUTHORS_SHARE, "fraction of the phase's steps held at the last factors before pruning", ge=0.0, lt=1.0
    )
    pick: float = param(
        AUTHORS_SHARE, "fraction of the phase's steps of uniform growth before choosing", gt=0.0, lt=1.0
    )
    pick_ceiling: float = param(0.01, "tau_pick: the uniform factor at which the groups are chosen", gt=0.0)
    recover: float = param(
        -1e-4, "the factor of the groups kept, after choosing (the authors' negative L2)", le=0.0
    )


def stage_lengths(total: int, config: Greg2Config) -> tuple[int, int, int]:
    """(P picking, G growing, H holding) steps of a phase of ``total`` steps (each >= 1 but H)."""
    pick = max(1, round(config.pick * total))
    hold = min(round(config.stabilize * total), max(total - pick - 1, 0))
    return pick, total - pick - hold, hold


def greg2_schedule(total: int, config: Greg2Config) -> tuple[int, list[float], list[float]]:
    """(P, chosen factors, other factors) for the steps ``t = 0 .. total-1``; before step ``P``
    every group has the chosen factor."""
    pick, grow, hold = stage_lengths(total, config)
    picking = linear_ramp(pick, 0.0, config.pick_ceiling)
    growing = linear_ramp(grow, config.pick_ceiling, config.ceiling)
    chosen = picking + growing + [(growing or picking)[-1]] * hold
    others = picking + [config.recover] * (grow + hold)
    return pick, chosen, others


class Greg2Base(GregPruner):
    """GReg-2 on weights or units; ``structured`` says which."""

    Config = Greg2Config

    def prune_with_phase(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        groups = Groups(model, self.structured)
        state: dict = {}

        def before_step(t: int, total: int) -> None:
            if not state:
                state["pick"], state["chosen"], state["others"] = greg2_schedule(total, self.config)
            if t == state["pick"] - 1:  # the weights before the last picking step choose
                state["set"] = groups.select(model, sparsity, ctx.score_sign)
            if t < state["pick"]:
                groups.set_factors(state["chosen"][t])
            else:
                groups.set_factors(state["others"][t])
                groups.set_factors(state["chosen"][t], state["set"])

        run_phase(model, run, self.config, groups, before_step)
        groups.apply(model, state["set"])


@register_pruner
class Greg2(Greg2Base):
    """GReg-2: uniform growing L2, then the lowest |w| per layer pushed to zero (Wang et al. 2021)."""

    name = "greg2"


@register_pruner
class Greg2Filter(Greg2Base, StructuredPruner):
    """GReg-2 on filters/neurons: uniform growing L2, then lowest mean |w| pushed out (Wang et al. 2021)."""

    name = "greg2_filter"
    structured = True
