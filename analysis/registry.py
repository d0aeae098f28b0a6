"""Every analysis, one line each (``analysis.base.Analysis``), and the checks that join a study's
two halves: the design ``benchmarks`` expands, the claims its analysis tests.

A study file names its analysis (``analysis = "intensification"``); ``check_study`` refuses one
whose analysis is not listed here, or whose hypotheses name a test the analysis does not implement
(``core.hypotheses.StudyError``). ``harness`` calls it when it plans a run, so a bad claim stops the
run (exit 2) before anything runs, and the analysis calls it again on the manifests it reads.
"""

from __future__ import annotations

from analysis import generalization_stability, intensification, mask_sanity, per_class, potential
from analysis.base import Analysis
from core.hypotheses import Claim, StudyError, claims

ANALYSES: dict[str, Analysis] = {
    a.name: a
    for a in (
        intensification.ANALYSIS,
        per_class.ANALYSIS,
        generalization_stability.ANALYSIS,
        potential.ANALYSIS,
        mask_sanity.ANALYSIS,
    )
}


def analysis_of(definition: dict, where: str = "study") -> Analysis:
    name = definition.get("analysis", "")
    if name not in ANALYSES:
        raise StudyError(f"{where}.analysis: {name!r} is not one of: {', '.join(ANALYSES)}")
    return ANALYSES[name]


def check_study(definition: dict, where: str = "study") -> list[Claim]:
    """The validated claims of a study definition: its analysis is registered, every hypothesis
    names a test of it, and the analysis' own checks pass (``StudyError`` names the key)."""
    analysis = analysis_of(definition, where)
    out = claims(definition, where, analysis.tests)
    if analysis.validate is not None:
        analysis.validate(definition, where)
    return out


def with_figures() -> list[Analysis]:
    """The analyses that draw a figure, in registry order (the report's order)."""
    return [a for a in ANALYSES.values() if a.figure is not None]


__all__ = ["ANALYSES", "analysis_of", "check_study", "with_figures"]
