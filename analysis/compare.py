"""Do two stores give the same settled verdicts? (``shared/design/claims.md`` 0b, "Stable verdicts")

The same studies run on two disjoint blocks of seeds of the same size, or the same commit run on
two machines or torch builds, must not flip a settled verdict. ``compare_primaries(a, b)``
compares the primary verdicts (``primary.json``) of two stores claim by claim:

- ``agree``: the same verdict in both (``unsettled`` in both counts: nothing was settled);
- ``agree (one unsettled)``: settled in one store, ``unsettled`` in the other with the same point
  verdict: the second store leans the same way without settling it;
- ``unsettled in one``: settled in one store, ``unsettled`` in the other leaning another way: the
  verdict is near a decision boundary (its stability says so in that store); reported, not a flip;
- ``differ``: settled in both stores (neither ``unsettled``), with different verdicts: a settled
  verdict flipped;
- ``missing``: the claim is in one store only.

``harness compare-verdicts --results A --other B`` prints the table and exits 1 when a claim
differs.
"""

from __future__ import annotations

import json
from pathlib import Path

UNSETTLED = "unsettled"


def _leaning(p: dict) -> str:
    return (p.get("point_verdict") or p["verdict"]) if p["verdict"] == UNSETTLED else p["verdict"]


def compare_primaries(a: list[dict], b: list[dict]) -> list[dict]:
    """One row per claim of either store: both verdicts, their stabilities and the status."""
    by_a, by_b = {p["claim"]: p for p in a}, {p["claim"]: p for p in b}
    rows = []
    for claim in sorted(set(by_a) | set(by_b)):
        pa, pb = by_a.get(claim), by_b.get(claim)
        if pa is None or pb is None:
            status = "missing"
        elif pa["verdict"] == pb["verdict"]:
            status = "agree"
        elif UNSETTLED in (pa["verdict"], pb["verdict"]):
            status = "agree (one unsettled)" if _leaning(pa) == _leaning(pb) else "unsettled in one"
        else:
            status = "differ"
        rows.append(
            {
                "claim": claim,
                "verdict": pa["verdict"] if pa else None,
                "stability": pa.get("stability") if pa else None,
                "other_verdict": pb["verdict"] if pb else None,
                "other_stability": pb.get("stability") if pb else None,
                "status": status,
            }
        )
    return rows


def read_primaries(results: str | Path) -> list[dict]:
    path = Path(results) / "claims" / "primary.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no primary verdicts there (run `python -m harness analyze` first)")
    return json.loads(path.read_text())


def render_comparison(rows: list[dict], a: str, b: str) -> str:
    def fmt(verdict, stability):
        return f"{verdict or '–'}" + (f" ({stability:.2f})" if isinstance(stability, float) else "")

    lines = [f"primary verdicts: {a} against {b} (bootstrap stability in brackets)"]
    for r in rows:
        lines.append(
            f"  {r['claim']:<30} {fmt(r['verdict'], r['stability']):<34} "
            f"{fmt(r['other_verdict'], r['other_stability']):<34} {r['status']}"
        )
    differ = [r["claim"] for r in rows if r["status"] == "differ"]
    lines.append(
        f"settled verdicts that differ: {', '.join(differ)}" if differ else "every settled verdict agrees"
    )
    return "\n".join(lines)


__all__ = ["compare_primaries", "read_primaries", "render_comparison"]
