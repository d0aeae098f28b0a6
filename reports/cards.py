"""The claims part of the report: one summary table, then one card per claim.

Reads what ``harness analyze`` wrote (``primary.json``, ``claims.parquet``, ``labels.parquet``)
and the paper's numbers recorded in the study definitions; computes nothing new. The table leads
(claim, paper, verdict, estimate and interval, control status, stability); each card gives the
verdict's reason, its numbers, every gate with its numbers, the secondary rows, and each figure
and the intensification label table once (on the first card of its study's analysis).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from reports.data import ReportData

FIGURE_OF_ANALYSIS = {
    "intensification": "intensification",
    "generalization_stability": "stability",
    "mask_sanity": "mask_sanity",
}
MAX_ROWS = 60
LABEL_COLUMNS = ("alpha_hat", "beta_hat", "a_over_a_t", "alpha_1", "alpha_minus_alpha_1", "last_epoch_share")


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


def _labels(data: ReportData, study: str) -> tuple[list[dict], list[dict]]:
    """Our label rows (with alpha, beta, A/A_t, alpha_1, alpha_t - alpha_1, last-epoch share),
    each beside the paper's row it matches (``[paper.match]``), and the paper's rows."""
    paper_table = data.studies.get(study, {}).get("paper", {})
    match = paper_table.get("match", {}) if isinstance(paper_table.get("match"), dict) else {}
    ours = []
    if data.labels is not None and not data.labels.empty and "labels" in data.labels:
        for r in data.labels.to_dict("records"):
            setting = f"{r['arch']} / {r['dataset']} / {r['pruner']}"
            paper_row = match.get(setting, "")
            ours.append(
                {
                    "setting": setting,
                    "labels": r["labels"],
                    "t": r.get("t", ""),
                    **{c: r.get(c, "") for c in LABEL_COLUMNS},
                    "n": r.get("n", ""),
                    "paper_setting": paper_row,
                    "paper_labels": str(paper_table.get(paper_row, "")) if paper_row else "",
                }
            )
    paper = [
        {"setting": k, "labels": str(v)}
        for k, v in paper_table.items()
        if k != "source" and not isinstance(v, dict)
    ]
    return ours, paper


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


def _extra(p: dict, analysis: str) -> list[tuple[str, str]]:
    """Numbers a card shows beside its gates: the stability study's positive control and the
    events' stability range against the authors'; the intensification row's decomposition."""
    d = p.get("details") or {}
    out = []
    control = d.get("positive_control", {}).get("prune_l_minus_baseline")
    if control:
        out.append(
            (
                "positive control: Prune_L - baseline (points)",
                f"{100 * control[0]:+.2f} [{100 * control[1]:+.2f}, {100 * control[2]:+.2f}]"
                if None not in control
                else "not measured",
            )
        )
    if "run_stability_min" in d:
        lo, hi = d["authors_run_stability"]
        out.append(
            (
                "run stability (%): ours, the authors'",
                f"{d['run_stability_min']:.1f}-{d['run_stability_max']:.1f} (lowest event "
                f"{d['lowest_event_stability']:.1f}); authors {lo:g}-{hi:g}",
            )
        )
    if analysis == "intensification" and "alpha_t" in d:
        out.append(
            (
                "alpha_t = beta_t x A/A_t; alpha_1",
                f"{_f(d['alpha_t'], '.3f')} = {_f(d['beta_t'], '.3f')} x {_f(d['a_over_a_t'], '.3f')}; "
                f"{_f(d.get('alpha_1'), '.3f')}",
            )
        )
        out.append(("cells keeping their last epoch", str(d.get("last_epoch_cells", "–"))))
    if "decided_on" in d:
        out.append(("decided on", f"{d['decided_on']} (A_t(UP) - A_t(MP) {_f(d['a_t_difference'][0])})"))
    return out


def claim_cards(data: ReportData) -> list[dict]:
    """One card per claim; ``card["summary"]`` is its row of the table the claims part leads with."""
    cards, shown = [], set()
    for p, summary in zip(data.primaries, summary_table(data), strict=True):
        study = p.get("study", "")
        analysis = data.studies.get(study, {}).get("analysis", "")
        rows, counts = _rows(data.claims, p["claim"])
        figure = FIGURE_OF_ANALYSIS.get(analysis)
        ours, paper = _labels(data, study) if analysis == "intensification" else ([], [])
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
                "stats": _stats(p) + _extra(p, analysis),
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
