"""Where a claim can be tested: collapsed scopes (``shared/design/claims.md`` section 0, "Regime").

A scope whose pruned models have collapsed says nothing about per-class structure or
robustness. A scope (a set of cells) is ``collapsed`` when the mean test accuracy of its
pruned-and-retrained models is within ``COLLAPSE_MARGIN`` of chance (``1 / classes``):
``mean(A_t) < 1 / K + COLLAPSE_MARGIN``. Collapsed scopes are flagged in every table, left out
of verdicts and rankings, and counted. The leaderboard uses the same rule.
"""

from __future__ import annotations

import numpy as np

COLLAPSE_MARGIN = 0.10


def chance(classes: int) -> float:
    return 1.0 / classes if classes else float("nan")


def is_collapsed(accuracies, classes: int, margin: float = COLLAPSE_MARGIN) -> bool:
    a = np.asarray(accuracies, dtype=float)
    a = a[np.isfinite(a)]
    return bool(a.size) and float(a.mean()) < chance(classes) + margin
