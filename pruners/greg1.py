"""``greg1`` and ``greg1_filter``: GReg-1 (Wang, Qin, Zhang & Fu, "Neural pruning via growing
regularization", ICLR 2021; the authors' code: MingSun-Tse/Regularization-Pruning,
``pruner/reg_pruner.py``, method ``GReg-1``).

After training, the groups to remove are chosen once by magnitude: in every layer the fraction
``s`` of lowest ``|w|`` (``greg1``, unstructured, the authors' ``--wg weight``) or of lowest mean
``|w|`` per filter / hidden neuron (``greg1_filter``, structured, ``--wg filter``). The trained
network then trains a phase of ``S`` SGD steps (``pruners.greg``) with a penalty factor on the
chosen groups that grows linearly to the ceiling ``tau`` and is held there, the other groups
unpenalised::

    lambda_j(t) = tau * min(1, (t + 1) / G)   for chosen j,    lambda_j(t) = 0 otherwise,
    G = S - round(stabilize * S)   (growth steps; the rest hold tau)

so the chosen groups are driven to zero gradually while the rest of the network adapts; they
are then removed (nearly lossless) and the cell's retraining follows.

What differs from the authors' code, and why:

- Length of the phase. The authors grow the factor by ``delta = 1e-4`` every ``K = 10``
  iterations up to ``tau = 1`` (10^5 iterations on CIFAR), then hold it ``K_s = 10^4``
  iterations (their README's CIFAR commands), at a learning rate of 0.001. The default
  preset's phase has 10^2 - 10^3 steps (``epochs`` x steps per epoch), so the factor grows every
  step (``K = 1``, ``delta = tau / G``), with the authors' proportion of holding steps
  (``stabilize = 10^4 / 1.1 x 10^5 = 1/11``) and ceiling ``tau = 1``. At the authors' rate of
  0.001 such a phase would shrink the chosen weights by a factor of only about
  ``exp(-10^-2 * tau * (G/2 + S - G)) ~ e^-2`` (SGD with momentum 0.9 multiplies the rate by
  10), so they would not reach zero before removal, which is the method; the rate is 0.01
  (the authors' fine-tuning rate on CIFAR), the 10x a 100x shorter phase needs.
- The authors stop growing early for filters when the mean-magnitude ratio of kept to chosen
  filters passes 1000; here the schedule is fixed (as theirs for single weights), so every cell
  trains the same, charged, number of epochs.
- Layers: every prunable layer loses the fraction ``s`` (the authors' ratio per stage; their
  ImageNet commands leave the first convolution dense), so the model is at sparsity ``s``:
  ``round(s * n)`` groups per layer instead of ``ceil(s * n)``. Structured pruning removes a
  unit's BatchNorm channel and its consumer's inputs with it (as their compaction does).

Faithfulness (``tests/test_faithfulness_greg.py``): the penalty factors each step trains with,
recorded in a real phase on a tiny MLP, equal the schedule above re-derived from the paper's
growth rule; the chosen groups are the lowest-magnitude ones of the trained network; the final
masks are exactly those groups; and the chosen weights end the phase far below the kept ones.
"""

from __future__ import annotations

from core.spec import TrainConfig
from pruners.base import PhasePruner, PruneContext, SparseTraining, register_pruner
from pruners.greg import Groups, PhaseConfig, linear_ramp, prune_final, run_phase
from pruners.structured import StructuredPruner


def greg1_schedule(total: int, config: PhaseConfig) -> list[float]:
    """``lambda(t)`` of the chosen groups for the steps ``t = 0 .. total-1``: a linear growth to
    ``ceiling`` over ``G = total - round(stabilize * total)`` steps, then ``ceiling``."""
    hold = min(round(config.stabilize * total), total - 1)
    return linear_ramp(total - hold, 0.0, config.ceiling) + [config.ceiling] * hold


class Greg1Base(PhasePruner):
    """GReg-1 on weights or units; ``structured`` says which."""

    structured = False
    Config = PhaseConfig

    def phase_epochs(self, train: TrainConfig) -> int:
        return self.config.epochs

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        prune_final(model, sparsity, ctx, self.structured)

    def prune_with_phase(self, model, sparsity: float, ctx: PruneContext, run: SparseTraining) -> None:
        groups = Groups(model, self.structured)
        chosen = groups.select(model, sparsity, ctx.score_sign)
        schedule: list[float] = []

        def before_step(t: int, total: int) -> None:
            if not schedule:
                schedule.extend(greg1_schedule(total, self.config))
            groups.set_factors(schedule[t], chosen)

        run_phase(model, run, self.config, groups, before_step)
        groups.apply(model, chosen)


@register_pruner
class Greg1(Greg1Base):
    """GReg-1: magnitude-chosen weights under a growing L2 penalty, then removed (Wang et al. 2021)."""

    name = "greg1"
    scope = "layer"
    invertible = True


@register_pruner
class Greg1Filter(Greg1Base, StructuredPruner):
    """GReg-1 on filters/neurons: lowest mean |w| per layer under a growing L2 penalty (Wang et al. 2021)."""

    name = "greg1_filter"
    structured = True
    scope = "layer"

    def unit_scores(self, model, ctx: PruneContext):
        return Groups(model, True).magnitudes()

    def prune(self, model, sparsity: float, ctx: PruneContext) -> None:
        prune_final(model, sparsity, ctx, True)
