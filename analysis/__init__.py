"""Statistical tests of published pruning claims, run on the stored results (Parquet only).

See ``analysis/README.md`` and ``shared/design/claims.md``. Entry point:
``analysis.claims.run_analysis(results_dir, out_dir=None) -> pandas.DataFrame``.
"""

from analysis.claims import CLAIM_IDS, render_summary, run_analysis, verdict_summary
from analysis.table import COLUMNS, VERDICTS

__all__ = ["CLAIM_IDS", "COLUMNS", "VERDICTS", "render_summary", "run_analysis", "verdict_summary"]
