"""Run every study's analysis on a results store; write the claims table and the primary verdicts.

``run_analysis(results)`` reads the study manifests and cells (``analysis.load``), runs the
analysis each study names, and writes ``<results>/claims/``:

- ``claims.parquet`` / ``claims.json``: one row per hypothesis x scope (``analysis.verdict.Row``);
  ``q`` is the Benjamini-Hochberg q-value within each (claim, hypothesis) family of secondary
  rows (a primary row's ``q`` is its ``p``): secondary breakdowns never out-vote the primary;
- ``primary.json``: one entry per claim: its verdict under the rev. 3 rules (``analysis.verdict``),
  the point verdict and the reason, the gates with their numbers, estimate, interval, n, SESOI,
  p, MDE, power, bootstrap stability, the n that would settle it, the analysis' own numbers
  (``details``) and one sentence;
- ``labels.parquet``: the intensification labels by ratio beside the paper's;
- ``sanity.parquet``: the leaderboard's recovery and magnitude-vs-random table (``analysis.sanity``).

The same store gives the same tables: every randomised step is seeded by its scope.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from analysis import intensification, sanity
from analysis.evidence import bh
from analysis.load import load_studies
from analysis.registry import ANALYSES, check_study
from analysis.verdict import Row
from core.atomic import atomic_write_bytes, atomic_write_parquet
from core.hypotheses import VERDICTS


def analyze_studies(studies) -> tuple[pd.DataFrame, list[dict]]:
    rows: list[Row] = []
    papers: dict[str, dict] = {}
    for study in studies:
        check_study(study.definition, study.name)  # its analysis, and tests that analysis implements
        rows += ANALYSES[study.analysis].analyze(study)
        for claim in study.claims:
            papers[claim.id] = {
                "title": claim.title,
                "paper": claim.paper,
                "study": study.name,
                "paper_numbers": study.definition.get("paper", {}),
                "statement": claim.primary.statement,
                "primary": claim.primary,
            }
    table = pd.DataFrame([r.as_dict() for r in rows])
    if table.empty:
        empty = pd.DataFrame(columns=["claim", "primary", "collapsed"])
        return table, primary_summary(empty, papers)
    table["q"] = table["p"]
    secondary = ~table["primary"]
    for _, idx in table[secondary].groupby(["claim", "hypothesis"]).groups.items():
        table.loc[idx, "q"] = bh(table.loc[idx, "p"].to_numpy(float))
    return table, primary_summary(table, papers)


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _gate_text(gates: list[dict]) -> str:
    def status(g):
        return "n/a" if g["passed"] is None else "pass" if g["passed"] else "FAIL"

    return "; ".join(f"{g['gate']} {status(g)} ({g['detail']})" for g in gates) or "none"


def _fmt(v, spec: str) -> str:
    return format(v, spec) if _num(v) is not None else "–"


def _sentence(info: dict, r: pd.Series) -> str:
    h = info["primary"]
    effect = (
        f"{h.effect:+g} ({'paper' if h.effect_source == 'paper' else 'stated effect of interest'})"
        if h.effect is not None
        else f"margin {h.margin:g}"
    )
    settle = f", n = {r['n_settle']:.0f} would settle it" if math.isfinite(r["n_settle"]) else ""
    return (
        f"{info['title']} ({info['paper']}): {r['verdict']}"
        + (f" (point verdict {r['point_verdict']})" if r["point_verdict"] != r["verdict"] else "")
        + f". {h.statement}; estimate {r['estimate']:+.3f}, {100 * r['ci_level']:.0f}% CI "
        f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}], n = {int(r['n'])}, SESOI {r['sesoi']:g}, "
        f"MDE {_fmt(r['mde'], '.3f')} at 80% power (power {_fmt(r['power'], '.2f')} at {effect}); "
        f"bootstrap stability {_fmt(r['stability'], '.2f')}{settle}; {h.paper or 'paper: ' + effect}"
    )


def primary_summary(table: pd.DataFrame, papers: dict[str, dict]) -> list[dict]:
    """One entry per claim: the primary row's verdict, gates and numbers, one sentence, the
    collapsed scopes of the claim counted."""
    out = []
    for claim, info in papers.items():
        rows = table[(table["claim"] == claim) & table["primary"]]
        collapsed = int(table[table["claim"] == claim]["collapsed"].sum())
        if rows.empty:
            out.append(
                {
                    "claim": claim,
                    "title": info["title"],
                    "paper": info["paper"],
                    "study": info["study"],
                    "verdict": "out of regime",
                    "point_verdict": "",
                    "reason": "not tested: no cells of its primary scope in this store",
                    "gates": [],
                    "sentence": f"{info['title']}: not tested (no cells of its primary scope in this store)",
                    "collapsed_scopes": collapsed,
                }
            )
            continue
        r = rows.iloc[0]
        h = info["primary"]
        out.append(
            {
                "claim": claim,
                "title": info["title"],
                "paper": info["paper"],
                "study": info["study"],
                "hypothesis": r["hypothesis"],
                "statement": h.statement,
                "verdict": r["verdict"],
                "point_verdict": r["point_verdict"],
                "reason": r["reason"],
                "gates": json.loads(r["gates"]),
                "sentence": _sentence(info, r),
                "test": r["test"],
                "n": int(r["n"]),
                "estimate": _num(r["estimate"]),
                "ci_low": _num(r["ci_low"]),
                "ci_high": _num(r["ci_high"]),
                "ci_level": _num(r["ci_level"]),
                "p": _num(r["p"]),
                "sesoi": _num(r["sesoi"]),
                "mde": _num(r["mde"]),
                "power": _num(r["power"]),
                "effect": _num(h.effect),
                "effect_source": h.effect_source,
                "paper_says": h.paper,
                "stability": _num(r["stability"]),
                "n_settle": _num(r["n_settle"]),
                "scope": r["scope"],
                "description": r["description"],
                "details": json.loads(r["details"]),
                "collapsed_scopes": collapsed,
            }
        )
    return out


def _json_records(df: pd.DataFrame) -> list[dict]:
    def clean(v):
        if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
            return None
        return v.item() if hasattr(v, "item") else v

    return [{k: clean(v) for k, v in rec.items()} for rec in df.to_dict("records")]


def run_analysis(
    results_dir: str | Path, out_dir: str | Path | None = None
) -> tuple[pd.DataFrame, list[dict]]:
    """Analyse a results directory; write and return (claims table, primary verdicts)."""
    studies = load_studies(results_dir, {name: a.reads for name, a in ANALYSES.items()})
    table, primaries = analyze_studies(studies)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "claims"
    atomic_write_parquet(out / "claims.parquet", table if not table.empty else pd.DataFrame({"claim": []}))
    atomic_write_bytes(
        out / "claims.json", json.dumps(_json_records(table), indent=1, allow_nan=False).encode()
    )
    atomic_write_bytes(out / "primary.json", json.dumps(primaries, indent=1, allow_nan=False).encode())
    labels = (
        intensification.label_table([Row(**r) for r in table.to_dict("records")] if not table.empty else [])
        if not table.empty
        else pd.DataFrame()
    )
    atomic_write_parquet(out / "labels.parquet", labels if not labels.empty else pd.DataFrame({"arch": []}))
    checks = sanity.leaderboard_checks(results_dir)
    atomic_write_parquet(out / "sanity.parquet", checks if not checks.empty else pd.DataFrame({"arch": []}))
    return table, primaries


def render_primary(primaries: list[dict]) -> str:
    """The primary verdicts, one block per claim (``harness analyze`` prints it): the verdict and
    its reason, the estimate, interval, n, SESOI, stability, and every gate with its numbers."""
    if not primaries:
        return "no study in this store: run-all writes the study manifests (harness list studies)"
    lines = ["primary verdicts (one per claim):"]
    for p in primaries:
        lines.append(f"- {p['sentence']}")
        if p.get("reason"):
            lines.append(f"  why: {p['reason']}")
        lines.append(f"  gates: {_gate_text(p.get('gates', []))}")
        if p.get("collapsed_scopes"):
            lines.append(f"  ({p['collapsed_scopes']} collapsed scopes flagged and left out of verdicts)")
    untested = [p for p in primaries if p.get("reason", "").startswith("not tested")]
    counts = pd.Series([p["verdict"] for p in primaries if p not in untested], dtype=object).value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v, 0))
    if untested:  # a partial store (a filtered run): said apart, never counted as a verdict
        summary = ", ".join(filter(None, [summary, f"{len(untested)} not tested (no cells in this store)"]))
    lines.append(f"summary: {summary} (rules: shared/design/claims.md 0b)")
    return "\n".join(lines)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per claim and hypothesis: rows and the count of each verdict (the secondary rows collapsed)."""
    if table.empty:
        return pd.DataFrame()
    counts = table.groupby(["claim", "hypothesis", "primary"])["verdict"].value_counts().unstack(fill_value=0)
    return counts.reindex(columns=[v for v in VERDICTS if v in counts.columns]).reset_index()


__all__ = ["ANALYSES", "VERDICTS", "analyze_studies", "render_primary", "run_analysis", "verdict_counts"]
