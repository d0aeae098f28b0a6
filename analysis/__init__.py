"""Published pruning claims as statistical tests on the stored results (``analysis/README.md``)."""

from analysis.claims import VERDICTS, analyze_studies, render_primary, run_analysis

__all__ = ["VERDICTS", "analyze_studies", "render_primary", "run_analysis"]
