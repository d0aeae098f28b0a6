"""Night-over-night comparison of leaderboard numbers, for the nightly CI benchmark.

``summarize`` reduces a store to one row per (arch, dataset, pruner, sparsity, retrain):
mean retrained clean test accuracy over seeds and the number of seeds. ``compare`` joins
two summaries and flags every entry whose mean dropped by more than ``tolerance``
(absolute accuracy) or that disappeared; a nightly run on CPU is deterministic, so any
drop comes from a change in code or environment.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.store import MetricFilter, load_results
from harness.storage import StoreError

KEY = ["arch", "dataset", "pruner", "sparsity", "retrain"]


def read_summary(path: Path | str) -> pd.DataFrame:
    """A previous night's ``summary.parquet``; ``StoreError`` (one line) for anything else."""
    if not Path(path).is_file():
        raise StoreError(f"--previous {str(path)!r}: no such summary file")
    try:
        summary = pd.read_parquet(path)
    except Exception as exc:  # not Parquet, damaged: whatever the reader raises
        first = (str(exc).splitlines() or [""])[0][:160]
        raise StoreError(f"--previous {str(path)!r}: not a readable summary Parquet file ({first})") from None
    missing = [c for c in [*KEY, "accuracy"] if c not in summary.columns]
    if missing:
        raise StoreError(
            f"--previous {str(path)!r}: not a summary written by harness compare (no column {missing[0]!r})"
        )
    return summary


def summarize(results_dir: Path | str) -> pd.DataFrame:
    accuracy = MetricFilter(phases=["retrained"], eval_sets=["test"], metrics=["accuracy"], per_class=False)
    cells, metrics = load_results(results_dir, [accuracy])
    cells = cells[(cells.cell_type == "prune") & (cells.control == "none")]
    acc = metrics[["cell_id", "value"]]
    merged = cells[["cell_id", *KEY, "seed"]].merge(acc, on="cell_id")
    summary = merged.groupby(KEY, as_index=False).agg(accuracy=("value", "mean"), seeds=("seed", "nunique"))
    return summary.sort_values(KEY).reset_index(drop=True)


def compare(previous: pd.DataFrame, current: pd.DataFrame, tolerance: float = 0.01) -> pd.DataFrame:
    """Entries that regressed: ``status`` is ``dropped`` (accuracy fell) or ``missing``."""
    joined = previous.merge(current, on=KEY, how="left", suffixes=("_previous", "_current"))
    joined["change"] = joined["accuracy_current"] - joined["accuracy_previous"]
    missing = joined["accuracy_current"].isna()
    dropped = joined["change"] < -tolerance
    out = joined[missing | dropped].copy()
    out["status"] = ["missing" if m else "dropped" for m in missing[missing | dropped]]
    return out.sort_values("change").reset_index(drop=True)


def format_regressions(regressions: pd.DataFrame, tolerance: float) -> str:
    if regressions.empty:
        return f"no leaderboard regressions (tolerance {tolerance:.3f} accuracy)"
    lines = [f"{len(regressions)} leaderboard regressions (tolerance {tolerance:.3f} accuracy):"]
    for r in regressions.itertuples():
        change = (
            "missing tonight"
            if r.status == "missing"
            else f"{r.accuracy_previous:.4f} -> {r.accuracy_current:.4f}"
        )
        lines.append(f"  {r.arch} {r.dataset} {r.pruner} s={r.sparsity:g} {r.retrain}: {change}")
    return "\n".join(lines)
