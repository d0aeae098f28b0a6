"""prunebench's report: executed notebooks, figures and a static HTML leaderboard.

``build_report(results_dir, out_dir=None) -> Path`` (see ``reports.build``; the site goes to
``<results_dir>/site`` unless ``out_dir`` says otherwise) reads only the stored results and
what ``harness analyze`` wrote. ``reports.data`` reads the store
(and holds ``mean_ci``, the one interval of the page), ``reports.leaderboard`` the tables,
``reports.cards`` the claim cards, ``reports.figures`` the figures and their layout check,
``reports.notebook`` the notebooks' shared preamble.
"""

from __future__ import annotations

__all__ = ["build_report"]


def build_report(*args, **kwargs):
    """Build the report site; see ``reports.build.build_report``."""
    from reports.build import build_report as _build

    return _build(*args, **kwargs)
