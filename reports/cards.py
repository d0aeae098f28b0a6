"""Claim cards: each claim's primary verdict in one sentence, its numbers, then the per-scope rows.

Reads what ``harness analyze`` wrote (``primary.json``, ``claims.parquet``, ``labels.parquet``)
and the paper's numbers recorded in the study definition; computes nothing new.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.data import ReportData

FIGURE_OF_ANALYSIS = {
    "intensification": "intensification",
    "per_class": "intensification",
    "generalization_stability": "stability",
    "mask_sanity": "mask_sanity",
}
MAX_ROWS = 60


def _f(v, fmt: str = "+.3f") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


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


def _labels(data: ReportData, study: str) -> tuple[list[dict], list[dict]]:
    ours = []
    if data.labels is not None and not data.labels.empty and "labels" in data.labels:
        for r in data.labels.to_dict("records"):
            ours.append(
                {
                    "setting": f"{r['arch']} / {r['dataset']} / {r['pruner']}",
                    "labels": r["labels"],
                    "t": r.get("t", ""),
                    "alpha": r.get("alpha_hat", ""),
                }
            )
    paper = [
        {"setting": k, "labels": str(v)}
        for k, v in data.studies.get(study, {}).get("paper", {}).items()
        if k != "source"
    ]
    return ours, paper


def _fit(data: ReportData) -> str:
    """The regime check of the stability study: the no-pruning baseline's training accuracy before
    the last pruning event (mean and minimum over seeds; the study needs >= 99%)."""
    s = data.stability
    if s is None or s.empty or "train_accuracy_before_last_event" not in s:
        return "not stored"
    base = s.loc[s["pruner"] == "none", "train_accuracy_before_last_event"]
    if base.empty:
        return "no baseline run"
    return f"{100 * base.mean():.2f}% (min {100 * base.min():.2f}%, {len(base)} seeds; needs >= 99%)"


def claim_cards(data: ReportData) -> list[dict]:
    cards = []
    for p in data.primaries:
        study = p.get("study", "")
        analysis = data.studies.get(study, {}).get("analysis", "")
        rows, counts = _rows(data.claims, p["claim"])
        ours, paper = (
            _labels(data, study)
            if analysis == "intensification" and "labels" in {r["hypothesis"] for r in rows} | {"labels"}
            else ([], [])
        )
        stats = [
            ("n", str(p.get("n", "–"))),
            ("estimate", _f(p.get("estimate"))),
            (
                f"{100 * (p.get('ci_level') or 0.95):.0f}% CI",
                f"[{_f(p.get('ci_low'))}, {_f(p.get('ci_high'))}]",
            ),
            ("p", _f(p.get("p"), ".3g")),
            ("MDE at 80% power", _f(p.get("mde"), ".3f")),
            ("power at the effect", _f(p.get("power"), ".2f")),
            (
                "effect tested",
                f"{_f(p.get('effect'))} ({p.get('effect_source', '')})"
                if p.get("effect") is not None
                else "–",
            ),
            ("bootstrap stability", _f(p.get("stability"), ".2f")),
            ("collapsed scopes left out", str(p.get("collapsed_scopes", 0))),
        ]
        if analysis == "generalization_stability":
            stats.append(("dense baseline train acc before last event", _fit(data)))
        cards.append(
            {
                "claim": p["claim"],
                "title": p["title"],
                "paper": p.get("paper", ""),
                "verdict": p["verdict"],
                "sentence": p["sentence"],
                "paper_says": p.get("paper_says") or "",
                "stats": stats,
                "rows": rows,
                "counts": counts,
                "figure": FIGURE_OF_ANALYSIS.get(analysis),
                "labels_ours": ours if analysis == "intensification" else [],
                "labels_paper": paper if analysis == "intensification" else [],
                "paper_source": data.studies.get(study, {}).get("paper", {}).get("source", ""),
            }
        )
    return cards


__all__ = ["claim_cards"]
