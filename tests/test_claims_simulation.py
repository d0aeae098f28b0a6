"""Validation of the primary tests by simulation: synthetic study frames with a planted effect of
the paper's size and with none, run through the same analysis code as the stored results.

Per primary test: the false-positive rate under the null (a verdict of reproduced or
contradicted) is at most ``alpha + 0.03`` over 400 repetitions; the power at the paper's effect
(or the stated effect of interest), at a spread where the design's MDE is below that effect, is
at least 0.8; the confidence interval covers the planted value at about its nominal level.
For the equivalence test (TOST): equivalence is shown with power >= 0.8 when there is no
difference, and at most ``alpha + 0.03`` of the time when the difference equals the margin.
Marked slow (a few minutes).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis import generalization_stability as gs
from analysis import intensification as it
from analysis import mask_sanity, per_class
from analysis.load import study_frames
from tests import claims_synth as S

pytestmark = pytest.mark.slow
NULL_REPS, POWER_REPS = 400, 200


@pytest.fixture(autouse=True)
def _no_bootstrap(monkeypatch):
    """The verdicts under test do not depend on the bootstrap stability, which would cost 200
    re-tests per repetition: it is switched off here (``tests/test_claims.py`` covers it)."""
    monkeypatch.setattr("analysis.verdict.BOOTSTRAP", 0)


def definition(name: str) -> dict:
    """A study file's definition with each claim's primary hypothesis only (the ones simulated)."""
    d = S.study_definition(name)
    return {
        **d,
        "claim": [{**c, "hypothesis": [h for h in c["hypothesis"] if h.get("primary")]} for c in d["claim"]],
    }


def _primary(rows, claim):
    return next(r for r in rows if r.claim == claim and r.primary)


def _rate(verdicts, words=("reproduced", "contradicted")) -> float:
    return float(np.mean([v in words for v in verdicts]))


def _intensification_primary(rng, alpha_2: float, noise: float, claim="deintensification_low_ratio"):
    cells, metrics = S.intensification(rng, {0.5: alpha_2, 0.98: alpha_2}, noise=noise)
    study = study_frames("intensification", definition("intensification"), cells, metrics)
    return _primary(it.analyze(study), claim)


def test_intensification_alpha_2_null_power_and_coverage():
    rng = np.random.default_rng(100)
    null = [_intensification_primary(rng, 1.0, 0.02) for _ in range(NULL_REPS)]
    assert _rate([r.verdict for r in null]) <= 0.01 + 0.03
    coverage = np.mean([r.ci_low <= 0 <= r.ci_high for r in null])
    assert 0.97 <= coverage <= 1.0  # a 99% interval
    planted = [_intensification_primary(rng, 1 - 0.072, 0.02) for _ in range(POWER_REPS)]
    assert planted[0].mde < 0.072  # the design can detect the paper's effect at this spread
    assert _rate([r.verdict for r in planted], ("reproduced",)) >= 0.8


def test_up_vs_magnitude_null_and_power():
    rng = np.random.default_rng(101)

    def once(offset):
        cells, metrics = S.intensification(
            rng,
            {0.98: 1.5},
            pruners=("global_magnitude", "undecayed"),
            pruner_alpha={"undecayed": offset},
            noise=0.05,
        )
        study = study_frames("intensification", definition("intensification"), cells, metrics)
        return _primary(it.analyze(study), "up_vs_magnitude")

    assert _rate([once(0.0).verdict for _ in range(NULL_REPS)]) <= 0.01 + 0.03
    assert _rate([once(-0.238).verdict for _ in range(POWER_REPS)], ("reproduced",)) >= 0.8


def test_stability_correlation_null_power_and_coverage():
    rng = np.random.default_rng(102)

    def once(r):
        cells, metrics = S.stability(rng, r=r)
        study = study_frames("stability", definition("stability"), cells, metrics)
        return _primary(gs.analyze(study), "generalization_stability")

    null = [once(0.0) for _ in range(NULL_REPS)]
    assert _rate([x.verdict for x in null]) <= 0.05 + 0.03
    assert 0.92 <= np.mean([x.ci_low <= 0 <= x.ci_high for x in null]) <= 0.98
    assert _rate([once(-0.45).verdict for _ in range(POWER_REPS)], ("reproduced",)) >= 0.8


def test_per_class_global_null_and_power():
    rng = np.random.default_rng(103)

    def once(shift):
        cells, metrics = S.intensification(
            rng, {0.9: 1.0}, class_shift={2: shift} if shift else None, noise=0.02
        )
        study = study_frames("per_class_damage", definition("per_class_damage"), cells, metrics)
        return _primary(per_class.analyze(study), "per_class_damage")

    assert _rate([once(0.0).verdict for _ in range(NULL_REPS)]) <= 0.05 + 0.03
    assert _rate([once(-0.05).verdict for _ in range(POWER_REPS)], ("reproduced",)) >= 0.8


def test_noise_injection_null_and_power():
    rng = np.random.default_rng(104)

    def once(gain):
        cells, metrics = S.stability(rng, r=0.0, noise_gain=gain)
        study = study_frames("stability", definition("stability"), cells, metrics)
        return _primary(gs.analyze(study), "noise_injection")

    assert _rate([once(0.0).verdict for _ in range(NULL_REPS)]) <= 0.05 + 0.03
    assert _rate([once(0.01).verdict for _ in range(POWER_REPS)], ("reproduced",)) >= 0.8


def test_mask_sanity_noninferiority_power_and_size():
    rng = np.random.default_rng(105)

    def once(effect):
        cells, metrics = S.mask_controls(rng, {"snip": effect, "grasp": effect, "synflow": effect}, sd=0.01)
        study = study_frames("mask_sanity", definition("mask_sanity"), cells, metrics)
        return _primary(mask_sanity.analyze(study), "mask_sanity")

    assert _rate([once(0.0).verdict for _ in range(POWER_REPS)], ("reproduced",)) >= 0.8
    assert _rate([once(-0.01).verdict for _ in range(NULL_REPS)], ("reproduced",)) <= 0.05 + 0.03
