"""The claims table: its columns, the verdict rule, BH within claims, summaries and rendering.

One row is one test of one claim in one scope. Verdict rule (``verdict``), written once:

- ``supported``: ``q < ALPHA`` and the estimate lies in the claimed direction
  (for claims without a direction, ``direction = 0``: ``q < ALPHA``);
- ``contradicted``: ``q < ALPHA`` and the estimate lies in the opposite direction;
- ``inconclusive``: otherwise (including ``q`` undefined: too few observations, no variance,
  descriptive rows and rows marking missing inputs).

``q`` is the Benjamini-Hochberg q-value within each claim (all rows of one ``claim`` are one
family, whatever their test or scope).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.stats import TestResult, bh

ALPHA = 0.05
COLUMNS = [
    "claim",
    "test",
    "arch",
    "dataset",
    "pruner",
    "eval_set",
    "sparsity",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "q",
    "n",
    "verdict",
    "description",
]
VERDICTS = ("supported", "contradicted", "inconclusive")
STRING_COLUMNS = ["claim", "test", "arch", "dataset", "pruner", "eval_set", "verdict", "description"]
FLOAT_COLUMNS = ["sparsity", "statistic", "estimate", "ci_low", "ci_high", "p", "q"]


def make_row(
    claim: str,
    test: str,
    result: TestResult,
    *,
    direction: int | None,
    description: str,
    arch: str | None = None,
    dataset: str | None = None,
    pruner: str | None = None,
    eval_set: str | None = None,
    sparsity: float | None = None,
) -> dict:
    """A claims-table row (``q`` and ``verdict`` are filled by ``finalize``).

    ``direction``: +1 / -1 the sign of the estimate the claim predicts, 0 for a claim of
    "some effect", ``None`` for a descriptive row that never gets a verdict.
    """
    return {
        "claim": claim,
        "test": test,
        "arch": arch,
        "dataset": dataset,
        "pruner": pruner,
        "eval_set": eval_set,
        "sparsity": float(sparsity) if sparsity is not None else math.nan,
        "statistic": result.statistic,
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p": result.p if direction is not None else math.nan,
        "q": math.nan,
        "n": int(result.n),
        "verdict": "inconclusive",
        "description": description,
        "_direction": direction,
    }


def missing_row(claim: str, why: str) -> dict:
    """A row that records a claim could not be tested on these results, and why."""
    return make_row(claim, "missing_input", TestResult.empty(0), direction=None, description=why)


def verdict(q: float, estimate: float, direction: int | None, alpha: float = ALPHA) -> str:
    """The verdict rule of the module docstring."""
    if direction is None or not np.isfinite(q) or q >= alpha or not np.isfinite(estimate):
        return "inconclusive"
    if direction == 0:
        return "supported"
    if estimate == 0:
        return "inconclusive"
    return "supported" if np.sign(estimate) == np.sign(direction) else "contradicted"


def finalize(rows: list[dict]) -> pd.DataFrame:
    """Rows -> the claims table: BH q within each claim, verdicts, fixed columns and dtypes."""
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame({c: [] for c in [*COLUMNS, "_direction"]})
    df["q"] = np.nan
    for _, idx in df.groupby("claim", sort=False).groups.items():
        df.loc[idx, "q"] = bh(df.loc[idx, "p"].to_numpy(dtype=float))
    df["verdict"] = [
        verdict(q, e, d if d is None or not (isinstance(d, float) and math.isnan(d)) else None)
        for q, e, d in zip(df["q"], df["estimate"], df["_direction"], strict=True)
    ]
    df = df[COLUMNS].copy()
    for c in STRING_COLUMNS:
        df[c] = df[c].astype("string")
    for c in FLOAT_COLUMNS:
        df[c] = df[c].astype("float64")
    df["n"] = df["n"].astype("int64")
    return df.reset_index(drop=True)


def summarize(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim: rows tested, counts of each verdict, and the strongest supported effect."""
    out = []
    for claim, g in claims.groupby("claim", sort=False):
        tested = g[g["test"] != "missing_input"]
        counts = tested["verdict"].value_counts()
        sup, con = int(counts.get("supported", 0)), int(counts.get("contradicted", 0))
        n = len(tested)
        if tested.empty:
            overall = "not tested"
        elif sup and con:
            overall = f"mixed: {sup} supported, {con} contradicted of {n}"
        elif sup:
            overall = f"supported in {sup} of {n}"
        elif con:
            overall = f"contradicted in {con} of {n}"
        else:
            overall = f"inconclusive in all {n}"
        best = tested.dropna(subset=["q"]).sort_values("q").head(1)
        headline = ""
        if len(best):
            b = best.iloc[0]
            scope = "/".join(str(b[c]) for c in ("pruner", "arch", "dataset", "eval_set") if pd.notna(b[c]))
            sp = f" s={b['sparsity']:g}" if pd.notna(b["sparsity"]) else ""
            headline = (
                f"{b['test']} {scope}{sp}: est {b['estimate']:.3g} [{b['ci_low']:.3g}, {b['ci_high']:.3g}]"
            )
            headline += f" q={b['q']:.2g}"
        out.append(
            {
                "claim": claim,
                "rows": len(tested),
                "supported": sup,
                "contradicted": con,
                "inconclusive": int(counts.get("inconclusive", 0)),
                "overall": overall,
                "strongest": headline,
                "note": "" if len(tested) else str(g["description"].iloc[0]),
            }
        )
    return pd.DataFrame(out)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
        return ""
    if isinstance(v, float | np.floating):
        return f"{v:.3g}"
    return str(v)


def render_markdown(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A GitHub-flavoured markdown table of ``df`` (numbers to 3 significant digits)."""
    columns = columns or list(df.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


def render_text(summary: pd.DataFrame) -> str:
    """A fixed-width verdict table for the terminal (what ``run-all`` prints)."""
    if summary.empty:
        return "no claims tested"
    head = f"{'claim':<32} {'rows':>5} {'sup':>4} {'con':>4} {'inc':>4}  overall"
    lines = [head, "-" * len(head)]
    for _, r in summary.iterrows():
        lines.append(
            f"{r['claim']:<32} {r['rows']:>5} {r['supported']:>4} {r['contradicted']:>4} "
            f"{r['inconclusive']:>4}  {r['overall']}"
        )
    return "\n".join(lines)
