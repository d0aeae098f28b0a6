"""Build the static report site from a results store.

``build_report(results_dir, out_dir)`` loads the store once (``reports.data``), starts the
notebook templates in parallel processes (papermill; they read the loaded store from a cache
file), meanwhile draws the figures and computes the tables and claim cards in this process,
checks every figure's layout, and renders ``index.html``. The site opens from ``file://`` with
the network off: no CDN, no fetch, data embedded, every name autoescaped.

Layout of ``out_dir`` (default ``<results>/site``: the report belongs with its store)::

    index.html                 claims, leaderboard, budget view, scenarios, figures, provenance
    figures/<name>.png
    notebooks/<name>.{ipynb,html}
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reports import cards as C
from reports import data as D
from reports import execute as X
from reports import figures as F
from reports import leaderboard as L
from reports.notebook import CACHE_ENV, write_cache
from reports.output import ReportOutputError, check_out

log = logging.getLogger(__name__)
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
NOTEBOOK_TITLES = {
    "leaderboard": "Leaderboard, budget and recovery",
    "claims": "Claims: primary verdicts and study figures",
    "robustness": "Robustness: corruption damage",
}


class ReportError(RuntimeError):
    """The report could not be built as asked (strict mode: a notebook or a figure failed)."""


@dataclass
class NotebookRun:
    name: str
    title: str
    ok: bool
    error: str = ""
    seconds: float = 0.0


def _run_notebook(template: Path, nb_dir: Path, params: dict, env: dict, timeout: int) -> NotebookRun:
    cmd = [
        sys.executable,
        "-m",
        "reports.execute",
        str(template),
        str(nb_dir),
        json.dumps(params),
        str(timeout),
    ]
    start = time.perf_counter()
    title = NOTEBOOK_TITLES.get(template.stem, template.stem)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        return NotebookRun(
            template.stem, title, False, f"timed out after {timeout} s", time.perf_counter() - start
        )
    status = {}
    for line in proc.stdout.splitlines():
        if line.startswith("PRUNEBENCH-STATUS "):
            status = json.loads(line.split(" ", 1)[1])
    if not status:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return NotebookRun(template.stem, title, False, err, time.perf_counter() - start)
    return NotebookRun(
        template.stem, title, bool(status["ok"]), status.get("error", ""), time.perf_counter() - start
    )


def _table_dict(t: L.Table) -> dict:
    return {
        "anchor": t.anchor,
        "title": t.title,
        "columns": [c.header for c in t.columns],
        "rows": [[c.get("text", "") for c in r] for r in t.rows],
    }


def _latency_rows(data: D.ReportData) -> list[dict]:
    """Structured pruners' compacted-model latency against dense, with the spread over repetitions."""
    from core.store import MetricFilter, StoreReader

    ids = list(data.cells.loc[data.cells["pruner_kind"] == "structured", "cell_id"])
    if not ids:
        return []
    rows = StoreReader(data.results_dir).metrics(
        [MetricFilter(cell_ids=ids, phases=["retrained"], eval_sets=["model"])]
    )
    rows = rows[rows["metric"].str.startswith("latency_ms_b")]
    if rows.empty:
        return []
    wide = rows.pivot_table(index="cell_id", columns="metric", values="value", aggfunc="first")
    meta = data.cells.set_index("cell_id").loc[wide.index, ["arch", "pruner", "sparsity"]]
    wide = wide.join(meta)
    out = []
    for (arch, pruner, sparsity), g in wide.groupby(["arch", "pruner", "sparsity"]):
        for b in sorted({int(c.split("_b")[1].split("_")[0]) for c in rows["metric"].unique()}):
            col = f"latency_ms_b{b}"
            if col not in g:
                continue

            def span(name: str, g=g) -> str:
                lo, hi = g.get(f"{name}_p10"), g.get(f"{name}_p90")
                return "" if lo is None or hi is None else f"{lo.median():.3g}–{hi.median():.3g}"

            out.append(
                {
                    "arch": arch,
                    "pruner": pruner,
                    "sparsity": f"{sparsity:g}",
                    "batch": b,
                    "compact": f"{g[col].median():.3g}",
                    "compact_spread": span(col),
                    "dense": f"{g[f'{col}_dense'].median():.3g}" if f"{col}_dense" in g else "",
                    "dense_spread": span(f"{col}_dense"),
                    "speedup": f"{(g[f'{col}_dense'] / g[col]).median():.2f}" if f"{col}_dense" in g else "",
                }
            )
    return out


def build_report(
    results_dir: Path | str = "results",
    out_dir: Path | str | None = None,
    *,
    notebooks: list[str] | None = None,
    jobs: int | None = None,
    timeout: int = 600,
    strict: bool = False,
) -> Path:
    """Build the report site from ``results_dir`` into ``out_dir`` (default: ``<results_dir>/site``,
    the report beside its store); return the path of index.html.

    ``notebooks``: template names to run (default all; ``[]`` none); ``jobs``: notebooks at once
    (default: the CPU count); ``strict``: raise ``ReportError`` when a notebook fails or a
    figure's layout check finds a problem (otherwise the page lists them).
    """
    start = time.perf_counter()
    results_dir = Path(results_dir).resolve()
    out = check_out(out_dir if out_dir is not None else results_dir / "site")
    data = D.load(results_dir)
    # built aside and renamed into place: a failed build leaves the previous site as it was
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    except OSError as exc:
        raise ReportOutputError(f"--out {str(out)!r}: cannot write there ({exc.strerror})") from None
    final, out = out, building
    try:
        return _build(data, results_dir, out, final, notebooks, jobs, timeout, strict, start)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _build(data, results_dir, out, final, notebooks, jobs, timeout, strict, start) -> Path:
    figures_dir, nb_dir = out / "figures", out / "notebooks"
    figures_dir.mkdir(parents=True)
    nb_dir.mkdir()
    templates = [t for t in X.templates() if notebooks is None or t.stem in notebooks]
    jobs = jobs or max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="prunebench-report-") as tmp:
        env = X.subprocess_env(X.write_kernelspec(Path(tmp)))
        env[CACHE_ENV] = str(write_cache(data, Path(tmp) / "data.pickle"))
        params = {"results_dir": str(results_dir)}
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(templates) or 1))) as pool:
            futures = [pool.submit(_run_notebook, t, nb_dir, params, env, timeout) for t in templates]
            page = _page_parts(data, figures_dir)
            runs = [f.result() for f in futures]
    failed = [r for r in runs if not r.ok]
    for r in runs:
        log.info("notebook %s: %s in %.1f s %s", r.name, "ok" if r.ok else "FAILED", r.seconds, r.error)
    problems = page["layout_problems"]
    if strict and (failed or problems):
        raise ReportError(
            "; ".join([f"notebook {r.name}: {r.error}" for r in failed] + [f"figure {p}" for p in problems])
        )
    notes = [*data.notes, *[f"notebook {r.name} failed: {r.error}" for r in failed]]
    notes += [f"figure layout: {p}" for p in problems]
    script = (TEMPLATE_DIR / "sort.js").read_text()
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    jenv = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined)
    embedded = {
        "provenance": data.provenance,
        "grid": data.grid,
        "tables": [_table_dict(t) for t in page["tables"]],
        "claims": [{k: c[k] for k in ("claim", "title", "verdict", "sentence")} for c in page["cards"]],
    }
    html = jenv.get_template("index.html.j2").render(
        built_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        prov=data.provenance,
        grid=data.grid,
        notes=notes,
        notebooks=runs,
        data=embedded,
        script=script,
        script_hash=script_hash,
        latency_protocol=data.latency_protocol,
        python_version=sys.version.split()[0],
        build_seconds=time.perf_counter() - start,
        **{k: v for k, v in page.items() if k != "layout_problems"},
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(out, final)
    shutil.rmtree(old, ignore_errors=True)
    index = final / "index.html"
    log.info("report written to %s in %.1f s", index, time.perf_counter() - start)
    return index


def _page_parts(data: D.ReportData, figures_dir: Path) -> dict:
    """Tables, claim cards and figures (drawn, checked and saved) for the page."""
    masks = L.mask_column_of(data)
    overall, grid = L.overall_table(data, masks)
    scenario = [L.scenario_table(data, a, d, grid, masks) for a, d in data.scenarios]
    budget, apart, sanity = L.budget_table(data, grid), L.apart_table(data, grid), L.sanity_table(data)
    tables = [t for t in (overall, budget, apart, sanity) if t]
    figures, problems = {}, []
    for fig in F.all_figures(data):
        problems += [f"{fig.name}: {p}" for p in F.layout_problems(fig.fig)]
        F.save(fig, figures_dir)
        figures.setdefault(fig.section, []).append(fig)
    cards = C.claim_cards(data)
    fig_by_name = {f.name: f for group in figures.values() for f in group}
    for card in cards:
        card["figure"] = fig_by_name.get(card["figure"]) if card["figure"] else None
    return {
        "overall": overall,
        "budget": budget,
        "apart": apart,
        "sanity": sanity,
        "outside": L.outside_table(data.outside),
        "scenario_tables": scenario,
        "tables": [*tables, *scenario],
        "cards": cards,
        "figures": figures,
        "latency": _latency_rows(data),
        "layout_problems": problems,
        "win_rate_definition": L.win_rate_definition(grid),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.build [--results DIR] [--out DIR] [--strict]`` (the harness CLI wraps this)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="results store to read (default: results)")
    parser.add_argument("--out", default=None, help="output folder (default: RESULTS/site)")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed at once")
    parser.add_argument("--strict", action="store_true", help="fail when a notebook or a figure check fails")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        index = build_report(args.results, args.out, jobs=args.jobs, strict=args.strict)
    except (FileNotFoundError, ReportOutputError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
