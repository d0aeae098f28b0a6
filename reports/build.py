"""Build the static report site from a results store.

``build_report(results_dir, out_dir)`` executes the notebook templates (in parallel
processes; they draw the figures), computes the leaderboard and the claim cards meanwhile,
and renders ``index.html``. The site opens from ``file://`` with the network off: no CDN,
no fetch, data embedded, every name autoescaped.

Layout of ``out_dir``::

    index.html                 the leaderboard, claim cards, figures and provenance
    figures/<kind>_<arch>_<dataset>-<hash>.{png,svg}
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

from reports import data as D
from reports import execute as X
from reports import leaderboard as L

log = logging.getLogger(__name__)
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HEAVY_FIRST = ("intensification", "robustness", "per_class_damage", "overview")


class ReportError(RuntimeError):
    """The report could not be built as asked (strict mode: a notebook failed)."""


@dataclass
class NotebookRun:
    name: str
    title: str
    ok: bool
    error: str = ""
    seconds: float = 0.0


def _run_notebook(
    template: Path, nb_dir: Path, params: dict, env: dict, timeout: int, title: str
) -> NotebookRun:
    cmd = [
        sys.executable,
        "-m",
        "reports.execute",
        str(template),
        str(nb_dir),
        json.dumps(params),
        str(timeout),
    ]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout + 120, cwd=str(X.PACKAGE_DIR.parent)
        )
    except subprocess.TimeoutExpired:
        return NotebookRun(template.stem, title, False, f"timed out after {timeout + 120} s")
    status = next(
        (
            json.loads(line.split(" ", 1)[1])
            for line in proc.stdout.splitlines()
            if line.startswith("PRUNEBENCH-STATUS ")
        ),
        None,
    )
    if status is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return NotebookRun(
            template.stem, title, False, " | ".join(tail)[:400] or f"exit code {proc.returncode}"
        )
    return NotebookRun(
        template.stem, title, bool(status["ok"]), status.get("error", ""), float(status.get("seconds", 0.0))
    )


MARKER = ".prunebench-report"


def _check_out(out: Path) -> None:
    """Refuse to write into a folder that holds anything but a previous report."""
    own = {"index.html", "figures", "notebooks", MARKER}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in own) if out.is_dir() else []
    if foreign and not (out / MARKER).exists():
        raise ReportError(
            f"{out} holds files that are not a report ({', '.join(foreign[:3])}): choose another --out"
        )


def _clean(out: Path) -> None:
    """Remove what a previous build wrote (only the report's own files and folders)."""
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("built by reports.build; this folder is rewritten by every build\n")
    for sub in ("figures", "notebooks"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    (out / "index.html").unlink(missing_ok=True)


def _figure_groups(records: list[dict], schema: dict, notebook_order: list[str]):
    captions = schema.get("figures", {})
    order = {n: i for i, n in enumerate(notebook_order)}
    kinds = list(captions)
    scenario_figs: dict[str, list[dict]] = {}
    scenario_skips: dict[str, list[str]] = {}
    general: list[dict] = []
    notes: list[str] = []
    records = sorted(
        records,
        key=lambda r: (order.get(r["notebook"], 99), kinds.index(r["kind"]) if r["kind"] in kinds else 99),
    )
    for r in records:
        anchor = L.Table("", [], [], r.get("arch"), r.get("dataset")).anchor if r.get("arch") else None
        if "note" in r:
            if anchor:
                scenario_skips.setdefault(anchor, []).append(r["note"])
            else:
                notes.append(f"figure not drawn: {r['note']}")
            continue
        fig = {**r, "caption": captions.get(r["kind"], r.get("title") or r["kind"])}
        (scenario_figs.setdefault(anchor, []) if anchor else general).append(fig)
    # a figure kind skipped in every (arch, dataset) gets one site-level note
    skipped_kinds: dict[str, int] = {}
    drawn = {r["kind"] for r in records if "note" not in r}
    for r in records:
        if "note" in r and r.get("arch") and r["kind"] not in drawn:
            skipped_kinds[r["kind"]] = skipped_kinds.get(r["kind"], 0) + 1
    for kind, count in skipped_kinds.items():
        example = next(r["note"] for r in records if r["kind"] == kind and "note" in r)
        notes.append(
            f"figure '{captions.get(kind, kind)}' not drawn for any of {count} (arch, dataset): {example}"
        )
    return scenario_figs, scenario_skips, general, notes


def _table_data(t: L.Table) -> dict:
    return {
        "title": t.title,
        "arch": t.arch,
        "dataset": t.dataset,
        "columns": [{"id": c.id, "name": c.header, "direction": c.direction} for c in t.columns],
        "rows": [
            {
                "entry": list(r["key"]),
                "mark": r["mark"],
                "values": {
                    c.id: (
                        float(cell["sort"])
                        if c.kind == "number" and cell["sort"] != ""
                        else (cell["text"] if c.kind == "text" else None)
                    )
                    for c, cell in zip(t.columns, r["cells"], strict=True)
                },
            }
            for r in t.rows
        ],
    }


def build_report(
    results_dir: Path | str = "results",
    out_dir: Path | str = "reports/site",
    *,
    archs: list[str] | None = None,
    datasets: list[str] | None = None,
    pruners: list[str] | None = None,
    notebooks: list[str] | None = None,
    jobs: int | None = None,
    timeout: int = 600,
    strict: bool = False,
) -> Path:
    """Build the report site from ``results_dir`` into ``out_dir``; return the path of index.html.

    ``archs``/``datasets``/``pruners``: glob filters; ``notebooks``: template names to run
    (default all); ``jobs``: notebooks executed at once (default: the CPU count, at least 2);
    ``strict``: raise ``ReportError`` when a notebook fails (otherwise the page lists the
    failure and links the failed notebook, which shows the error).
    """
    start = time.perf_counter()
    results_dir, out = Path(results_dir).resolve(), Path(out_dir).resolve()
    _check_out(out)
    schema = D.load_schema()
    # read (and, if missing, compute) the claims table before the notebooks start
    res = D.load_results(results_dir, archs=archs, datasets=datasets, pruners=pruners, compute_claims=True)
    _clean(out)
    figures_dir, nb_dir = out / "figures", out / "notebooks"
    figures_dir.mkdir()
    nb_dir.mkdir()

    titles = schema.get("notebooks", {})
    templates = [t for t in X.templates() if notebooks is None or t.stem in notebooks]
    templates.sort(key=lambda t: list(titles).index(t.stem) if t.stem in titles else 99)
    params = {
        "results_dir": str(results_dir),
        "figures_dir": str(figures_dir),
        "archs": archs,
        "datasets": datasets,
        "pruners": pruners,
    }
    jobs = jobs or max(2, os.cpu_count() or 2)
    # the slowest notebooks start first, so the pool's last worker finishes earlier
    queue = sorted(templates, key=lambda t: HEAVY_FIRST.index(t.stem) if t.stem in HEAVY_FIRST else 99)
    with tempfile.TemporaryDirectory(prefix="prunebench-kernel-") as tmp:
        env = X.subprocess_env(X.write_kernelspec(Path(tmp)))
        # the notebooks read the results loaded here instead of each reading the store again
        env[D.CACHE_ENV] = str(D.write_cache(res, Path(tmp) / "results.pickle", archs, datasets, pruners))
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(templates) or 1))) as pool:
            futures = [
                pool.submit(_run_notebook, t, nb_dir, params, env, timeout, titles.get(t.stem, t.stem))
                for t in queue
            ]
            # meanwhile, in this process: the leaderboard, the claim cards and the provenance
            tables, overall, table_notes, ref = L.build_tables(res, schema)
            cards = L.claim_cards(res.claims, schema)
            prov = D.provenance(res)
            runs = [f.result() for f in futures]
    runs.sort(key=lambda r: [t.stem for t in templates].index(r.name))
    failed = [r for r in runs if not r.ok]
    for r in runs:
        log.info("notebook %s: %s in %.1f s %s", r.name, "ok" if r.ok else "FAILED", r.seconds, r.error)
    if failed and strict:
        raise ReportError("report notebooks failed: " + "; ".join(f"{r.name}: {r.error}" for r in failed))
    # a claim whose notebook template does not exist links to the overview
    for card in cards:
        if not (nb_dir / f"{card['notebook']}.html").exists():
            card["notebook"] = "overview"

    records = _read_manifests(figures_dir)
    scenario_figs, scenario_skips, general, fig_notes = _figure_groups(records, schema, list(titles))
    notes = [*res.notes, *table_notes, *fig_notes]
    notes += [f"notebook {r.name} failed: {r.error}" for r in failed]
    if not records and not templates:
        notes.append("no notebook templates were run: no figures")

    script = (TEMPLATE_DIR / "sort.js").read_text()
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    data = {
        "provenance": prov,
        "reference_sparsity": ref,
        "tables": [_table_data(t) for t in ([overall] if overall else []) + tables],
        "claims": cards,
    }
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    html = env.get_template("index.html.j2").render(
        built_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        prov=prov,
        ref=ref,
        tables=tables,
        overall=overall,
        cards=cards,
        notes=notes,
        general_figures=general,
        scenario_figures=scenario_figs,
        scenario_skips=scenario_skips,
        notebooks=runs,
        bench=_bench_rows(results_dir),
        data=data,
        script=script,
        script_hash=script_hash,
        win_rate_definition=schema.get("ranking", {}).get("win_rate_definition", ""),
        python_version=sys.version.split()[0],
        build_seconds=time.perf_counter() - start,
    )
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    log.info("report written to %s in %.1f s", index, time.perf_counter() - start)
    return index


def _bench_rows(results_dir: Path) -> list[dict]:
    """The figures of the last ``python -m harness bench`` into this results dir, if any."""
    path = results_dir / "bench" / "bench.parquet"
    if not path.exists():
        return []
    import pandas as pd

    frame = pd.read_parquet(path)
    rows = []
    for r in frame.to_dict("records"):
        ok = r.get("ok")
        rows.append(
            {
                "measure": str(r["measure"]),
                "harness_s": float(r["harness_s"]),
                "baseline_s": float(r["baseline_s"]),
                "ratio": float(r["ratio"]),
                "target": str(r["target"]),
                "verdict": "informational" if ok is None or pd.isna(ok) else ("met" if ok else "not met"),
                "measured_at": str(r.get("measured_at", ""))[:16],
                "host": str(r.get("host", "")),
            }
        )
    return rows


def _read_manifests(figures_dir: Path) -> list[dict]:
    from reports.figures import read_manifests

    return read_manifests(figures_dir)


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.build [--results DIR] [--out DIR] [--strict]`` (the harness CLI wraps this)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="results store to read (default: results)")
    parser.add_argument("--out", default="reports/site", help="output folder (default: reports/site)")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed at once")
    parser.add_argument("--strict", action="store_true", help="fail when a notebook fails")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        index = build_report(args.results, args.out, jobs=args.jobs, strict=args.strict)
    except (FileNotFoundError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
