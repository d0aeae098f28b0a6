"""The report: the leaderboard's rules, the intervals, the figures' layout, the built page.

The site is built once per module from a synthetic store shaped like the default preset's
(``tests.report_synth``: 17 pruners x 6 scenarios x the grid x 3 seeds, the studies with planted
effects, analysed by ``harness analyze``'s code). One entry carries a hostile name
(``<script>``) that must show escaped and never run.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from core.hypotheses import VERDICTS
from reports import cards as C
from reports import data as D
from reports import figures as F
from reports import leaderboard as L
from reports.build import build_report
from tests import claims_synth as S
from tests.report_synth import APART, COLLAPSING, GRID, PRUNERS, write_default_shaped_store

CHROMIUM = os.environ.get("PRUNEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_default_shaped_store(tmp_path_factory.mktemp("store") / "results")


@pytest.fixture(scope="module")
def data(store) -> D.ReportData:
    return D.load(store)


@pytest.fixture(scope="module")
def site(store, tmp_path_factory) -> Path:
    return build_report(store, tmp_path_factory.mktemp("site") / "site", strict=True)


# -- intervals ---------------------------------------------------------------------------------


def test_mean_ci_is_the_percentile_bootstrap_and_stays_in_range():
    from scipy import stats

    values = [0.99, 1.0, 1.0]
    mean, lo, hi, n = D.mean_ci(values, 0, 1, key="k")
    assert (mean, n) == (pytest.approx(np.mean(values)), 3)
    assert 0.99 <= lo <= mean <= hi <= 1.0  # a t-interval would pass 1.0 here
    ref = stats.bootstrap(
        (np.array(values),), np.mean, method="percentile", n_resamples=D.BOOTSTRAP_RESAMPLES, confidence_level=0.95,  # noqa: E501
        random_state=np.random.default_rng(int.from_bytes(__import__("hashlib").sha256(b"'k'").digest()[:4], "little")),  # noqa: E501
    )  # fmt: skip
    assert (lo, hi) == (
        pytest.approx(ref.confidence_interval.low),
        pytest.approx(ref.confidence_interval.high),
    )
    assert D.mean_ci(values, 0, 1, key="k") == (mean, lo, hi, n)  # seeded: the same page every build
    assert math.isnan(D.mean_ci([0.5], 0, 1)[1])  # one seed: no interval
    assert D.mean_ci([], 0, 1)[3] == 0


# -- the leaderboard's rules -------------------------------------------------------------------


def test_ranked_entries_have_every_grid_column_and_the_rest_are_shown_apart(data):
    grid = L.grid_of(data)
    assert len(grid.columns) == 6 * len(GRID)
    assert grid.means.loc[grid.ranked].notna().all().all()
    assert [e[0] for e in grid.apart] == [APART]
    overall, _ = L.overall_table(data, {})
    names = [r[0]["text"] for r in overall.rows]
    assert APART not in names and sorted(names) == sorted(PRUNERS)
    assert "imp" in names  # imp on every grid point
    apart = L.apart_table(data, grid)
    assert apart.rows[0][0]["text"] == APART and apart.rows[0][2]["text"] == f"6 of {len(grid.columns)}"


def test_collapsed_models_are_marked_and_lose_without_being_compared(data):
    grid = L.grid_of(data)
    coll = grid.collapsed.loc[(COLLAPSING, "finetune")]
    assert coll[[c for c in grid.columns if c[2] == 0.95]].all()
    assert not coll[[c for c in grid.columns if c[2] < 0.95]].any()
    assert grid.dropped_columns == []  # one entry of 17 collapsed: the columns stay ranked
    table = L.scenario_table(data, "mlp_512x2", "digits", grid, {})
    header = [c.header for c in table.columns].index("Acc @ 0.95 (%)")
    row = next(r for r in table.rows if r[0]["text"] == COLLAPSING)
    assert row[header]["mark"] == L.COLLAPSED_TEXT
    # a hand-made grid: the collapsed entry has the highest raw accuracy and still loses
    cols = [("a", "d", 0.9)]
    idx = pd.MultiIndex.from_tuples([("x", "f"), ("y", "f"), ("z", "f")])
    means = pd.DataFrame({cols[0]: [0.15, 0.5, 0.6]}, index=idx)
    colls = pd.DataFrame({cols[0]: [True, False, False]}, index=idx)
    g = L.Grid(cols, means, colls, list(idx), [], cols, [])
    wr = L.win_rates(g)
    assert (wr[("x", "f")], wr[("y", "f")], wr[("z", "f")]) == (0.0, 0.5, 1.0)


def test_every_table_shows_training_epochs_and_the_budget_view_groups_equal_epochs(data):
    grid = L.grid_of(data)
    overall, _ = L.overall_table(data, {})
    tables = [overall, L.apart_table(data, grid), L.sanity_table(data), L.budget_table(data, grid)] + [
        L.scenario_table(data, a, d, grid, {}) for a, d in data.scenarios
    ]
    for t in tables:
        assert any("epochs" in c.header.lower() for c in t.columns), t.title
    row = next(r for r in overall.rows if r[0]["text"] == "imp")
    epochs = row[[c.id for c in overall.columns].index("epochs")]["text"]
    assert epochs == "30 + 40–70 + 8"  # 8 to 14 rounds of 5 epochs to reach each grid point, charged
    budget = L.budget_table(data, grid)
    head = [c.id for c in budget.columns]
    groups = {}
    for r in budget.rows:
        groups.setdefault((r[0]["text"], r[1]["text"]), []).append(int(r[head.index("rank")]["text"]))
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in groups.values())
    at_init = {r[2]["text"] for r in budget.rows if r[1]["text"] == "14"}
    assert at_init == {"snip", "grasp", "synflow", "random_erk"}  # 6 + 0 + 8 epochs: together
    assert not any(r[2]["text"] == COLLAPSING and r[0]["text"] == "0.95" for r in budget.rows)


def test_mask_sanity_column_says_whose_mask_carries_more_than_its_densities(data):
    masks = L.mask_column_of(data)
    assert masks["global_magnitude"] == "mask > densities"
    assert masks["snip"] == "= densities" and masks["synflow"] == "= densities"
    overall, _ = L.overall_table(data, masks)
    col = [c.id for c in overall.columns].index("mask")
    assert {r[0]["text"]: r[col]["text"] for r in overall.rows}["lamp"] == "not tested"


def test_claim_cards_lead_with_one_table_and_show_each_figure_and_label_table_once(data):
    cards = C.claim_cards(data)
    assert {c["claim"] for c in cards} >= {
        "deintensification_low_ratio",
        "mask_sanity",
        "generalization_stability",
    }
    for c in cards:
        assert c["sentence"].startswith(c["title"]) and c["verdict"] in c["sentence"]
        assert [k for k, _ in c["stats"]][:2] == ["n", "estimate"]
        assert c["verdict"] in VERDICTS and set(c["summary"]) >= {
            "verdict",
            "estimate",
            "ci",
            "control",
            "stability",
        }
    figures = [c["figure"] for c in cards if c["figure"]]
    assert sorted(figures) == sorted(set(figures)) == ["intensification", "mask_sanity", "stability"]
    with_labels = [c for c in cards if c["labels_ours"]]
    assert [c["claim"] for c in with_labels] == ["deintensification_low_ratio"]  # once, not on three cards
    deint = with_labels[0]
    assert any("CIFAR-10, ResNet-56, MP" in r["setting"] for r in deint["labels_paper"])
    mp = next(r for r in deint["labels_ours"] if r["setting"] == "lenet5 / mnist5k / global_magnitude")
    assert re.fullmatch(r"[<>?]( [<>?])*", mp["labels"]) and mp["paper_labels"] == "< < < ? >"
    assert len(mp["beta_hat"].split(", ")) == 5 and mp["alpha_1"]
    gates = {g["gate"] for g in deint["gates"]}
    assert gates == {"null control", "convergence", "collapse"}
    stab = next(c for c in cards if c["claim"] == "generalization_stability")
    assert {g["gate"] for g in stab["gates"]} == {"fit", "positive control"}
    stats = dict(stab["stats"])
    assert stats["positive control: Prune_L - baseline (points)"].startswith("+")
    assert "authors 97-99.7" in stats["run stability (%): ours, the authors'"]
    assert C.css_class("inconclusive (underpowered)") == "inconclusive-underpowered"


def test_outside_entries_are_listed_with_their_verification(store, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(store, root)
    entry = root / "submissions" / "mine"
    cells, metrics = S.mask_controls(np.random.default_rng(1), {"sq_magnitude": -0.01}, seeds=2)
    cells = cells.assign(plugin="pb-example", plugin_version="1.0")
    S.write_store(entry, {"sub": ({"analysis": "none"}, cells, metrics)}, per_cell=False)
    rerun = sorted(cells["cell_id"])[:2]
    (entry / "verification.json").write_text(
        json.dumps({"result": "accepted", "bundle": {"file": "mine.tar.gz"},
                    "sample": {"cell_ids": rerun, "seed": 7},
                    "rule": {"mode": "bit_identical"}, "verified_at": "2026-12-02T10:00:00"})
    )  # fmt: skip
    rejected = root / "submissions" / "bad"
    S.write_store(rejected, {"sub": ({"analysis": "none"}, cells, metrics)}, per_cell=False)
    (rejected / "verification.json").write_text(json.dumps({"result": "refused"}))
    entries = D.load(root).outside
    assert [(e["bundle"], e["pruner"], e["plugin"]) for e in entries] == [
        ("mine.tar.gz", "sq_magnitude", "pb-example==1.0")
    ]
    n = len(cells[cells["cell_type"] == "prune"])
    assert f"2 of {n} cells re-run (sample seed 7), bit-identical" in entries[0]["verification"]
    row = L.outside_table(entries).rows[0]
    assert row[4]["text"] == "2" and row[6]["text"] == entries[0]["verification"]
    assert entries[0]["epochs"] == "30 + 0 + 8"


# -- figures -------------------------------------------------------------------------------


def test_every_figure_of_the_default_report_passes_the_layout_check(data):
    figures = F.all_figures(data)
    names = {f.name for f in figures}
    assert names == {
        "accuracy_sparsity", "budget", "corruption_digits", "corruption_mnist1d", "corruption_mnist1d_hard",
        "intensification", "stability", "mask_sanity",
    }  # fmt: skip
    for f in figures:
        assert F.layout_problems(f.fig) == [], f.name
        plt.close(f.fig)


def test_figures_colour_pruners_by_family_with_distinct_shades(data):
    palette, markers, order = F.pruner_styles(data.cells)
    assert len(set(palette.values())) == len(palette) == len(PRUNERS) + 1
    fam = data.cells.groupby("pruner")["family"].first()
    for family in set(fam):
        members = [p for p in order if fam[p] == family]
        assert len({markers[p] for p in members}) == len(members)  # told apart within a family


def test_layout_check_catches_a_legend_over_the_data_and_overlapping_titles():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(loc="center")
    assert any("legend overlaps" in p for p in F.layout_problems(fig))
    plt.close(fig)
    fig, (a, b) = plt.subplots(1, 2, figsize=(3, 2))
    a.set_title("a rather long title that runs over")
    b.set_title("the neighbour's long title too")
    assert any("titles overlap" in p for p in F.layout_problems(fig))
    plt.close(fig)


# -- the built page ------------------------------------------------------------------------


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cis, self.imgs, self.urls = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-ci-low" in a:
            self.cis.append(a)
        if tag == "img":
            self.imgs.append(a["src"])
        for k in ("src", "href"):
            if a.get(k):
                self.urls.append(a[k])


def test_page_has_no_interval_outside_its_metric_range(site):
    parser = _Cells()
    parser.feed(site.read_text())
    bounded = [c for c in parser.cis if "data-min" in c]
    assert len(bounded) > 500
    for c in bounded:
        lo, hi = float(c["data-ci-low"]), float(c["data-ci-high"])
        assert float(c["data-min"]) <= lo <= hi <= float(c["data-max"]), c
    # the same on the shown text of every percentage interval
    for low, high in re.findall(r'<span class="ci">\[(-?[\d.]+), (-?[\d.]+)\]</span>', site.read_text()):
        assert -100 <= float(low) <= float(high) <= 100


def test_site_is_self_contained_with_figures_notebooks_and_escaped_names(site):
    html = site.read_text()
    parser = _Cells()
    parser.feed(html)
    assert not [u for u in parser.urls if re.match(r"(https?:)?//", u)]
    for src in parser.imgs:
        assert (site.parent / src).is_file(), src
    for name in ("leaderboard", "claims", "robustness"):
        nb = (site.parent / "notebooks" / f"{name}.html").read_text()
        assert "Traceback" not in nb and "<img" in nb, name
    assert APART not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "Mask sanity" in html and "Budget-matched" in html
    assert "test protocol" not in html or "Latency" in html


def test_a_failed_build_leaves_the_previous_site(site, tmp_path):
    before = site.read_text()
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "no-store", site.parent)
    assert site.read_text() == before


@pytest.fixture(scope="module")
def browser():
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@needs_chromium
def test_browser_page_loads_offline_sorts_and_never_runs_hostile_names(browser, site):
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(site.as_uri(), wait_until="load")
        assert problems == [] and all(u.startswith("file://") for u in requests)
        widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert widths and all(w > 0 for w in widths)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        table = page.locator("#overall table.leaderboard")
        names = lambda: table.locator("tbody tr td:nth-child(1)").all_inner_texts()
        before = names()
        table.locator("th", has_text="Pruner").click()
        assert names() == sorted(before, key=str.lower)
        assert page.evaluate("typeof window.prunebench.tables") == "object"
    finally:
        context.close()
