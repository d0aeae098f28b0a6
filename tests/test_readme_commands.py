"""Every command the README shows works: each ``python -m harness ...`` line of its code blocks
parses with the options it shows, and each subcommand is run here (on a tiny preset, or at a
reduced size for ``bench``), so a change to a shared mechanism cannot silently break one."""

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.parser import build_parser
from tests.tiny import tiny_store, tiny_text

ROOT = Path(__file__).resolve().parent.parent
PRESET = tiny_text(sparsities="[0.5, 0.9]")
# subcommands exercised by a test of their own elsewhere (a minute or more here)
ELSEWHERE = {
    "check-pruner": "tests/test_check_pruner.py",
    "compare-verdicts": "tests/test_claims_rules.py",
    "compare-stores": "tests/test_store_diff.py",
}


def readme_commands() -> list[str]:
    """Every ``python -m harness ...`` command in the README's code blocks (continuation lines
    joined, ``&&`` chains split, comments dropped)."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```(?:bash|text)?\n(.*?)```", text, re.S):
        lines: list[str] = []
        for line in block.splitlines():
            line = line.split("  #")[0].rstrip()
            if line.startswith(" ") and lines and "python -m harness" in lines[-1]:
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        for line in lines:
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("python -m harness"):
                    out.append(part)
    return out


def subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_readme_command_names_a_subcommand_and_options_it_has():
    commands = readme_commands()
    assert len(commands) >= 12, commands
    parsers = subparsers()
    for command in commands:
        words = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "))
        sub = words[3] if len(words) > 3 else "run-all"
        assert sub in parsers, command
        known = {s for a in parsers[sub]._actions for s in a.option_strings}
        shown = {w for w in words if w.startswith("--")}
        assert shown <= known, (command, shown - known)


def test_every_readme_subcommand_is_run_by_a_test():
    """Each subcommand the README shows is run here or by the test named in ``ELSEWHERE``."""
    shown = {shlex.split(c)[3] if len(shlex.split(c)) > 3 else "run-all" for c in readme_commands()}
    here = (Path(__file__)).read_text()
    for sub in shown:
        if sub in ELSEWHERE:
            assert f'"{sub}"' in (ROOT / ELSEWHERE[sub]).read_text(), f"{ELSEWHERE[sub]} does not run {sub}"
        else:
            assert re.search(rf'main\(\s*\[\s*"{re.escape(sub)}"', here), f"no test here runs `harness {sub}`"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny preset run with ``run-all --filter``: one of its four cells stored."""
    root = tmp_path_factory.mktemp("readme")
    filters = ["--filter", "pruner=global_magnitude", "--filter", "sparsity=0.5"]
    preset, results = tiny_store(root, *filters, sparsities="[0.5, 0.9]")
    return root, preset, results


def test_a_partial_store_gives_a_partial_report(workspace, tmp_path):
    """A grid point without a cell, entries on part of the grid: the report says what is missing
    (``harness report`` used to raise KeyError 'epochs_total' here)."""
    from reports.build import build_report

    _, _, results = workspace
    html = build_report(results, tmp_path / "site", notebooks=[], strict=True).read_text()
    assert "partial store: 3 of 4 cells of the leaderboard are not stored (0 failed, 3 not run)" in html
    assert "partial store: no leaderboard cell is stored at sparsity 0.9" in html


@pytest.mark.slow
def test_run_all_with_a_filter_builds_its_report_beside_its_store(tmp_path, capsys):
    preset = tmp_path / "tiny.toml"
    preset.write_text(PRESET)
    results = tmp_path / "results"
    run = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1"]
    assert main([*run, "--filter", "pruner=global_magnitude", "--filter", "sparsity=0.5"]) == 0
    index = results / "site" / "index.html"
    assert index.exists() and not (ROOT / "reports" / "site").exists()
    assert "partial store: no leaderboard cell is stored at sparsity 0.9" in index.read_text()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"report: {index} (")
    # the rest of the plan, its report elsewhere (--out): the path is printed at the end
    out_dir = tmp_path / "elsewhere"
    assert main([*run, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith(f"report: {out_dir / 'index.html'} (")
    assert "partial store" not in (out_dir / "index.html").read_text()
    assert main(["report", "--results", str(results)]) == 0  # default: beside the store
    assert f"report: {index} (" in capsys.readouterr().out
    assert main([*run, "--dry-run"]) == 0
    assert "4 already stored, 0 to run" in capsys.readouterr().out


def test_the_report_of_an_empty_store_is_an_empty_page(tmp_path):
    from harness.storage import ResultsStore
    from reports.build import build_report

    ResultsStore(tmp_path / "empty").prepare()
    index = build_report(tmp_path / "empty", notebooks=[], strict=True)
    assert index == tmp_path / "empty" / "site" / "index.html"
    assert "this store holds no cells yet" in index.read_text()


def test_list_run_analyze(workspace, tmp_path, capsys):
    _, preset, results = workspace
    for what in ("pruners", "archs", "datasets", "presets", "studies"):
        assert main(["list", what]) == 0
    assert main(["list", "pruners", "--verbose"]) == 0
    capsys.readouterr()
    one = ["--arch", "mlp_256x2", "--dataset", "digits", "--pruner", "random", "--sparsity", "0.5"]
    one += [
        "--seed",
        "0",
        "--retrain",
        "finetune",
        "--preset",
        str(preset),
        "--results",
        str(tmp_path / "one"),
    ]
    assert main(["run", *one]) == 0
    assert "retrained  test   accuracy" in capsys.readouterr().out
    assert main(["analyze", "--results", str(results)]) == 0
    assert "claims table:" in capsys.readouterr().out


def test_submit_verify_compare(workspace, tmp_path, capsys):
    _, _, results = workspace
    bundle = tmp_path / "entry.tar.gz"
    assert main(["submit", "--results", str(results), "--out", str(bundle)]) == 0
    assert main(["verify", str(bundle), "--sample", "1", "--accept-into", str(tmp_path / "board")]) == 0
    assert "verdict: accepted" in capsys.readouterr().out
    record = json.loads((tmp_path / "board" / "submissions" / "entry" / "verification.json").read_text())
    assert record["sample"]["seed_source"].startswith("drawn from the bundle's SHA-256")
    summary = tmp_path / "summary.parquet"
    assert main(["compare", "--results", str(results), "--summary-out", str(summary)]) == 0
    assert main(["compare", "--previous", str(summary), "--results", str(results)]) == 0
    assert "no leaderboard regressions" in capsys.readouterr().out


def test_calibrate_gpu_needs_a_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: calibrate-gpu would rewrite benchmarks/gpu_calibration.toml")
    assert main(["calibrate-gpu"]) == 2
    assert "calibrate-gpu --device cuda: no CUDA GPU" in capsys.readouterr().err


def test_bench_at_a_reduced_size_runs_to_its_summary(workspace, tmp_path, capsys):
    """The README's bench on the tiny preset: throughput and the loader comparison without
    worker processes (the 8-worker loader and the report build run in the slow test below)."""
    _, preset, _ = workspace
    skip = ["cell", "dataloader", "dataloader_mlp", "dataloader_0w", "report"]
    code = main(
        [
            "bench",
            "--results",
            str(tmp_path),
            "--preset",
            str(preset),
            *[a for m in skip for a in ("--skip", m)],
        ]
    )
    out = capsys.readouterr().out
    assert "bench summary: " in out and "throughput with 2 worker(s): 4 cells" in out, out
    frame = pd.read_parquet(tmp_path / "bench" / "bench.parquet")
    assert set(frame.measure) >= {"throughput_2_vs_1_workers"} and code in (0, 1)  # a missed target is 1


@pytest.mark.slow
def test_bench_every_measure_runs_to_its_summary(workspace, tmp_path, capsys):
    _, preset, results = workspace
    code = main(["bench", "--results", str(results), "--preset", str(preset)])
    out = capsys.readouterr().out
    assert code in (0, 1) and "bench summary: " in out and "report_build: " in out, out
    frame = pd.read_parquet(results / "bench" / "bench.parquet")
    assert len(frame) == 8 and frame.loc[frame.measure == "report_build", "harness_s"].notna().all()


@pytest.mark.slow
def test_run_all_filtered_to_one_pruner_on_the_default_preset_builds_a_report(tmp_path, capsys):
    """The issue's case: the default preset, one pruner (here on one dataset, arch and seed, so
    that it fits the slow suite), its studies' cells included: a partial report, exit 0."""
    results = tmp_path / "results"
    filters = ["pruner=global_magnitude", "dataset=digits", "arch=mlp_512x2", "seed=0"]
    code = main(["run-all", "--results", str(results), *[a for f in filters for a in ("--filter", f)]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (results / "site" / "index.html").exists() and "partial store" in (
        results / "site" / "index.html"
    ).read_text()
