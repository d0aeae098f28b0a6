"""Fault injection over the store: every kind of stored file (cell row, metrics file, dense
parent evaluation, dense parent checkpoint, study manifest, lock) truncated, with a damaged data
page, or deleted. The next ``run-all`` moves the damage aside, recomputes exactly what it
affected, and ends with a store equal to the undisturbed one, bit for bit (CPU)."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from benchmarks.cells import cell_id as spec_id
from harness.cli import main
from harness.runner import build_plan
from tests.stored import comparable_tables
from tests.tiny import tiny_store

STUDY = '["smoke_stability"]'  # the tiny preset (two cells on one dense parent) with the smoke study
# the cell columns a recomputation must reproduce (timings, host and the like are the run's own)
SAME_COLUMNS = ["cell_id", "parent_id", "status", "spec_json", "epochs_dense", "epochs_prune",
                "epochs_retrain", "train_flops", "metric_rows", "metrics_sha256"]  # fmt: skip


def run(preset: Path, results: Path, capsys) -> tuple[int, str]:
    code = main(
        ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    )
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("faults"), studies=STUDY)


def target(store: Path, kind: str, preset: Path) -> Path:
    """The file of ``kind`` a fault hits: that of the global_magnitude cell or of its parent."""
    cell = next(c for c in build_plan(str(preset)).cells if getattr(c, "pruner", "") == "global_magnitude")
    parent = store / "parents" / cell.parent.id
    return {
        "cell": store / "cells" / f"{spec_id(cell)}.parquet",
        "metrics": store / "metrics" / f"{spec_id(cell)}.parquet",
        "dense": parent / f"dense-{cell.eval.id}.parquet",
        "checkpoint": parent / "model.pt",
        "manifest": store / "studies" / "smoke_stability.json",
        "lock": store / "locks" / f"{spec_id(cell)}.lock",
    }[kind]


def corrupt_page(path: Path) -> None:
    """Flip bytes inside the data: a Parquet file's last column chunk's page (its footer kept
    intact), the middle of any other file (an invalid UTF-8 byte in JSON)."""
    data = bytearray(path.read_bytes())
    if not data:  # an empty file (a lock): garbage in it
        path.write_bytes(b"\xffgarbage\x00")
        return
    if path.suffix == ".parquet":
        meta = pq.read_metadata(path)
        chunk = meta.row_group(0).column(meta.num_columns - 1)
        start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        end = start + chunk.total_compressed_size
        offsets = range(end - 4, end)  # inside the page's payload, before the footer
    else:
        offsets = range(len(data) // 2, len(data) // 2 + 4)
    for i in offsets:
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


FAULTS = {
    "truncate": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "corrupt": corrupt_page,
    "delete": lambda p: p.unlink(),
}
# cells each damage costs (a dense parent, its evaluation, a manifest or a lock is no cell)
CELLS_RECOMPUTED = {"cell": 1, "metrics": 1, "dense": 0, "checkpoint": 0, "manifest": 0, "lock": 0}
# what the next run-all reports as damage and moves aside: a damaged file of these kinds; a
# deleted one only where another file records it (a metrics file its cell row, a checkpoint its
# parent's record); other deleted files are just not there, and computed again. A lock's content
# is never read: garbage in it is harmless, and moving a lock another run holds would be harm.
DETECTED = {"cell", "metrics", "dense", "checkpoint", "manifest"}
DETECTED_WHEN_DELETED = {"metrics", "checkpoint"}


def parent_files(store: Path) -> dict[str, object]:
    """Every dense parent's checkpoints (tensors), evaluations (rows) and recorded checksums."""
    out: dict[str, object] = {}
    for folder in sorted((store / "parents").iterdir()):
        out[f"{folder.name}/files"] = json.loads((folder / "parent.json").read_text())["files"]
        for name in ("model.pt", "rewind.pt"):
            out[f"{folder.name}/{name}"] = (folder / name).read_bytes()
        for path in sorted(folder.glob("dense-*.parquet")):
            out[f"{folder.name}/{path.name}"] = pq.read_table(path).to_pylist()
    return out


def assert_same_store(store: Path, reference: Path) -> None:
    (c1, m1), (c2, m2) = comparable_tables(store), comparable_tables(reference)
    pd.testing.assert_frame_equal(c1, c2)
    pd.testing.assert_frame_equal(m1, m2, check_exact=True)
    cells = [pd.read_parquet(s / "cells")[SAME_COLUMNS].sort_values("cell_id").reset_index(drop=True)
             for s in (store, reference)]  # fmt: skip
    pd.testing.assert_frame_equal(*cells, check_exact=True)
    assert parent_files(store) == parent_files(reference)
    for name in ("leaderboard.json", "studies/smoke_stability.json"):
        assert (store / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", list(CELLS_RECOMPUTED))
def test_damage_is_moved_aside_and_recomputed(reference, tmp_path, capsys, kind, fault):
    preset, ref = reference
    store = tmp_path / "store"
    shutil.copytree(ref, store)
    victim = target(store, kind, preset)
    assert victim.exists(), victim
    FAULTS[fault](victim)

    code, out = run(preset, store, capsys)
    assert code == 0, out
    done = re.search(r"^done: (\d+) cells run", out, re.M)
    assert (int(done.group(1)) if done else 0) == CELLS_RECOMPUTED[kind], out
    repair = [ln for ln in out.splitlines() if ln.startswith("store: ")]
    if kind in (DETECTED_WHEN_DELETED if fault == "delete" else DETECTED):
        moved = store / "damaged" / victim.relative_to(store)
        assert len(repair) == 1 and "moved aside to" in repair[0], out
        if fault != "delete":
            assert moved.exists(), f"{victim} not moved aside"
            assert "damaged file" in repair[0]
    else:
        assert not repair, out
    assert_same_store(store, ref)
    # and nothing is left to do: the store is whole
    code, out = run(preset, store, capsys)
    assert code == 0 and "every cell of the plan is stored" in out and "store: " not in out


def test_a_damaged_store_is_refused_by_the_readers_until_run_all_repairs_it(reference, tmp_path, capsys):
    """``analyze``, ``report``, ``submit`` and ``compare`` never read a damaged store: one line,
    exit 2, naming the file and the way out."""
    preset, ref = reference
    store = tmp_path / "store"
    shutil.copytree(ref, store)
    corrupt_page(target(store, "metrics", preset))
    for args in (
        ["analyze", "--results", str(store)],
        ["report", "--results", str(store), "--out", str(tmp_path / "site")],
        ["submit", "--results", str(store), "--out", str(tmp_path / "b.tar.gz")],
        ["compare", "--results", str(store)],
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "holds 1 damaged file (1 metrics file" in err[0], err
        assert "run `harness run-all` on it" in err[0]
    assert not (tmp_path / "site").exists() and not (tmp_path / "b.tar.gz").exists()


def test_a_replaced_checkpoint_with_its_record_intact_is_trained_again(reference, tmp_path, capsys):
    """``torch.load`` checks nothing: a checkpoint whose weights were changed loads silently.
    parent.json's SHA-256 catches it, and the parent is trained again, not trusted."""
    preset, ref = reference
    store = tmp_path / "store"
    shutil.copytree(ref, store)
    victim = target(store, "checkpoint", preset)
    state = torch.load(victim, weights_only=True)
    key = next(iter(state))
    state[key] = state[key] + 1.0
    torch.save(state, victim)
    code, out = run(preset, store, capsys)
    assert code == 0 and "(dense parent checkpoint: its SHA-256 is not the one parent.json records" in out
    assert_same_store(store, ref)
