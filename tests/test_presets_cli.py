"""Presets are validated on load; bad input ends with exit 2 and one clear line."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.filters import apply_filters
from benchmarks.matrix import PresetError, load_preset, preset_names
from harness.cli import main
from pruners import PRUNERS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads(name):
    preset = load_preset(name)
    assert preset.expand()


def test_default_preset_covers_the_required_matrix():
    from benchmarks.datasets import embedded_names
    from benchmarks.designs import study_names

    p = load_preset("default")
    d = p.design
    # every embedded dataset is in the default run: the leaderboard's, or a study's (mnist5k: intensification)
    from benchmarks.designs import load_study

    study_datasets = {c.dataset for s in p.studies for c in load_study(s).cells}
    assert set(d.datasets) | study_datasets == set(embedded_names())
    assert len(d.archs) >= 2 and len(d.axes.seeds) >= 2  # 2 seeds x 4 pairs: 8 cells per entry and grid point
    assert set(d.pruners) == set(PRUNERS.names())
    assert 0.9 in p.grid and len(p.grid) >= 3
    # one grid: every pruner, imp included, at every grid sparsity
    cells = p.expand()
    for name in PRUNERS.names():
        assert {c.sparsity for c in cells if c.pruner == name} == set(p.grid), name
    assert set(p.studies) == {
        s for s in study_names() if not s.startswith("smoke") and not s.endswith("_cifar")
    }


def write(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


GOOD = """datasets = ["digits"]
archs = ["mlp_256x2"]
pruners = ["random"]
sparsities = [0.5]
seeds = [0]
retrain = ["finetune"]
[train]
epochs = 1
"""


@pytest.mark.parametrize(
    ("edit", "line", "key"),
    [
        (("sparsities = [0.5]", "sparsities = [0.5, 1.5]"), 4, "sparsities"),
        (('pruners = ["random"]', 'pruners = ["randm"]'), 3, "pruners"),
        (("epochs = 1", "epochs = 1\nlearning_rate = 2"), 9, "train.learning_rate"),
        (("epochs = 1", 'epochs = "ten"'), 8, "train.epochs"),
        (('retrain = ["finetune"]', 'retrain = ["finetune", "nope"]'), 6, "retrain"),
    ],
)
def test_malformed_preset_names_file_line_and_key(tmp_path, edit, line, key):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(PresetError) as err:
        load_preset(str(path))
    assert f"{path}:{line}: key {key!r}" in str(err.value)


@pytest.mark.parametrize(
    ("text", "line"), [(GOOD.replace("seeds = [0]", "seeds = [0,,]"), 5), (GOOD + "x = [\n", 9)]
)
def test_toml_syntax_error_names_file_and_line(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(PresetError, match=rf"bad.toml:{line}: malformed TOML"):
        load_preset(str(path))


def test_filters():
    from harness.runner import build_plan

    cells = build_plan("smoke").cells
    kept = apply_filters(cells, ["pruner=*magnitude", "sparsity=0.9"])
    assert kept and all(c.pruner.endswith("magnitude") and c.sparsity == 0.9 for c in kept)
    stability = apply_filters(cells, ["cell_type=stability", "pruner=prune_l"])
    assert stability and all(c.target == "prune_l" for c in stability)
    with pytest.raises(PresetError, match="KEY=GLOB"):
        apply_filters(cells, ["colour=red"])
    with pytest.raises(
        PresetError, match=r"--filter 'pruner=nosuch' matches no cell of the plan; pruner values: "
    ):
        apply_filters(cells, ["pruner=nosuch"])
    with pytest.raises(PresetError, match="together they match no cell"):
        apply_filters(cells, ["cell_type=stability", "retrain=finetune"])


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run-all", "--preset", "defualt", "--dry-run"], "did you mean 'default'?"),
        (
            [
                "run",
                "--arch",
                "mlp_256x2",
                "--dataset",
                "digits",
                "--pruner",
                "magnitude",
                "--sparsity",
                "0.5",
            ],
            "unknown pruner 'magnitude'",
        ),
        (
            ["run", "--arch", "mlp", "--dataset", "digits", "--pruner", "random", "--sparsity", "0.5"],
            "unknown architecture 'mlp'",
        ),
        (
            ["run", "--arch", "mlp_256x2", "--dataset", "digits", "--pruner", "random", "--sparsity", "1.2"],
            "sparsity 1.2 is outside [0, 1)",
        ),
        (["run-all", "--results", "/proc/prunebench-nope", "--preset", "smoke"], "is not writable"),
        (
            ["run-all", "--preset", "smoke", "--filter", "pruner=nosuch"],
            "--filter 'pruner=nosuch' matches no cell",
        ),
        (["run-all", "--preset", "smoke", "--study", "intensificaton"], "did you mean 'intensification'?"),
        (
            [
                "run",
                "--arch",
                "mlp_256x2",
                "--dataset",
                "digits",
                "--pruner",
                "random",
                "--sparsity",
                "0.5",
                "--seed",
                "-1",
            ],
            "seed -1 must be a non-negative integer",
        ),
        (
            ["run-all", "--preset", "smoke", "--plugin", "no_such_plugin_module"],
            "plugin 'no_such_plugin_module'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, needle):
    if "--results" not in args:
        args = [*args, "--results", str(tmp_path / "r")]
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "r").exists()


def test_list_shows_every_pruner_with_kind_and_timing():
    proc = cli("list", "pruners")
    assert proc.returncode == 0
    for name in PRUNERS:
        line = next(ln for ln in proc.stdout.splitlines() if ln.split()[:1] == [name])
        assert PRUNERS.get(name).kind in line and PRUNERS.get(name).timing in line


def test_list_pruners_verbose_shows_every_hyperparameter_with_its_description(capsys):
    from core.config import describe_config

    assert main(["list", "pruners", "--verbose"]) == 0
    out = capsys.readouterr().out
    for name in PRUNERS:
        for field, _, default, doc in describe_config(PRUNERS.get(name).Config):
            assert doc, (name, field)
            assert f"{field} = {default!r}" in out and doc in out
    assert "rounds = 100 (int): pruning rounds" in out and "score_batches = 8" in out


def test_list_studies_names_each_claim(capsys):
    assert main(["list", "studies"]) == 0
    out = capsys.readouterr().out
    for claim in (
        "deintensification_low_ratio",
        "per_class_damage",
        "generalization_stability",
        "prune_potential",
        "mask_sanity",
    ):
        assert claim in out


def test_bench_writes_its_figures_to_parquet(tmp_path, capsys):
    """One measure of ``harness bench`` end to end: the printed line and the stored row agree."""
    from harness.bench import BENCH_MEASURES

    skip = [m for m in BENCH_MEASURES if m != "dataloader_mlp_0w"]
    code = main(["bench", "--results", str(tmp_path), *[a for m in skip for a in ("--skip", m)]])
    assert code == 0  # an informational row has no target to miss
    frame = pd.read_parquet(tmp_path / "bench" / "bench.parquet")
    assert frame.measure.tolist() == ["training_vs_dataloader[mlp_256x2, num_workers=0]"]
    row = frame.iloc[0]
    assert row.harness_s > 0 and row.baseline_s > 0 and row.ratio == row.baseline_s / row.harness_s
    assert pd.isna(row.ok) and row.git_commit and row.torch_version
    assert f"ratio {row.ratio:.2f}" in capsys.readouterr().out
