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
  iterations (their README's CIFAR commands), at a learning rate of 0.001. The default preset's
  phase (10 epochs) has 80 (digits) to 310 (MNIST-1D) steps, so the factor grows every step
  (``K = 1``, ``delta = tau / G``), with the authors' ceiling ``tau = 1`` and their share of
  holding steps (``stabilize = 10^4 / 1.1 x 10^5 = 1/11``). At the authors' rate of 0.001 so
  short a phase shrinks the chosen weights by only ``exp(-sum_t lr lambda(t) / (1 - 0.9))``,
  about ``e^-0.4`` to ``e^-1.7``, so they are far from zero when removed, which defeats the
  method (measured: ``mlp_512x2`` on MNIST-1D at 0.9 fell from 0.673 to 0.461 test accuracy at
  removal, against 0.658 at a rate of 0.01). The rate is therefore 0.01, the authors' CIFAR
  fine-tuning rate, a 10x for a phase 10^2 - 10^3 times shorter.
- The authors stop growing early for filters when the mean-magnitude ratio of kept to chosen
  filters passes 1000; here the schedule is fixed (as theirs for single weights), so every cell
  trains the same, charged, number of epochs.
- Layers: single weights: every layer loses the same fraction except the first convolution,
  which stays dense as in the authors' commands (stage 0 at ratio 0), the others taking its
  share so the model is at ``s`` (``round`` per layer instead of their ``ceil``). Filters and
  neurons: every unit group loses the fraction ``s``; the authors leave the first convolution
  unpruned there too, but at 0.95 the other groups of ``cnn_32x3_fc512`` could not take its
  share (576 of its 608 units). A removed unit takes its BatchNorm channel and its consumer's
  inputs with it (as their compaction does).

Defaults: ``tau = 1``, momentum 0.9, the recipe's weight decay (5e-4 in the default preset, as
the authors' ``--wd 0.0005``), the holding share 1/11: the authors' (``option.py``, README).
``epochs = 10`` and ``lr = 0.01`` are ours, for the reasons above (10 epochs: a third of the
default dense recipe; the authors' CIFAR phase is about 280 epochs).

Faithfulness (``tests/test_faithfulness_greg.py``): in a real phase on a tiny MLP every step's
penalty equals ``1/2 sum_j lambda_j(t) ||w_j(t)||^2`` with the chosen groups and the schedule
above re-derived in the test from the paper's rule (relative tolerance 1e-5); the final masks
remove exactly the chosen groups; the chosen groups end the phase with less than half the
relative magnitude of the kept ones.
"""

from __future__ import annotations

from pruners.base import PruneContext, SparseTraining, register_pruner
from pruners.greg import GregPruner, Groups, PhaseConfig, linear_ramp, run_phase
from pruners.structured import StructuredPruner


def greg1_schedule(total: int, config: PhaseConfig) -> list[float]:
    """``lambda(t)`` of the chosen groups for the steps ``t = 0 .. total-1``: a linear growth to
    ``ceiling`` over ``G = total - round(stabilize * total)`` steps, then ``ceiling``."""
    hold = min(round(config.stabilize * total), total - 1)
    return linear_ramp(total - hold, 0.0, config.ceiling) + [config.ceiling] * hold


class Greg1Base(GregPruner):
    """GReg-1 on weights or units; ``structured`` says which."""

    Config = PhaseConfig

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


@register_pruner
class Greg1Filter(Greg1Base, StructuredPruner):
    """GReg-1 on filters/neurons: lowest mean |w| per layer under a growing L2 penalty (Wang et al. 2021)."""

    name = "greg1_filter"
    structured = True
