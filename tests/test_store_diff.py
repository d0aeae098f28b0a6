"""``harness compare-stores`` (``core.store_diff``): two runs of the same preset are the same results
bit for bit, and every kind of difference between two stores is found and makes the exit status 1."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from core.store_diff import compare_stores, render_comparison
from harness.storage import ResultsStore
from tests.tiny import tiny_store


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny preset run twice into two stores, in two folders (two cells, one dense parent)."""
    stores = [tiny_store(tmp_path_factory.mktemp(f"run{i}"))[1] for i in range(2)]
    return stores


@pytest.fixture
def pair(two_runs, tmp_path):
    """Copies of the two stores a test may change."""
    copies = [tmp_path / "a", tmp_path / "b"]
    for src, dst in zip(two_runs, copies, strict=True):
        shutil.copytree(src, dst)
    return copies


def rewrite(store_root, edit_row=None, edit_metrics=None) -> str:
    """Rewrite the first cell of a store through the store's writer (so it stays readable), with its
    cell row and metric rows edited; returns the cell id."""
    store = ResultsStore(store_root)
    cell_id = sorted(store.cell_status())[0]
    row = pq.read_table(store.cell_path(cell_id)).to_pylist()[0]
    rows = pq.read_table(store.metrics_dir / f"{cell_id}.parquet").drop(["cell_id"]).to_pylist()
    store.write_cell(edit_row(row) if edit_row else row, edit_metrics(rows) if edit_metrics else rows)
    return cell_id


def accuracy_row(rows):
    return next(i for i, r in enumerate(rows) if r["metric"] == "accuracy")


def test_two_runs_of_the_same_preset_are_the_same_results(two_runs, capsys):
    from harness.cli import main

    c = compare_stores(*two_runs)
    assert c.identical and c.cells_a == c.cells_b == 2
    assert c.metrics.cells == 2 and c.metrics.differ == c.metrics.only_a == c.metrics.only_b == 0
    assert c.metrics.rows == sum(
        r["metric_rows"] for r in ResultsStore(two_runs[0]).cells().to_dict("records")
    )
    assert c.parents["identical"] == c.parents["common"] and len(c.parents["common"]) == 1
    assert main(["compare-stores", "--results", str(two_runs[0]), "--other", str(two_runs[1])]) == 0
    out = capsys.readouterr().out
    assert "outcome: the same results" in out and "0 differ" in out


def test_a_changed_value_is_found_and_the_tolerance_admits_it(pair, capsys):
    from harness.cli import main

    def nudge(rows):
        rows[accuracy_row(rows)]["value"] += 1e-12
        return rows

    cell_id = rewrite(pair[1], edit_metrics=nudge)
    c = compare_stores(*pair)
    assert not c.identical and c.metrics.differ == 1 and c.metrics.cells_differ == [cell_id]
    assert c.metrics.by_metric == {"accuracy": 1} and 0 < c.metrics.max_abs_diff < 1e-11
    assert compare_stores(*pair, tolerance=1e-9).identical
    args = ["compare-stores", "--results", str(pair[0]), "--other", str(pair[1])]
    assert main(args) == 1
    assert "metrics: accuracy (1)" in capsys.readouterr().out
    assert main([*args, "--tolerance", "1e-9"]) == 0


def test_missing_rows_and_nan(pair):
    """A row in one store only is found; NaN equals NaN, and NaN against a number differs."""

    def nan_at(*positions):
        return lambda rows: [
            {**r, "value": float("nan")} if i in positions else r for i, r in enumerate(rows)
        ]

    rewrite(pair[0], edit_metrics=nan_at(0, 1))
    cell_id = rewrite(pair[1], edit_metrics=lambda rows: nan_at(0)(rows)[:-1])
    c = compare_stores(*pair)
    assert (c.metrics.only_a, c.metrics.only_b, c.metrics.differ) == (1, 0, 1)
    assert c.metrics.cells_differ == [cell_id] and not c.identical


def test_wall_clock_rows_are_counted_apart_not_compared(pair):
    def latency(value):
        return lambda rows: [*rows, {**rows[0], "metric": "latency_ms_b1", "kind": "model", "value": value}]

    rewrite(pair[0], edit_metrics=latency(1.0))
    rewrite(pair[1], edit_metrics=latency(2.0))
    c = compare_stores(*pair)
    assert c.identical and c.metrics.wall_clock == 1 and c.metrics.same_file == 1


def test_result_columns_differ_provenance_columns_do_not(pair):
    rewrite(pair[1], edit_row=lambda row: {**row, "host": "elsewhere", "total_s": 99.0})
    assert compare_stores(*pair).identical
    cell_id = rewrite(pair[1], edit_row=lambda row: {**row, "epochs_retrain": 7.0})
    c = compare_stores(*pair)
    assert c.columns_differ == {"epochs_retrain": [cell_id]} and not c.identical


def test_status_cells_in_one_store_and_common_only(pair):
    cell_id = rewrite(pair[1], edit_row=lambda row: {**row, "status": "failed", "reason": "boom"})
    c = compare_stores(*pair)
    assert c.status_differ == [(cell_id, "ok", "failed")] and c.metrics.cells == 1
    shutil.rmtree(pair[1])
    shutil.copytree(pair[0], pair[1])
    (pair[1] / "cells" / f"{cell_id}.parquet").unlink()
    (pair[1] / "metrics" / f"{cell_id}.parquet").unlink()
    c = compare_stores(*pair)
    assert c.only_a == [cell_id] and not c.identical
    assert compare_stores(*pair, common_only=True).identical
    assert "only in A: " + cell_id in render_comparison(c)


def test_a_different_checkpoint_is_found(pair):
    (record,) = pair[1].glob("parents/*/parent.json")
    info = json.loads(record.read_text())
    info["files"]["model.pt"] = "0" * 64
    record.write_text(json.dumps(info))
    c = compare_stores(*pair)
    assert c.parents["differ"] == [record.parent.name] and not c.identical


def test_bad_input_is_one_line_and_exit_2(two_runs, tmp_path, capsys):
    from tests.test_bad_input import outcome

    args = ["compare-stores", "--results", str(two_runs[0]), "--other", str(tmp_path / "none")]
    code, err = outcome(args, capsys)
    assert code == 2 and len(err) == 1 and "--other" in err[0] and "no results store there" in err[0]
    code, err = outcome([*args[:4], str(two_runs[1]), "--tolerance", "nan"], capsys)
    assert code == 2 and len(err) == 1 and "'nan' is not a finite number >= 0" in err[0]
