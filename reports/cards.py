"""The claims part of the report: one summary table, then one card per claim.

Reads what ``harness analyze`` wrote (``primary.json``, ``claims.parquet``, ``labels.parquet``)
and the paper's numbers recorded in the study definitions; computes nothing new. The table leads
(claim, paper, verdict, estimate and interval, control status, stability); each card gives the
verdict's reason, its numbers, every gate with its numbers, the secondary rows, and each figure
and label table once (on the first card of its study's analysis); what a card adds beyond the
generic numbers is its analysis' (``analysis.base.Analysis.card``).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from analysis.registry import ANALYSES
from reports.data import ReportData

MAX_ROWS = 60


def _f(v, fmt: str = "+.3f") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def css_class(verdict: str) -> str:
    """A verdict as a CSS class name: ``out of regime`` -> ``out-of-regime``."""
    return re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")


def control_status(gates: list[dict]) -> str:
    """``pass`` when every applicable gate passed, else the failed gates named."""
    if not gates:
        return "no gate"
    failed = [g["gate"] for g in gates if g["passed"] is False]
    names = [g["gate"] + (" n/a" if g["passed"] is None else "") for g in gates]
    return "FAIL: " + ", ".join(failed) if failed else "pass (" + ", ".join(names) + ")"


def summary_table(data: ReportData) -> list[dict]:
    """One row per claim: the table the claims part leads with."""
    out = []
    for p in data.primaries:
        level = p.get("ci_level")
        ci = f"[{_f(p.get('ci_low'))}, {_f(p.get('ci_high'))}]"
        out.append(
            {
                "claim": p["claim"],
                "title": p["title"],
                "paper": p.get("paper", ""),
                "verdict": p["verdict"],
                "css": css_class(p["verdict"]),
                "point_verdict": p.get("point_verdict") if p.get("point_verdict") != p["verdict"] else "",
                "estimate": _f(p.get("estimate")),
                "ci": f"{100 * level:.0f}% {ci}" if level else ci,
                "control": control_status(p.get("gates", [])),
                "stability": _f(p.get("stability"), ".2f"),
            }
        )
    return out


def _rows(table: pd.DataFrame, claim: str) -> tuple[list[dict], dict]:
    if table.empty or "claim" not in table:
        return [], {}
    rows = table[(table["claim"] == claim) & ~table["primary"].astype(bool)]
    counts = rows["verdict"].value_counts().to_dict()
    rows = rows.sort_values(["q", "scope"], na_position="last").head(MAX_ROWS)
    out = [
        {
            "hypothesis": r["hypothesis"],
            "scope": r["scope"],
            "test": r["test"],
            "estimate": _f(r["estimate"]),
            "ci": f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
            "p": _f(r["p"], ".3g"),
            "q": _f(r["q"], ".3g"),
            "n": int(r["n"]),
            "verdict": r["verdict"],
            "label": r.get("label") or "",
        }
        for r in rows.to_dict("records")
    ]
    return out, counts


def _stats(p: dict) -> list[tuple[str, str]]:
    effect = p.get("effect")
    return [
        ("n", str(p.get("n", "–"))),
        ("estimate", _f(p.get("estimate"))),
        (f"{100 * (p.get('ci_level') or 0.95):.0f}% CI", f"[{_f(p.get('ci_low'))}, {_f(p.get('ci_high'))}]"),
        ("p", _f(p.get("p"), ".3g")),
        ("SESOI", _f(p.get("sesoi"), "g")),
        ("MDE at 80% power", _f(p.get("mde"), ".3f")),
        ("power at the effect", _f(p.get("power"), ".2f")),
        ("effect tested", f"{_f(effect)} ({p.get('effect_source', '')})" if effect is not None else "–"),
        ("bootstrap stability", _f(p.get("stability"), ".2f")),
        ("n that would settle it", _f(p.get("n_settle"), ".0f")),
        ("collapsed scopes left out", str(p.get("collapsed_scopes", 0))),
    ]


def claim_cards(data: ReportData) -> list[dict]:
    """One card per claim; ``card["summary"]`` is its row of the table the claims part leads with."""
    cards, shown = [], set()
    for p, summary in zip(data.primaries, summary_table(data), strict=True):
        study = p.get("study", "")
        analysis = ANALYSES.get(data.studies.get(study, {}).get("analysis", ""))
        rows, counts = _rows(data.claims, p["claim"])
        figure = analysis.figure_name if analysis else None
        own = analysis.card(p, data) if analysis and analysis.card else {}  # what its analysis adds
        ours, paper = own.get("labels_ours", []), own.get("labels_paper", [])
        labels_key = ("labels", study)
        cards.append(
            {
                "claim": p["claim"],
                "title": p["title"],
                "paper": p.get("paper", ""),
                "verdict": p["verdict"],
                "css": css_class(p["verdict"]),
                "point_verdict": p.get("point_verdict", ""),
                "reason": p.get("reason", ""),
                "sentence": p["sentence"],
                "paper_says": p.get("paper_says") or "",
                "stats": _stats(p) + own.get("stats", []),
                "gates": p.get("gates", []),
                "rows": rows,
                "counts": counts,
                "figure": figure if figure and figure not in shown else None,
                "labels_ours": ours if ours and labels_key not in shown else [],
                "labels_paper": paper if ours and labels_key not in shown else [],
                "paper_source": data.studies.get(study, {}).get("paper", {}).get("source", ""),
                "summary": summary,
            }
        )
        shown |= {figure, labels_key if ours else None}
    return cards


__all__ = ["claim_cards", "control_status", "css_class", "summary_table"]
