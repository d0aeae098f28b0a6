"""What the report shows of a result: the page's one mean-and-interval and the figure primitives.

Shared by the report (``reports``) and the analyses, which draw their own figures
(``analysis.base.Analysis.figure``): ``mean_ci`` is every mean with an interval on the page (the
percentile bootstrap over seeds, Efron & Tibshirani 1993, ch. 13, which never leaves the range of
the values it resamples, so never the metric's); ``Figure``, ``theme`` and ``legend_outside`` are
the rules every figure keeps (``reports.figures.layout_problems`` checks them). matplotlib and
seaborn are imported by the functions that draw, never by this module's import.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
DPI = 100
PAGE_WIDTH_IN = 13.0  # the page is at most 1400 px wide


def mean_ci(values, low: float | None = None, high: float | None = None, key: object = 0) -> tuple:
    """``(mean, ci_low, ci_high, n)`` of ``values`` (one per seed): the percentile bootstrap of the
    mean at ``CI_LEVEL`` (scipy.stats.bootstrap), seeded by ``key`` so the page is reproducible.

    The interval stays within the values' range, hence within ``[low, high]`` for a metric
    bounded there (the bounds are asserted, not used to clip). One value: no interval.
    """
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return (math.nan, math.nan, math.nan, 0)
    mean = float(a.mean())
    if a.size == 1 or np.all(a == a[0]):
        lo = hi = mean if a.size > 1 else math.nan
    else:
        seed = int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:4], "little")
        res = stats.bootstrap(
            (a,),
            np.mean,
            confidence_level=CI_LEVEL,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            random_state=np.random.default_rng(seed),
            vectorized=True,
        )
        # a resampled mean lies within [min, max]; clip the last-bit rounding of the summation
        lo = float(np.clip(res.confidence_interval.low, a.min(), a.max()))
        hi = float(np.clip(res.confidence_interval.high, a.min(), a.max()))
    for bound in (lo, hi):
        if math.isfinite(bound):
            assert low is None or bound >= low - 1e-12, (bound, low)
            assert high is None or bound <= high + 1e-12, (bound, high)
    return (mean, lo, hi, int(a.size))


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    fig: Any  # a matplotlib Figure
    section: str = "leaderboard"
    file: str = ""


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive backend every figure of the report is drawn on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def theme() -> None:
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)


def legend_outside(ax, title: str = "") -> None:
    """Move an axes' legend outside the plotting area, to the figure's right."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend():
        ax.get_legend().remove()
    if handles:
        ax.figure.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            title=title or None,
            fontsize=8,
        )
