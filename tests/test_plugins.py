"""Pruners from outside the repository: an installed distribution (entry point), ``--plugin``,
a preset's ``plugins = [...]``, in the harness process and in every worker; failures stop the run.

The example distribution (``tests/example_plugin``) is pip-installed into a directory of its
own that the subprocesses get on ``PYTHONPATH``, not into the test environment: an installed
entry point joins every run of every test on the machine (``pruners = ["*"]`` of the smoke
preset would gain its pruner), and nothing would remove it again.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.store import StoreReader
from harness.cli import main
from tests.stored import comparable_tables
from tests.test_slurm import needs_slurm, slurm_up

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "example_plugin"
DIST, VERSION, MODULE, PRUNER = "prunebench-example-plugin", "0.1.0", "pb_example_plugin", "power_magnitude"
SRC_MODULE, SRC_PRUNER = "pb_src_plugin", "src_magnitude"

SRC_PLUGIN = '''"""A plugin imported from PYTHONPATH, owned by no distribution."""

from prunebench import ScorePruner, register_pruner, weights


@register_pruner
class SrcMagnitude(ScorePruner):
    """Per-layer magnitude from a source plugin: s = |w|."""

    name = "src_magnitude"
    scope = "layer"

    def scores(self, model, ctx):
        return {n: w.abs() for n, w in weights(model).items()}
'''


def preset(path: Path, pruners: list[str], seeds: list[int], plugins: list[str] | None = None) -> Path:
    """A small preset: digits, mlp_256x2, one sparsity, 2-epoch recipes, clean evaluation only."""
    head = f"plugins = {json.dumps(plugins)}\n" if plugins is not None else ""
    path.write_text(
        head + f'description = "plugin test"\ndatasets = ["digits"]\narchs = ["mlp_256x2"]\n'
        f"pruners = {json.dumps(pruners)}\nsparsities = [0.8]\nseeds = {json.dumps(seeds)}\n"
        'retrain = ["finetune"]\n\n[train]\nepochs = 2\nbatch_size = 128\nlr = 0.01\n'
        'optimizer = "adam"\nschedule = "cosine"\n\n[retrain_config]\nepochs = 2\nfinetune_lr = 0.003\n\n'
        '[eval]\nsets = "clean"\n'
    )
    return path


def harness(*args: str, path: list[Path] = (), timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` with ``path`` on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_all(toml: Path, results: Path, *args: str, path: list[Path] = ()) -> subprocess.CompletedProcess:
    """``run-all`` of preset file ``toml`` into ``results`` on the CPU, no report."""
    common = ["--preset", str(toml), "--results", str(results), "--no-report", "--device", "cpu"]
    return harness("run-all", *common, *args, path=path)


def cells(results: Path) -> pd.DataFrame:
    columns = ["cell_id", "pruner", "seed", "status", "plugin", "plugin_version", "pruner_config"]
    return StoreReader(results).cells([*columns, "spec_json"], status=None)


def with_parents(source: Path, results: Path) -> Path:
    """A fresh results dir holding ``source``'s dense parents, so a run trains none."""
    results.mkdir(parents=True)
    shutil.copy(source / "store.json", results / "store.json")
    shutil.copytree(source / "parents", results / "parents")
    return results


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example distribution, pip-installed (entry point, metadata) into a directory of its own.

    Built from a copy: the in-tree build writes ``build/`` and ``*.egg-info``, which two test
    workers would race on.
    """
    tmp = tmp_path_factory.mktemp("example_plugin")
    source, site = tmp / "source", tmp / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run(
        [*pip, "--quiet", "--disable-pip-version-check", "--target", str(site), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / f"{DIST.replace('-', '_')}-{VERSION}.dist-info").is_dir()
    return site


@pytest.fixture(scope="module")
def local_run(example_site, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """The example's pruner and a built-in one, 2 seeds, 2 local workers; found by its entry point only."""
    tmp = tmp_path_factory.mktemp("local_run")
    path = preset(tmp / "example.toml", [PRUNER, "global_magnitude"], [0, 1])
    results = tmp / "results"
    return path, results, run_all(path, results, "--workers", "2", path=[example_site])


@pytest.fixture
def src_plugin(tmp_path) -> Path:
    """A directory with a plugin module that no distribution owns."""
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{SRC_MODULE}.py").write_text(SRC_PLUGIN)
    return src


def test_list_finds_the_installed_plugin_by_its_entry_point(example_site):
    proc = harness("list", "pruners", "--verbose", path=[example_site])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    (line,) = [s for s in lines if s.strip().startswith(PRUNER)]
    assert "unstructured" in line and "after_training" in line and f"[plugin {DIST} {VERSION}]" in line
    assert any(s.strip().startswith("power = 2.0 (") and "exponent p of the score" in s for s in lines)
    (builtin,) = [s for s in lines if s.strip().startswith("global_magnitude")]
    assert "[plugin" not in builtin


def test_installed_plugin_runs_in_local_workers_and_its_cells_name_it(local_run):
    _, results, proc = local_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 ok, 0 failed" in proc.stdout
    table = cells(results)
    assert len(table) == 4 and (table.status == "ok").all()
    plugin, builtin = table[table.pruner == PRUNER], table[table.pruner == "global_magnitude"]
    assert sorted(plugin.seed) == [0, 1] and sorted(builtin.seed) == [0, 1]
    assert (plugin.plugin == DIST).all() and (plugin.plugin_version == VERSION).all()
    assert plugin.pruner_config.map(json.loads).eq({"power": 2.0}).all()
    assert plugin.spec_json.map(lambda s: json.loads(s)["plugin"]).eq(f"{DIST}=={VERSION}").all()  # in the id
    assert builtin.plugin.isna().all() and builtin.plugin_version.isna().all()


def test_the_leaderboard_summary_lists_the_plugin_pruner(local_run):
    from core.store import MetricFilter
    from harness.nightly import summarize

    _, results, proc = local_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summarize(results)
    assert set(summary.pruner) == {PRUNER, "global_magnitude"}
    (entry,) = summary[summary.pruner == PRUNER].itertuples()
    assert (entry.arch, entry.dataset, entry.sparsity, entry.retrain, entry.seeds) == (
        "mlp_256x2", "digits", 0.8, "finetune", 2
    )  # fmt: skip
    ids = set(cells(results).query("pruner == @PRUNER").cell_id)
    test_acc = MetricFilter(phases=["retrained"], eval_sets=["test"], metrics=["accuracy"], per_class=False)
    stored = StoreReader(results).metrics([test_acc])
    assert entry.accuracy == pytest.approx(stored[stored.cell_id.isin(ids)].value.mean())
    assert 0.5 < entry.accuracy <= 1.0  # digits at 80% sparsity after fine-tuning: a trained model
    from reports import data as D
    from reports import leaderboard as L

    overall, _ = L.overall_table(D.load(results), {})
    source = {r[0]["text"]: r[2]["text"] for r in overall.rows}
    assert source == {PRUNER: f"{DIST}=={VERSION}", "global_magnitude": "built-in"}  # ranked, named


@pytest.mark.slow
def test_the_example_pruner_passes_check_pruner(example_site):
    proc = harness("check-pruner", PRUNER, path=[example_site])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "checks passed" in proc.stdout and "FAIL" not in proc.stdout


@pytest.mark.slow
@needs_slurm
def test_installed_plugin_through_slurm_equals_the_local_run(local_run, example_site, tmp_path):
    assert slurm_up(), "CI=true but no Slurm cluster is up: .ci/run must run .ci/slurm-up.sh"
    path, local, local_proc = local_run
    assert local_proc.returncode == 0, local_proc.stderr[-3000:]
    results = tmp_path / "slurm"
    proc = run_all(
        path, results, "--executor", "slurm", "--max-parallel", "2", "--time-limit", "9", path=[example_site]
    )  # PYTHONPATH reaches the array tasks: sbatch exports the environment
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = cells(results)
    assert (table.status == "ok").all()
    assert (table[table.pruner == PRUNER].plugin_version == VERSION).all()
    (sc, sm), (lc, lm) = comparable_tables(results), comparable_tables(local)
    pd.testing.assert_frame_equal(sc, lc)  # the same cell ids: the same plugin version
    pd.testing.assert_frame_equal(sm, lm, check_exact=True)


def test_source_plugin_records_a_source_hash_and_an_edit_reruns_its_cells(local_run, src_plugin, tmp_path):
    _, stored, proc = local_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = preset(tmp_path / "src.toml", [SRC_PRUNER, "global_magnitude"], [0])
    results = with_parents(stored, tmp_path / "results")
    first = run_all(path, results, "--workers", "2", "--plugin", SRC_MODULE, path=[src_plugin])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 ok, 0 failed" in first.stdout
    before = cells(results)
    (src,) = before[before.pruner == SRC_PRUNER].itertuples()
    assert src.status == "ok" and src.plugin == SRC_MODULE and src.plugin_version.startswith("src-")
    assert len(src.plugin_version) == len("src-") + 12
    assert before[before.pruner == "global_magnitude"].plugin.isna().all()

    source = src_plugin / f"{SRC_MODULE}.py"
    source.write_text(source.read_text() + "\n# an edit: the plugin's source is not the one that ran\n")
    again = run_all(path, results, "--workers", "2", "--plugin", SRC_MODULE, path=[src_plugin])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 cells run" in again.stdout and "1 already stored" in again.stdout  # built-in cell kept
    after = cells(results)
    edited = after[(after.pruner == SRC_PRUNER) & (after.cell_id != src.cell_id)]
    assert len(after) == 3 and len(edited) == 1 and (after.status == "ok").all()
    assert edited.plugin.item() == SRC_MODULE and edited.plugin_version.item() not in ("", src.plugin_version)
    assert edited.plugin_version.item().startswith("src-")


def test_preset_plugins_work_like_the_plugin_option(local_run, src_plugin, tmp_path):
    _, stored, proc = local_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    pruners = [SRC_PRUNER, "global_magnitude"]
    in_preset = preset(tmp_path / "in_preset.toml", pruners, [0], plugins=[SRC_MODULE])
    results = with_parents(stored, tmp_path / "results")
    first = run_all(in_preset, results, "--workers", "2", path=[src_plugin])
    assert first.returncode == 0, first.stderr[-3000:]
    table = cells(results)
    assert len(table) == 2 and (table.status == "ok").all()
    assert table[table.pruner == SRC_PRUNER].plugin.item() == SRC_MODULE
    # the same cells (ids) named by --plugin instead: all stored already
    by_option = preset(tmp_path / "by_option.toml", pruners, [0])
    again = run_all(by_option, results, "--workers", "2", "--plugin", SRC_MODULE, path=[src_plugin])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 already stored" in again.stdout and "0 cells run" in again.stdout


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("prunebench: error: ")
    return lines[0]


def test_a_plugin_that_fails_to_import_stops_the_run_in_a_subprocess(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pb_broken_plugin.py").write_text(
        "import prunebench\n\nraise RuntimeError('broken on purpose\\nsecond line')\n"
    )
    path, results = preset(tmp_path / "p.toml", ["global_magnitude"], [0]), tmp_path / "results"
    proc = run_all(path, results, "--workers", "2", "--plugin", "pb_broken_plugin", path=[src])
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_error_line(proc.stderr)
    assert "'pb_broken_plugin'" in line and "RuntimeError: broken on purpose" in line
    assert not results.exists()


BROKEN = {
    "pb_raises_plugin": "raise RuntimeError('broken on purpose\\nsecond line')\n",
    "pb_exits_plugin": "import sys\n\nsys.exit('refuses to load')\n",
    "pb_syntax_plugin": "def f(:\n",
    "pb_dependency_plugin": "import pb_missing_dependency  # noqa\n",
    "pb_duplicate_plugin": SRC_PLUGIN.replace('"src_magnitude"', '"global_magnitude"'),
}


@pytest.mark.parametrize(
    ("module", "needles"),
    [
        ("no_such_module", ["'no_such_module' not found", "neither installed nor on PYTHONPATH"]),
        ("pb_raises_plugin", ["'pb_raises_plugin' failed to import", "RuntimeError: broken on purpose"]),
        ("pb_exits_plugin", ["'pb_exits_plugin' failed to import", "refuses to load"]),
        ("pb_syntax_plugin", ["'pb_syntax_plugin' failed to import", "SyntaxError"]),
        ("pb_dependency_plugin", ["'pb_dependency_plugin' failed to import", "'pb_missing_dependency'"]),
        ("pb_duplicate_plugin", ["'pb_duplicate_plugin'", "'global_magnitude'", "choose another name"]),
    ],
)
@pytest.mark.parametrize("how", ["option", "preset"])
def test_a_plugin_that_cannot_be_used_exits_2_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, module, needles, how
):
    # in process (every failure happens before a pruner registers): the CLI's own error path
    src = tmp_path / "src"
    src.mkdir()
    for name, text in BROKEN.items():
        (src / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(src))
    results = tmp_path / "results"
    plugins = [module] if how == "preset" else None
    path = preset(tmp_path / "p.toml", ["global_magnitude"], [0], plugins=plugins)
    option = ["--plugin", module] if how == "option" else []
    code = main(["run-all", "--preset", str(path), "--results", str(results), "--no-report", *option])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert all(n in line for n in needles), line
    if how == "preset":
        assert f"{path}:1:" in line  # the preset's file and the line of its plugins key
    assert not results.exists()
    assert module not in sys.modules


def test_source_hash_covers_every_file_of_a_plugin_package(tmp_path, monkeypatch):
    from pruners.plugins import source_hash

    package = tmp_path / "pb_hash_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pb_hash_pkg import helpers  # noqa\n")
    (package / "helpers.py").write_text("POWER = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import pb_hash_pkg  # noqa: F401

    try:
        before = source_hash("pb_hash_pkg", "pb_hash_pkg")
        assert before == source_hash("pb_hash_pkg", "pb_hash_pkg") and len(before) == 12
        (package / "helpers.py").write_text("POWER = 2\n")  # a file the pruner's module only imports
        assert source_hash("pb_hash_pkg", "pb_hash_pkg") != before
    finally:
        for name in ("pb_hash_pkg", "pb_hash_pkg.helpers"):
            sys.modules.pop(name, None)


def test_a_failed_slurm_task_is_reported_by_its_exception_line():
    from submitit.core.utils import FailedJobError

    from harness.slurm import failure_line

    trace = (
        'Traceback (most recent call last):\n  File "harness/tasks.py", line 173, in cell_task\n'
        "pruners.plugins.PluginError: plugin 'pb_x' not found: it is neither installed nor on PYTHONPATH\n"
    )
    exc = FailedJobError(
        f"Job (task=0) failed during processing with trace:\n----------------------\n{trace}\n"
        "----------------------\nYou can check full logs with 'job.stderr(0)'"
    )
    assert failure_line(exc) == trace.splitlines()[-1]
    assert failure_line(RuntimeError("killed\nmore")) == "killed"
