"""Run every claim test on a results directory and write the claims table.

``run_analysis(results_dir, out_dir=None)`` reads ``<results>/cells`` and ``<results>/metrics``
(Parquet only), runs the claim families (one module each: ``intensification``,
``per_class``, ``generalization_stability``, ``potential``, ``retrain_recipe``), applies
Benjamini-Hochberg within each claim and the verdict rule of ``analysis.table``, and writes
``<out_dir or results/claims>/claims.parquet``, ``claims.json`` and ``per_class.parquet``
atomically (temporary file + ``os.replace``), and ``sanity.parquet`` (``analysis.sanity``: magnitude
pruners against ``random`` at sparsity >= 0.9). ``verdict_summary`` / ``render_summary`` give
the short per-claim table that ``run-all`` prints.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import generalization_stability, intensification, per_class, potential, retrain_recipe, sanity
from analysis.load import load_claim_results
from analysis.table import finalize, render_markdown, render_text, summarize

CLAIM_IDS = (
    "intensification",
    "intensification_trend",
    "up_vs_magnitude",
    "deintensification_low_sparsity",
    "per_class_damage",
    "stability_accuracy",
    "stability_gap",
    "prune_l_vs_prune_s",
    "noise_vs_permanent",
    "prune_potential",
    "excess_error",
    "retrain_recipe",
)


def analyze_frames(cells: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claims table and the per-class table from in-memory ``cells`` / ``metrics`` frames."""
    rows: list[dict] = []
    rows += intensification.analyze(cells, metrics)
    pc_rows, per_class_table = per_class.analyze(cells, metrics)
    rows += pc_rows
    rows += generalization_stability.analyze(cells, metrics)
    rows += potential.analyze(cells, metrics)
    rows += retrain_recipe.analyze(cells, metrics)
    table = finalize(rows)
    order = {c: i for i, c in enumerate(CLAIM_IDS)}
    rank = np.array([order.get(c, 99) for c in table["claim"].tolist()], dtype=np.int64)
    table = table.iloc[np.argsort(rank, kind="stable")]  # by claim order, then row order
    return table.reset_index(drop=True), per_class_table


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_value(v):
    if (
        v is pd.NA
        or v is None
        or (isinstance(v, float) and math.isnan(v))
        or (isinstance(v, float) and math.isinf(v))
    ):
        return None
    return v.item() if hasattr(v, "item") else v


def _json_records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, NaN / inf / NA as None (built column by column)."""
    cols = [[_json_value(v) for v in df[c].astype(object).tolist()] for c in df.columns]
    names = list(df.columns)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)] if names else []


def write_claims(table: pd.DataFrame, out_dir: Path, per_class_table: pd.DataFrame | None = None) -> None:
    _atomic(out_dir / "claims.parquet", lambda p: table.to_parquet(p, index=False))
    text = json.dumps(_json_records(table), indent=1, allow_nan=False)
    _atomic(out_dir / "claims.json", lambda p: Path(p).write_text(text))
    if per_class_table is not None and not per_class_table.empty:
        _atomic(out_dir / "per_class.parquet", lambda p: per_class_table.to_parquet(p, index=False))


def run_analysis(results_dir: str | Path, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Analyse a results directory; write and return the claims table."""
    cells, metrics = load_claim_results(results_dir)
    table, per_class_table = analyze_frames(cells, metrics)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "claims"
    write_claims(table, out, per_class_table)
    checks = sanity.magnitude_vs_random(cells, metrics)
    _atomic(out / "sanity.parquet", lambda p: checks.to_parquet(p, index=False))
    return table


def verdict_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per claim: number of rows tested, supported / contradicted / inconclusive, overall."""
    return summarize(table)


def render_summary(table: pd.DataFrame, markdown: bool = False) -> str:
    """The per-claim verdict table as fixed-width text (``run-all``) or markdown (report)."""
    s = verdict_summary(table)
    if markdown:
        return render_markdown(
            s, ["claim", "rows", "supported", "contradicted", "inconclusive", "overall", "strongest"]
        )
    return render_text(s)


def render_claims(table: pd.DataFrame) -> str:
    """The full claims table as markdown."""
    return render_markdown(table)
