"""Where a claim can be tested: the regime gates of ``shared/design/claims.md`` section 0b.

Each gate returns an ``analysis.verdict.Gate`` with its numbers; a failed gate makes the verdict
``out of regime``. The thresholds live in one place: ``core.hypotheses.REGIME_DEFAULTS``, overridden
by a study's ``[regime]`` table (``core.hypotheses.regime``).

- **collapse** (every claim): a scope is collapsed when the mean retrained accuracy is within
  ``collapse_margin`` (10 points) of chance, ``mean(A_t) < 1 / K + margin``; for per-class and
  distortion claims also when it keeps less than ``relative_collapse`` (half) of the dense
  accuracy above chance, ``(mean A_t - 1/K) / (mean A - 1/K) < 0.5``. The leaderboard uses
  the absolute rule (``is_collapsed``).
- **convergence**: the share of the scope's retrained cells whose kept epoch (metric
  ``kept_epoch``, the lowest-validation-loss epoch, 1-based) equals the recipe's last epoch
  (``last_epoch``: ``retrain_config.epochs`` for fine-tuning) must be at most
  ``max_last_epoch_share`` (0.2): otherwise the recipe was cut short. Cells that keep their last
  epoch by design (no ``kept_epoch`` stored) make the gate not applicable.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd

from analysis.verdict import Gate
from core.hypotheses import REGIME_DEFAULTS

COLLAPSE_MARGIN = REGIME_DEFAULTS["collapse_margin"]


def chance(classes: int) -> float:
    return 1.0 / classes if classes else float("nan")


def is_collapsed(accuracies, classes: int, margin: float = COLLAPSE_MARGIN) -> bool:
    a = np.asarray(accuracies, dtype=float)
    a = a[np.isfinite(a)]
    return bool(a.size) and float(a.mean()) < chance(classes) + margin


def _mean(values) -> float:
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def collapse_gate(
    accuracy, dense_accuracy, classes: int, thresholds: dict | None = None, relative: bool = False
) -> Gate:
    """The collapse gate on a scope's retrained (and dense) accuracies."""
    th = thresholds or REGIME_DEFAULTS
    a_t, a = _mean(accuracy), _mean(dense_accuracy)
    c = chance(classes)
    if not np.isfinite(a_t):
        return Gate("collapse", False, "no retrained accuracy stored")
    detail = f"mean A_t {a_t:.3f}, chance {c:.3f}"
    ok = a_t >= c + th["collapse_margin"]
    if not ok:
        detail += f" (within {th['collapse_margin']:g} of chance)"
    if relative:
        kept = (a_t - c) / (a - c) if np.isfinite(a) and a > c else float("nan")
        detail += f"; (A_t - chance)/(A - chance) = {kept:.3f} (needs >= {th['relative_collapse']:g})"
        ok = ok and np.isfinite(kept) and kept >= th["relative_collapse"]
    return Gate("collapse", bool(ok), detail)


@functools.lru_cache(maxsize=4096)
def last_epoch(spec_json: str) -> float:
    """The last retraining epoch of a cell's recipe (what ``kept_epoch`` counts, 1-based)."""
    try:
        spec = json.loads(spec_json)
        recipe, rc, train = spec["retrain"], spec["retrain_config"], spec["train"]
        if recipe == "weight_rewind":
            return float(max(0, train["epochs"] - rc["rewind_epoch"]))
        if recipe == "lr_rewind":
            return float(min(rc["epochs"], train["epochs"]))
        return float(rc["epochs"])
    except (KeyError, TypeError, ValueError):
        return float("nan")


def last_epoch_share(cells: pd.DataFrame, kept: pd.Series) -> tuple[float, int, int]:
    """(share, count, cells measured) of cells whose ``kept`` epoch equals their recipe's last."""
    epochs = cells["cell_id"].map(kept)
    measured = epochs.notna().to_numpy()
    if not measured.any():
        return float("nan"), 0, 0
    last = cells["spec_json"].map(last_epoch).to_numpy(float)[measured]
    at_last = np.isclose(epochs.to_numpy(float)[measured], last)
    return float(at_last.mean()), int(at_last.sum()), int(measured.sum())


def convergence_gate(cells: pd.DataFrame, kept: pd.Series, thresholds: dict | None = None) -> Gate:
    th = thresholds or REGIME_DEFAULTS
    share, count, total = last_epoch_share(cells, kept)
    if total == 0:
        return Gate("convergence", None, "no kept epoch stored: the recipe keeps its last epoch by design")
    limit = th["max_last_epoch_share"]
    detail = f"{count} of {total} cells kept their last epoch (share {share:.2f}, needs <= {limit:g})"
    return Gate("convergence", bool(share <= limit), detail)
