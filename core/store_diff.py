"""Are two stores the same results? A cell-by-cell, row-by-row comparison of two results directories.

Determinism (same spec and seed, same numbers, on CPU bit for bit) and "no behaviour change"
refactors are checked by running the same preset twice and comparing the stores:

- **cells**: the cell ids of each store, and for the cells in both their status and every result
  column of the cell row (``CELL_SCHEMA`` less ``core.schema.PROVENANCE_COLUMNS``: timings, host,
  commit, versions, which describe the run rather than its result; and less ``metrics_sha256``,
  which the metric rows below stand for);
- **metric rows**, per cell in both stores with status ``ok``: a cell whose metrics file has the
  same SHA-256 in both (recorded in its cell row, checked by the store's audit) is identical row
  for row without reading it; otherwise both files are read, joined on the row key
  (``METRIC_SCHEMA`` less ``value``) and compared value by value, ``|a - b| <= tolerance`` (0:
  bit for bit; NaN equals NaN). Rows of metrics declared ``verify = "never"`` in ``core.metrics``
  (the wall-clock ``latency_*`` rows) are not compared and are counted apart;
- **dense parents**: the SHA-256 of each checkpoint, recorded in ``parent.json``;
- **derived files**: ``leaderboard.json`` and ``claims/primary.json``, byte for byte (reported,
  not part of the outcome: the verdicts have their own ``harness compare-verdicts``).

``harness compare-stores --results A --other B [--tolerance T] [--common-only]`` prints the
comparison and exits 0 when the stores hold the same results, 1 when they differ; with
``--common-only`` (some cells of a store run again into a new one) cells and parents held by one
store only are listed but do not count.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.integrity import read_verified
from core.metrics import metric
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, PROVENANCE_COLUMNS
from core.store import StoreReader

ROW_KEY = [n for n in METRIC_SCHEMA.names if n not in ("cell_id", "value")]  # a row's identity in its cell
# metrics_sha256 is compared through the rows it checks (wall-clock rows make it differ alone)
RESULT_COLUMNS = [c for c in CELL_SCHEMA.names if c not in (*PROVENANCE_COLUMNS, "cell_id", "metrics_sha256")]
SHOWN_PROVENANCE = ("torch_version", "numpy_version", "python_version", "device", "git_commit")
DERIVED_FILES = ("leaderboard.json", "claims/primary.json")
EXAMPLES = 5  # ids or names listed per kind of difference


def is_wall_clock(name: str) -> bool:
    """Whether a stored metric is a wall-clock measurement (declared ``verify = "never"``)."""
    declaration = metric(name)
    return declaration is not None and declaration.verify == "never"


def wall_clock_rows(metric_names: pd.Series) -> pd.Series:
    """Which rows hold a wall-clock metric (each distinct name looked up once)."""
    return metric_names.isin([n for n in metric_names.unique() if is_wall_clock(n)])


@dataclass
class MetricComparison:
    """The metric rows of the cells stored ``ok`` in both stores."""

    cells: int = 0
    same_file: int = 0  # cells whose metrics files are byte-identical
    rows: int = 0  # rows compared (byte-identical files counted whole)
    wall_clock: int = 0  # rows not compared (read files only)
    only_a: int = 0
    only_b: int = 0
    differ: int = 0
    max_abs_diff: float = 0.0
    by_metric: Counter = field(default_factory=Counter)  # metric -> rows that differ or are missing
    cells_differ: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.only_a or self.only_b or self.differ)


@dataclass
class StoreComparison:
    a: Path
    b: Path
    tolerance: float
    cells_a: int
    cells_b: int
    only_a: list[str]
    only_b: list[str]
    status_differ: list[tuple[str, str, str]]  # (cell id, status in A, in B)
    columns_differ: dict[str, list[str]]  # result column -> cell ids where it differs
    metrics: MetricComparison
    parents: dict[str, list[str]]  # common / identical / differ / only_a / only_b -> parent ids
    provenance: dict[str, tuple[list[str], list[str]]]  # column -> (values in A, values in B)
    derived: dict[str, str]  # file -> identical | differs | absent in A | ...
    common_only: bool = False  # a subset re-run: what is in one store only does not count

    @property
    def identical(self) -> bool:
        one_side = self.only_a or self.only_b or self.parents["only_a"] or self.parents["only_b"]
        return not (
            (one_side and not self.common_only)
            or self.status_differ
            or self.columns_differ
            or not self.metrics.identical
            or self.parents["differ"]
        )


def _cells(reader: StoreReader) -> pd.DataFrame:
    return reader.cells(status=None).set_index("cell_id").sort_index()


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality where two missing values are equal."""
    return (a == b) | (a.isna() & b.isna())


def _differing_columns(ca: pd.DataFrame, cb: pd.DataFrame, common: pd.Index) -> dict[str, list[str]]:
    out = {}
    for column in RESULT_COLUMNS:
        same = _same(ca.loc[common, column], cb.loc[common, column])
        if not same.all():
            out[column] = list(common[~same.to_numpy()])
    return out


def _read_rows(reader: StoreReader, cell_id: str) -> pd.DataFrame:
    rows = read_verified(reader.metrics_dir / f"{cell_id}.parquet").to_pandas()
    return rows.drop(columns="cell_id")


def _compare_cell(reader_a, reader_b, cell_id: str, tolerance: float, out: MetricComparison) -> None:
    ra, rb = _read_rows(reader_a, cell_id), _read_rows(reader_b, cell_id)
    clock_a, clock_b = wall_clock_rows(ra["metric"]), wall_clock_rows(rb["metric"])
    out.wall_clock += int(clock_a.sum())
    joined = ra[~clock_a].merge(rb[~clock_b], on=ROW_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    side = joined["_merge"]
    both = joined[side == "both"]
    va, vb = both["value_a"].to_numpy(), both["value_b"].to_numpy()
    gap = np.abs(va - vb)
    nan_a, nan_b = np.isnan(va), np.isnan(vb)
    bad = (nan_a != nan_b) | (~nan_a & ~nan_b & ~(gap <= tolerance))
    finite = gap[~nan_a & ~nan_b]
    if finite.size:
        out.max_abs_diff = max(out.max_abs_diff, float(finite.max()))
    out.rows += len(both)
    out.only_a += int((side == "left_only").sum())
    out.only_b += int((side == "right_only").sum())
    out.differ += int(bad.sum())
    out.by_metric.update(both.loc[bad, "metric"].tolist())
    out.by_metric.update(joined.loc[side != "both", "metric"].tolist())
    if bad.any() or (side != "both").any():
        out.cells_differ.append(cell_id)


def compare_metrics(
    reader_a: StoreReader, reader_b: StoreReader, ca: pd.DataFrame, cb: pd.DataFrame, tolerance: float
) -> MetricComparison:
    out = MetricComparison()
    ok = ca.index[(ca["status"] == "ok")].intersection(cb.index[cb["status"] == "ok"])
    for cell_id in ok:
        out.cells += 1
        row_a, row_b = ca.loc[cell_id], cb.loc[cell_id]
        if not row_a["metric_rows"] and not row_b["metric_rows"]:
            continue
        if row_a["metrics_sha256"] and row_a["metrics_sha256"] == row_b["metrics_sha256"]:
            out.same_file += 1
            out.rows += int(row_a["metric_rows"])
            continue
        _compare_cell(reader_a, reader_b, cell_id, tolerance, out)
    return out


def _parent_hashes(root: Path) -> dict[str, dict]:
    folder = root / "parents"
    out = {}
    for record in sorted(folder.glob("*/parent.json")) if folder.is_dir() else ():
        out[record.parent.name] = json.loads(record.read_bytes()).get("files") or {}
    return out


def compare_parents(a: Path, b: Path) -> dict[str, list[str]]:
    pa_, pb_ = _parent_hashes(a), _parent_hashes(b)
    common = sorted(set(pa_) & set(pb_))
    return {
        "common": common,
        "identical": [p for p in common if pa_[p] == pb_[p]],
        "differ": [p for p in common if pa_[p] != pb_[p]],
        "only_a": sorted(set(pa_) - set(pb_)),
        "only_b": sorted(set(pb_) - set(pa_)),
    }


def _derived(a: Path, b: Path) -> dict[str, str]:
    out = {}
    for name in DERIVED_FILES:
        fa, fb = a / name, b / name
        if not fa.exists() or not fb.exists():
            out[name] = "absent in " + " and ".join(s for s, f in (("A", fa), ("B", fb)) if not f.exists())
        else:
            out[name] = "identical" if fa.read_bytes() == fb.read_bytes() else "differs"
    return out


def _values(cells: pd.DataFrame, column: str) -> list[str]:
    return sorted({str(v) for v in cells[column].dropna()})


def compare_stores(
    a: Path | str, b: Path | str, tolerance: float = 0.0, common_only: bool = False
) -> StoreComparison:
    """Compare the stores ``a`` and ``b`` (both readable; see the module docstring); with
    ``common_only`` (a subset of cells run again) only what both stores hold decides the outcome."""
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance {tolerance!r}: give a finite number >= 0")
    a, b = Path(a), Path(b)
    reader_a, reader_b = StoreReader(a), StoreReader(b)
    ca, cb = _cells(reader_a), _cells(reader_b)
    common = ca.index.intersection(cb.index)
    status = _same(ca.loc[common, "status"], cb.loc[common, "status"])
    return StoreComparison(
        a=a,
        b=b,
        tolerance=tolerance,
        cells_a=len(ca),
        cells_b=len(cb),
        only_a=list(ca.index.difference(cb.index)),
        only_b=list(cb.index.difference(ca.index)),
        status_differ=[(c, ca.at[c, "status"], cb.at[c, "status"]) for c in common[~status.to_numpy()]],
        columns_differ=_differing_columns(ca, cb, common),
        metrics=compare_metrics(reader_a, reader_b, ca, cb, tolerance),
        parents=compare_parents(a, b),
        provenance={c: (_values(ca, c), _values(cb, c)) for c in SHOWN_PROVENANCE},
        derived=_derived(a, b),
        common_only=common_only,
    )


def _some(items: list) -> str:
    shown = ", ".join(map(str, items[:EXAMPLES]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > EXAMPLES else "")


def render_comparison(c: StoreComparison) -> str:
    m = c.metrics
    rule = "bit for bit" if c.tolerance == 0 else f"|A - B| <= {c.tolerance:g}"
    lines = [
        f"A: {c.a} ({c.cells_a} cells)",
        f"B: {c.b} ({c.cells_b} cells)",
        f"cells: {c.cells_a - len(c.only_a)} in both, {len(c.only_a)} only in A, {len(c.only_b)} only in B",
    ]
    if c.only_a:
        lines.append(f"  only in A: {_some(c.only_a)}")
    if c.only_b:
        lines.append(f"  only in B: {_some(c.only_b)}")
    lines.append(f"cell status: {len(c.status_differ)} differ")
    lines += [f"  {cell}: {sa} in A, {sb} in B" for cell, sa, sb in c.status_differ[:EXAMPLES]]
    lines.append(
        "cell result columns: "
        + ("identical" if not c.columns_differ else f"{len(c.columns_differ)} differ")
        + f" ({len(RESULT_COLUMNS)} compared; provenance columns not: {', '.join(PROVENANCE_COLUMNS)})"
    )
    lines += [f"  {col}: {_some(cells)}" for col, cells in c.columns_differ.items()]
    lines.append(
        f"metric rows ({rule}), {m.cells} cells ok in both: {m.rows:,} compared "
        f"({m.same_file} cells with byte-identical metrics files), {m.differ} differ, "
        f"{m.only_a} only in A, {m.only_b} only in B; max |A - B| {m.max_abs_diff:.3g}; "
        f"{m.wall_clock:,} wall-clock rows not compared (declared verify never in core.metrics)"
    )
    if not m.identical:
        lines.append(f"  metrics: {_some([f'{k} ({n})' for k, n in m.by_metric.most_common()])}")
        lines.append(f"  cells: {_some(m.cells_differ)}")
    p = c.parents
    lines.append(
        f"dense parents: {len(p['common'])} in both, {len(p['identical'])} with identical checkpoints, "
        f"{len(p['differ'])} differ, {len(p['only_a'])} only in A, {len(p['only_b'])} only in B"
    )
    if p["differ"]:
        lines.append(f"  differ: {_some(p['differ'])}")
    for column, (va, vb) in c.provenance.items():
        lines.append(f"provenance {column}: A {', '.join(va) or '-'}; B {', '.join(vb) or '-'}")
    lines += [f"{name}: {state}" for name, state in c.derived.items()]
    scope = " (cells and parents in both; --common-only)" if c.common_only else ""
    lines.append("outcome: " + ("the same results" if c.identical else "the stores differ") + scope)
    return "\n".join(lines)
