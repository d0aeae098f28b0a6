"""The worked examples of ``docs/extending.md``, run as the page writes them.

Each example is read out of the page (the code block after ``<!-- example: NAME -->``) and added
the way the page says, for its test only: a registration is undone afterwards (``scratch``,
``monkeypatch``), so no other test sees the throwaway pruner, metric, column or analysis.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.store import MetricFilter, StoreReader
from tests import claims_synth as S

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"
PRUNER = "activation_magnitude"
IN_REPO_IMPORTS = ("from core.", "from pruners.")


def example(name: str) -> str:
    """The code block of ``docs/extending.md`` marked ``<!-- example: NAME -->``, dedented."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.S)
    assert found, f"docs/extending.md has no example {name!r}"
    return textwrap.dedent(found.group(1))


def import_source(monkeypatch, name: str, source: str) -> types.ModuleType:
    """``source`` imported as module ``name`` (in ``sys.modules`` for the test only)."""
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(source, f"docs/extending.md ({name})", "exec"), module.__dict__)
    return module


@pytest.fixture
def scratch(monkeypatch):
    """The pruner registry and the plugin loader as they were, after the test: every pruner it
    registers and every plugin module it imports are forgotten."""
    from pruners import PRUNERS, plugins

    monkeypatch.setattr(PRUNERS, "_entries", dict(PRUNERS._entries))
    loaded = set(plugins._LOADED)
    monkeypatch.setattr(plugins, "_LOADED", set(loaded))
    yield monkeypatch
    for module in plugins._LOADED - loaded:
        sys.modules.pop(module, None)


def contract_lines(capsys, code: int) -> list[str]:
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, "\n".join(lines)
    assert lines[:-1] and all(line.startswith("PASS ") for line in lines[:-1]), "\n".join(lines)
    return lines


# -- a pruner -------------------------------------------------------------------------------------


def test_pruner_example_is_a_built_in_that_passes_the_contract(scratch, capsys):
    from harness.check import check_pruner
    from pruners import PRUNERS, PruneContext, get_pruner

    assert PRUNER not in PRUNERS
    module = import_source(scratch, f"pruners.{PRUNER}", example("pruner"))  # @register_pruner runs
    assert PRUNERS.get(PRUNER) is module.ActivationMagnitude and module.ActivationMagnitude.plugin is None
    lines = contract_lines(capsys, check_pruner(PRUNER, archs=["mlp_256x2", "cnn_32x3"]))
    assert lines[-1].startswith(f"check-pruner {PRUNER}: ")
    # its score: two equal weights, the first input 3 times the second: the second weight goes
    model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False))
    torch.nn.init.ones_(model[0].weight)
    x = torch.tensor([[3.0, 1.0], [-3.0, 1.0]])
    get_pruner(PRUNER, {"batches": 1}).prune(model, 0.5, PruneContext(seed=0, batches=[(x, torch.zeros(2))]))
    assert model[0].weight_mask.tolist() == [[1.0, 0.0]]


def test_pruner_example_as_a_plugin_without_forking(scratch, tmp_path, capsys):
    """The same file importing the public API instead, loaded as ``--plugin my_pruners`` loads it."""
    from harness.check import check_pruner
    from pruners import PRUNERS

    source = example("pruner").splitlines()
    at = next(i for i, line in enumerate(source) if line.startswith(IN_REPO_IMPORTS))
    source = [line for line in source if not line.startswith(IN_REPO_IMPORTS)]
    source[at:at] = example("pruner-plugin-imports").splitlines()
    source = "\n".join(source) + "\n"
    assert "from prunebench import" in source and not re.search(r"^from (core|pruners)\b", source, re.M)
    (tmp_path / "my_pruners.py").write_text(source)
    scratch.syspath_prepend(str(tmp_path))
    contract_lines(capsys, check_pruner(PRUNER, plugins=("my_pruners",), archs=["mlp_256x2"]))
    cls = PRUNERS.get(PRUNER)
    assert cls.__module__ == "my_pruners" and cls.plugin[0] == "my_pruners"
    assert cls.plugin[1].startswith("src-")  # no distribution owns it: its source's hash is its version


# -- a dataset ------------------------------------------------------------------------------------


def test_dataset_example_is_one_module_with_its_own_shift_sets(monkeypatch):
    from benchmarks.datasets import DATASETS, embedded_names
    from benchmarks.matrix import resolved_eval
    from benchmarks.shifts import shift_sets
    from core.spec import EvalConfig

    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))  # forgotten after the test
    assert "digits5" not in DATASETS
    import_source(monkeypatch, "benchmarks.datasets.digits5", example("dataset"))  # registers it
    entry = DATASETS.get("digits5")
    assert "digits5" in embedded_names()
    data = entry.load()
    assert [len(data.split(s)[1]) for s in ("train", "val", "test")] == list(entry.splits)
    assert data.num_classes == 5 and data.shifts is entry.shifts
    sets = shift_sets(data)
    assert {s.name for s in sets if s.kind == "ood"} == {"far_photo_patches", "near_letters"}
    assert len([s for s in sets if s.kind == "corruption"]) == 26 * 5
    assert {len(s.y) for s in sets} == {50, 200}
    ev = resolved_eval(EvalConfig(), "digits5")
    assert (ev.shift_set_size, ev.ood_set_size) == (50, 200)


# -- a metric and its leaderboard column ------------------------------------------------------------


def test_metric_example_is_computed_stored_and_shown_by_its_column(tmp_path, monkeypatch):
    import core.metrics as M
    from benchmarks import metrics as B
    from reports import columns as K
    from reports.build import build_report
    from tests.tiny import tiny_store

    with pytest.raises(KeyError, match="not declared"):
        M.metric_row("test", "clean", "top2_accuracy", 0.5)
    namespace = dict(vars(B))  # the function is written in benchmarks/metrics.py
    exec(example("metric-function"), namespace)
    monkeypatch.setattr(B, "grouped_top2", namespace["grouped_top2"], raising=False)
    (top2,) = eval(example("metric"), vars(M))  # one more entry of METRICS
    monkeypatch.setattr(M, "METRICS", (*M.METRICS, top2))
    (column,) = eval(example("column"), vars(K))  # one more entry of OVERALL
    monkeypatch.setattr(K, "OVERALL", (*K.OVERALL, column))

    _, results = tiny_store(tmp_path)  # a real run: digits, mlp_256x2, 2 pruners, clean sets
    reader = StoreReader(results)
    rows = reader.metrics([MetricFilter(metrics=["accuracy", "top2_accuracy"], per_class=False)])
    top2_rows = rows[rows["metric"] == "top2_accuracy"]
    assert set(top2_rows["eval_set"]) == {"train", "val", "test"}
    assert set(top2_rows["phase"]) >= {"dense", "retrained"}
    key = ["cell_id", "phase", "eval_set"]
    both = top2_rows.merge(rows[rows["metric"] == "accuracy"], on=key, suffixes=("", "_top1"))
    assert len(both) == len(top2_rows) and (both["value"] >= both["value_top1"]).all()
    assert (both["value"] <= 1).all() and (both["value"] > both["value_top1"]).any()

    index = build_report(results, tmp_path / "site", notebooks=[])
    html = index.read_text()
    header = r'data-direction="higher" scope="col" title="top-2 test accuracy[^"]*">Top-2 acc @ 0\.5 \(%\)<'
    assert re.search(header, html), "the column's header, sorted as its metric declares"
    page = json.loads(re.search(r'id="prunebench-data">(.*?)</script>', html, re.S).group(1))
    overall = next(t for t in page["tables"] if t["anchor"] == "overall")
    at = overall["columns"].index("Top-2 acc @ 0.5 (%)")
    test = top2_rows[(top2_rows["phase"] == "retrained") & (top2_rows["eval_set"] == "test")]
    pruner = reader.cells(["cell_id", "pruner"]).set_index("cell_id")["pruner"]
    expected = test.groupby(test["cell_id"].map(pruner))["value"].mean()
    shown = {row[0]: row[at] for row in overall["rows"]}
    assert shown == {p: f"{100 * v:.1f}" for p, v in expected.items()}


# -- an analysis, its registry line and its study file -----------------------------------------------


def calibration_store(root: Path, definition: dict, parents: int = 8) -> Path:
    """Cells of two pruners on ``parents`` dense parents, with the clean test accuracy and ECE of
    both phases: ``global_magnitude`` raises the ECE by 0.02, ``random`` leaves it as it was."""
    rng = np.random.default_rng(0)
    cells, rows = [], []
    for seed in range(parents):
        dense_ece = 0.03 + rng.normal(0, 0.005)
        for pruner, increase in (("global_magnitude", 0.02), ("random", 0.0)):
            cid = f"c{pruner}{seed}"
            where = {"arch": "mlp_256x2", "dataset": "digits", "pruner": pruner, "sparsity": 0.9}
            cells.append({**S.CELL, "cell_id": cid, "parent_id": f"p{seed}", "seed": seed, **where})
            rows += [
                S.m(cid, "dense", "test", "accuracy", 0.95),
                S.m(cid, "retrained", "test", "accuracy", 0.93),
                S.m(cid, "dense", "test", "ece", dense_ece),
                S.m(cid, "retrained", "test", "ece", dense_ece + increase + rng.normal(0, 0.004)),
            ]
    return S.write_store(root, {"calibration": (definition, pd.DataFrame(cells), pd.DataFrame(rows))})


def test_analysis_example_is_checked_analyzed_and_reported(tmp_path, monkeypatch):
    import tomllib

    from analysis import registry
    from analysis.claims import analyze_studies, run_analysis
    from analysis.load import load_studies
    from benchmarks import designs
    from benchmarks.matrix import PresetError
    from harness.runner import describe_study, load_checked_study
    from reports.build import build_report

    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "calibration.toml").write_text(example("study"))
    monkeypatch.setattr(designs, "STUDY_DIR", studies)
    with pytest.raises(PresetError, match="key 'analysis': 'calibration' is not one of"):
        load_checked_study("calibration")  # the study file alone: its analysis is not registered
    module = import_source(monkeypatch, "analysis.calibration", example("analysis"))
    monkeypatch.setitem(registry.ANALYSES, "calibration", module.ANALYSIS)  # the registry line
    study = load_checked_study("calibration")
    assert study.uses_leaderboard and study.cells == ()
    assert describe_study("calibration") == (
        "v1, the leaderboard's cells: Pruning and retraining worsen calibration [calibration_damage]"
    )
    (studies / "calibration.toml").write_text(example("study").replace('"t_one_sample"', '"welch"', 1))
    with pytest.raises(PresetError, match=r"test: 'welch' is not one of: t_one_sample"):
        load_checked_study("calibration")

    root = calibration_store(tmp_path / "results", tomllib.loads(example("study")))
    _, untested = analyze_studies(load_studies(root))  # without the rows the analysis declares it reads
    assert [p["reason"][:10] for p in untested] == ["not tested"]
    table, primaries = run_analysis(root)  # what harness analyze runs
    (primary,) = primaries
    assert (primary["claim"], primary["verdict"], primary["n"]) == ("calibration_damage", "reproduced", 8)
    assert primary["estimate"] == pytest.approx(0.02, abs=0.004)
    by_pruner = table[table["hypothesis"] == "ece_increase_by_pruner"].set_index("pruner")["verdict"]
    assert by_pruner["global_magnitude"] == "reproduced" and by_pruner["random"] != "reproduced"

    html = build_report(root, tmp_path / "site", notebooks=[]).read_text()
    assert 'id="claim-calibration_damage"' in html
    assert "Pruned and retrained models are less calibrated than their dense parents" in html
    page = json.loads(re.search(r'id="prunebench-data">(.*?)</script>', html, re.S).group(1))
    assert [(c["claim"], c["verdict"]) for c in page["claims"]] == [("calibration_damage", "reproduced")]
