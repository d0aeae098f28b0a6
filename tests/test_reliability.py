"""Nothing lost, nothing half-written: kills, concurrent runs, failing cells, damaged stores."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from benchmarks.cells import cell_id as spec_id
from harness.cli import main
from harness.runner import build_plan
from harness.storage import SCHEMA_VERSION, DamagedFile, ResultsStore
from prunebench import weights
from pruners.base import PRUNERS, Pruner, ScorePruner
from tests.stored import METRIC_KEY, comparable_tables

ROOT = Path(__file__).resolve().parent.parent
# A small preset for the end-to-end runs here: two dense parents (so parents, too, train in a
# pool of workers), every pruner timing, both kinds, the smoke study: 15 cells, about 20 s.
RELIABILITY_PRESET = """description = "reliability: kills, resumes, concurrent runs"
datasets = ["digits", "mnist1d"]
archs = ["mlp_256x2"]
pruners = ["global_magnitude", "l1_filter", "synflow", "gmp"]
sparsities = [0.5, 0.9]
seeds = [0]
retrain = ["finetune"]
studies = ["smoke_stability"]

[train]
epochs = 4
batch_size = 128
lr = 0.01
weight_decay = 1e-4
optimizer = "adam"
schedule = "cosine"

[retrain_config]
epochs = 1
finetune_lr = 0.003
rewind_epoch = 1

[pruner_config]
synflow = { rounds = 10 }

[[override]]
timing = "at_init"
sparsities = [0.5]

[[override]]
timing = "during_training"
sparsities = [0.5]
"""


@pytest.fixture
def preset(tmp_path) -> Path:
    path = tmp_path / "reliability.toml"
    path.write_text(RELIABILITY_PRESET)
    return path


def plan_ids(preset: Path) -> set[str]:
    """The ids of every cell a run of ``preset`` stores: its leaderboard and its studies'."""
    return {spec_id(c) for c in build_plan(str(preset)).cells}


def start_run(preset: Path, results: Path, *extra: str) -> subprocess.Popen:
    """``run-all`` of ``preset`` into ``results``, without the report (no part of the store)."""
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--no-report", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own session and process group, so a kill takes its workers too
    )


def assert_store_complete(preset: Path, results: Path) -> None:
    for table in ("cells", "metrics"):
        for path in (results / table).glob("*.parquet"):
            pq.read_table(path)  # every file readable
    cells = pd.read_parquet(results / "cells")
    expected = plan_ids(preset)
    assert set(cells.cell_id) == expected and cells.cell_id.is_unique
    assert (cells.status == "ok").all()
    metrics = pd.read_parquet(results / "metrics")
    assert set(metrics.cell_id) == expected
    assert not metrics.duplicated(METRIC_KEY).any()
    # a half-written cell would miss rows: cells of one kind and timing on one (arch, dataset)
    # (and, in the stability study, one target) store exactly as many rows as each other
    rows = cells.join(metrics.groupby("cell_id").size().rename("rows"), on="cell_id")
    rows["target"] = rows.pruner.where(rows.cell_type == "stability", "")
    keys = ["cell_type", "pruner_kind", "pruner_timing", "arch", "dataset", "target"]
    per_group = rows.groupby(keys).rows.nunique()
    assert (per_group == 1).all(), per_group[per_group > 1]


def assert_same_results(store: Path, reference: Path) -> None:
    (c1, m1), (c2, m2) = comparable_tables(store), comparable_tables(reference)
    pd.testing.assert_frame_equal(c1, c2)
    pd.testing.assert_frame_equal(m1, m2, check_exact=True)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(preset, tmp_path):
    rng = random.Random(20261121)
    results = tmp_path / "store"
    kills = 0
    while kills < 5:
        proc = start_run(preset, results, "--workers", "2")
        # start-up (imports, the plan), dense parents, cells: a run of this preset is about 20 s
        time.sleep(rng.uniform(1.0, 15.0))
        if proc.poll() is not None:
            break  # finished before this kill: nothing left to interrupt
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 5 or (results / "cells").exists()
    final = start_run(preset, results, "--workers", "2")
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert_store_complete(preset, results)
    again = start_run(preset, results, "--workers", "1")
    out, _ = again.communicate(timeout=120)
    assert "0 cells run" in out


def session_processes(sid: int) -> dict[int, tuple[int, str]]:
    """The live processes of session ``sid`` (zombies have exited: left out): pid -> (ppid, command)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getsid(pid) != sid:
                continue
            state, ppid = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[:2]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if state != "Z":
            found[pid] = (int(ppid), command)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_sigkill_of_the_harness_alone_leaves_no_process_of_the_run(preset, tmp_path):
    """``kill -9`` of the harness process only (the OOM killer's way, not the process group's):
    its forkserver, resource tracker and workers exit too, and a resumed run stores what an
    undisturbed run stores."""
    results = tmp_path / "store"
    proc = start_run(preset, results, "--workers", "2")
    deadline = time.monotonic() + 300
    while True:  # until a cell is stored and two workers run the next ones
        assert proc.poll() is None, f"the run ended before its workers were seen: {proc.communicate()}"
        assert time.monotonic() < deadline, "no workers after 300 s"
        procs = session_processes(proc.pid)
        server = {pid for pid, (ppid, cmd) in procs.items() if ppid == proc.pid and "forkserver" in cmd}
        workers = [pid for pid, (ppid, _) in procs.items() if ppid in server]
        if len(workers) >= 2 and any((results / "cells").glob("*.parquet")):
            break
        time.sleep(0.05)
    assert any("resource_tracker" in cmd for _, cmd in procs.values()), procs
    os.kill(proc.pid, signal.SIGKILL)  # the harness alone
    proc.wait()
    deadline = time.monotonic() + 10
    while (left := session_processes(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running 10 s after the harness died: {left}"

    final = start_run(preset, results, "--workers", "2")
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]
    assert_store_complete(preset, results)
    reference = tmp_path / "reference"
    args = ["run-all", "--preset", str(preset), "--results", str(reference), "--no-report"]
    assert main([*args, "--workers", "1"]) == 0  # undisturbed, in this process
    assert_same_results(results, reference)


@pytest.mark.slow
def test_two_concurrent_runs_never_run_a_cell_twice(preset, tmp_path):
    results = tmp_path / "store"
    procs = [start_run(preset, results, "--workers", "1") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    ran = 0
    for out, _ in outs:
        line = next((ln for ln in out.splitlines() if ln.startswith("done:")), "done: 0 cells")
        ran += int(line.split()[1])
    assert ran == len(plan_ids(preset)), [o[0] for o in outs]
    assert_store_complete(preset, results)


def _worker_facts() -> tuple[int, int, bool]:
    import torch as worker_torch

    return os.getppid(), worker_torch.get_num_threads(), "torch._dynamo" in sys.modules


def test_pool_workers_fork_from_a_preloaded_server_and_run_one_thread():
    from harness.executors import LocalExecutor

    facts = list(LocalExecutor(workers=2).map_unordered(_worker_facts, [()] * 4))
    assert len(facts) == 4
    for parent, threads, preloaded in facts:
        assert parent != os.getpid()  # forked by the server, not by the harness process
        assert threads == 1 and preloaded  # torch._dynamo came with the server, not the task


@pytest.mark.slow
def test_numbers_do_not_depend_on_the_number_of_workers(preset, tmp_path):
    """Same spec and seed, same numbers: one worker and two workers store identical values."""
    stores = {}
    for workers in ("1", "2"):
        stores[workers] = tmp_path / f"w{workers}"
        proc = start_run(preset, stores[workers], "--workers", workers)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    assert_same_results(stores["2"], stores["1"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_process_orphaned_before_its_tie_takes_effect_exits():
    """A worker whose server died before the worker asked for ``PR_SET_PDEATHSIG`` would idle
    forever on the pool's queue: ``tie_to_parent`` with a parent that is not the parent exits."""
    code = "from harness.lifeline import tie_to_parent; tie_to_parent(parent=-1); print('alive')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "alive" not in proc.stdout


# -- failure isolation -------------------------------------------------------------------
FAIL = {"on": True}


class _Magnitude(ScorePruner):
    """Global magnitude masks, for the test pruners below."""

    def scores(self, model, ctx):
        return {n: w.abs() for n, w in weights(model).items()}


class _Diverging(_Magnitude):
    """Test pruner: magnitude masks, then the weights scaled by 1e60 so training diverges."""

    name = "test_diverging"

    def prune(self, model, sparsity, ctx):
        super().prune(model, sparsity, ctx)
        if FAIL["on"]:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1e30).mul_(1e30)


class _Raising(_Magnitude):
    """Test pruner that raises MemoryError, as an out-of-memory cell would."""

    name = "test_raising"

    def prune(self, model, sparsity, ctx):
        if FAIL["on"]:
            raise MemoryError("simulated out of memory")
        super().prune(model, sparsity, ctx)


class _Lazy(Pruner):
    """Test pruner that prunes nothing: its cells miss their target sparsity."""

    name = "test_lazy"

    def prune(self, model, sparsity, ctx):
        pass


@pytest.fixture
def failing_pruners():
    for cls in (_Diverging, _Raising, _Lazy):
        PRUNERS.register(cls.name)(cls)
    FAIL["on"] = True
    yield
    for cls in (_Diverging, _Raising, _Lazy):
        PRUNERS._entries.pop(cls.name)


def tiny_preset(tmp_path: Path, pruners: list[str]) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        f"""description = "failure isolation"
datasets = ["digits"]
archs = ["mlp_256x2"]
pruners = {json.dumps(pruners)}
sparsities = [0.5]
seeds = [0]
retrain = ["finetune"]
[train]
epochs = 2
[retrain_config]
epochs = 1
rewind_epoch = 1
"""
    )
    return path


def test_failing_cells_are_stored_as_failed_and_the_run_goes_on(tmp_path, failing_pruners, capsys):
    preset = tiny_preset(tmp_path, ["global_magnitude", "test_diverging", "test_raising", "test_lazy"])
    results = tmp_path / "store"
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 1
    cells = pd.read_parquet(results / "cells").set_index("pruner")
    assert cells.loc["global_magnitude", "status"] == "ok"
    assert cells.loc["test_diverging", "status"] == "failed"
    assert "DivergenceError: non-finite training loss" in cells.loc["test_diverging", "reason"]
    assert cells.loc["test_raising", "reason"] == "MemoryError: simulated out of memory"
    assert "Traceback" in cells.loc["test_raising", "traceback"]
    # a pruner that misses its target sparsity is a failed cell, never an ok one at sparsity 0
    assert cells.loc["test_lazy", "status"] == "failed"
    assert cells.loc["test_lazy", "reason"].startswith(
        "SparsityContractError: achieved sparsity misses the target 0.5 by"
    )
    assert "3 failed" in out and "simulated out of memory" in out
    assert "1/4 cells stored ok, 3 failed" in out
    metrics = pd.read_parquet(results / "metrics")
    assert set(metrics.cell_id) == {cells.loc["global_magnitude", "cell_id"]}

    # without --retry-failed nothing reruns, and the failures still count: exit 1, never "stored"
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "1 already stored, 3 stored as failed" in out
    assert "0 cells run; 3 cells of the plan are stored as failed (--retry-failed runs them again)" in out
    assert "every cell of the plan is stored" not in out
    # with it, only the failed cells run
    FAIL["on"] = False
    code = main([*args, "--retry-failed", "--filter", "pruner=test_[dr]*"])
    out = capsys.readouterr().out
    assert code == 0 and "2 cells (4 leaderboard, 0 studies), 0 already stored, 2 to run" in out, out
    cells = pd.read_parquet(results / "cells").set_index("pruner")
    assert (cells.drop(index="test_lazy").status == "ok").all()


# -- damaged and incompatible stores ----------------------------------------------------------
@pytest.fixture
def small_store(tmp_path):
    preset = tiny_preset(tmp_path, ["random", "global_magnitude"])
    results = tmp_path / "store"
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    assert main(args) == 0
    return preset, results


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True)


def test_damaged_parquet_is_named_moved_aside_and_recomputed(small_store):
    """A torn cell row is damage: moved to damaged/, said in one line, the cell recomputed in the
    same run (tests/test_store_faults.py injects every kind of damage)."""
    preset, results = small_store
    victim = sorted((results / "cells").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-40])  # torn footer
    proc = run_cli(
        "run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"
    )
    assert proc.returncode == 0, proc.stderr
    moved = results / "damaged" / "cells" / victim.name
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("store: "))
    assert f"1 damaged file (1 cell row; first: cells/{victim.name} (cell row:" in line
    assert f"moved aside to {results / 'damaged'}, recomputing 1 cell" in line
    assert "1 already stored, 1 to run" in proc.stdout
    assert moved.exists() and victim.exists()  # moved aside, then computed again
    assert len(pd.read_parquet(results / "cells")) == 2


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0])
def test_store_of_another_schema_version_is_refused(small_store, version):
    preset, results = small_store
    (results / "store.json").write_text(json.dumps({"schema_version": version}))
    before = snapshot(results)
    proc = run_cli("run-all", "--preset", str(preset), "--results", str(results))
    assert proc.returncode == 2
    assert (
        f"written with schema version {version}" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    )
    assert snapshot(results) == before


def test_checkpoints_are_loaded_without_executing_code(small_store, tmp_path):
    _, results = small_store
    store = ResultsStore(results)
    parent = next((results / "parents").iterdir())
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"x": Exploit()}, parent / "model.pt")
    with pytest.raises(DamagedFile, match=r"model\.pt is not the file parent\.json records"):
        store.read_parent(parent.name)  # a replaced checkpoint is not the one recorded
    # even one whose checksum is recorded too is loaded as weights only, never run
    record = json.loads((parent / "parent.json").read_text())
    record["files"]["model.pt"] = hashlib.sha256((parent / "model.pt").read_bytes()).hexdigest()
    (parent / "parent.json").write_text(json.dumps(record))
    with pytest.raises(Exception, match="Weights only load failed"):
        store.read_parent(parent.name)
    assert not marker.exists()
