"""``run-all --seed-block K``: the studies on a second, disjoint block of seeds of the same size."""

from benchmarks.designs import SEED_BLOCK, load_study
from harness.runner import build_plan


def test_a_seed_block_is_the_same_design_on_disjoint_seeds():
    own = load_study("intensification")
    other = load_study("intensification", seed_block=1)
    assert len(other.cells) == len(own.cells)
    assert {c.seed for c in other.cells}.isdisjoint({c.seed for c in own.cells})
    assert [c.with_(seed=c.seed - SEED_BLOCK) for c in other.cells] == list(own.cells)


def test_seed_block_runs_the_studies_only():
    plan = build_plan("default", seed_block=1)
    assert plan.leaderboard == []
    studies = {c for s in plan.studies for c in s.cells}
    assert set(plan.cells) == studies
    assert min(c.seed for c in plan.cells) >= SEED_BLOCK


def test_the_cli_refuses_a_bad_seed_block(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run-all", "--seed-block", "-1", "--results", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "--seed-block" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
