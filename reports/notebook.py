"""The one preamble of every report notebook: display options, the store, figures shown inline.

A template's first code cell after its parameters is ``from reports.notebook import *`` and
``data = open_results(results_dir)``; the site builder hands its loaded store to the
notebooks through ``CACHE_ENV`` (a pickle written once), so no notebook reads the store again.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pandas as pd

from analysis.registry import with_figures
from reports import data as D
from reports import figures as F
from reports import leaderboard as L

CACHE_ENV = "PRUNEBENCH_REPORT_CACHE"


def display(obj) -> None:
    """Show ``obj`` in the notebook (IPython's ``display``)."""
    from IPython.display import display as show_it

    show_it(obj)


def Markdown(text: str):
    from IPython.display import Markdown as markdown

    return markdown(text)


def write_cache(data: D.ReportData, path: Path) -> Path:
    path.write_bytes(pickle.dumps(data))
    return path


def open_results(results_dir: str) -> D.ReportData:
    """The store as the report shows it (from the builder's cache when it set one)."""
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.precision", 3)
    cache = os.environ.get(CACHE_ENV)
    if cache and Path(cache).exists():
        data = pickle.loads(Path(cache).read_bytes())
        if Path(data.results_dir).resolve() == Path(results_dir).resolve():
            return data
    return D.load(results_dir)


def table_frame(table: L.Table | None) -> pd.DataFrame:
    """A leaderboard table as a DataFrame of its shown text (value and interval)."""
    if table is None:
        return pd.DataFrame()
    rows = [[c["text"] + (f" {c['ci']}" if c.get("ci") else "") for c in r] for r in table.rows]
    return pd.DataFrame(rows, columns=[c.header for c in table.columns])


def show(figure: F.Figure | None) -> None:
    """Display a report figure inline with its caption (nothing when its data is missing)."""
    import io

    from IPython.display import Image, Markdown, display

    if figure is None:
        display(Markdown("_not drawn: this store has no data for it_"))
        return
    png = io.BytesIO()
    figure.fig.savefig(png, format="png", dpi=F.DPI, bbox_inches="tight")
    display(Image(data=png.getvalue(), format="png"))
    display(Markdown(f"*{figure.caption}*"))
    F.plt.close(figure.fig)


__all__ = ["D", "F", "L", "Markdown", "display", "open_results", "pd", "show", "table_frame", "with_figures"]
