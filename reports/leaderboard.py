"""Leaderboard tables (one per (arch, dataset) and an overall one) and claim cards.

Columns, units, directions, formats and the ranking rule come from ``display_schema.toml``;
numbers come from ``reports.data`` (claim quantities from ``analysis``: prune potential with
``analysis.potential.DELTA``, alpha and b from ``analysis.intensification``) and the tie tests
from ``analysis.stats``. The output is plain dicts the Jinja template renders.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.stats import paired_t, wilcoxon_signed_rank
from reports import data as D

NA = "–"


@dataclass
class Column:
    id: str
    name: str
    kind: str = "number"
    unit: str = ""
    direction: str = "neutral"
    definition: str = ""
    fmt: str = ".3g"
    scale: float = 1.0

    @property
    def tooltip(self) -> str:
        arrow = {"higher": "higher is better", "lower": "lower is better"}.get(self.direction, "")
        parts = [self.definition, f"unit: {self.unit}" if self.unit else "", arrow]
        return "; ".join(p for p in parts if p)

    @property
    def header(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit and self.kind == "number" else self.name

    def format(self, value) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return NA
        return format(float(value) * self.scale, self.fmt)


def column(schema: dict, cid: str, **overrides) -> Column:
    spec = {**schema["columns"][cid], **overrides}
    return Column(id=overrides.pop("id", cid), **{k: v for k, v in spec.items() if k != "id"})


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[dict]
    arch: str | None = None
    dataset: str | None = None
    tie_test: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        from reports.figures import slug

        return "t-" + slug(self.arch or "overall", self.dataset or "")


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _cell(col: Column, stats: dict | None) -> dict:
    """A rendered table cell: text, CI text, numeric sort key and a tooltip."""
    if col.kind == "text":
        text = "" if stats is None else str(stats)
        return {"text": text, "ci": "", "sort": text.lower(), "title": ""}
    if not stats or _num(stats.get("mean")) is None:
        return {"text": NA, "ci": "", "sort": "", "title": "no data"}
    mean, lo, hi = _num(stats.get("mean")), _num(stats.get("ci_low")), _num(stats.get("ci_high"))
    ci = f"[{col.format(lo)}, {col.format(hi)}]" if lo is not None and hi is not None else ""
    n = stats.get("n")
    title = f"n = {int(n)} seeds" if n is not None and not pd.isna(n) else ""
    return {"text": col.format(mean), "ci": ci, "sort": repr(mean), "title": title}


def _entry_stats(ci: pd.DataFrame) -> dict[tuple, dict]:
    return {
        (r["pruner"], r["retrain"]): {k: r[k] for k in ("mean", "ci_low", "ci_high", "n")}
        for _, r in ci.iterrows()
    }


def _metric_tables(res: D.Results, schema: dict, ref: float | None) -> dict[str, pd.DataFrame]:
    """Per-cell (or per-seed) values of every single-sparsity column, keyed by column id."""
    pp = D.prune_potential(res)  # analysis.potential.DELTA: 0.5 points, as the claims table
    pp_shift = pp[pp["shifted"].astype(bool)] if not pp.empty else pp
    if not pp_shift.empty:
        pp_shift = pp_shift.groupby([*D.SCENARIO, *D.ENTRY, "seed"], as_index=False)["value"].mean()
    summary = D.at_sparsity(D.distortion_summary(res), ref)
    return {
        "auc": D.auc_by_seed(res),
        "corruption_acc": D.per_cell_mean(D.at_sparsity(D.corruption_accuracy(res), ref)),
        "ood_auroc": D.per_cell_mean(D.at_sparsity(D.ood_auroc(res, "msp"), ref)),
        "ece": D.at_sparsity(D.calibration(res, "ece"), ref),
        "pp_clean": pp[pp["distribution"] == "test"] if not pp.empty else pp,
        "pp_shift": pp_shift,
        "alpha": summary.rename(columns={"alpha": "value"})
        if not summary.empty
        else summary.assign(value=[]),
        "slope": summary.rename(columns={"slope": "value"})
        if not summary.empty
        else summary.assign(value=[]),
        "flops_reduction": D.at_sparsity(D.flops_reduction(res), ref),
    }


MISSING_WHY = {
    "auc": "clean test accuracy",
    "corruption_acc": "corruption accuracy (kind = corruption)",
    "ood_auroc": "OOD AUROC (metric auroc_msp, kind = ood)",
    "ece": "ECE (metric ece on the clean test set)",
    "pp_clean": "clean test accuracy",
    "pp_shift": "accuracy on shifted sets (kind = corruption)",
    "alpha": "per-class recall",
    "slope": "per-class recall",
    "flops_reduction": "FLOPs (metrics flops_dense, flops_effective)",
}


def _paired_p(a: pd.Series, b: pd.Series, test: str) -> float:
    """p-value of a paired test of a vs b (aligned on their index); NaN when it cannot be run.

    ``test``: ``"t"`` (``analysis.stats.paired_t``) or Wilcoxon signed-rank
    (``analysis.stats.wilcoxon_signed_rank``); identical entries (all differences 0) are tied.
    """
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    diff = (both["a"] - both["b"]).to_numpy(float)
    if len(diff) == 0:
        return float("nan")
    if np.allclose(diff, 0):
        return 1.0
    return (paired_t(both["a"], both["b"]) if test == "t" else wilcoxon_signed_rank(diff)).p


def build_tables(res: D.Results, schema: dict) -> tuple[list[Table], Table | None, list[str], float | None]:
    """Scenario tables, the overall table, notes about skipped columns, and the reference sparsity."""
    settings = schema.get("settings", {})
    ranking = schema.get("ranking", {})
    ref = D.reference_sparsity(res, float(settings.get("reference_sparsity", 0.9)))
    notes: list[str] = []
    cells = res.prune_cells()
    if cells.empty:
        return [], None, ["no successful prune cells in the store: no leaderboard"], ref

    curve = D.accuracy_curve(res)
    curve = curve[curve["sparsity"] > 0]
    sparsities = sorted(curve["sparsity"].unique())
    per_col = _metric_tables(res, schema, ref)
    shown = [cid for cid, df in per_col.items() if not df.empty and df["value"].notna().any()]
    for cid, _df in per_col.items():
        if cid not in shown:
            notes.append(
                f"column '{schema['columns'][cid]['name']}' not shown: the store has no {MISSING_WHY[cid]}"
            )
    stats = {cid: D.mean_ci(per_col[cid], [*D.SCENARIO, *D.ENTRY]) for cid in shown}
    acc_col = schema["columns"]["acc_at"]
    acc_cols = [
        column(schema, "acc_at", id=f"acc_{s:g}", name=acc_col["name"].format(sparsity=f"{s:g}"))
        for s in sparsities
    ]
    ref_note = f" (single-sparsity columns at sparsity {ref:g})" if ref is not None else ""
    text_cols = [column(schema, c) for c in ("pruner", "retrain", "kind")]
    num_cols = [*acc_cols, *(column(schema, cid) for cid in shown)]

    kinds = cells.drop_duplicates("pruner").set_index("pruner")["pruner_kind"].to_dict()
    auc = per_col.get("auc", pd.DataFrame())
    alpha = float(ranking.get("tie_alpha", 0.05))
    tables: list[Table] = []
    win_parts: list[pd.DataFrame] = []
    for arch, dataset in res.scenarios():
        sc = cells[(cells["arch"] == arch) & (cells["dataset"] == dataset)]
        entries = sorted({(p, r) for p, r in zip(sc["pruner"], sc["retrain"], strict=True)})
        values: dict[str, dict[tuple, dict]] = {}
        sc_curve = curve[(curve["arch"] == arch) & (curve["dataset"] == dataset)]
        for s, col in zip(sparsities, acc_cols, strict=True):
            values[col.id] = _entry_stats(sc_curve[np.isclose(sc_curve["sparsity"], s)])
        for cid in shown:
            st = stats[cid]
            values[cid] = _entry_stats(st[(st["arch"] == arch) & (st["dataset"] == dataset)])

        # ties with the best entry by the tie metric (paired over seeds)
        sc_auc = auc[(auc["arch"] == arch) & (auc["dataset"] == dataset)] if not auc.empty else auc
        best = max(entries, key=lambda e: _num(values.get("auc", {}).get(e, {}).get("mean")) or -1.0)
        status = {}
        for e in entries:
            if e == best:
                status[e] = ("best", float("nan"))
                continue
            a = sc_auc[(sc_auc["pruner"] == e[0]) & (sc_auc["retrain"] == e[1])].set_index("seed")["value"]
            b = sc_auc[(sc_auc["pruner"] == best[0]) & (sc_auc["retrain"] == best[1])].set_index("seed")[
                "value"
            ]
            p = _paired_p(a, b, "t")
            status[e] = ("tied" if not (p < alpha) else "", p)

        rows = []
        for e in entries:
            row_cells = [
                _cell(text_cols[0], e[0]),
                _cell(text_cols[1], e[1]),
                _cell(text_cols[2], kinds.get(e[0], "")),
            ]
            row_cells += [_cell(c, values.get(c.id, {}).get(e)) for c in num_cols]
            mark, p = status[e]
            rows.append(
                {
                    "cells": row_cells,
                    "mark": mark,
                    "p": p,
                    "key": e,
                    "auc": _num(values.get("auc", {}).get(e, {}).get("mean")),
                }
            )
        rows.sort(key=lambda r: -(r["auc"] if r["auc"] is not None else -1))
        tables.append(
            Table(
                title=f"{arch} / {dataset}",
                arch=arch,
                dataset=dataset,
                columns=[*text_cols, *num_cols],
                rows=rows,
                tie_test=str(ranking.get("scenario_tie_test", "")) + ref_note,
            )
        )

        # win rates of this scenario, one HELM "scenario" per ranked column
        for cid in ranking.get("win_rate_columns", []):
            if cid not in shown:
                continue
            direction = schema["columns"][cid].get("direction", "higher")
            vals = pd.Series(
                {e: _num(values[cid].get(e, {}).get("mean")) for e in entries}, dtype=float
            ).dropna()
            if len(vals) < 2:
                continue
            signed = vals if direction == "higher" else -vals
            ranks = signed.rank(method="average")  # 1 = worst; ties share the mean rank
            win = (ranks - 1) / (len(signed) - 1)
            win_parts.append(
                pd.DataFrame(
                    {"entry": list(win.index), "win": win.to_numpy(), "scenario": f"{arch}/{dataset}/{cid}"}
                )
            )

    overall = _overall(res, schema, tables, win_parts, auc, kinds, num_cols, text_cols, alpha)
    return tables, overall, notes, ref


def _overall(res, schema, tables, win_parts, auc, kinds, num_cols, text_cols, alpha) -> Table | None:
    ranking = schema.get("ranking", {})
    if not tables:
        return None
    wins = pd.concat(win_parts, ignore_index=True) if win_parts else pd.DataFrame(columns=["entry", "win"])
    win_rate = wins.groupby("entry")["win"].mean() if not wins.empty else pd.Series(dtype=float)
    entries = sorted({r["key"] for t in tables for r in t.rows})
    appear = Counter(r["key"] for t in tables for r in t.rows)
    # mean over tables of each numeric column's mean
    means: dict[str, dict[tuple, float]] = {c.id: {} for c in num_cols}
    for t in tables:
        for r in t.rows:
            for c, cell in zip(t.columns[3:], r["cells"][3:], strict=True):
                if cell["sort"] != "":
                    means[c.id].setdefault(r["key"], []).append(float(cell["sort"]))
    ordered = sorted(entries, key=lambda e: (-(win_rate.get(e, float("nan")) if e in win_rate else -1), e))
    top = ordered[0]
    status = {}
    for e in entries:
        if e == top:
            status[e] = ("best", float("nan"))
            continue
        if auc.empty:
            status[e] = ("tied", float("nan"))
            continue
        key = [*D.SCENARIO, "seed"]
        a = auc[(auc["pruner"] == e[0]) & (auc["retrain"] == e[1])].set_index(key)["value"]
        b = auc[(auc["pruner"] == top[0]) & (auc["retrain"] == top[1])].set_index(key)["value"]
        p = _paired_p(a, b, "wilcoxon")
        status[e] = ("tied" if not (p < alpha) else "", p)
    wr_col, n_col = column(schema, "win_rate"), column(schema, "scenarios")
    rows = []
    for rank, e in enumerate(ordered, start=1):
        cells = [
            _cell(text_cols[0], e[0]),
            _cell(text_cols[1], e[1]),
            _cell(text_cols[2], kinds.get(e[0], "")),
        ]
        cells.append(_cell(wr_col, {"mean": win_rate.get(e, float("nan"))}))
        cells.append(_cell(n_col, {"mean": appear[e]}))
        for c in num_cols:
            vals = means[c.id].get(e, [])
            cells.append(_cell(c, {"mean": float(np.mean(vals)) if vals else None}))
        mark, p = status[e]
        rows.append({"cells": cells, "mark": mark, "p": p, "key": e, "rank": rank})
    cols = [*text_cols, wr_col, n_col, *num_cols]
    return Table(
        title="Overall",
        columns=cols,
        rows=rows,
        tie_test=str(ranking.get("overall_tie_test", "")),
        notes=[
            str(ranking.get("win_rate_definition", "")),
            "other columns: mean over the (arch, dataset) tables of the per-table means",
        ],
    )


def table_frame(table: Table) -> pd.DataFrame:
    """A rendered table as a DataFrame of display strings (for notebooks)."""
    records = []
    for r in table.rows:
        rec = {
            c.header: (f"{cell['text']} {cell['ci']}".strip())
            for c, cell in zip(table.columns, r["cells"], strict=True)
        }
        rec["tie"] = r["mark"]
        records.append(rec)
    return pd.DataFrame.from_records(records)


# -- claim cards ------------------------------------------------------------------------------


def claim_cards(claims: pd.DataFrame | None, schema: dict, max_rows: int = 8) -> list[dict]:
    """One card per claim id: verdict (majority of its tests), tally, and its most significant rows."""
    if claims is None or claims.empty:
        return []
    meta = schema.get("claims", {})
    order = {c: i for i, c in enumerate(meta)}
    cards = []
    for claim, g in sorted(
        claims.groupby("claim", sort=False), key=lambda kv: (order.get(kv[0], 999), kv[0])
    ):
        tally = Counter(str(v) for v in g["verdict"].fillna("inconclusive"))
        top = tally.most_common()
        verdict = top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else "inconclusive"
        info = meta.get(str(claim), {})
        g = g.assign(_q=pd.to_numeric(g["q"], errors="coerce"), _p=pd.to_numeric(g["p"], errors="coerce"))
        rows = []
        for _, r in g.sort_values(["_q", "_p"], na_position="last").head(max_rows).iterrows():
            scope = (
                " / ".join(
                    f"sparsity {v:g}" if isinstance(v, float) else str(v)
                    for v in (r["arch"], r["dataset"], r["pruner"], r["eval_set"], r["sparsity"])
                    if not _missing(v)
                )
                or "pooled"
            )
            rows.append(
                {
                    "test": _s(r["test"]),
                    "scope": scope,
                    "statistic": _f(r["statistic"], ".3g"),
                    "estimate": _f(r["estimate"]),
                    "ci": f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
                    "p": _f(r["p"], ".3g"),
                    "q": _f(r["q"], ".3g"),
                    "n": _f(r["n"], ".0f"),
                    "verdict": _s(r["verdict"]),
                }
            )
        descriptions = [d for d in g["description"].dropna().astype(str) if d]
        cards.append(
            {
                "claim": str(claim),
                "title": info.get("title", str(claim)),
                "source": info.get("source", ""),
                "reconstructed": bool(info.get("reconstructed", False)),
                "notebook": info.get("notebook", "overview"),
                "verdict": verdict,
                "tally": dict(sorted(tally.items())),
                "tests": len(g),
                "rows": rows,
                "description": descriptions[0] if descriptions else "",
            }
        )
    return cards


def _missing(v) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _s(v) -> str:
    return "" if _missing(v) else str(v)


def _f(v, fmt: str = ".3f") -> str:
    f = _num(v)
    return NA if f is None else format(f, fmt)
