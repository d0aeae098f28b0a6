"""What an analysis declares about the claims it tests (open_lth registers its branches this way).

Each analysis module (``analysis/<name>.py``) ends with one ``Analysis``: its name (a study file's
``analysis`` value), the tests its hypotheses may name, ``analyze`` (the claims-table rows of one
study), and what the rest of prunebench shows of it: its figure (drawn from the report's data, the
name the claim cards refer to it by), the numbers its claim card adds, the data its figure reads
from the store, the metric rows its analysis reads beyond the shared ones (``reads``), and any
check of a study definition beyond the generic ones (``core.hypotheses.claims``).
``analysis.registry`` lists the analyses: adding one is its module, one line there, and a study
file (``docs/extending.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Analysis:
    name: str
    tests: tuple[str, ...]
    analyze: Callable[[Any], list]  # StudyData -> [analysis.verdict.Row]
    title: str = ""  # the heading of its section in the claims notebook
    # extra checks of a study definition (raise core.hypotheses.StudyError), after the generic ones
    validate: Callable[[dict, str], None] | None = None
    figure: Callable[[Any], Any] | None = None  # reports.data.ReportData -> analysis.display.Figure | None
    figure_name: str | None = None  # the name of the figure it draws (a claim card shows it)
    # the numbers and tables its claim card adds: (primary verdict entry, ReportData) -> fields of the card
    card: Callable[[dict, Any], dict] | None = None
    # the metric rows its figure reads (cells -> [core.store.MetricFilter]) and the frame it makes of
    # them ((cells, metrics, study manifests) -> DataFrame), kept in ReportData.analyses[name]
    report_filters: Callable[[Any], list] = field(default=lambda cells: [])
    report_frame: Callable[[Any, Any, dict], Any] | None = None
    # the metric rows its analyze reads beside analysis.load.CLAIM_FILTERS (accuracy, test recall and
    # predictions, kept epoch): [core.store.MetricFilter], e.g. the ECE of a calibration claim
    reads: tuple = ()
