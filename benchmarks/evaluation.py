"""Evaluate a model on every evaluation set of its dataset and return tidy metric rows.

A row is ``{"eval_set", "kind", "severity", "metric", "class", "step", "value"}``, ``class``
being ``None`` for whole-set metrics and ``step`` ``None`` outside curves; the harness adds
``cell_id`` and ``phase``. The sets (``results/README.md`` documents every name):

- ``train``, ``val`` and ``test`` (kind ``clean``, severity 0): accuracy, loss, per-class
  recall and calibration (ece, nll, brier);
- each corruption x severity 1-5 (kind ``corruption``, ``eval_set`` the corruption's name):
  the same metrics; plus ``corruptions`` (kind ``summary``): ``mce`` and ``relative_mce``;
- each OOD set (kind ``ood``, severity 0): ``auroc_msp``, ``auroc_energy``, ``fpr95_msp``,
  ``fpr95_energy`` against the clean test set as in-distribution;
- ``model`` (kind ``model``): sparsity, parameter counts, FLOPs and, given a compact model,
  CPU latency.

Which sets and how large (``core.spec.EvalConfig``): ``sets = "all"`` is every set above,
``"clean"`` the three clean splits only (a study whose analysis reads nothing else);
``shift_set_size`` / ``ood_set_size`` the examples per shift set.

All inputs of a dataset are concatenated once per process (``EvalBundle``), so a phase is
one forward pass in large batches under ``torch.inference_mode``, and every per-set metric
is computed at once by scatter-adds over a set index (``metrics.grouped_*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from benchmarks import cost, metrics
from benchmarks.datasets import DatasetSplits
from core.metrics import computed_by, metric_row
from core.spec import EvalConfig
from pruners.masks import sparsity_stats

EVAL_BATCH = 512  # on CPU, larger batches of small convolutions run slower (cache misses)
OOD_METRICS = tuple(computed_by("ood"))  # the declared OOD metrics, ``<statistic>_<score>``


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits in float32, in batches; on CUDA under bf16 autocast with 8x larger batches."""
    model.eval()
    if x.device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            step = batch_size * 8
            return torch.cat([model(x[i : i + step]).float() for i in range(0, x.shape[0], step)])
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def row(eval_set: str, kind: str, severity: int, metric: str, value: float, cls: int | None = None):
    """A metric row without its phase (``core.metrics.metric_row``: the metric must be declared)."""
    return metric_row(eval_set, kind, metric, value, severity=severity, cls=cls)


def classification_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    eval_set: str,
    kind: str = "clean",
    severity: int = 0,
) -> list[dict]:
    """Accuracy, loss, calibration (ece, nll, brier) and per-class recall of one set."""
    groups = torch.zeros(len(labels), dtype=torch.long)
    return _grouped_rows(logits.cpu(), labels.cpu(), groups, [(eval_set, kind, severity)], num_classes)


def _grouped_rows(logits, labels, groups, sets: list[tuple[str, str, int]], num_classes: int) -> list[dict]:
    """The declared per-set metrics (``core.metrics``, source ``set``, then ``per_class``) of every set."""
    n = len(sets)
    computed: dict = {}  # loss and nll are one function: computed once
    values = {}
    for name in computed_by("set"):
        fn = metrics.implementation(name)
        if fn not in computed:
            computed[fn] = fn(logits, labels, groups, n).tolist()
        values[name] = computed[fn]
    per_class = {
        name: metrics.implementation(name)(logits, labels, groups, n, num_classes).tolist()
        for name in computed_by("per_class")
    }
    rows = []
    for g, (eval_set, kind, severity) in enumerate(sets):
        rows += [row(eval_set, kind, severity, m, v[g]) for m, v in values.items()]
        for m, v in per_class.items():
            rows += [row(eval_set, kind, severity, m, r, k) for k, r in enumerate(v[g])]
    return rows


@dataclass
class EvalBundle:
    """Every evaluation input of one dataset, concatenated, with the set of each example."""

    data: DatasetSplits
    x: torch.Tensor
    y: torch.Tensor  # -1 for OOD examples
    groups: torch.Tensor
    sets: list[tuple[str, str, int]]  # (eval_set, kind, severity) of each group
    _on_device: dict[str, torch.Tensor] = field(default_factory=dict)

    def x_on(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = self.x if key == "cpu" else self.x.to(device)
        return self._on_device[key]

    def group_ids(self, kind: str) -> list[int]:
        return [g for g, s in enumerate(self.sets) if s[1] == kind]


_BUNDLES: dict[tuple, EvalBundle] = {}
CLEAN_SPLITS = ("train", "val", "test")


def evaluation_sets(
    data: DatasetSplits, cache_dir: Path | None = None, config: EvalConfig | None = None
) -> list[tuple[str, str, int, torch.Tensor, torch.Tensor]]:
    """(eval_set, kind, severity, x, y) for every set a phase is evaluated on: the clean train,
    val and test splits, then (``config.sets == "all"``) each corruption x severity and each
    OOD set (labels -1).

    ``cache_dir`` is where generated shift sets are cached (``<results>/cache``); None keeps
    them in memory only.
    """
    from benchmarks.shifts import shift_sets

    config = config or EvalConfig()
    sets = [(name, "clean", 0, *data.split(name)) for name in CLEAN_SPLITS]
    if config.sets == "all":
        for s in shift_sets(data, cache_dir, config.shift_set_size, config.ood_set_size):
            sets.append((s.name, s.kind, s.severity, torch.from_numpy(s.x), torch.from_numpy(s.y)))
    return sets


def eval_bundle(
    data: DatasetSplits, cache_dir: Path | None = None, config: EvalConfig | None = None
) -> EvalBundle:
    """The dataset's ``EvalBundle``, built once per process (per dataset, cache dir and sets)."""
    config = config or EvalConfig()
    key = (id(data), str(cache_dir), config.sets, config.shift_set_size, config.ood_set_size)
    bundle = _BUNDLES.get(key)
    if bundle is None or bundle.data is not data:
        sets = evaluation_sets(data, cache_dir, config)
        xs, ys, gs = zip(
            *[(x, y, torch.full((len(y),), g)) for g, (*_, x, y) in enumerate(sets)], strict=True
        )
        bundle = EvalBundle(
            data, torch.cat(xs).contiguous(), torch.cat(ys), torch.cat(gs), [s[:3] for s in sets]
        )
        _BUNDLES[key] = bundle
    return bundle


def _corruption_summary(rows: list[dict]) -> list[dict]:
    """mCE (mean over types of the mean top-1 error over severities 1-5, without AlexNet
    normalisation) and relative mCE (minus the clean test error), Hendrycks & Dietterich 2019."""
    errors: dict[str, list[float]] = {}
    clean_error = None
    for r in rows:
        if r["metric"] != "accuracy":
            continue
        if r["kind"] == "corruption":
            errors.setdefault(r["eval_set"], []).append(1.0 - r["value"])
        elif r["eval_set"] == "test":
            clean_error = 1.0 - r["value"]
    if not errors or clean_error is None:
        return []
    mce = sum(sum(e) / len(e) for e in errors.values()) / len(errors)
    return [
        row("corruptions", "summary", 0, "mce", mce),
        row("corruptions", "summary", 0, "relative_mce", mce - clean_error),
    ]


def _ood_rows(bundle: EvalBundle, logits: torch.Tensor) -> list[dict]:
    ood = bundle.group_ids("ood")
    if not ood:
        return []
    test = bundle.sets.index(("test", "clean", 0))
    scores = {name: fn(logits).numpy() for name, fn in metrics.OOD_SCORES.items()}
    groups = bundle.groups.numpy()
    rows = []
    for g in ood:
        name = bundle.sets[g][0]
        for metric in OOD_METRICS:  # auroc_msp, fpr95_msp, auroc_energy, fpr95_energy
            statistic, score = metric.split("_", 1)
            s = scores[score]
            rows.append(
                row(
                    name,
                    "ood",
                    0,
                    metric,
                    metrics.OOD_STATISTICS[statistic](s[groups == test], s[groups == g]),
                )
            )
    return rows


def prediction_rows(bundle: EvalBundle, logits: torch.Tensor) -> list[dict]:
    """The predicted label of every clean test example (``step`` = its index in the split), for
    analyses over populations of models (Hooker et al.'s pruning-identified exemplars)."""
    test = bundle.sets.index(("test", "clean", 0))
    labels = logits[bundle.groups == test].argmax(1).tolist()
    return [metric_row("test", "clean", "prediction", float(k), step=i) for i, k in enumerate(labels)]


def evaluate(
    model: nn.Module,
    data: DatasetSplits,
    phase: str,
    cache_dir: Path | None = None,
    compact_model: nn.Module | None = None,
    config: EvalConfig | None = None,
) -> list[dict]:
    """Every metric row of one phase: each evaluation set (``config``), plus model-level counts
    and cost.

    ``compact_model`` is the physically smaller model a structured pruner hands back; its CPU
    latency is measured against the masked model's (masks folded in).
    """
    bundle = eval_bundle(data, cache_dir, config)
    device = next(model.parameters()).device
    logits = predict_logits(model, bundle.x_on(device)).double().cpu()
    labelled = bundle.y >= 0
    index = torch.full((len(bundle.sets),), -1, dtype=torch.long)
    kept = [g for g, s in enumerate(bundle.sets) if s[1] != "ood"]
    index[kept] = torch.arange(len(kept))
    rows = _grouped_rows(
        logits[labelled],
        bundle.y[labelled],
        index[bundle.groups[labelled]],
        [bundle.sets[g] for g in kept],
        data.num_classes,
    )
    rows += _corruption_summary(rows)
    rows += _ood_rows(bundle, logits)
    if config is not None and config.predictions:
        rows += prediction_rows(bundle, logits)
    model_rows = {**sparsity_stats(model), **cost.flops(model, data.input_shape)}
    if compact_model is not None:
        model_rows.update(cost.latency(model, compact_model, data.input_shape))
    rows += [row("model", "model", 0, k, v) for k, v in model_rows.items()]
    return [{**r, "phase": phase} for r in rows]
