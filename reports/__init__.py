"""prunebench's report: executed notebooks, figures and a static HTML leaderboard.

``build_report(results_dir, out_dir="reports/site") -> Path`` (see ``reports.build``) reads
only the stored results and the claims table. Shared data shaping lives in
``reports.data``, figures in ``reports.figures``, tables in ``reports.leaderboard``; the
display schema (names, units, directions, definitions) in ``display_schema.toml``.
"""

from __future__ import annotations

__all__ = ["build_report"]


def build_report(*args, **kwargs):
    """Build the report site; see ``reports.build.build_report``."""
    from reports.build import build_report as _build

    return _build(*args, **kwargs)
