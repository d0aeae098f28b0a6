"""Every stored metric, declared once: name, unit, range, direction, aggregation, sets, verification.

lm-evaluation-harness declares each metric once with ``higher_is_better`` and its aggregation
(``lm_eval/api/registry.py``); here a ``Metric`` says, for one metric (or one family, ``{B}``
standing for a batch size):

- ``kinds``: the evaluation sets it is stored for (``core.schema.METRIC_SCHEMA``'s ``kind``:
  ``clean``, ``corruption``, ``summary``, ``ood``, ``model``; stability runs store ``clean`` rows);
- ``unit``, ``low`` / ``high``: its range (``harness verify`` refuses a value outside it; the report
  never shows an interval outside it), ``higher_is_better`` (None: neither, e.g. a count);
- ``aggregation``: how the report combines cells (``mean`` over seeds with a bootstrap interval;
  ``median`` for wall-clock times);
- ``verify``: how ``harness verify`` compares a re-run with a reported value off the reporting
  platform: ``absolute`` (within ``ABS_TOLERANCE``), ``relative`` (within ``REL_TOLERANCE`` of the
  larger magnitude) or ``never`` (wall-clock, differs between runs);
- ``source``: who computes it (``set``: from the logits on each evaluation set, ``per_class``,
  ``ood``, ``summary``, ``model``, ``stability``, ``prediction``), which
  ``benchmarks.evaluation`` reads to know what to compute;
- ``compute``: for a ``set`` or ``per_class`` metric, the function that computes it for every
  evaluation set at once, ``(logits, labels, groups, n_groups[, num_classes]) -> tensor``: a callable
  or ``"module:function"`` (imported when the evaluation runs, so this module stays torch-free).

Adding a metric computed from the logits is one declaration here (``docs/extending.md``); the
metric table of ``results/README.md`` is regenerated from it (``python -m core.metrics_table``).

The evaluation (``benchmarks``), the bundle checks (``harness.bundle_checks``, ``harness.verify``),
the report (``reports``) and the metric table of ``results/README.md`` (``core.metrics_table``,
checked by ``tests/test_metrics.py``) read these declarations; ``metric_row`` builds every stored
metric row and refuses a metric that is not declared here, or a set it is not declared for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

INF = math.inf
ABS_TOLERANCE = 0.02  # harness verify, off the reporting platform: bounded metrics
REL_TOLERANCE = 0.05  # the others: of the larger magnitude
PER_SET = ("clean", "corruption")
VERIFY_MODES = ("absolute", "relative", "never")
STABILITY_SETS = ("clean",)  # stability runs store their rows as clean-set rows (train, val, test)
COMPUTED = ("set", "per_class")  # the sources whose metrics name their function (``compute``)


@dataclass(frozen=True)
class Metric:
    """One stored metric (or a family, ``{B}`` in ``names`` standing for a batch size)."""

    names: tuple[str, ...]
    unit: str
    definition: str
    kinds: tuple[str, ...]
    low: float = -INF
    high: float = INF
    higher_is_better: bool | None = None
    aggregation: str = "mean"
    verify: str = "relative"
    source: str = "model"
    per_class: bool = False
    compute: Callable | str | None = None  # source set / per_class: its function, or "module:function"

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise ValueError(f"metric {self.names[0]!r}: verify {self.verify!r} is not one of {VERIFY_MODES}")
        if (self.source in COMPUTED) != (self.compute is not None):
            raise ValueError(
                f"metric {self.names[0]!r}: a metric of source {', '.join(COMPUTED)} names its function "
                f"(compute), and only those (source {self.source!r})"
            )
        if not self.low <= self.high:
            raise ValueError(f"metric {self.names[0]!r}: range [{self.low}, {self.high}] is empty")

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the declared range (NaN does: a missing value is no range error)."""
        return math.isnan(value) or self.low <= value <= self.high

    @property
    def direction(self) -> str:
        """``higher``, ``lower`` or ``neutral`` (the report's sort order)."""
        return {True: "higher", False: "lower", None: "neutral"}[self.higher_is_better]


def _fraction(names, definition, kinds=PER_SET, better=True, verify="absolute", **kw) -> Metric:
    return Metric(tuple(names), "fraction", definition, tuple(kinds), 0.0, 1.0, better, verify=verify, **kw)


MODEL = ("model",)
IMPL = "benchmarks.metrics:"  # where the built-in per-set metrics are implemented
STRUCTURED = "structured pruners only: "
_LATENCY = "median over repetitions of the CPU wall time of one forward"


def _latency(names, definition, unit="milliseconds", better=False) -> Metric:
    """A wall-clock row of the latency protocol: a median over repetitions, never compared by verify."""
    return Metric(tuple(names), unit, STRUCTURED + definition, MODEL, 0.0, INF, better, "median", "never")


METRICS: tuple[Metric, ...] = (
    # -- every evaluation set, from the logits (benchmarks.evaluation); in the order they are stored
    _fraction(["accuracy"], "top-1 accuracy", source="set", compute=f"{IMPL}grouped_accuracy"),
    Metric(
        ("loss",),
        "nats",
        "mean cross-entropy",
        PER_SET,
        0.0,
        INF,
        False,
        source="set",
        compute=f"{IMPL}grouped_nll",
    ),
    _fraction(
        ["ece"],
        "expected calibration error, 15 equal-width bins of the confidence `c = max_k p_k`: "
        "`sum_b (n_b/n) abs(acc_b - conf_b)` (Guo et al. 2017)",
        better=False,
        source="set",
        compute=f"{IMPL}grouped_ece",
    ),
    Metric(
        ("brier",),
        "squared probability",
        "multi-class Brier score `1/n sum_i sum_k (p_ik - 1[y_i = k])^2` (Brier 1950)",
        PER_SET,
        0.0,
        2.0,
        False,
        verify="absolute",
        source="set",
        compute=f"{IMPL}grouped_brier",
    ),
    Metric(
        ("nll",),
        "nats",
        "negative log-likelihood `-1/n sum_i log p_i[y_i]`; equal to `loss` for these softmax "
        "classifiers, kept as the calibration metric's name",
        PER_SET,
        0.0,
        INF,
        False,
        source="set",
        compute=f"{IMPL}grouped_nll",  # the same number as loss: computed once
    ),
    _fraction(
        ["recall"],
        "per class k (`class` = k): correct predictions of class k / examples of class k",
        source="per_class",
        per_class=True,
        compute=f"{IMPL}grouped_recall",
    ),
    Metric(
        ("prediction",),
        "class index",
        "with `[eval] predictions = true`, on `test`: the predicted class of each example (`step` = "
        "its index in the split), for analyses over populations of models",
        ("clean",),
        0.0,
        INF,
        source="prediction",
    ),
    # -- the corruption summary
    _fraction(
        ["mce"],
        "mean over corruption types of the mean top-1 error over severities 1-5 (CIFAR-10-C mCE "
        "without AlexNet normalisation; Hendrycks & Dietterich 2019)",
        ("summary",),
        better=False,
        verify="relative",
        source="summary",
    ),
    Metric(
        ("relative_mce",),
        "fraction",
        "`mce` minus the clean test error of the same phase",
        ("summary",),
        -1.0,
        1.0,
        False,
        source="summary",
    ),
    # -- OOD detection, per OOD set against the clean test set (stored in this order)
    _fraction(
        ["auroc_msp"],
        "area under the ROC curve separating clean test (positive) from the OOD set by the maximum "
        "softmax probability (Hendrycks & Gimpel 2017); 0.5 is chance",
        ("ood",),
        source="ood",
    ),
    _fraction(
        ["fpr95_msp"],
        "fraction of the OOD set scored (max softmax probability) at least as in-distribution as the "
        "threshold that keeps 95% of the clean test set (FPR at 95% TPR)",
        ("ood",),
        better=False,
        source="ood",
    ),
    _fraction(
        ["auroc_energy"],
        "the same AUROC by the negative energy `logsumexp_k z_k` (Liu et al. 2020)",
        ("ood",),
        source="ood",
    ),
    _fraction(
        ["fpr95_energy"], "FPR at 95% TPR by the negative energy", ("ood",), better=False, source="ood"
    ),
    # -- the model itself (kind model, eval_set model)
    Metric(
        ("kept_epoch",),
        "epoch",
        '`retrained` phase with `selection = "best_val_loss"`: the retraining epoch (1-based) whose '
        "weights were kept, the one of lowest validation loss",
        MODEL,
        0.0,
        INF,
    ),
    _fraction(
        ["achieved_sparsity"],
        "1 - (kept prunable weights / prunable weights), from the masks",
        MODEL,
        better=None,
    ),
    _fraction(
        ["unit_sparsity"],
        f"{STRUCTURED}units (filters / neurons) removed / prunable units (within one unit per layer of "
        "the target)",
        MODEL,
        better=None,
    ),
    Metric(
        ("prunable_total", "prunable_nonzero"),
        "count",
        "prunable weights, and those kept by the mask",
        MODEL,
        0.0,
    ),
    Metric(
        ("params_total", "params_nonzero"),
        "count",
        "all parameters, and non-zero effective parameters",
        MODEL,
        0.0,
    ),
    Metric(
        ("flops_dense",),
        "FLOPs per example",
        "forward pass of one example with every weight kept, from `torch.utils.flop_counter` (matmuls "
        "and convolutions, 2 FLOPs per multiply-add)",
        MODEL,
        0.0,
        INF,
        False,
    ),
    Metric(
        ("flops_effective",),
        "FLOPs per example",
        "mask-aware: each prunable layer's dense FLOPs times its weight density, plus the FLOPs outside "
        "prunable layers (`benchmarks/cost.py`)",
        MODEL,
        0.0,
        INF,
        False,
    ),
    _latency(
        ("latency_ms_b{B}",),
        f"{_LATENCY} of the compact model at batch B (1, 256), under the latency protocol below",
    ),
    _latency(
        ("latency_ms_b{B}_dense",),
        f"{_LATENCY} of the masked model with its masks folded in (the dense-shaped "
        "computation), timed alongside in the same layout",
    ),
    _latency(
        (
            "latency_ms_b{B}_p10",
            "latency_ms_b{B}_p90",
            "latency_ms_b{B}_dense_p10",
            "latency_ms_b{B}_dense_p90",
        ),
        "the spread of those repetitions: their 10th and 90th percentiles",
    ),
    _latency(
        ("latency_speedup_b{B}",),
        "`latency_ms_bB_dense / latency_ms_bB` (ratio of the medians); above 1 means the "
        "compact model is faster",
        unit="ratio",
        better=True,
    ),
    Metric(
        ("latency_protocol_warmup", "latency_protocol_repetitions", "latency_protocol_threads"),
        "count",
        f"{STRUCTURED}the protocol the latency rows were measured under: warm-up forwards and timed "
        "forwards of each model per batch size, torch threads",
        MODEL,
        0.0,
        INF,
        verify="never",
    ),
    Metric(
        ("latency_protocol_channels_last",),
        "0 or 1",
        f"{STRUCTURED}1 when both models and the input were timed in channels-last layout (models with "
        "2-D convolutions), 0 for the standard layout",
        MODEL,
        0.0,
        1.0,
        verify="never",
    ),
    Metric(
        ("flops_compact",),
        "FLOPs per example",
        f"{STRUCTURED}FLOPs of the physically smaller model",
        MODEL,
        0.0,
        INF,
        False,
    ),
    # -- stability runs (benchmarks.stability): phases epoch, event, final
    _fraction(
        ["acc_pre", "acc_post"],
        "phase `event`, on `test`: accuracy just before and just after the event (`step` = event index)",
        STABILITY_SETS,
        source="stability",
    ),
    Metric(
        ("stability",),
        "percent",
        "`event`: `S = 100 (1 - (acc_pre - acc_post) / acc_pre)` (Bartoldson et al. 2020); `final`: "
        "the run's mean S over its events (100 when it never prunes)",
        STABILITY_SETS,
        0.0,
        INF,
        True,
        source="stability",
    ),
    _fraction(
        ["units_fraction", "final_units_fraction"],
        "`event` / `final`: fraction of the pruned layers' units that are zero",
        STABILITY_SETS,
        better=None,
        source="stability",
    ),
    Metric(
        ("epoch", "best_epoch", "last_event_epoch"),
        "epoch",
        "`event`: the epoch after which the event happened; `final`: the epoch of the best test accuracy "
        "at or after the last event's, the last event's epoch",
        STABILITY_SETS,
        0.0,
        INF,
        source="stability",
    ),
    Metric(
        ("events",),
        "count",
        "`final`: the run's pruning events",
        STABILITY_SETS,
        0.0,
        INF,
        source="stability",
    ),
    _fraction(
        ["best_test_accuracy", "val_selected_test_accuracy", "train_accuracy_before_last_event"],
        "`final`: the best test accuracy at or after the last event's epoch (as the authors' code "
        "selects), the test accuracy at the epoch of best validation accuracy in that window, the "
        "full training split's accuracy just before the last event",
        STABILITY_SETS,
        source="stability",
    ),
    Metric(
        ("generalization_gap",),
        "fraction",
        "`final`: train minus test accuracy at the best-test epoch",
        STABILITY_SETS,
        -1.0,
        1.0,
        False,
        verify="absolute",
        source="stability",
    ),
)


def _pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(name).replace(re.escape("{B}"), r"\d+") + r"\Z")


_INDEX: tuple = ((), {}, {})  # (the METRICS it indexes, name -> Metric, family pattern -> Metric)


def _index() -> tuple[dict[str, Metric], dict]:
    """Name lookups of ``METRICS``, rebuilt whenever ``METRICS`` is replaced (a metric declared by a
    test for its duration: ``monkeypatch.setattr(core.metrics, "METRICS", (*METRICS, new))``)."""
    global _INDEX
    if _INDEX[0] is not METRICS:
        exact = {n: m for m in METRICS for n in m.names if "{" not in n}
        families = {_pattern(n): m for m in METRICS for n in m.names if "{" in n}
        _INDEX = (METRICS, exact, families)
    return _INDEX[1], _INDEX[2]


def metric(name: str) -> Metric | None:
    """The declaration of a stored metric name (a family's for ``latency_ms_b256``), or None."""
    exact, families = _index()
    found = exact.get(name)
    if found is None:
        found = next((m for pattern, m in families.items() if pattern.match(name)), None)
        if found is not None:
            exact[name] = found  # a family member, looked up once
    return found


def declared(name: str) -> Metric:
    """The declaration of ``name``; ``KeyError`` naming it when it has none."""
    found = metric(name)
    if found is None:
        raise KeyError(f"metric {name!r} is not declared in core.metrics")
    return found


def computed_by(source: str) -> list[str]:
    """The names of the metrics one ``source`` computes, in declaration order."""
    return [n for m in METRICS if m.source == source for n in m.names]


def metric_row(
    eval_set: str,
    kind: str,
    name: str,
    value: float,
    *,
    severity: int = 0,
    cls: int | None = None,
    step: int | None = None,
    phase: str | None = None,
) -> dict:
    """One stored metric row (``core.schema.METRIC_SCHEMA`` without ``cell_id``); the metric must be
    declared here for ``kind``."""
    spec = declared(name)
    if kind not in spec.kinds:
        raise ValueError(f"metric {name!r} is declared for {', '.join(spec.kinds)} sets, not {kind!r}")
    return {
        "phase": phase,
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": name,
        "class": cls,
        "step": step,
        "value": float(value),
    }
