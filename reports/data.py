"""What the report shows, read from a results store: one frame per cell, the analysis outputs.

Reads through the store's one reader (``core.store``) and the files ``harness analyze`` writes
(``<results>/claims/``); never trains, never imports torch-side code. Keys: a *scenario* is
``(arch, dataset)``; a leaderboard *column* is ``(arch, dataset, sparsity)``; an *entry* is
``(pruner, retrain)``.

Every mean with an interval on the page comes from :func:`mean_ci`: the mean over seeds with
a percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13), which never leaves the
range of the values it resamples, so never the metric's range.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.display import BOOTSTRAP_RESAMPLES, CI_LEVEL, mean_ci
from analysis.load import CELL_COLUMNS as ANALYSIS_CELL_COLUMNS
from analysis.registry import ANALYSES
from core.store import MetricFilter, StoreReader
from reports.columns import QUANTITIES, Quantity, collapsed, column_quantities

SCENARIO = ["arch", "dataset"]
ENTRY = ["pruner", "retrain"]

# the analyses' cell columns, and what the page adds (plugin, provenance)
CELL_COLUMNS = [
    *ANALYSIS_CELL_COLUMNS,
    *[
        c
        for c in ("plugin", "plugin_version", "preset", "finished_at", "git_commit", "torch_version",
                  "numpy_version", "python_version", "device", "host")
        if c not in ANALYSIS_CELL_COLUMNS
    ],
]  # fmt: skip


def quantities() -> list[Quantity]:
    """What the report reads per cell: ``reports.columns.QUANTITIES`` and every column's quantity."""
    return [*QUANTITIES, *(q for q in column_quantities() if q not in QUANTITIES)]


def family(timing: str, kind: str) -> str:
    """The pruner family the figures colour by: when it prunes, and what it removes."""
    if timing == "after_training":
        return f"after training, {kind}"
    return timing.replace("_", " ")


@dataclass
class ReportData:
    """One store, as the report shows it."""

    results_dir: Path
    cells: pd.DataFrame  # the leaderboard's prune cells (no mask control), one row per cell + metrics
    corruption: pd.DataFrame  # per cell and corruption type: retrained and dense accuracy
    grid: list[float]
    claims: pd.DataFrame
    primaries: list[dict]
    labels: pd.DataFrame
    sanity: pd.DataFrame
    analyses: dict[str, pd.DataFrame]  # what each analysis' figure reads (Analysis.report_frame), by name
    provenance: dict
    latency_protocol: str = ""
    outside: list[dict] = field(default_factory=list)
    studies: dict[str, dict] = field(default_factory=dict)  # name -> definition (from the manifests)
    notes: list[str] = field(default_factory=list)

    @property
    def scenarios(self) -> list[tuple[str, str]]:
        return sorted(set(zip(self.cells["arch"], self.cells["dataset"], strict=True)))


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.exists() else default


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def cell_frame(cells: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cell: every quantity (``quantities``) and the leaderboard's derived numbers; per cell and
    corruption type: retrained and dense accuracy."""
    out = cells.copy()
    for q in quantities():
        out[q.name] = out["cell_id"].map(q.values(metrics)).astype(float)
    corr = metrics[(metrics["kind"] == "corruption") & (metrics["metric"] == "accuracy")]
    by_type = corr.groupby(["cell_id", "phase", "eval_set"])["value"].mean().unstack("phase").reset_index()
    out["flops_reduction"] = out["flops_dense"] / out["flops_effective"]
    out["epochs_total"] = out[["epochs_dense", "epochs_prune", "epochs_retrain"]].fillna(0).sum(axis=1)
    out["family"] = [family(t, k) for t, k in zip(out["pruner_timing"], out["pruner_kind"], strict=True)]
    out["drop_points"] = 100 * (out["dense_accuracy"] - out["accuracy"])
    corruption = by_type.rename(columns={"eval_set": "corruption"}).merge(
        out[["cell_id", "arch", "dataset", "pruner", "retrain", "sparsity", "seed"]], on="cell_id"
    )
    return out, corruption


def n_classes_of(dataset: str, cells: pd.DataFrame) -> int:
    return int(cells.attrs.get("classes", {}).get(dataset, 10))


def _classes(metrics: pd.DataFrame, cells: pd.DataFrame) -> dict[str, int]:
    rec = metrics[metrics["metric"] == "recall"] if "metric" in metrics else pd.DataFrame()
    out = {}
    if len(rec):
        joined = rec.merge(cells[["cell_id", "dataset"]], on="cell_id")
        out = joined.groupby("dataset")["class"].nunique().astype(int).to_dict()
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(results_dir: Path, every: pd.DataFrame, metric_rows: int) -> dict:
    """Where the numbers come from: commits, environment, the failed cells and why."""

    def values(col: str) -> list[str]:
        return sorted({str(v) for v in every.get(col, pd.Series(dtype=str)).dropna()})

    failed = every[every["status"] != "ok"]
    reasons = failed["reason"].fillna("unknown").astype(str).str.slice(0, 160).value_counts()
    finished = every.get("finished_at", pd.Series(dtype=str)).dropna().astype(str)
    return {
        "results_dir": str(results_dir),
        "cells": len(every),
        "ok": len(every) - len(failed),
        "failed": len(failed),
        "failure_reasons": [{"reason": r, "count": int(n)} for r, n in reasons.items()],
        "metric_rows": metric_rows,
        "commits": values("git_commit") or [_git_commit()],
        "presets": values("preset"),
        "torch": values("torch_version"),
        "numpy": values("numpy_version"),
        "python": values("python_version"),
        "devices": values("device"),
        "hosts": values("host"),
        "first_finished": finished.min() if len(finished) else "",
        "last_finished": finished.max() if len(finished) else "",
    }


def outside_entries(root: Path) -> list[dict]:
    """The accepted submissions under ``<results>/submissions/`` (``harness verify --accept-into``):
    one entry per (bundle, pruner), with its verification result."""
    out = []
    base = root / "submissions"
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else ():
        record = _read_json(folder / "verification.json", None)
        if record is None or record.get("result") != "accepted":
            continue
        reader = StoreReader(folder)
        cells = reader.cells(
            [
                "cell_id",
                "pruner",
                "plugin",
                "plugin_version",
                "cell_type",
                "epochs_dense",
                "epochs_prune",
                "epochs_retrain",
            ]
        )
        acc = (
            reader.metrics(
                [
                    MetricFilter(
                        phases=["retrained"], metrics=["accuracy"], eval_sets=["test"], per_class=False
                    )
                ]
            )
            .groupby("cell_id")["value"]
            .mean()
        )
        rule = record.get("rule", {})
        sample = record.get("sample", {})
        rerun = set(sample.get("cell_ids", []))
        for pruner, g in cells[cells["cell_type"] == "prune"].groupby("pruner"):
            plugin = g["plugin"].dropna()
            n_rerun = len(rerun & set(g["cell_id"]))
            verification = (
                f"accepted {record.get('verified_at', '')[:10]}: {n_rerun} of {len(g)} "
                f"cells re-run (sample seed {sample.get('seed', '?')}), "
                f"{rule.get('mode', '?').replace('_', '-')}; every cell checked against its spec"
            )
            out.append(
                {
                    "bundle": record.get("bundle", {}).get("file", folder.name),
                    "pruner": pruner,
                    "plugin": f"{plugin.iloc[0]}=={g['plugin_version'].dropna().iloc[0]}"
                    if len(plugin)
                    else "",
                    "cells": len(g),
                    "cells_rerun": n_rerun,
                    "epochs": " + ".join(
                        f"{g[c].min():g}" if g[c].min() == g[c].max() else f"{g[c].min():g}–{g[c].max():g}"
                        for c in ("epochs_dense", "epochs_prune", "epochs_retrain")
                    ),
                    "verification": verification,
                    "accuracy": float(acc.reindex(g["cell_id"]).mean()),
                }
            )
    return out


def missing_notes(every: pd.DataFrame, board: dict, manifests: dict, grid: list[float]) -> list[str]:
    """What a partial store lacks, in sentences for the page: cells of the leaderboard and of each
    study that are not stored ``ok`` (failed, or not run), grid points without a cell."""
    ok = set(every.loc[every["status"] == "ok", "cell_id"])
    failed = set(every.loc[every["status"] != "ok", "cell_id"])
    if not len(every):
        return ["this store holds no cells yet (`python -m harness run-all` fills it): the page is empty"]
    notes = []
    for what, ids in [
        ("the leaderboard", set(board.get("cell_ids", []))),
        *((f"study {name}", set(m["cell_ids"])) for name, m in sorted(manifests.items())),
    ]:
        missing = ids - ok
        if missing:
            n_failed = len(missing & failed)
            notes.append(
                f"partial store: {len(missing)} of {len(ids)} cells of {what} are not stored "
                f"({n_failed} failed, {len(missing) - n_failed} not run); the page shows the stored ones"
            )
    stored = every[(every["status"] == "ok") & every["cell_id"].isin(set(board.get("cell_ids", ok)))]
    for s in grid:
        if not np.isclose(stored["sparsity"].astype(float), s).any():
            notes.append(f"partial store: no leaderboard cell is stored at sparsity {s:g}")
    return notes


def load(results_dir: Path | str) -> ReportData:
    """Everything the report shows, from one store (run ``harness analyze`` first for the claims)."""
    root = Path(results_dir)
    reader = StoreReader(root)
    if not reader.exists():
        raise FileNotFoundError(
            f"no results store at {root} (expected {root}/cells): run `harness run-all` first"
        )
    every = reader.cells([*CELL_COLUMNS, "status", "reason"], status=None)
    all_cells = every[every["status"] == "ok"].reset_index(drop=True)
    board = _read_json(root / "leaderboard.json", {})
    board_ids = set(board.get("cell_ids", all_cells["cell_id"]))
    cells = all_cells[
        all_cells["cell_id"].isin(board_ids)
        & (all_cells["cell_type"] == "prune")
        & (all_cells["control"].fillna("none") == "none")
    ].reset_index(drop=True)
    metrics = reader.metrics(
        [
            *(q.filter() for q in quantities()),
            MetricFilter(phases=["retrained"], metrics=["recall"], eval_sets=["test"]),
            *(f for a in ANALYSES.values() for f in a.report_filters(all_cells)),
        ]
    )
    classes = _classes(metrics, all_cells)
    metrics = metrics[metrics["metric"] != "recall"]
    manifests = reader.study_manifests()
    frame, corruption = cell_frame(cells, metrics[metrics["cell_id"].isin(set(cells["cell_id"]))])
    frame.attrs["classes"] = classes
    grid = sorted(float(s) for s in board.get("grid", sorted(frame["sparsity"].unique())))
    claims_dir = root / "claims"
    notes = missing_notes(every, board, manifests, grid)
    if not (claims_dir / "primary.json").exists():
        notes.append("no claims in this store (run `python -m harness analyze`): claim cards are not shown")
    return ReportData(
        results_dir=root,
        cells=frame,
        corruption=corruption,
        grid=grid,
        claims=_read_parquet(claims_dir / "claims.parquet"),
        primaries=_read_json(claims_dir / "primary.json", []),
        labels=_read_parquet(claims_dir / "labels.parquet"),
        sanity=_read_parquet(claims_dir / "sanity.parquet"),
        analyses={
            a.name: a.report_frame(all_cells, metrics, manifests)
            for a in ANALYSES.values()
            if a.report_frame is not None
        },
        provenance=provenance(root, every, reader.metric_row_count()),
        latency_protocol=str(board.get("latency_protocol", "")),
        outside=outside_entries(root),
        studies={name: m.get("definition", {}) for name, m in manifests.items()},
        notes=notes,
    )


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CI_LEVEL",
    "ReportData",
    "cell_frame",
    "collapsed",
    "family",
    "load",
    "mean_ci",
    "quantities",
]
