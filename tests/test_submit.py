"""``harness submit`` / ``harness verify`` on a real (tiny) results store: an honest bundle is
accepted, one edited metric value is refused, input that is no bundle is exit 2."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schema import METRIC_SCHEMA
from harness.bundle import CELLS, MANIFEST, METRICS, read_bundle
from harness.cli import main
from harness.verify import sample_cells
from tests.tiny import members_of, pack, tiny_store

EDITED = ("retrained", "test", "accuracy")  # (phase, eval_set, metric) of the row a tamperer edits


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two cells (two pruners, one dense parent) run once for the module."""
    return tiny_store(tmp_path_factory.mktemp("submit"))[1]


@pytest.fixture(scope="module")
def bundle(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "entry.tar.gz"
    assert main(["submit", "--results", str(store), "--out", str(out)]) == 0
    return out


def edited_metrics(members, cell_id):
    """``metrics.parquet`` with one value of ``cell_id`` changed, and (old, new) value."""
    table = pq.read_table(io.BytesIO(members[METRICS]))
    rows = table.to_pylist()
    (index,) = [
        i
        for i, r in enumerate(rows)
        if r["cell_id"] == cell_id
        and (r["phase"], r["eval_set"], r["metric"]) == EDITED
        and r["class"] is None
    ]
    old = rows[index]["value"]
    rows[index]["value"] = old - 0.25  # far outside any tolerance
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=METRIC_SCHEMA), buffer)
    return buffer.getvalue(), old, rows[index]["value"]


def one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prunebench: error: "), captured.err
    return lines[0]


def test_submit_writes_a_bundle_of_the_stores_ok_cells(store, tmp_path, capsys):
    out = tmp_path / "mine.tar.gz"
    assert main(["submit", "--results", str(store), "--out", str(out)]) == 0
    assert f"bundle {out}: 2 cells" in capsys.readouterr().out
    manifest, members = read_bundle(str(out))
    assert {CELLS, METRICS} <= set(members) and set(manifest["members"]) == set(members)
    cells = pq.read_table(io.BytesIO(members[CELLS]))
    stored = pq.read_table(store / "cells")
    assert sorted(cells["cell_id"].to_pylist()) == sorted(stored["cell_id"].to_pylist())
    assert set(cells["pruner"].to_pylist()) == {"global_magnitude", "random"}
    metrics = pq.read_table(io.BytesIO(members[METRICS]))
    assert manifest["counts"] == {"cells": 2, "metric_rows": metrics.num_rows}
    assert metrics.num_rows == pq.read_table(store / "metrics").num_rows > 0
    # an --out that is not a .tar.gz is a usage error (exit 2, one line), nothing written
    assert main(["submit", "--results", str(store), "--out", str(tmp_path / "x.zip")]) == 2
    assert ".tar.gz" in one_error_line(capsys)
    assert not (tmp_path / "x.zip").exists()


def test_honest_bundle_is_accepted_bit_identically_and_written(bundle, tmp_path, capsys):
    accept = tmp_path / "board"
    code = main(["verify", str(bundle), "--sample", "2", "--seed", "0", "--accept-into", str(accept)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict: accepted: 2 of 2 sampled cells agree (bit-identical)" in out
    entry = accept / "submissions" / "entry"
    record = json.loads((entry / "verification.json").read_text())
    _, members = read_bundle(str(bundle))
    ids = sorted(pq.read_table(io.BytesIO(members[CELLS]))["cell_id"].to_pylist())
    assert record["result"] == "accepted" and record["rule"]["mode"] == "bit_identical"
    assert sorted(record["sample"]["cell_ids"]) == ids
    assert all(
        c["agrees"] and c["rows_compared"] > 0 and c["rows_disagreeing"] == 0 for c in record["per_cell"]
    )
    assert sorted(p.stem for p in (entry / "cells").glob("*.parquet")) == ids
    assert sorted(p.stem for p in (entry / "metrics").glob("*.parquet")) == ids
    written = pq.read_table(entry / "metrics").num_rows
    assert written == pq.read_table(io.BytesIO(members[METRICS])).num_rows
    assert not [p for p in entry.parent.iterdir() if p.name != "entry"], "no staging folder left"


def test_an_edited_value_breaks_the_members_hash(bundle, tmp_path, capsys):
    members = members_of(bundle)
    cell_id = pq.read_table(io.BytesIO(members[CELLS]))["cell_id"][0].as_py()
    members[METRICS], _, _ = edited_metrics(members, cell_id)
    tampered = pack(tmp_path / "tampered.tar.gz", members)
    accept = tmp_path / "board"
    assert main(["verify", str(tampered), "--accept-into", str(accept)]) == 2
    assert f"refused: member {METRICS} does not match its SHA-256" in one_error_line(capsys)
    assert not (accept / "submissions" / "tampered").exists()


def test_an_edited_value_with_a_fixed_hash_is_caught_by_the_rerun(bundle, tmp_path, capsys):
    import hashlib

    members = members_of(bundle)
    cells = pq.read_table(io.BytesIO(members[CELLS])).to_pylist()
    (picked,) = sample_cells(cells, 1, 0)  # the cell `verify --sample 1 --seed 0` re-runs
    members[METRICS], old, new = edited_metrics(members, picked["cell_id"])
    manifest = json.loads(members[MANIFEST])
    manifest["members"][METRICS] = {
        "sha256": hashlib.sha256(members[METRICS]).hexdigest(),
        "bytes": len(members[METRICS]),
    }
    members[MANIFEST] = json.dumps(manifest).encode()
    tampered = pack(tmp_path / "rehashed.tar.gz", members)
    accept = tmp_path / "board"
    code = main(["verify", str(tampered), "--sample", "1", "--seed", "0", "--accept-into", str(accept)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "SHA-256" not in out, "the integrity check passes; the re-run must catch it"
    cell_id = picked["cell_id"]
    assert f"MISMATCH {cell_id} {picked['pruner']}" in out
    assert f"accuracy retrained/test reported {new!r} measured {old!r}" in out
    assert f"verdict: refused: 1 of 1 sampled cells disagree: {cell_id}" in out
    assert not (accept / "submissions" / "rehashed").exists()


def tar_with_manifest(path, payload: bytes):
    return pack(path, {MANIFEST: payload})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no such file"),
        (lambda p: p.write_text("not a tarball\n") and p, "not a readable .tar.gz file"),
        (lambda p: pack(p, {"notes.txt": b"hi"}), "is not part of the bundle format"),
        (lambda p: pack(p, {"studies/x.json": b"{}"}), f"no {MANIFEST}"),
        (lambda p: tar_with_manifest(p, b"{"), "is not valid JSON"),
        (lambda p: tar_with_manifest(p, b"[1, 2]"), "is not a JSON object"),
        (lambda p: tar_with_manifest(p, b'{"format": "other"}'), "has format 'other'"),
    ],
    ids=["missing", "not-a-tarball", "foreign", "no-manifest", "bad-json", "json-list", "other-format"],
)
def test_input_that_is_no_bundle_is_exit_2_with_one_line(tmp_path, capsys, make, message):
    path = make(tmp_path / "thing.tar.gz")
    assert main(["verify", str(path)]) == 2
    line = one_error_line(capsys)
    assert repr(str(path)) in line and message in line, line


def test_a_member_path_leaving_the_entry_folder_is_refused(bundle, tmp_path, capsys):
    """A study member named ``studies/../../x.json`` (hash listed) would be written outside the
    entry on acceptance: the bundle is unusable, before any re-run."""
    import hashlib

    members = members_of(bundle)
    evil = "studies/../../escaped.json"
    members[evil] = b"{}"
    manifest = json.loads(members[MANIFEST])
    manifest["members"][evil] = {"sha256": hashlib.sha256(b"{}").hexdigest(), "bytes": 2}
    members[MANIFEST] = json.dumps(manifest).encode()
    path = pack(tmp_path / "evil.tar.gz", members)
    assert main(["verify", str(path), "--accept-into", str(tmp_path / "board")]) == 2
    assert "is not a relative path" in one_error_line(capsys)
    assert not list(tmp_path.rglob("escaped.json"))
