"""The one reader of a results store (``results/README.md``): cells, metrics, study manifests.

Layout read here (``harness.storage`` writes it)::

    <results>/cells/<cell_id>.parquet      one row per cell (``core.schema.CELL_SCHEMA``)
    <results>/metrics/<cell_id>.parquet    the cell's metric rows, long form (``METRIC_SCHEMA``)
    <results>/studies/<name>.json          a study's definition and the ids of its cells

Hidden temporary files (``.tmp-*``) are never read. Filters (``MetricFilter``) are pushed
into one multi-file Parquet scan, and the same filter applies to a frame already in memory
(``MetricFilter.mask``), so a table computed from a store and one computed from frames agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from core.atomic import TMP_PREFIX
from core.schema import CELL_SCHEMA, METRIC_SCHEMA


class StoreProblem(ValueError):
    """A store that cannot be read as it is (a damaged manifest, a file of another schema);
    the message names the file, in one line."""


def part_files(directory: Path | str) -> list[str]:
    """The committed Parquet files of one store folder, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(str(p) for p in directory.glob("*.parquet") if not p.name.startswith(TMP_PREFIX))


@dataclass(frozen=True)
class MetricFilter:
    """Which metric rows to read; ``None`` is no condition on that column.

    ``per_class``: True keeps per-class rows (``class`` set), False whole-set rows only.
    ``exclude_eval_sets`` drops those sets. ``cell_ids`` keeps those cells' rows.
    """

    phases: Sequence[str] | None = None
    metrics: Sequence[str] | None = None
    eval_sets: Sequence[str] | None = None
    exclude_eval_sets: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    per_class: bool | None = None
    cell_ids: Sequence[str] | None = None

    def expression(self):
        import pyarrow.compute as pc

        f, conds = pc.field, []
        for column, values in (
            ("phase", self.phases),
            ("metric", self.metrics),
            ("eval_set", self.eval_sets),
            ("kind", self.kinds),
            ("cell_id", self.cell_ids),
        ):
            if values is not None:
                conds.append(f(column).isin(list(values)))
        if self.exclude_eval_sets is not None:
            conds.append(f("eval_set").is_valid() & ~f("eval_set").isin(list(self.exclude_eval_sets)))
        if self.per_class is not None:
            conds.append(f("class").is_valid() if self.per_class else f("class").is_null())
        out = pc.scalar(True)
        for c in conds:
            out = out & c
        return out

    def mask(self, df: pd.DataFrame) -> pd.Series:
        """The same filter on a metrics frame in memory."""
        keep = pd.Series(True, index=df.index)
        for column, values in (
            ("phase", self.phases),
            ("metric", self.metrics),
            ("eval_set", self.eval_sets),
            ("kind", self.kinds),
            ("cell_id", self.cell_ids),
        ):
            if values is not None:
                keep &= df[column].isin(list(values))
        if self.exclude_eval_sets is not None:
            keep &= df["eval_set"].notna() & ~df["eval_set"].isin(list(self.exclude_eval_sets))
        if self.per_class is not None:
            keep &= df["class"].notna() if self.per_class else df["class"].isna()
        return keep.fillna(False).astype(bool)


def any_of(filters: Iterable[MetricFilter]):
    """The union of several filters, as a pyarrow expression."""
    import pyarrow.compute as pc

    out = pc.scalar(False)
    for flt in filters:
        out = out | flt.expression()
    return out


def select_rows(metrics: pd.DataFrame, filters: Iterable[MetricFilter]) -> pd.DataFrame:
    """The rows of an in-memory metrics frame that any of ``filters`` keeps."""
    keep = pd.Series(False, index=metrics.index)
    for flt in filters:
        keep |= flt.mask(metrics)
    return metrics[keep].reset_index(drop=True)


def _scan(
    files: list[str], schema: pa.Schema, columns: Sequence[str] | None, expression=None
) -> pd.DataFrame:
    import pyarrow.dataset as ds

    columns = list(columns) if columns is not None else schema.names
    if not files:
        return schema.empty_table().select(columns).to_pandas()
    # every page checksum verified: a damaged page is an error, never a silently wrong value
    fmt = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
    )
    table = ds.dataset(files, schema=schema, format=fmt).to_table(columns=columns, filter=expression)
    return table.replace_schema_metadata(None).to_pandas()


class StoreReader:
    """Read-only view of a results directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.metrics_dir = self.root / "metrics"
        self.studies_dir = self.root / "studies"

    def exists(self) -> bool:
        return self.cells_dir.is_dir()

    def cells(self, columns: Sequence[str] | None = None, status: str | None = "ok") -> pd.DataFrame:
        """The cells table (``columns`` in that order); ``status=None`` keeps failed cells too."""
        import pyarrow.compute as pc

        wanted = list(columns) if columns is not None else CELL_SCHEMA.names
        read = wanted if status is None or "status" in wanted else [*wanted, "status"]
        expression = None if status is None else pc.field("status") == status
        df = _scan(part_files(self.cells_dir), CELL_SCHEMA, read, expression)
        return df[wanted].reset_index(drop=True)

    def cell_status(self) -> dict[str, str]:
        """cell_id -> status of every committed cell."""
        df = self.cells(["cell_id", "status"], status=None)
        return dict(zip(df["cell_id"], df["status"], strict=True))

    def metrics(
        self, filters: Iterable[MetricFilter] | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Metric rows kept by any of ``filters`` (all rows when None)."""
        filters = list(filters) if filters is not None else None
        expression = any_of(filters) if filters else None
        return _scan(part_files(self.metrics_dir), METRIC_SCHEMA, columns, expression)

    def metric_row_count(self) -> int:
        import pyarrow.dataset as ds

        files = part_files(self.metrics_dir)
        return int(ds.dataset(files, schema=METRIC_SCHEMA, format="parquet").count_rows()) if files else 0

    def study_manifests(self) -> dict[str, dict]:
        """name -> manifest (``core.hypotheses``) of every study run into this store."""
        out = {}
        for path in sorted(self.studies_dir.glob("*.json")) if self.studies_dir.is_dir() else ():
            if not path.name.startswith(TMP_PREFIX):
                try:
                    manifest = json.loads(path.read_bytes())
                    out[manifest["name"]] = {"cell_ids": manifest["cell_ids"], **manifest}
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    raise StoreProblem(
                        f"damaged study manifest {path} ({type(exc).__name__}); `harness run-all` on this "
                        f"store moves it aside and writes it again"
                    ) from None
        return out


def load_results(
    root: Path | str, filters: Iterable[MetricFilter] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cells, metrics)`` of the ``ok`` cells, metrics restricted by ``filters``."""
    reader = StoreReader(root)
    cells = reader.cells()
    metrics = reader.metrics(filters)
    metrics = metrics[metrics["cell_id"].isin(set(cells["cell_id"]))].reset_index(drop=True)
    return cells, metrics
