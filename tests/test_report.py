"""The report: data shaping, the built site, and the page in a real browser (headless Chromium).

The site is built once per module from a small synthetic results store written with the
real Parquet schemas; one pruner and one dataset carry hostile names (``<script>``, an
``onerror`` attribute) that must show escaped and never run.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.storage import CELL_SCHEMA, METRIC_SCHEMA
from reports import data as D
from reports import figures as F
from reports import leaderboard as L
from reports.build import build_report
from reports.synthetic import write_synthetic_store

EVIL_PRUNER = "<script>window.__pwned=1</script>"
EVIL_DATASET = "d<img src=x onerror=window.__pwned2=1>"
CHROMIUM = os.environ.get("PRUNEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM,
    reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set PRUNEBENCH_CHROMIUM)",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# -- a hand-made store for exact numbers -----------------------------------------------------


def _write_store(root: Path, cells: list[dict], metrics: list[dict]) -> Path:
    (root / "cells").mkdir(parents=True)
    (root / "metrics").mkdir()
    base = {
        "study": "prune",
        "pruner_kind": "unstructured",
        "status": "ok",
        "preset": "t",
        "git_commit": "abc",
    }
    for c in cells:
        row = {**base, **c}
        pq.write_table(
            pa.Table.from_pylist([row], schema=CELL_SCHEMA), root / "cells" / f"{c['cell_id']}.parquet"
        )
        rows = [
            {"cell_id": c["cell_id"], "class": None, "step": None, "severity": 0, "kind": "clean", **m}
            for m in metrics
            if m.get("cell_id", c["cell_id"]) == c["cell_id"]
        ]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=METRIC_SCHEMA), root / "metrics" / f"{c['cell_id']}.parquet"
        )
    return root


def _acc(phase, value, eval_set="test", kind="clean", severity=0, **kw):
    return {
        "phase": phase,
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": "accuracy",
        "value": value,
        **kw,
    }


@pytest.fixture
def exact_store(tmp_path):
    """One seed of pruner p at sparsities 0.5/0.8/0.9; dense test accuracy 0.90, fog 0.60."""
    cells, metrics = [], []
    for s, acc, fog in ((0.5, 0.898, 0.58), (0.8, 0.893, 0.50), (0.9, 0.897, 0.40)):
        cid = f"c{int(s * 10)}"
        cells.append(
            {
                "cell_id": cid,
                "parent_id": "p0",
                "arch": "a",
                "dataset": "d",
                "pruner": "p",
                "sparsity": s,
                "seed": 0,
                "retrain": "finetune",
            }
        )
        metrics += [
            _acc("dense", 0.90, cell_id=cid),
            _acc("retrained", acc, cell_id=cid),
            _acc("dense", 0.60, "fog", "corruption", 1, cell_id=cid),
            _acc("retrained", fog, "fog", "corruption", 1, cell_id=cid),
        ]
    return _write_store(tmp_path / "store", cells, metrics)


def test_prune_potential_is_the_largest_qualifying_sparsity(exact_store):
    res = D.load_results(exact_store)
    pp = D.prune_potential(res, delta=0.005).set_index("distribution")["value"]
    # 0.9 qualifies (0.3 points worse), although 0.8 does not (0.7 points worse)
    assert pp["test"] == pytest.approx(0.9)
    assert pp["fog"] == 0.0  # every sparsity loses more than 0.5 points on fog
    ex = D.excess_error(res).set_index("sparsity")["value"]
    # [err(p,fog) - err(p,clean)] - [err(d,fog) - err(d,clean)] at 0.5: (0.42-0.102) - (0.40-0.10)
    assert ex[0.5] == pytest.approx((0.42 - 0.102) - (0.40 - 0.10))


def test_auc_accuracy_curve_includes_the_dense_parent(exact_store):
    res = D.load_results(exact_store)
    auc = D.auc_by_seed(res)["value"].iloc[0]
    xs, ys = [0, 0.5, 0.8, 0.9], [0.90, 0.898, 0.893, 0.897]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(3)) / 0.9
    assert auc == pytest.approx(area)
    curve = D.accuracy_curve(res)
    assert list(curve["sparsity"]) == [0.0, 0.5, 0.8, 0.9]
    assert curve["n"].tolist() == [1, 1, 1, 1] and curve["ci_low"].isna().all()  # one seed: no interval


def test_recall_distortion_alpha_and_slope(tmp_path):
    cell = {
        "cell_id": "c1",
        "parent_id": "p",
        "arch": "a",
        "dataset": "d",
        "pruner": "p",
        "sparsity": 0.9,
        "seed": 0,
        "retrain": "finetune",
    }
    rec = lambda phase, k, v: {"phase": phase, "eval_set": "test", "metric": "recall", "class": k, "value": v}
    metrics = [
        _acc("dense", 0.8),
        _acc("retrained", 0.7),
        rec("dense", 0, 0.6),
        rec("dense", 1, 1.0),
        rec("retrained", 0, 0.4),
        rec("retrained", 1, 1.0),
    ]
    res = D.load_results(_write_store(tmp_path / "s", [cell], metrics))
    d = D.recall_distortion(res).set_index("class")
    assert d.loc[0, "rho"] == pytest.approx(0.75) and d.loc[1, "rho_pruned"] == pytest.approx(1 / 0.7)
    assert d.loc[0, "d"] == pytest.approx(0.4 / 0.7 - 0.75)  # stored as rho' - rho
    s = D.distortion_summary(res).iloc[0]
    assert s["alpha"] == 1.0  # both classes moved further from 1
    assert s["slope"] == pytest.approx((1 / 0.7 - 1.25 - (0.4 / 0.7 - 0.75)) / 0.5)


def test_mean_ci_is_a_t_interval():
    df = pd.DataFrame({"g": ["a"] * 3, "value": [1.0, 2.0, 3.0]})
    row = D.mean_ci(df, ["g"]).iloc[0]
    assert row["mean"] == 2.0 and row["n"] == 3
    assert row["ci_high"] - 2.0 == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)


def test_missing_metrics_are_skipped_with_notes(exact_store):
    res = D.load_results(exact_store)
    assert res.claims is None and any("no claims table" in n for n in res.notes)
    tables, overall, notes, ref = L.build_tables(res, D.load_schema())
    assert ref == 0.9 and len(tables) == 1 and overall is not None
    assert any("OOD AUROC" in n for n in notes) and any("FLOPs" in n for n in notes)
    headers = [c.header for c in tables[0].columns]
    assert not any("OOD" in h for h in headers) and any("Corruption" in h for h in headers)
    assert isinstance(F.ood_and_calibration(res, "a", "d"), str)
    assert isinstance(F.stability_vs_accuracy(res, "a", "d"), str)


def test_figure_file_names_are_safe_for_hostile_names():
    stem = F.slug("accuracy", EVIL_PRUNER, "../../etc")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", stem) and "/" not in stem
    assert F.slug("x", "a/b") != F.slug("x", "a-b")


def test_display_schema_covers_every_column_and_claim():
    schema = D.load_schema()
    for cid in [*L.MISSING_WHY, "pruner", "retrain", "kind", "acc_at", "win_rate"]:
        col = schema["columns"][cid]
        assert col["name"] and col["definition"], cid
        if col["kind"] == "number":
            assert col["direction"] in {"higher", "lower", "neutral"} and "fmt" in col, cid
    assert set(schema["ranking"]["win_rate_columns"]) <= set(schema["columns"])
    templates = {p.stem for p in (Path(D.__file__).parent / "notebooks").glob("*.py")}
    assert {c["notebook"] for c in schema["claims"].values()} <= templates
    assert set(schema["notebooks"]) == templates


# -- the built site ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    store = write_synthetic_store(
        root / "results",
        pruners=("magnitude", EVIL_PRUNER),
        datasets=("data_x", EVIL_DATASET),
        sparsities=(0.5, 0.8, 0.9),
    )
    (store / "bench").mkdir()
    pd.DataFrame(
        {
            "measure": ["cell_vs_minimal", "training_vs_dataloader[x, num_workers=0]", "throughput"],
            "harness_s": [4.0, 1.0, 2.0],
            "baseline_s": [4.2, 2.5, 3.0],
            "ratio": [0.95, 2.5, 1.5],
            "target": ["harness / minimal <= 1.10", "none: best case", "2 workers / 1 worker >= 1.6"],
            "ok": [True, None, False],
            "host": ["bench-host"] * 3,
        }
    ).to_parquet(store / "bench" / "bench.parquet")
    index = build_report(store, root / "site", strict=True)
    return index


def test_page_shows_the_bench_figures(site):
    html = site.read_text()
    start = html.index('<section id="performance">')
    section = html[start : html.index("</section>", start)]
    rows = re.findall(
        r"<tr><td class=\"text\">(.*?)</td>.*?<td>([\d.]+)</td><td class=\"text\">.*?</td>"
        r"<td class=\"text\">(.*?)</td></tr>",
        section,
    )
    assert [(m, r, v) for m, r, v in rows] == [
        ("cell_vs_minimal", "0.95", "met"),
        ("training_vs_dataloader[x, num_workers=0]", "2.50", "informational"),
        ("throughput", "1.50", "not met"),
    ]
    assert "bench-host" in section and 'href="#performance"' in html


def test_site_has_index_notebooks_and_figures(site):
    out = site.parent
    schema = D.load_schema()
    for name in schema["notebooks"]:
        assert (out / "notebooks" / f"{name}.ipynb").is_file() and (
            out / "notebooks" / f"{name}.html"
        ).is_file()
    pngs = sorted((out / "figures").glob("*.png"))
    assert pngs and all(p.with_suffix(".svg").is_file() for p in pngs)
    kinds = {r["kind"] for r in F.read_manifests(out / "figures") if "png" in r}
    # the synthetic store holds every metric: every figure kind is drawn
    assert kinds == set(schema["figures"])


def test_notebooks_are_executed_with_parameters_and_exported_without_inputs(site):
    import nbformat

    out = site.parent
    for path in (out / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["papermill"]["parameters"]["results_dir"].endswith("results")
        assert nb.metadata["kernelspec"]["name"] == "python3"
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs and not [o for o in outputs if o.get("output_type") == "error"], path.name
        html = path.with_suffix(".html").read_text()
        assert "load_results(" not in html  # inputs hidden
        assert not re.search(r"<script[^>]+src=\"https?://", html)  # no CDN script


def test_page_is_self_contained_and_escaped(site):
    html = site.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "fetch(" not in html and "XMLHttpRequest" not in html
    assert EVIL_PRUNER not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "<img src=x" not in html
    blob = re.search(
        r'<script type="application/json" id="prunebench-data">(.*?)</script>', html, re.S
    ).group(1)
    assert "<" not in blob  # '<' is written as \u003c inside the embedded JSON
    data = json.loads(blob)
    assert EVIL_PRUNER in {row["entry"][0] for t in data["tables"] for row in t["rows"]}
    assert data["provenance"]["failed"] == 1 and "0123456789abcdef" in html and "synthetic" in html


def test_overall_ranking_marks_best_and_states_the_tie_test(site):
    html = site.read_text()
    overall = html.split('id="overall"')[1].split("</table>")[0]
    first = overall.split("<tbody>")[1].split("</tr>")[0]
    assert 'class="best"' in first and ">magnitude<" in first  # the synthetic store's strongest pruner
    assert "Wilcoxon signed-rank" in html and "paired t-test" in html


# -- in a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url):
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems, requests = [], []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="load")
    return context, page, problems, requests


@needs_chromium
def test_browser_page_loads_offline_without_errors_and_all_images_load(browser, site):
    context, page, problems, requests = _open(browser, site.as_uri())
    try:
        assert problems == []
        assert all(u.startswith("file://") for u in requests), [
            u for u in requests if not u.startswith("file")
        ]
        widths = page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        assert len(widths) == len(list((site.parent / "figures").glob("*.png")))
        assert all(w > 0 for _, w in widths), [s for s, w in widths if w == 0]
        assert page.evaluate("typeof window.prunebench.tables") == "object"  # embedded data parsed
    finally:
        context.close()


@needs_chromium
def test_browser_clicking_a_header_sorts_the_rows(browser, site):
    context, page, problems, _ = _open(browser, site.as_uri())
    try:
        table = page.locator("#overall table.leaderboard")
        pruners = lambda: table.locator("tbody tr td:nth-child(2)").all_inner_texts()
        before = pruners()
        table.locator("th", has_text="Pruner").click()
        asc = pruners()
        assert asc == sorted(before, key=str.lower) and asc != before
        table.locator("th", has_text="Pruner").click()
        assert pruners() == asc[::-1]
        header = table.locator("th", has_text="AUC acc-sparsity")
        index = header.evaluate("h => Array.prototype.indexOf.call(h.parentNode.children, h)")
        header.click()  # numbers: descending first for higher-is-better
        keys = table.locator(f"tbody tr td:nth-child({index + 1})").evaluate_all(
            "tds => tds.map(td => parseFloat(td.dataset.sort))"
        )
        assert keys == sorted(keys, reverse=True)
        assert header.get_attribute("aria-sort") == "descending"
        assert problems == []
    finally:
        context.close()


@needs_chromium
def test_browser_every_claim_card_links_to_an_existing_notebook_page(browser, site):
    context, page, problems, _ = _open(browser, site.as_uri())
    try:
        cards = page.locator("article.card")
        assert cards.count() == 12  # one per synthetic claim id
        hrefs = page.locator("article.card a.notebook-link").evaluate_all("as => as.map(a => a.href)")
        assert len(hrefs) == cards.count()
        for href in sorted(set(hrefs)):
            assert href.startswith("file://") and Path(href[len("file://") :]).is_file(), href
            nb = context.new_page()
            nb.goto(href, wait_until="load")
            assert "Traceback" not in nb.inner_text("body")
            assert nb.evaluate("typeof window.__pwned") == "undefined"
            nb.close()
        assert problems == []
    finally:
        context.close()


@needs_chromium
def test_browser_hostile_names_are_shown_escaped_and_never_run(browser, site):
    context, page, problems, _ = _open(browser, site.as_uri())
    try:
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("typeof window.__pwned2") == "undefined"
        cells = page.locator("table.leaderboard td").all_inner_texts()
        assert EVIL_PRUNER in cells
        assert page.get_by_role("heading", name=f"mlp_a / {EVIL_DATASET}").count() == 1
        assert problems == []
    finally:
        context.close()


def test_build_refuses_to_overwrite_a_folder_that_is_not_a_report(exact_store, tmp_path):
    from reports.build import ReportError

    out = tmp_path / "mine"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "keep.txt").write_text("mine")
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(ReportError, match=r"thesis\.tex"):
        build_report(exact_store, out)
    assert (out / "figures" / "keep.txt").read_text() == "mine"
