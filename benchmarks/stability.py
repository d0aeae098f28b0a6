"""The stability study: structured pruning *during* training (Bartoldson et al., NeurIPS 2020).

Bartoldson, Morcos, Barbu & Erlebacher, "The Generalization-Stability Tradeoff in Neural
Network Pruning", NeurIPS 2020. A run trains from scratch and, at scheduled optimizer steps,
removes whole units (conv filters / hidden neurons) of the *last layers*; the accuracy just
before and just after each event (``acc_pre`` / ``acc_post``, full clean test set, no
training in between) gives its instability ``I = (acc_pre - acc_post) / acc_pre`` and
stability ``S = 100 * (1 - I)``; a run's stability is the mean ``S`` over its events (100
when it never prunes). The claim under test (``analysis.stability``): less stable pruning
-> better final generalization; the benefit does not need permanent removal.

Protocol in miniature (``shared/design/claims.md`` section 3):

- pruned layers: ``mlp_256x2`` the last hidden layer (256 neurons; a unit is one row of the
  Linear weight plus its bias); ``cnn_32x3`` the last two conv layers (32 filters each; a
  unit is one output filter plus its BatchNorm scale and shift, so ``ReLU(BN(0)) = 0``).
  Each layer loses ``round(final_fraction * units)`` units by the end; the per-event count
  is allocated per layer, units ranked within their layer.
- schedules (``SCHEDULES``): the same final count reached in events of about ``1%`` of the
  target (``many_small``) or about ``13%`` (``few_large``); the event count is
  ``min(round(1 / step), units to prune per layer)`` so that every event removes >= 1 unit.
  Events are spread evenly over optimizer steps from the end of epoch 1 to
  ``PRUNE_END`` of the run.
- targets: ``prune_s`` the lowest-score units, ``prune_l`` the highest, ``prune_r`` random
  (seeded); ``none`` is the no-pruning baseline.
- scores: ``l2`` the L2 norm of the unit's incoming weights; ``ebn`` (BatchNorm layers only)
  the expected post-ReLU output of a BN channel with scale ``gamma`` and shift ``beta`` for
  ``z ~ N(0, 1)``: ``E[ReLU(gamma z + beta)] = beta * Phi(beta/|gamma|) + |gamma| * phi(beta/|gamma|)``.
- variants: ``permanent`` (pruned units are held at zero until the end), ``noise_zero``
  (the targeted units are zeroed and held at zero for ``NOISE_ZERO_BATCHES`` optimizer steps,
  then released to regrow), ``noise_gauss`` (Gaussian noise of the unit's own weight std
  is added to the targeted units once). Noise variants target, at each event, as many units
  as the permanent schedule removes at that event, chosen among all units of the layer.
- training: Adam, lr 1e-3, no weight decay, constant lr, no augmentation (``STABILITY_TRAIN``).

Rows (tidy, as ``harness.storage.METRIC_SCHEMA`` minus ``cell_id``):
``phase='epoch'`` train/test accuracy after every epoch (``step`` = epoch);
``phase='event'`` on ``eval_set='test'``: ``acc_pre``, ``acc_post``, ``stability`` (S of the
event), ``units_fraction`` (fraction of the targeted layers' units zeroed just after the
event), ``epoch`` (epoch during which it happened), ``step`` = event index;
``phase='final'``: accuracy/loss/recall on train and test, and on ``test``: ``stability``
(run mean S), ``best_test_accuracy`` and ``generalization_gap`` (train - test accuracy at
the epoch of the best test accuracy at or after the last event), ``best_epoch``,
``last_event_epoch``, ``events``, ``final_units_fraction``.

No I/O; the harness stores the rows.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from benchmarks.archs import build_arch, unit_groups
from benchmarks.datasets import DATASETS, load_dataset
from benchmarks.evaluation import classification_rows, predict_logits
from benchmarks.metrics import accuracy
from benchmarks.spec import content_id
from benchmarks.training import TrainConfig, steps_per_epoch, train

STABILITY_VERSION = 1
TARGETS = ("prune_s", "prune_l", "prune_r", "none")
SCORES = ("l2", "ebn")
SCHEDULES = {"many_small": 0.01, "few_large": 0.13}  # fraction of the target removed per event
VARIANTS = ("permanent", "noise_zero", "noise_gauss")
SUPPORTED_ARCHS = ("mlp_256x2", "cnn_32x3", "resnet_16x3", "vgg_11_bn", "resnet_18")
NOISE_ZERO_BATCHES = 10  # X: steps a noise_zero event holds its units at zero
PRUNE_END = 0.6  # events end at this fraction of the run's optimizer steps
STABILITY_TRAIN = TrainConfig(
    epochs=8, batch_size=128, lr=1e-3, weight_decay=0.0, optimizer="adam", schedule="constant"
)
NONE = "none"  # score / schedule / variant of the no-pruning baseline


@dataclass(frozen=True)
class StabilitySpec:
    """One training run of the stability study (a cell whose id starts with ``s``)."""

    arch: str
    dataset: str
    seed: int
    target: str
    score: str
    schedule: str
    variant: str
    final_fraction: float
    train: TrainConfig = field(default_factory=lambda: STABILITY_TRAIN)
    study: str = "stability"

    def __post_init__(self) -> None:
        if self.arch not in SUPPORTED_ARCHS:
            raise ValueError(f"arch {self.arch!r}: the stability study supports {', '.join(SUPPORTED_ARCHS)}")
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r} is not one of: {', '.join(TARGETS)}")
        if self.target == NONE:
            if (self.score, self.schedule, self.variant) != (NONE, NONE, NONE):
                raise ValueError("target 'none' (baseline) needs score, schedule and variant 'none'")
            return
        if self.score not in SCORES:
            raise ValueError(f"score {self.score!r} is not one of: {', '.join(SCORES)}")
        if self.score == "ebn" and self.arch == "mlp_256x2":
            raise ValueError("score 'ebn' needs BatchNorm layers; mlp_256x2 has none (use 'l2')")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of: {', '.join(SCHEDULES)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant {self.variant!r} is not one of: {', '.join(VARIANTS)}")
        if not 0.0 < self.final_fraction < 1.0:
            raise ValueError(f"final_fraction {self.final_fraction} is outside (0, 1)")

    def to_dict(self) -> dict:
        return {"stability_version": STABILITY_VERSION, **asdict(self), "train": self.train.as_dict()}

    def cell_id(self) -> str:
        return "s" + content_id(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> StabilitySpec:
        d = {k: v for k, v in d.items() if k != "stability_version"}
        if isinstance(d.get("train"), dict):
            d["train"] = TrainConfig(**d["train"])
        return cls(**d)


STABILITY_KEYS = {
    "datasets": "list of dataset names",
    "archs": f"list, subset of {list(SUPPORTED_ARCHS)}",
    "seeds": "list of non-negative integers",
    "targets": f"list, subset of {list(TARGETS[:3])} (the 'none' baseline is added by 'baseline')",
    "scores": f"list, subset of {list(SCORES)} ('ebn' is skipped for archs without BatchNorm)",
    "schedules": f"list, subset of {list(SCHEDULES)}",
    "variants": f"list, subset of {list(VARIANTS)}",
    "final_fraction": "number in (0, 1)",
    "baseline": "bool: add one no-pruning run per (dataset, arch, seed); default true",
    "epochs": "int >= 2: training epochs (overrides the recipe)",
    "batch_size": "int >= 2 (overrides the recipe)",
}


def expand_stability(table: dict, train: TrainConfig | None = None) -> list[StabilitySpec]:
    """The runs of a preset's ``[stability]`` table: the product of its axes, plus baselines.

    ``train=None`` uses ``STABILITY_TRAIN`` (Adam lr 1e-3, no weight decay, constant lr);
    ``epochs`` / ``batch_size`` in the table override the recipe's. Combinations a run
    cannot do (``ebn`` on an arch without BatchNorm) are skipped. A bad key or value
    raises ``ValueError`` naming the key and what would be valid.
    """

    def bad(key: str, message: str) -> ValueError:
        return ValueError(f"[stability] key {key!r}: {message}; valid: {STABILITY_KEYS.get(key, '')}")

    for key in table:
        if key not in STABILITY_KEYS:
            return_msg = ", ".join(STABILITY_KEYS)
            raise ValueError(f"[stability] unknown key {key!r}; valid keys: {return_msg}")
    for key in ("datasets", "archs", "seeds", "targets", "scores", "schedules", "variants"):
        if key not in table:
            raise bad(key, "is missing")
        if not isinstance(table[key], list) or not table[key]:
            raise bad(key, "must be a non-empty list")

    def check(key: str, valid: tuple[str, ...] | list[str]) -> list[str]:
        for v in table[key]:
            if v not in valid:
                raise bad(key, f"{v!r} is not one of {list(valid)}")
        return list(dict.fromkeys(table[key]))

    datasets = check("datasets", DATASETS.names("*"))
    archs = check("archs", SUPPORTED_ARCHS)
    targets = check("targets", TARGETS[:3])
    scores = check("scores", SCORES)
    schedules = check("schedules", list(SCHEDULES))
    variants = check("variants", VARIANTS)
    seeds = table["seeds"]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise bad("seeds", f"{seeds!r} must all be non-negative integers")
    fraction = table.get("final_fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise bad("final_fraction", f"{fraction!r} is not a number in (0, 1)")
    baseline = table.get("baseline", True)
    if not isinstance(baseline, bool):
        raise bad("baseline", f"{baseline!r} is not a bool")
    recipe = train if train is not None else STABILITY_TRAIN
    for key, low in (("epochs", 2), ("batch_size", 2)):
        if key in table:
            v = table[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise bad(key, f"{v!r} is not an integer >= {low}")
            recipe = replace(recipe, **{key: v})

    specs: list[StabilitySpec] = []
    for ds, arch, seed in itertools.product(datasets, archs, seeds):
        if baseline:
            specs.append(StabilitySpec(arch, ds, seed, NONE, NONE, NONE, NONE, float(fraction), recipe))
        for tg, sc, sch, var in itertools.product(targets, scores, schedules, variants):
            if sc == "ebn" and arch == "mlp_256x2":
                continue
            specs.append(StabilitySpec(arch, ds, seed, tg, sc, sch, var, float(fraction), recipe))
    return specs


# -- units of the last layers -------------------------------------------------------------


@dataclass
class _Layer:
    """The weights that make up the units of one pruned layer (unit = output index)."""

    weight: torch.Tensor  # (units, ...) incoming weights
    extra: list[torch.Tensor]  # per-unit vectors zeroed with the unit (bias, BN gamma, BN beta)
    bn: nn.Module | None

    @property
    def units(self) -> int:
        return self.weight.shape[0]

    def params(self) -> list[torch.Tensor]:
        return [self.weight, *self.extra]


def target_layers(model: nn.Module, arch: str) -> list[_Layer]:
    """The pruned layers, from the arch's declared ``unit_groups`` (``benchmarks.archs``):
    ``mlp_256x2`` its last hidden Linear; every other arch its last two groups (``cnn_32x3``
    its last two conv layers; ``vgg_11_bn`` its last two convs, as Bartoldson et al. prune
    VGG-11's last layers; residual nets the inner convs of their last two blocks)."""
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"arch {arch!r}: the stability study supports {', '.join(SUPPORTED_ARCHS)}")
    groups = unit_groups(model)
    modules = dict(model.named_modules())
    out = []
    for group in groups[-1:] if arch == "mlp_256x2" else groups[-2:]:
        producer = modules[group.producer]
        bn = modules[group.norm] if group.norm is not None else None
        extra = ([bn.weight, bn.bias] if bn is not None else []) + (
            [producer.bias] if producer.bias is not None else []
        )
        out.append(_Layer(producer.weight, extra, bn))
    return out


def unit_scores(layer: _Layer, score: str) -> torch.Tensor:
    """``l2``: ``||w_u||_2`` of each unit's incoming weights; ``ebn``: ``E[ReLU(gamma z + beta)]``."""
    with torch.no_grad():
        if score == "l2":
            return layer.weight.detach().flatten(1).norm(dim=1).double()
        if score == "ebn":
            if layer.bn is None:
                raise ValueError("score 'ebn' needs a BatchNorm layer after the pruned layer")
            return expected_bn_relu(layer.bn.weight.detach().double(), layer.bn.bias.detach().double())
    raise ValueError(f"score {score!r} is not one of: {', '.join(SCORES)}")


def expected_bn_relu(gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``E[ReLU(gamma z + beta)] = beta Phi(beta/|gamma|) + |gamma| phi(beta/|gamma|)``, z ~ N(0,1)."""
    g = gamma.abs().clamp_min(1e-12)
    t = beta / g
    normal = torch.distributions.Normal(torch.zeros_like(t), torch.ones_like(t))
    return beta * normal.cdf(t) + g * normal.log_prob(t).exp()


def event_counts(units: int, final_fraction: float, step_fraction: float, n_events: int) -> list[int]:
    """Units removed at each event: cumulative ``round(T * (i + 1) / n_events)``, ``T = round(f * units)``."""
    total = round(final_fraction * units)
    cumulative = [round(total * (i + 1) / n_events) for i in range(n_events)]
    return [b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True)]


def schedule_events(spec: StabilitySpec, layer_units: list[int], window_steps: int) -> int:
    """Number of events: ``min(round(1 / step), max units to prune per layer, steps in the window)``.

    Every event removes >= 1 unit from some layer, and no two events share an optimizer step.
    """
    step = SCHEDULES[spec.schedule]
    most = max(round(spec.final_fraction * u) for u in layer_units)
    return max(1, min(round(1.0 / step), most, window_steps))


def event_window(steps_epoch: int, total_steps: int) -> tuple[int, int]:
    """First and last optimizer step (0-based) of the pruning window: epoch 1's end to ``PRUNE_END``."""
    first = steps_epoch - 1
    return first, max(first, math.floor(PRUNE_END * total_steps) - 1)


def event_steps(n_events: int, steps_epoch: int, total_steps: int) -> list[int]:
    """Optimizer steps after which the events happen, evenly spread over the window (distinct)."""
    first, last = event_window(steps_epoch, total_steps)
    if n_events == 1:
        return [last]
    return [round(first + (last - first) * i / (n_events - 1)) for i in range(n_events)]


# -- one run --------------------------------------------------------------------------------


def _row(phase: str, eval_set: str, metric: str, value: float, step: int | None = None) -> dict:
    return {
        "phase": phase,
        "eval_set": eval_set,
        "kind": "clean",
        "severity": 0,
        "metric": metric,
        "class": None,
        "step": step,
        "value": float(value),
    }


def run_stability(spec: StabilitySpec, device: str = "cpu") -> list[dict]:
    """Train one run of the study and return its tidy metric rows (see the module docstring)."""
    data = load_dataset(spec.dataset)
    x, y = data.x_train.to(device), data.y_train.to(device)
    xt, yt = data.x_test.to(device), data.y_test.to(device)
    torch.manual_seed(spec.seed)
    model = build_arch(spec.arch, data.input_shape, data.num_classes).to(device)
    layers = target_layers(model, spec.arch)
    per_epoch = steps_per_epoch(x.shape[0], spec.train.batch_size)
    total = per_epoch * max(spec.train.epochs, 1)
    rows: list[dict] = []

    # per layer: permanent keep-mask (1 keep, 0 pruned) and active temporary zeroings
    keep = [torch.ones(la.units, dtype=torch.bool, device=device) for la in layers]
    held: list[tuple[int, torch.Tensor, int]] = []  # (layer, units, steps left)
    if spec.target == NONE:
        counts: list[list[int]] = [[] for _ in layers]
        steps: list[int] = []
    else:
        first, last = event_window(per_epoch, total)
        n_events = schedule_events(spec, [la.units for la in layers], last - first + 1)
        counts = [
            event_counts(la.units, spec.final_fraction, SCHEDULES[spec.schedule], n_events) for la in layers
        ]
        steps = event_steps(n_events, per_epoch, total)
    step_to_event = {s: i for i, s in enumerate(steps)}
    rng = torch.Generator().manual_seed(spec.seed * 7_919 + 101)
    event_epochs: list[int] = []

    def zero_units(li: int, units: torch.Tensor) -> None:
        with torch.no_grad():
            for p in layers[li].params():
                p[units] = 0.0

    def enforce() -> None:
        for li in range(len(layers)):
            pruned = (~keep[li]).nonzero().flatten()
            if pruned.numel():
                zero_units(li, pruned)
        for li, units, _ in held:
            zero_units(li, units)

    def test_accuracy() -> float:
        return accuracy(predict_logits(model, xt), yt)

    def choose(li: int, k: int) -> torch.Tensor:
        eligible = (
            keep[li].nonzero().flatten()
            if spec.variant == "permanent"
            else torch.arange(layers[li].units, device=device)
        )
        if k <= 0:
            return eligible[:0]
        if spec.target == "prune_r":
            pick = torch.randperm(eligible.numel(), generator=rng)[:k].to(device)
            return eligible[pick]
        s = unit_scores(layers[li], spec.score)[eligible]
        order = torch.argsort(s, stable=True, descending=spec.target == "prune_l")
        return eligible[order[:k]]

    def apply_event(i: int) -> None:
        for li, layer in enumerate(layers):
            units = choose(li, counts[li][i])
            if units.numel() == 0:
                continue
            if spec.variant == "permanent":
                keep[li][units] = False
                zero_units(li, units)
            elif spec.variant == "noise_zero":
                held.append((li, units, NOISE_ZERO_BATCHES))
                zero_units(li, units)
            else:  # noise_gauss: one unit's own std, once
                with torch.no_grad():
                    w = layer.weight[units]
                    std = w.flatten(1).std(dim=1).view(-1, *([1] * (w.dim() - 1)))
                    noise = torch.randn(w.shape, generator=rng).to(device) * std
                    layer.weight[units] = w + noise

    def zeroed_fraction() -> float:
        zero = 0
        for la in layers:
            zero += int((la.weight.detach().flatten(1).abs().sum(1) == 0).sum())
        return zero / sum(la.units for la in layers)

    def step_hook(global_step: int, _total: int) -> None:
        nonlocal held
        enforce()
        held = [(li, u, n - 1) for li, u, n in held if n - 1 > 0]
        if global_step in step_to_event:
            i = step_to_event[global_step]
            acc_pre = test_accuracy()
            apply_event(i)
            acc_post = test_accuracy()
            model.train()
            s = stability_of_event(acc_pre, acc_post)
            epoch = global_step // per_epoch
            event_epochs.append(epoch)
            rows.extend(
                [
                    _row("event", "test", "acc_pre", acc_pre, i),
                    _row("event", "test", "acc_post", acc_post, i),
                    _row("event", "test", "stability", s, i),
                    _row("event", "test", "units_fraction", zeroed_fraction(), i),
                    _row("event", "test", "epoch", epoch, i),
                ]
            )

    curve: list[tuple[int, float, float]] = []

    def epoch_hook(epoch: int) -> None:
        enforce()
        tr = accuracy(predict_logits(model, x), y)
        te = test_accuracy()
        model.train()
        curve.append((epoch, tr, te))
        rows.extend(
            [_row("epoch", "train", "accuracy", tr, epoch), _row("epoch", "test", "accuracy", te, epoch)]
        )

    train(model, x, y, spec.train, spec.seed, step_hook=step_hook, epoch_hook=epoch_hook)
    model.eval()

    for eval_set, xs, ys in (("train", x, y), ("test", xt, yt)):
        rows += [
            {"phase": "final", "step": None, **r}
            for r in classification_rows(predict_logits(model, xs), ys, data.num_classes, eval_set)
        ]
    event_s = [r["value"] for r in rows if r["phase"] == "event" and r["metric"] == "stability"]
    last = max(event_epochs) if event_epochs else 0
    best = best_after(curve, last)
    summary = {
        "stability": run_stability_value(event_s),
        "best_test_accuracy": best[2] if best else float("nan"),
        "generalization_gap": best[1] - best[2] if best else float("nan"),
        "best_epoch": best[0] if best else float("nan"),
        "last_event_epoch": last if event_epochs else float("nan"),
        "events": len(event_s),
        "final_units_fraction": zeroed_fraction() if spec.variant == "permanent" else 0.0,
    }
    rows += [_row("final", "test", k, v) for k, v in summary.items()]
    return rows


def stability_of_event(acc_pre: float, acc_post: float) -> float:
    """``S = 100 * (1 - I)``, ``I = (acc_pre - acc_post) / acc_pre`` (Bartoldson et al. 2020)."""
    if acc_pre <= 0:
        return float("nan")
    return 100.0 * (1.0 - (acc_pre - acc_post) / acc_pre)


def run_stability_value(event_stabilities: list[float]) -> float:
    """A run's stability: mean S over its events; 100 for a run that never prunes."""
    vals = [s for s in event_stabilities if not math.isnan(s)]
    return sum(vals) / len(vals) if vals else 100.0


def best_after(curve: list[tuple[int, float, float]], last_event_epoch: int):
    """(epoch, train acc, test acc) with the best test accuracy at epochs >= the last event's."""
    after = [c for c in curve if c[0] >= last_event_epoch]
    if not after:
        return None
    return max(after, key=lambda c: (c[2], -c[0]))
