"""The stored tables' schemas (``results/README.md`` documents every column).

One definition, read by the writer (``harness.storage``), the reader (``core.store``), the
analysis and the report. ``SCHEMA_VERSION`` is written into ``store.json`` and every Parquet
footer; a store of another version is refused rather than misread.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 3  # 3: metric_rows and metrics_sha256, the cell's checksum of its metrics file

# What it cost to make a cell (``benchmarks.budget``): training epochs of the dense parent, of
# the pruning procedure and of the retraining, and training FLOPs (forward + backward).
BUDGET_COLUMNS = ("epochs_dense", "epochs_prune", "epochs_retrain", "train_flops")

CELL_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("parent_id", pa.string()),
        ("cell_type", pa.string()),  # prune | stability
        ("arch", pa.string()),
        ("dataset", pa.string()),
        ("pruner", pa.string()),
        ("pruner_kind", pa.string()),
        ("pruner_timing", pa.string()),
        ("pruner_version", pa.string()),
        ("pruner_config", pa.string()),  # canonical JSON of the resolved config
        ("plugin", pa.string()),  # distribution name of the plugin providing the pruner; null: built in
        ("plugin_version", pa.string()),
        ("sparsity", pa.float64()),
        ("seed", pa.int64()),
        ("retrain", pa.string()),
        ("control", pa.string()),  # mask sanity control: none | shuffle_layer | reinit | invert
        ("eval_sets", pa.string()),  # all | clean
        ("schedule", pa.string()),
        ("score", pa.string()),
        ("variant", pa.string()),
        ("spec_json", pa.string()),
        ("preset", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("traceback", pa.string()),
        # the commit record's check of its metrics file (``metrics/<cell_id>.parquet``): its row
        # count and the SHA-256 of its bytes; 0 and null for a cell without metric rows
        ("metric_rows", pa.int64()),
        ("metrics_sha256", pa.string()),
        *[(c, pa.float64()) for c in BUDGET_COLUMNS],
        ("dense_train_s", pa.float64()),
        ("prune_s", pa.float64()),
        ("retrain_s", pa.float64()),
        ("eval_s", pa.float64()),
        ("total_s", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("device", pa.string()),
        ("torch_version", pa.string()),
        ("numpy_version", pa.string()),
        ("python_version", pa.string()),
        ("git_commit", pa.string()),
        ("host", pa.string()),
        ("schema_version", pa.int64()),
    ]
)

METRIC_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("phase", pa.string()),
        ("eval_set", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.int64()),
        ("metric", pa.string()),
        ("class", pa.int64()),
        ("step", pa.int64()),
        ("value", pa.float64()),
    ]
)

# The cell columns that say how, where and when a cell ran, not what it found: two runs of the same
# cell differ here and nowhere else (``core.store_diff`` compares every other column).
PROVENANCE_COLUMNS = (
    "preset",
    "traceback",
    "dense_train_s",
    "prune_s",
    "retrain_s",
    "eval_s",
    "total_s",
    "started_at",
    "finished_at",
    "device",
    "torch_version",
    "numpy_version",
    "python_version",
    "git_commit",
    "host",
)

CELL_COLUMNS = CELL_SCHEMA.names
METRIC_COLUMNS = METRIC_SCHEMA.names
