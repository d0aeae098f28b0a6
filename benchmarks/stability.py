"""The stability study's runs: structured pruning *during* training (Bartoldson et al., NeurIPS 2020).

Bartoldson, Morcos, Barbu & Erlebacher, "The Generalization-Stability Tradeoff in Neural
Network Pruning", NeurIPS 2020 (protocol from the authors' code, ``shared/design/claims.md``
section 3). A run (``core.spec.StabilitySpec``) trains from scratch far past fitting the
training set and, after every ``every``-th epoch from ``first_event`` to ``last_event``, removes
units of its last ``layers`` unit groups. The accuracy on the full test set just before and
just after each event (no training in between) gives the event's instability
``I = (acc_pre - acc_post) / acc_pre`` and stability ``S = 100 * (1 - I)``; the run's
stability is the mean ``S`` over its events (100 when it never prunes).

- Scores: the registered structured pruner ``scorer`` (``unit_scores``; by default
  ``l1_filter`` with ``p = 2``, the filter L2 norm of the paper); masks: ``torch.nn.utils.prune``
  through ``pruners.structured.apply_unit_masks``, so a removed unit (weights, bias, BatchNorm
  scale and shift, and the next layer's input) stays exactly zero through training.
- Targets: ``prune_s`` the lowest-scoring alive units (what the scorer would prune),
  ``prune_l`` the highest (the paper's default), ``prune_r`` random (seeded), ``none`` the
  no-pruning baseline. The removed count per layer rises linearly over the events to
  ``round(final_fraction * units)``.
- Variants (the paper's Fig. 5): ``permanent``; ``noise_zero`` zeroes the targeted units and
  holds them at zero for ``noise_batches`` optimizer steps, then lets them regrow from zero;
  ``noise_gauss`` adds ``N(0, std of the layer's unpruned weights)`` to them after each of
  ``noise_batches`` steps. Noise variants target, at each event, as many units as the
  permanent schedule removes then, chosen among all units of the layer.

Rows (tidy, as ``core.schema.METRIC_SCHEMA`` minus ``cell_id``):
``phase='epoch'``: accuracy on ``train`` (a fixed stratified subset of ``TRAIN_EVAL`` examples),
``val`` and ``test`` after every epoch (``step`` = epoch);
``phase='event'`` on ``test``: ``acc_pre``, ``acc_post``, ``stability``, ``units_fraction``,
``epoch``, ``step`` = event index;
``phase='final'``: accuracy/loss/recall on the full train and test splits, and on ``test``:
``stability`` (run mean S), ``best_test_accuracy`` (the best test accuracy at or after the last
event's epoch, as the authors' code selects), ``val_selected_test_accuracy`` (test accuracy at
the epoch of best validation accuracy in the same window), ``generalization_gap`` (train -
test at the best-test epoch), ``best_epoch``, ``last_event_epoch``, ``events``,
``final_units_fraction`` and ``train_accuracy_before_last_event`` (full training split).

No I/O; the harness stores the rows. The runs of a study file's ``[stability]`` table:
``benchmarks.stability_design``; the cell kind (``stability``, ``benchmarks.cell_kind``): ``StabilityRun``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from benchmarks.archs import build_arch
from benchmarks.cell_kind import CellEnvironment, CellKind, CellOutput, register_kind
from benchmarks.datasets import load_dataset
from benchmarks.evaluation import classification_rows, predict_logits
from benchmarks.metrics import accuracy
from benchmarks.training import train, training_batches
from core.metrics import metric_row
from core.spec import StabilitySpec, TrainConfig, canonical_json
from core.units import unit_groups
from pruners import PruneContext, get_pruner
from pruners.masks import mask_tensor
from pruners.structured import alive_units, unit_masks

TRAIN_EVAL = 1000  # training examples evaluated after every epoch (the full split at the end)


def target_groups(model: nn.Module, layers: int):
    """The last ``layers`` unit groups with a BatchNorm (conv filters, as Bartoldson et al. prune
    the last conv layers), or the last ``layers`` groups of an arch without BatchNorm (MLP
    neurons), from the groups the architecture declares (``core.units``)."""
    groups = [g for g in unit_groups(model) if g.norm is not None] or unit_groups(model)
    if len(groups) < layers:
        raise ValueError(
            f"{type(model).__name__} declares {len(groups)} unit groups; the run prunes {layers}"
        )
    return groups[-layers:]


def event_counts(units: int, final_fraction: float, n_events: int) -> list[int]:
    """Units removed at each event: cumulative ``round(T * (i + 1) / n_events)``, ``T = round(f * units)``."""
    if n_events == 0:
        return []
    total = round(final_fraction * units)
    cumulative = [round(total * (i + 1) / n_events) for i in range(n_events)]
    return [b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True)]


def stability_of_event(acc_pre: float, acc_post: float) -> float:
    """``S = 100 * (1 - I)``, ``I = (acc_pre - acc_post) / acc_pre`` (Bartoldson et al. 2020)."""
    if acc_pre <= 0:
        return float("nan")
    return 100.0 * (1.0 - (acc_pre - acc_post) / acc_pre)


def run_stability_value(event_stabilities: list[float]) -> float:
    """A run's stability: mean S over its events; 100 for a run that never prunes."""
    vals = [s for s in event_stabilities if not math.isnan(s)]
    return sum(vals) / len(vals) if vals else 100.0


def best_after(curve: list[tuple[int, float, float, float]], first_epoch: int, column: int):
    """The curve entry (epoch, train, val, test) at epochs >= ``first_epoch`` maximising ``column``
    (1 train, 2 val, 3 test); ties: the earliest."""
    after = [c for c in curve if c[0] >= first_epoch]
    return max(after, key=lambda c: (c[column], -c[0])) if after else None


def _row(phase: str, eval_set: str, metric: str, value: float, step: int | None = None) -> dict:
    return metric_row(eval_set, "clean", metric, value, step=step, phase=phase)


class UnitState:
    """Which units of the pruned groups are removed for good and which are held (noise_zero);
    applied to the model as ``torch.nn.utils.prune`` masks over every group."""

    def __init__(self, model: nn.Module, targets) -> None:
        self.model = model
        self.groups = unit_groups(model)
        self.targets = [g.producer for g in targets]
        self.removed = {
            g.producer: torch.zeros(int(alive_units(model, g).numel()), dtype=torch.bool) for g in self.groups
        }
        self.held: list[tuple[str, torch.Tensor, int]] = []  # (producer, units, steps left)

    def units(self, producer: str) -> int:
        return self.removed[producer].numel()

    def apply(self) -> None:
        keep = {p: ~r for p, r in self.removed.items()}
        for producer, units, _ in self.held:
            keep[producer] = keep[producer].clone()
            keep[producer][units] = False
        for module, tensor, mask in unit_masks(self.model, keep):
            mask_tensor(self.model.get_submodule(module), tensor, mask, replace=True)

    def zero_orig(self, producer: str, units: torch.Tensor) -> None:
        """Set the stored weights of ``units`` to zero (so released units regrow from zero)."""
        group = next(g for g in self.groups if g.producer == producer)
        layer = self.model.get_submodule(producer)
        with torch.no_grad():
            for module, name in [(layer, "weight"), (layer, "bias")] + (
                [
                    (self.model.get_submodule(group.norm), "weight"),
                    (self.model.get_submodule(group.norm), "bias"),
                ]
                if group.norm is not None
                else []
            ):
                tensor = getattr(module, f"{name}_orig", getattr(module, name, None))
                if tensor is not None:
                    tensor[units.to(tensor.device)] = 0.0

    def zeroed_fraction(self) -> float:
        zero = sum(
            int((~alive_units(self.model, g)).sum()) for g in self.groups if g.producer in self.targets
        )
        return zero / sum(self.units(p) for p in self.targets)


def run_stability(spec: StabilitySpec, device: str = "cpu") -> list[dict]:
    """Train one run of the study and return its tidy metric rows (see the module docstring)."""
    data = load_dataset(spec.dataset)
    x, y = data.x_train.to(device), data.y_train.to(device)
    xv, yv = data.x_val.to(device), data.y_val.to(device)
    xt, yt = data.x_test.to(device), data.y_test.to(device)
    from benchmarks.shifts.sets import stratified_subset

    sub = torch.from_numpy(stratified_subset(data.y_train.numpy(), TRAIN_EVAL)).to(device)
    torch.manual_seed(spec.seed)
    model = build_arch(spec.arch, data.input_shape, data.num_classes).to(device)
    scorer = get_pruner(spec.scorer, spec.scorer_config)
    ctx = PruneContext(
        seed=spec.seed, batches=training_batches(x, y, 256, spec.seed, 8), input_shape=data.input_shape
    )
    targets = target_groups(model, spec.layers)
    state = UnitState(model, targets)
    state.apply()  # every unit-group tensor reparameterised once, before the optimizer sees it
    event_epochs = spec.event_epochs
    counts = {
        g.producer: event_counts(state.units(g.producer), spec.final_fraction, len(event_epochs))
        for g in targets
    }
    rng = torch.Generator().manual_seed(spec.seed * 7_919 + 101)
    rows: list[dict] = []
    noisy: list[tuple[str, torch.Tensor, float, int]] = []  # (producer, units, std, steps left)

    def test_accuracy() -> float:
        return accuracy(predict_logits(model, xt), yt)

    def choose(producer: str, k: int) -> torch.Tensor:
        alive = ~state.removed[producer]
        eligible = alive.nonzero().flatten() if spec.variant == "permanent" else torch.arange(alive.numel())
        if k <= 0:
            return eligible[:0]
        if spec.target == "prune_r":
            return eligible[torch.randperm(eligible.numel(), generator=rng)[:k]]
        score = scorer.unit_scores(model, ctx)[producer].detach().double().cpu()[eligible]
        order = torch.argsort(score, stable=True, descending=spec.target == "prune_l")
        return eligible[order[:k]]

    def apply_event(i: int) -> None:
        for g in targets:
            units = choose(g.producer, counts[g.producer][i])
            if units.numel() == 0:
                continue
            if spec.variant == "permanent":
                state.removed[g.producer][units] = True
            elif spec.variant == "noise_zero":
                state.zero_orig(g.producer, units)
                state.held.append((g.producer, units, spec.noise_batches))
            else:
                w = model.get_submodule(g.producer).weight_orig
                alive = ~state.removed[g.producer]
                std = float(w.detach()[alive.to(w.device)].std())
                noisy.append((g.producer, units, std, spec.noise_batches))
        state.apply()

    def step_hook(_step: int, _total: int) -> None:
        nonlocal noisy
        if state.held:
            released = [(p, u) for p, u, n in state.held if n - 1 <= 0]
            state.held = [(p, u, n - 1) for p, u, n in state.held if n - 1 > 0]
            for p, u in released:
                state.zero_orig(p, u)
            if released:
                state.apply()
        if noisy:
            with torch.no_grad():
                for producer, units, std, _ in noisy:
                    w = model.get_submodule(producer).weight_orig
                    noise = torch.randn((len(units), *w.shape[1:]), generator=rng).to(w.device) * std
                    w[units.to(w.device)] += noise  # the prune hook recomputes weight each forward
            noisy = [(p, u, s, n - 1) for p, u, s, n in noisy if n - 1 > 0]

    curve: list[tuple[int, float, float, float]] = []
    full_train_before_last: list[float] = []
    last_event = spec.last_event if event_epochs else None
    reference_epoch = (
        max(spec.event_epochs or [spec.last_event]) if spec.target != "none" else spec.last_event
    )

    def epoch_hook(epoch: int) -> None:
        if epoch == reference_epoch:  # the training split in full, just before the last event
            full_train_before_last.append(accuracy(predict_logits(model, x), y))
        if epoch in event_epochs:
            i = event_epochs.index(epoch)
            acc_pre = test_accuracy()
            apply_event(i)
            acc_post = test_accuracy()
            rows.extend(
                [
                    _row("event", "test", "acc_pre", acc_pre, i),
                    _row("event", "test", "acc_post", acc_post, i),
                    _row("event", "test", "stability", stability_of_event(acc_pre, acc_post), i),
                    _row("event", "test", "units_fraction", state.zeroed_fraction(), i),
                    _row("event", "test", "epoch", epoch, i),
                ]
            )
        tr = accuracy(predict_logits(model, x[sub]), y[sub])
        va = accuracy(predict_logits(model, xv), yv)
        te = test_accuracy()
        model.train()
        curve.append((epoch, tr, va, te))
        rows.extend(
            [
                _row("epoch", "train", "accuracy", tr, epoch),
                _row("epoch", "val", "accuracy", va, epoch),
                _row("epoch", "test", "accuracy", te, epoch),
            ]
        )

    train(model, x, y, spec.train, spec.seed, step_hook=step_hook, epoch_hook=epoch_hook)
    model.eval()

    for eval_set, xs, ys in (("train", x, y), ("test", xt, yt)):
        rows += [
            {**r, "phase": "final"}
            for r in classification_rows(predict_logits(model, xs), ys, data.num_classes, eval_set)
        ]
    event_s = [r["value"] for r in rows if r["phase"] == "event" and r["metric"] == "stability"]
    # the selection window: epochs after the last event's (the baseline: the same epochs)
    window = (last_event if last_event is not None else spec.last_event) + 1
    best = best_after(curve, window, 3)
    by_val = best_after(curve, window, 2)
    summary = {
        "stability": run_stability_value(event_s),
        "best_test_accuracy": best[3] if best else float("nan"),
        "val_selected_test_accuracy": by_val[3] if by_val else float("nan"),
        "generalization_gap": best[1] - best[3] if best else float("nan"),
        "best_epoch": best[0] if best else float("nan"),
        "last_event_epoch": last_event if last_event is not None else float("nan"),
        "events": len(event_s),
        "final_units_fraction": state.zeroed_fraction(),
        "train_accuracy_before_last_event": full_train_before_last[0]
        if full_train_before_last
        else float("nan"),
    }
    rows += [_row("final", "test", k, v) for k, v in summary.items()]
    return rows


@register_kind
class StabilityRun(CellKind):
    """A run of the generalization-stability study (``cell_type = "stability"``, id ``s...``)."""

    name = "stability"
    spec_type = StabilitySpec
    label = "stability runs"
    config_fields: ClassVar[dict[str, type]] = {"train": TrainConfig}
    pruner_fields = ("scorer", "scorer_config")
    # --filter pruner / sparsity / retrain answer with the target, final fraction and variant
    FILTER_FIELDS: ClassVar[dict[str, str]] = {
        "pruner": "target",
        "sparsity": "final_fraction",
        "retrain": "variant",
    }

    def cell_id(self, spec: StabilitySpec) -> str:
        from pruners import PRUNERS

        return spec.cell_id(PRUNERS.get(spec.scorer).version)

    def epochs(self, spec: StabilitySpec) -> float:
        return float(spec.train.epochs)  # a run trains from scratch

    def row(self, spec: StabilitySpec, cell_id: str) -> dict:
        from benchmarks.prune_cell import plugin_columns
        from pruners import PRUNERS

        scorer = PRUNERS.get(spec.scorer)
        return {
            "cell_id": cell_id,
            "parent_id": None,
            "cell_type": self.name,
            "arch": spec.arch,
            "dataset": spec.dataset,
            "pruner": spec.target,
            "pruner_kind": "structured",
            "pruner_timing": "during_training",
            "pruner_version": scorer.version,
            "pruner_config": canonical_json(spec.scorer_config),
            **plugin_columns(scorer),
            "sparsity": spec.final_fraction,
            "seed": spec.seed,
            "retrain": None,
            "control": None,
            "eval_sets": "clean",
            "schedule": f"every_{spec.every}",
            "score": spec.scorer,
            "variant": spec.variant,
            "spec_json": canonical_json(spec.to_dict()),
        }

    def run(self, spec: StabilitySpec, env: CellEnvironment) -> CellOutput:
        budget = {"epochs_dense": 0.0, "epochs_prune": self.epochs(spec), "epochs_retrain": 0.0}
        return CellOutput(run_stability(spec, env.device), {}, budget)

    def filter_value(self, spec: StabilitySpec, key: str) -> object:
        return super().filter_value(spec, self.FILTER_FIELDS.get(key, key))

    def budget_problem(self, spec: StabilitySpec, budget: list[float]) -> str | None:
        expected = (0.0, float(spec.train.epochs), 0.0)
        return None if tuple(budget) == expected else f"budget {budget} is not the run's {list(expected)}"
