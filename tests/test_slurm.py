"""The smoke preset through a real Slurm cluster equals a local run (``.ci/slurm-up.sh``)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.stored import comparable_tables

ROOT = Path(__file__).resolve().parent.parent


def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


needs_slurm = pytest.mark.skipif(
    not slurm_up() and os.environ.get("CI") != "true",
    reason="no Slurm cluster here: run .ci/slurm-up.sh as root (CI does)",
)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run-all", "--preset", "smoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.mark.slow
@needs_slurm
def test_smoke_through_slurm_equals_a_local_run(tmp_path):
    assert slurm_up(), "CI=true but no Slurm cluster is up: .ci/run must run .ci/slurm-up.sh"
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    proc = run("--results", str(slurm_dir), "--executor", "slurm", "--max-parallel", "2", "--time-limit", "9")
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = list((slurm_dir / "slurm").glob("*/logs/*"))
    assert logs, "job logs live under the results dir"
    assert run("--results", str(local_dir), "--workers", "1").returncode == 0
    (sc, sm), (lc, lm) = comparable_tables(slurm_dir), comparable_tables(local_dir)
    pd.testing.assert_frame_equal(sc, lc)
    pd.testing.assert_frame_equal(sm, lm, check_exact=True)
    again = run("--results", str(slurm_dir), "--executor", "slurm")
    assert again.returncode == 0 and "0 cells run" in again.stdout
