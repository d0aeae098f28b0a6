"""Reading a results store back for comparisons between runs."""

from pathlib import Path

import pandas as pd

import core.store_diff
from harness.storage import METRIC_SCHEMA

METRIC_KEY = [name for name in METRIC_SCHEMA.names if name != "value"]  # a metric row's identity


def is_wall_clock(metric: pd.Series) -> pd.Series:
    """Wall-clock metrics (declared ``verify = "never"``: latency) are the one kind of value that is
    not expected to repeat bit for bit between two runs of the same cell."""
    return core.store_diff.wall_clock_rows(metric)


def comparable_tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cells (id, parent, status) and every reproducible metric row, sorted."""
    cells = pd.read_parquet(root / "cells")[["cell_id", "parent_id", "status"]].sort_values("cell_id")
    metrics = pd.read_parquet(root / "metrics")
    metrics = metrics[~is_wall_clock(metrics.metric)].sort_values(METRIC_KEY)
    return cells.reset_index(drop=True), metrics.reset_index(drop=True)
