"""``harness check-pruner``: it passes the built-in pruners and fails planted broken ones.

The broken pruners below are defined here undecorated and checked as
``tests.test_check_pruner:CLASS``: ``check_pruner`` registers each for the check only and
removes it afterwards, so the tests parametrised over every registered pruner never see them.
"""

import dataclasses
import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from benchmarks.archs import ARCHS
from harness.check import check_pruner, guarded, is_heavy
from harness.cli import main
from prunebench import PhasePruner, param
from pruners import PRUNERS
from pruners.base import Pruner, ScorePruner, weights
from pruners.masks import apply_masks, masks_from_scores, prunable_modules

ROOT = Path(__file__).resolve().parent.parent
FAST = {"global_magnitude", "snip", "gmp", "l1_filter", "synflow", "greg1"}
FAST_ARCHS = ["mlp_256x2", "cnn_32x3", "resnet_16x3", "cifar_resnet_20"]
SCRATCH = Path(tempfile.gettempdir()) / "prunebench-check-pruner-scratch.txt"


class MissesSparsity(ScorePruner):
    """Global magnitude that keeps 10% of the weights too many (planted: misses its sparsity)."""

    name = "planted_misses_sparsity"

    def scores(self, model, ctx):
        return {n: w.abs() for n, w in weights(model).items()}

    def prune(self, model, sparsity, ctx):
        apply_masks(
            model, masks_from_scores(model, self.scores(model, ctx), max(0.0, sparsity - 0.1), "global")
        )


class Regrows(Pruner):
    """Global magnitude that zeroes weights in place, without a mask (planted: they regrow)."""

    name = "planted_regrows"

    def prune(self, model, sparsity, ctx):
        masks = masks_from_scores(model, {n: w.abs() for n, w in weights(model).items()}, sparsity, "global")
        with torch.no_grad():
            for name, module in prunable_modules(model).items():
                module.weight.mul_(masks[name])


class WritesFiles(MissesSparsity):
    """Correct masks, but it writes a log file while pruning (planted: does I/O)."""

    name = "planted_writes_files"

    def prune(self, model, sparsity, ctx):
        SCRATCH.write_text("pruning\n")
        ScorePruner.prune(self, model, sparsity, ctx)


class Undocumented(Regrows):
    """Correct masks, but a hyperparameter without a description (planted: fails declares)."""

    name = "planted_undocumented"

    @dataclasses.dataclass(frozen=True)
    class Config:
        rate: float = 0.5

    def prune(self, model, sparsity, ctx):
        scores = {n: w.abs() for n, w in weights(model).items()}
        apply_masks(model, masks_from_scores(model, scores, sparsity, "global"))


class ShrinkThenPrune(PhasePruner):
    """An outside phase pruner through the public API: one epoch of L2 on the weights it will
    remove, then global magnitude (correct)."""

    name = "planted_shrink_then_prune"
    scope = "global"

    @dataclasses.dataclass(frozen=True)
    class Config:
        strength: float = param(1e-2, "L2 factor on the weights chosen for removal", ge=0.0)

    def phase_epochs(self, train):
        return 1

    def prune(self, model, sparsity, ctx):
        apply_masks(
            model,
            masks_from_scores(model, {n: w.abs() for n, w in weights(model).items()}, sparsity, "global"),
        )

    def prune_with_phase(self, model, sparsity, ctx, run):
        chosen = masks_from_scores(model, {n: w.abs() for n, w in weights(model).items()}, sparsity, "global")
        modules = prunable_modules(model)

        def penalty(m):
            return self.config.strength * sum(
                ((1 - chosen[n]) * modules[n].weight ** 2).sum() for n in modules
            )

        run.train(
            model, dataclasses.replace(run.config, epochs=self.phase_epochs(run.config)), regularizer=penalty
        )
        self.prune(model, sparsity, ctx)


class PhaseMissesSparsity(ShrinkThenPrune):
    """Correct ``prune``, but its phase ends 10% short of the target (planted: misses its sparsity)."""

    name = "planted_phase_misses_sparsity"

    def prune_with_phase(self, model, sparsity, ctx, run):
        super().prune_with_phase(model, max(0.0, sparsity - 0.1), ctx, run)


class Clashes(MissesSparsity):
    """A class that claims a built-in pruner's name."""

    name = "snip"


def check(capsys, *argv):
    code = main(["check-pruner", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.strip().splitlines()


def verdicts(lines):
    """Check name -> (PASS or FAIL, detail)."""
    out = {}
    for line in lines[:-1]:
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(": ")
        out[name] = (status, detail)
    return out


def assert_all_pass(code, lines, name):
    assert code == 0, "\n".join(lines)
    checks = verdicts(lines)
    assert set(checks) >= {"declares", "sparsity", "zero", "determinism", "io", "runs"}
    assert all(status == "PASS" for status, _ in checks.values()), "\n".join(lines)
    if PRUNERS.get(name).kind == "structured":
        assert "structure" in checks
    assert lines[-1].startswith(f"check-pruner {name}: {len(checks)} of {len(checks)} checks passed in ")


@pytest.mark.parametrize("pruner", sorted(FAST - {"global_magnitude"}))
def test_representative_pruners_pass_on_representative_archs(pruner, capsys):
    """Light archs of each family and one heavy arch (its reduced config: synflow's rounds)."""
    code = check_pruner(pruner, archs=FAST_ARCHS)
    lines = capsys.readouterr().out.splitlines()
    assert_all_pass(code, lines, pruner)
    reduced = "synflow rounds=5 on heavy archs" in verdicts(lines)["sparsity"][1]
    assert reduced == (pruner == "synflow"), "a reduced config is named in the detail, and only then"


@pytest.mark.slow
@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_every_built_in_pruner_passes_on_every_arch(pruner, capsys):
    code, lines, _ = check(capsys, pruner)
    assert_all_pass(code, lines, pruner)
    assert f"ran on all {len(ARCHS)} archs" in verdicts(lines)["runs"][1]


def test_fast_archs_include_a_heavy_one():
    assert [is_heavy(a) for a in FAST_ARCHS] == [False, False, False, True]


def test_real_command_passes_global_magnitude():
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "check-pruner", "global_magnitude"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert_all_pass(proc.returncode, lines, "global_magnitude")
    worst = re.search(r"worst ([-+][0-9.]+) weights \((\w+) ", verdicts(lines)["sparsity"][1])
    assert abs(float(worst.group(1))) <= 1 and worst.group(2) in ARCHS  # global scope: one weight overall
    assert all(line.endswith(" s)") for line in lines[:-1]), "every check prints its seconds"


def test_missing_sparsity_fails_the_sparsity_check_only(capsys):
    code, lines, _ = check(capsys, "tests.test_check_pruner:MissesSparsity")
    assert code == 1
    checks = verdicts(lines)
    status, detail = checks.pop("sparsity")
    assert status == "FAIL" and "off by -" in detail and "bound: one weight overall" in detail
    assert all(status == "PASS" for status, _ in checks.values()), "\n".join(lines)
    assert lines[-1].startswith("check-pruner planted_misses_sparsity: 5 of 6 checks passed")
    assert "planted_misses_sparsity" not in PRUNERS  # registered for the check only


def test_weights_zeroed_without_a_mask_fail_the_zero_check(capsys):
    code = check_pruner("tests.test_check_pruner:Regrows", archs=FAST_ARCHS)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    checks = verdicts(lines)
    status, detail = checks["zero"]
    assert status == "FAIL" and "regrew" in detail and "without a torch.nn.utils.prune mask" in detail
    assert checks["sparsity"][0] == "FAIL" and "no torch.nn.utils.prune mask" in checks["sparsity"][1]
    assert checks["io"][0] == checks["runs"][0] == checks["determinism"][0] == "PASS"
    assert "planted_regrows" not in PRUNERS


def test_undocumented_config_field_fails_the_declares_check(capsys):
    code = check_pruner("tests.test_check_pruner:Undocumented", archs=["mlp_256x2"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith(
        "FAIL declares: Config field(s) rate have no description: use param(default, doc)"
    )
    assert sum(line.startswith("FAIL") for line in lines) == 1, "\n".join(lines)


def test_file_written_while_pruning_fails_the_io_check(capsys):
    SCRATCH.unlink(missing_ok=True)
    code = check_pruner("tests.test_check_pruner:WritesFiles", archs=["mlp_256x2"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    status, detail = verdicts(lines)["io"]
    assert status == "FAIL" and f"open {SCRATCH} (mode w)" in detail and "mlp_256x2" in detail
    assert sum(line.startswith("FAIL") for line in lines) == 1, "\n".join(lines)
    SCRATCH.unlink(missing_ok=True)


def test_an_outside_phase_pruner_passes_and_its_phase_is_checked(capsys):
    """A pruner brought through ``prunebench.PhasePruner``: sparsity, zero and determinism are
    checked at the end of its phase (``prune_with_phase``), and its declared phase is shown."""
    code = check_pruner("tests.test_check_pruner:ShrinkThenPrune", archs=["mlp_256x2", "cnn_32x3"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, "\n".join(lines)
    checks = verdicts(lines)
    assert "a pruning phase of 1 epoch(s)" in checks["declares"][1]
    assert "prune_with_phase at 0.8" in checks["sparsity"][1] and "prune_with_phase" in checks["zero"][1]
    assert "prune_with_phase" in checks["determinism"][1]
    assert "planted_shrink_then_prune" not in PRUNERS


def test_a_phase_that_misses_its_sparsity_fails_the_sparsity_check(capsys):
    code = check_pruner("tests.test_check_pruner:PhaseMissesSparsity", archs=["mlp_256x2"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    status, detail = verdicts(lines)["sparsity"]
    assert status == "FAIL" and "prune_with_phase: off by -" in detail
    assert sum(line.startswith("FAIL") for line in lines) == 1, "\n".join(lines)


def test_a_phase_pruner_must_prune_the_trained_parent():
    from pruners.base import register_pruner

    class DuringPhase(ShrinkThenPrune):
        """A phase pruner that claims to act during training (refused)."""

        name = "planted_during_phase"
        timing = "during_training"

    with pytest.raises(ValueError, match="a PhasePruner prunes the trained parent"):
        register_pruner(DuringPhase)
    assert "planted_during_phase" not in PRUNERS


def test_guard_ignores_imports_but_records_file_use(tmp_path):
    fresh = next(m for m in ("tabnanny", "pyclbr", "mailbox", "netrc") if m not in sys.modules)
    with guarded() as events:
        importlib.import_module(fresh)  # reads .py/.pyc files of the install: not I/O of the pruner
    assert events == []
    with guarded() as events:
        (tmp_path / "x.txt").write_text("x")
        (tmp_path / "x.txt").read_text()
        (tmp_path / "x.txt").unlink()
    assert [e.split()[0] for e in events] == ["open", "open", "os.remove"]
    (tmp_path / "y.txt").write_text("outside the guard")  # not recorded
    with guarded() as events:
        pass
    assert events == []


def test_unknown_name_exits_2_with_one_line(capsys):
    code, out, err = check(capsys, "global_magnitud")
    assert code == 2 and out == [] and len(err) == 1
    assert "unknown pruner 'global_magnitud'; did you mean 'global_magnitude'?" in err[0]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:Pruner", "module 'no_such_module_xyz' failed to import: ModuleNotFoundError"),
        (
            "tests.test_check_pruner:Missing",
            "has no 'Missing'; pruner classes there: Clashes, MissesSparsity, PhaseMissesSparsity, Regrows, "
            "ShrinkThenPrune, Undocumented",
        ),
        ("tests.test_check_pruner:check", "check is not a subclass of prunebench.Pruner"),
        (
            "tests.test_check_pruner:Clashes",
            "pruner name 'snip' is taken by pruners.snip.Snip; choose another",
        ),
    ],
)
def test_bad_module_class_exits_2_with_one_line(capsys, target, message):
    code, out, err = check(capsys, target)
    assert code == 2 and out == [] and len(err) == 1
    assert err[0].startswith(f"prunebench: error: check-pruner {target!r}: ") and message in err[0]
    assert PRUNERS.get("snip").__module__ == "pruners.snip"
