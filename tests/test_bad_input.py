"""Every bad input is one line and exit status 2, with nothing written: numbers out of range or
not finite, malformed files, options given twice or in conflict, places that cannot be written,
a device that is not there, a full disk (which keeps the finished cells)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.cells import cell_id as spec_id
from core.atomic import FAULT_DISK_FULL_ENV
from harness.cli import main
from harness.runner import build_plan
from harness.storage import ResultsStore
from tests.tiny import tiny_store, tiny_text

GOOD = tiny_text()
RUN_ONE = ["run", "--arch", "mlp_256x2", "--dataset", "digits", "--pruner", "random", "--sparsity", "0.5"]


def outcome(args: list[str], capsys) -> tuple[int, list[str]]:
    """``(exit status, stderr lines)`` of the CLI run in this process (argparse exits too)."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    return code, [ln for ln in lines if ln.strip() and "%|" not in ln]  # progress bars are not errors


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def assert_refused(args: list[str], tmp_path: Path, capsys, needle: str) -> str:
    before = files(tmp_path)
    code, err = outcome(args, capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("prunebench: error: ") and needle in err[0], err
    assert files(tmp_path) == before, "something was written"
    return err[0]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("seeds = [0]", "seeds = [18446744073709551616]"), "18446744073709551616 is not a seed"),
        (("seeds = [0]", "seeds = 1000000000000"), "1000000000000 is not a seed count from 1 to 10000"),
        (("seeds = [0]", "seeds = [0, 1, 0]"), "key 'seeds': 0 is listed twice"),
        (("sparsities = [0.5]", "sparsities = [0.5, 0.50]"), "key 'sparsities': 0.5 is listed twice"),
        (
            ('pruners = ["global_magnitude", "random"]', 'pruners = ["random", "random"]'),
            "'random' is listed twice",
        ),
        (
            ("epochs = 1\n[retrain", "epochs = 1\nlr = nan\n[retrain"),
            "key 'train.lr': nan is not a finite number",
        ),
        (
            ("epochs = 1\n[retrain", "epochs = 1\nlr = inf\n[retrain"),
            "key 'train.lr': inf is not a finite number",
        ),
        (
            ("[train]", "[pruner_config]\nsynflow = { rounds = -5 }\n[train]"),
            "rounds: -5 is outside its valid range",
        ),
    ],
    ids=["seed-2^64", "seed-count", "dup-seed", "dup-sparsity", "dup-pruner", "lr-nan", "lr-inf", "rounds"],
)
def test_a_bad_preset_value_is_one_line(tmp_path, capsys, edit, needle):
    assert edit[0] in GOOD
    preset = tmp_path / "bad.toml"
    preset.write_text(GOOD.replace(*edit))
    assert_refused(
        ["run-all", "--preset", str(preset), "--results", str(tmp_path / "r")], tmp_path, capsys, needle
    )


def test_a_preset_that_is_not_utf8_or_is_a_folder_is_one_line(tmp_path, capsys):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'datasets = ["digits"]\n\xff\xfe\n')
    line = assert_refused(["run-all", "--preset", str(binary), "--dry-run"], tmp_path, capsys, "not UTF-8")
    assert f"{binary}:2:" in line
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert_refused(
        ["run-all", "--preset", str(folder), "--dry-run"], tmp_path, capsys, "is a folder, not a TOML"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run-all", "--results", ""], "argument --results: '' names no folder"),
        (["report", "--results", " "], "argument --results: ' ' names no folder"),
        (["run-all", "--workers", "two"], "argument --workers: invalid int value: 'two'"),
        ([*RUN_ONE[:-1], "half"], "argument --sparsity: invalid float value: 'half'"),
        (["verify", "x.tar.gz", "--sample", "1e3"], "argument --sample: invalid int value: '1e3'"),
        (["run-all", "--results", "a", "--results", "b"], "argument --results: given more than once"),
        (["run-all", "--preset", "smoke", "--preset", "default"], "argument --preset: given more than once"),
        (
            ["run-all", "--preset", "smoke", "--study", "stability"],
            "--study 'stability': preset 'smoke' does not list it",
        ),
        (["run-all", "--partition", "gpu"], "--partition applies to --executor slurm only"),
        (
            ["run-all", "--no-report", "--out", "site"],
            "--out names the report's folder; --no-report builds none",
        ),
        ([*RUN_ONE, "--seed", str(2**64)], f"seed {2**64} must be a non-negative integer <= 2147483647"),
        ([*RUN_ONE[:-1], "nan"], "sparsity nan is outside [0, 1)"),
    ],
    ids=[
        "results-empty",
        "results-blank",
        "int",
        "float",
        "sample",
        "twice",
        "preset-twice",
        "preset-and-study",
        "slurm-option",
        "out-no-report",
        "seed-2^64",
        "sparsity-nan",
    ],
)
def test_bad_command_line_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)  # an empty --results would have been the current folder
    assert_refused(args, tmp_path, capsys, needle)


def test_cuda_without_a_gpu_is_refused_at_plan_time(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    preset = tmp_path / "good.toml"
    preset.write_text(GOOD)
    args = ["run-all", "--preset", str(preset), "--results", str(tmp_path / "r"), "--device", "cuda"]
    assert_refused(args, tmp_path, capsys, "--device cuda: no CUDA GPU is available on this machine")
    assert_refused(
        [*RUN_ONE, "--results", str(tmp_path / "r"), "--device", "cuda"], tmp_path, capsys, "no CUDA GPU"
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("bad-input"))


def test_report_out_that_is_a_file_or_cannot_be_written_is_one_line(store, tmp_path, capsys):
    _, results = store
    a_file = tmp_path / "index.txt"
    a_file.write_text("mine")
    for out, needle in (
        (a_file, "is a file, not a folder"),
        (tmp_path / "index.txt" / "site", "is a file, not a folder"),
        (Path("/proc/prunebench-site"), "cannot write in '/proc'"),
    ):
        assert_refused(["report", "--results", str(results), "--out", str(out)], tmp_path, capsys, needle)
    assert a_file.read_text() == "mine"
    preset, _ = store
    args = ["run-all", "--preset", str(preset), "--results", str(tmp_path / "r"), "--out", str(a_file)]
    assert_refused(args, tmp_path, capsys, "is a file, not a folder")  # before any cell runs


def test_compare_previous_that_is_no_summary_is_one_line(store, tmp_path, capsys):
    _, results = store
    text = tmp_path / "summary.parquet"
    text.write_text("not parquet")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    for previous, needle in (
        (text, "not a readable summary Parquet file"),
        (other, "not a summary written by harness compare (no column 'arch')"),
        (tmp_path / "none.parquet", "no such summary file"),
        (tmp_path, "no such summary file"),
    ):
        assert_refused(
            ["compare", "--previous", str(previous), "--results", str(results)], tmp_path, capsys, needle
        )


def test_a_damaged_study_manifest_under_analyze_is_one_line(store, tmp_path, capsys):
    _, results = store
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / "studies").mkdir(exist_ok=True)
    (copy / "studies" / "broken.json").write_text('{"name": "broken", "cell_ids": [')
    code, err = outcome(["analyze", "--results", str(copy)], capsys)
    assert code == 2 and len(err) == 1 and "studies/broken.json (manifest: " in err[0], err
    (copy / "studies" / "broken.json").write_text('{"no name": 1}')  # JSON, but not a manifest
    code, err = outcome(["analyze", "--results", str(copy)], capsys)
    assert code == 2 and len(err) == 1 and "damaged study manifest" in err[0] and "broken.json" in err[0], err


def test_a_full_disk_is_one_line_and_keeps_the_finished_cells(tmp_path, capsys, monkeypatch):
    """The atomic writer fails as a full disk does (``ENOSPC``) when it writes the second cell's
    metrics: one line saying so, exit 2, the first cell kept whole; the next run does the rest."""
    preset = tmp_path / "good.toml"
    preset.write_text(GOOD)
    results = tmp_path / "r"
    ids = [spec_id(c) for c in build_plan(str(preset)).cells]  # run in this order (equal costs)
    monkeypatch.setenv(FAULT_DISK_FULL_ENV, f"*/metrics/{ids[1]}.parquet")
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    code, err = outcome(args, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("prunebench: error: the disk is full (writing ")
    assert "finished cells are kept; free space and run again" in err[0]
    damages, status = ResultsStore(results).inspect()
    assert not damages and status == {ids[0]: "ok"}  # kept whole; the other one not half-written
    assert not list((results / "metrics").glob(".tmp-*"))
    monkeypatch.delenv(FAULT_DISK_FULL_ENV)
    code, _ = outcome(args, capsys)
    assert code == 0 and ResultsStore(results).inspect()[1] == {i: "ok" for i in ids}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs is Linux's")
def test_a_really_full_disk(tmp_path, capsys):
    """A 2 MiB tmpfs (where this machine lets us mount one): the real ENOSPC, not the hook."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        preset = tmp_path / "good.toml"
        preset.write_text(GOOD.replace("seeds = [0]", "seeds = [0, 1, 2]"))
        results = mount / "r"
        args = [
            "run-all",
            "--preset",
            str(preset),
            "--results",
            str(results),
            "--workers",
            "1",
            "--no-report",
        ]
        code, err = outcome(args, capsys)
        assert code == 2 and len(err) == 1 and "the disk is full (writing " in err[0], err
        damages, status = ResultsStore(results).inspect()
        assert not damages and all(s == "ok" for s in status.values())
        stored = dict(status)
        shutil.copytree(results, tmp_path / "moved")  # the store moved to a disk with room
        code, _ = outcome([*args[:4], str(tmp_path / "moved"), *args[5:]], capsys)
        status = ResultsStore(tmp_path / "moved").inspect()[1]
        assert code == 0 and len(status) == 6 and stored.items() <= status.items()
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_failed_cell_counts_as_failed_not_stored(tmp_path, capsys):
    """A cell stored as failed keeps the run's exit status at 1 and is never counted as stored;
    a run whose cells were all taken by another run says so."""
    preset = tmp_path / "good.toml"
    preset.write_text(GOOD)
    results = tmp_path / "r"
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    assert main(args) == 0
    store = ResultsStore(results)
    (cell_id, *_) = sorted(store.cell_status())
    row = pq.read_table(store.cell_path(cell_id)).to_pylist()[0]
    store.write_cell({**row, "status": "failed", "reason": "RuntimeError: CUDA unavailable"}, [])
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "1 already stored, 1 stored as failed" in out and "every cell of the plan is stored" not in out
    # every cell taken by another run: the promised summary, exit 0
    from filelock import FileLock

    locks = [FileLock(store.locks_dir / f"{cell_id}.lock")]
    for lock in locks:
        lock.acquire()
    try:
        assert main([*args, "--retry-failed"]) == 0  # another run holds it: its outcome is that run's
        out = capsys.readouterr().out
        assert "done: 0 cells run" in out and "(0 ok, 0 failed, 1 skipped as taken by another run)" in out
    finally:
        for lock in locks:
            lock.release()
    manifest = json.loads((results / "leaderboard.json").read_text())
    assert len(manifest["cell_ids"]) == 2
