"""The leaderboard's recovery and magnitude-vs-random checks (``analysis.sanity``) on a written store."""

import json

import numpy as np

from analysis.sanity import RECOVERY_POINTS, leaderboard_checks, render_sanity
from tests import claims_synth as S


def _store(tmp_path, drop_at_09: float):
    rng = np.random.default_rng(0)
    cells, rows = [], []
    for pruner in ("random", "global_magnitude", "lamp", "layer_magnitude"):
        for sparsity in (0.8, 0.9, 0.95):
            for seed in range(3):
                cid = f"c{pruner}{sparsity}{seed}"
                cells.append(
                    {
                        **S.CELL,
                        "cell_id": cid,
                        "arch": "mlp_512x2",
                        "dataset": "mnist1d",
                        "pruner": pruner,
                        "sparsity": sparsity,
                        "seed": seed,
                    }
                )
                loss = 0.3 if pruner == "random" else (drop_at_09 if sparsity == 0.9 else 0.01)
                rows += [
                    S.m(cid, "dense", "test", "accuracy", 0.9),
                    S.m(cid, "retrained", "test", "accuracy", 0.9 - loss + rng.normal(0, 1e-4)),
                ]
    import pandas as pd

    cells, metrics = pd.DataFrame(cells), pd.DataFrame(rows)
    S.write_store(tmp_path, {"x": ({"analysis": "potential", "claim": []}, cells, metrics)})
    (tmp_path / "leaderboard.json").write_text(
        json.dumps({"cell_ids": list(cells["cell_id"]), "grid": [0.8, 0.9, 0.95]})
    )
    return tmp_path


def test_recovery_is_judged_at_0_9_against_dense(tmp_path):
    table = leaderboard_checks(_store(tmp_path / "a", 0.01))
    (row,) = table.to_dict("records")
    assert row["drop_points"] == np.float64(row["drop_points"]) and abs(row["drop_points"] - 1.0) < 0.1
    assert row["recovers"] and row["seeds"] == 3
    text = render_sanity(table)
    assert "1 of 1" in text and "magnitude over random at sparsity >= 0.9: 6 of 6" in text
    bad = leaderboard_checks(_store(tmp_path / "b", (RECOVERY_POINTS + 1) / 100))
    assert not bad["recovers"].iloc[0] and "NOT recovered" in render_sanity(bad)


def test_a_pair_without_its_recovery_cells_is_said_missing_not_failed(tmp_path):
    """A filtered run can store a pair's cells without ``global_magnitude`` at 0.9: the line says
    so and the count is over the measured pairs (a partial store is never read as a failure)."""
    table = leaderboard_checks(_store(tmp_path, 0.01))
    missing = {**table.iloc[0].to_dict(), "arch": "cnn_32x3_fc512", "seeds": 0, "recovers": False}
    missing.update({"dense": np.nan, "global_magnitude_0.9": np.nan, "drop_points": np.nan})
    import pandas as pd

    text = render_sanity(pd.concat([table, pd.DataFrame([missing])], ignore_index=True))
    assert "within 1.5 points of dense on 1 of 1 (arch, dataset) (1 not in this store)" in text
    assert "cnn_32x3_fc512   mnist1d       global_magnitude@0.9 not in this store" in text
    assert "NOT recovered" not in text and "nan" not in text


def test_claims_without_cells_are_counted_apart_as_not_tested():
    from analysis.claims import render_primary

    primaries = [
        {"sentence": "A: reproduced.", "verdict": "reproduced", "reason": "interval excludes 0", "gates": []},
        {
            "sentence": "B: not tested (no cells of its primary scope in this store)",
            "verdict": "out of regime",
            "reason": "not tested: no cells of its primary scope in this store",
            "gates": [],
        },
    ]
    summary = render_primary(primaries).splitlines()[-1]
    assert summary.startswith("summary: 1 reproduced, 1 not tested (no cells in this store)")
    assert "out of regime" not in summary
